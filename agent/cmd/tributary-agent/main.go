// Command tributary-agent is the practice service: it extracts, aggregates, protects, signs
// and uploads a practice's monthly figures. Run it with no arguments for help.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/tributary-health/tributary/agent"
	"github.com/tributary-health/tributary/agent/config"
	"github.com/tributary-health/tributary/agent/service"
	"github.com/tributary-health/tributary/agent/spool"
	"github.com/tributary-health/tributary/agent/status"
	"github.com/tributary-health/tributary/plugins/conformance"
)

const usage = `tributary-agent: a practice's Tributary service.

Usage:
  tributary-agent run --config FILE          run on the schedule in the foreground (what the
                                             service runs); --once: one run now, then exit
  tributary-agent status --config FILE       what the agent is doing, in plain words, and
                                             what, if anything, to do (exit status 3 if so)
  tributary-agent service install|uninstall|start|stop|status --config FILE
                                             run the agent as a system service (systemd on
                                             Linux, the Service Control Manager on Windows)
  tributary-agent config sample              print a commented sample configuration
  tributary-agent config check --config FILE check a configuration and say what is wrong
  tributary-agent keys init --out DIR        create the practice's signing key pair
  tributary-agent plugin check PATH [--config FILE] [--from YYYY-MM --to YYYY-MM]
                                             run a plugin against the contract and report
  tributary-agent releases --config FILE     list what has left the practice (release log)

Logs go to stderr (run --log-file FILE for a file); --log-format json gives structured logs.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		return 0
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(args[1:], stdout, stderr)
	case "config":
		err = cmdConfig(args[1:], stdout)
	case "keys":
		err = cmdKeys(args[1:], stdout)
	case "plugin":
		if len(args) < 2 || args[1] != "check" {
			err = errors.New("usage: tributary-agent plugin check PATH [--config FILE]")
			break
		}
		return conformance.Main(args[2:], stdout, stderr)
	case "releases":
		err = cmdReleases(args[1:], stdout)
	case "status":
		return cmdStatus(args[1:], stdout, stderr)
	case "service":
		err = cmdService(args[1:], stdout, stderr)
	default:
		err = fmt.Errorf("unknown command %q\n\n%s", args[0], usage)
	}
	if err != nil {
		fmt.Fprintln(stderr, "tributary-agent:", err)
		return 1
	}
	return 0
}

func newLogger(w io.Writer, format string) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

func cmdRun(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	once := fs.Bool("once", false, "run once now and exit, instead of on the schedule")
	cfgPath := fs.String("config", "", "configuration file")
	logFormat := fs.String("log-format", "text", "text or json")
	logFile := fs.String("log-file", "", "append logs to this file instead of stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cfgPath == "" {
		return errors.New("run: --config FILE is required (see 'tributary-agent config sample')")
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	logw := stderr
	if *logFile != "" {
		f, err := os.OpenFile(*logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("log file: %w", err)
		}
		defer f.Close()
		logw = f
	}
	log := newLogger(logw, *logFormat)
	if *once && cfg.Listen != config.ListenOff && status.Healthy(context.Background(), cfg.Listen) {
		return fmt.Errorf("run --once: the service is running over this spool (it answers on %s) and runs on its schedule; to run now, stop it ('tributary-agent service stop --config %s'), run --once, then start it again", cfg.Listen, *cfgPath)
	}
	serve := func(ctx context.Context) error {
		// Before Open, which discards runs left incomplete: only by a dead agent, never by
		// one still writing.
		unlock, err := spool.Lock(cfg.Spool)
		if err != nil {
			return err
		}
		defer unlock()
		a, err := agent.Open(ctx, cfg, agent.HostLauncher(cfg, log), log)
		if err != nil {
			return err
		}
		r, err := service.New(a, log)
		if err != nil {
			return err
		}
		if !*once {
			return r.Serve(ctx)
		}
		rep, err := r.Once(ctx)
		if rep != nil {
			printReport(stdout, rep)
		}
		if err != nil {
			return err
		}
		if rep.UploadErr != nil {
			return fmt.Errorf("the run is saved in the spool but could not be uploaded yet (%v); it is sent by the next run", rep.UploadErr)
		}
		if rep.Failed() {
			return errors.New("one or more plugins failed; see above")
		}
		return nil
	}
	if !*once {
		if handled, err := service.RunManaged(service.DefaultName, serve); handled {
			if err != nil {
				log.Error("service failed", "error", err)
			}
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx)
}

func printReport(w io.Writer, rep *agent.RunReport) {
	fmt.Fprintf(w, "run %s: months %s to %s, %d file(s) (%d periods, %d values, %d withheld by the disclosure audit), %d patients registered\n",
		rep.RunID, rep.From, rep.To, rep.Files, rep.Periods, rep.Values, rep.Withheld, rep.Patients)
	for _, p := range rep.Plugins {
		if p.Err != nil {
			fmt.Fprintf(w, "  plugin %s: FAILED: %v\n", p.Name, p.Err)
			continue
		}
		fmt.Fprintf(w, "  plugin %s %s: %d registrations, %d events\n", p.Name, p.Version, p.Registrations, p.Events)
	}
	for reason, n := range rep.Dropped {
		fmt.Fprintf(w, "  not counted: %d %s\n", n, reason)
	}
	// FilesSent already counts each run's manifest.
	fmt.Fprintf(w, "  uploaded: %d run(s), %d object(s), %d bytes; %d run(s) waiting\n", rep.Upload.RunsSent, rep.Upload.FilesSent, rep.Upload.BytesSent, rep.Upload.RunsPending)
}

func cmdConfig(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: tributary-agent config sample | config check --config FILE")
	}
	switch args[0] {
	case "sample":
		fmt.Fprint(stdout, config.Sample())
		return nil
	case "check":
		fs := flag.NewFlagSet("config check", flag.ContinueOnError)
		cfgPath := fs.String("config", "", "configuration file")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if _, err := config.Load(*cfgPath); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "configuration is valid")
		return nil
	}
	return fmt.Errorf("unknown config command %q", args[0])
}

func cmdKeys(args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "init" {
		return errors.New("usage: tributary-agent keys init --out DIR")
	}
	fs := flag.NewFlagSet("keys init", flag.ContinueOnError)
	out := fs.String("out", "", "folder for practice.key and practice.pub")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *out == "" {
		return errors.New("keys init: --out DIR is required")
	}
	priv, pub, err := agent.InitKeys(*out)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "private key: %s (keep it on this machine; name it as key_file in the config)\npublic key:  %s (send it to the federation lead to be registered)\n", priv, pub)
	return nil
}

func cmdReleases(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("releases", flag.ContinueOnError)
	cfgPath := fs.String("config", "", "configuration file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	rel, err := spool.View(cfg.Spool).Releases()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%-20s  %-25s  %-16s  %8s  %s\n", "when (UTC)", "run", "months", "bytes", "object")
	for _, r := range rel {
		fmt.Fprintf(stdout, "%-20s  %-25s  %-16s  %8d  %s/%s\n", r.Time.Format("2006-01-02 15:04:05"), r.RunID, r.Period, r.Size, r.Store, r.Key)
	}
	return nil
}
