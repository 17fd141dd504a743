// Command tributary-agent is the practice service: it extracts, aggregates, protects, signs
// and uploads a practice's monthly figures. Run it with -h for its commands.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tributary-health/tributary/agent"
	"github.com/tributary-health/tributary/agent/config"
	"github.com/tributary-health/tributary/agent/service"
	"github.com/tributary-health/tributary/agent/spool"
	"github.com/tributary-health/tributary/agent/status"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/cli"
	"github.com/tributary-health/tributary/internal/progress"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Execute(ctx, newRoot(), os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs a command line in-process and returns its exit code (the tests' entry point).
func run(args []string, stdout, stderr io.Writer) int {
	return cli.Execute(context.Background(), newRoot(), args, stdout, stderr)
}

// newRoot builds the whole command tree.
func newRoot() *cobra.Command {
	root := cli.NewRoot("tributary-agent", "A practice's Tributary service",
		`tributary-agent is a practice's Tributary service. Its plugins read the practice's own data;
it counts them by month, age band and sex, protects the counts with disclosure control, signs
them with the practice's key and uploads only those counts to the federation's store.

First steps:
  tributary-agent keys init --out /etc/tributary
  tributary-agent config sample > /etc/tributary/agent.toml   (then edit it)
  tributary-agent config check --config /etc/tributary/agent.toml
  tributary-agent run --once --config /etc/tributary/agent.toml
  tributary-agent service install --config /etc/tributary/agent.toml
`)
	root.AddCommand(runCmd(), statusCmd(), serviceCmd(), configCmd(), keysCmd(), pluginCmd(), releasesCmd(), measuresCmd())
	return root
}

// addConfigFlag declares --config, the agent's configuration file, which most commands read.
func addConfigFlag(fs *pflag.FlagSet, path *string) {
	fs.StringVar(path, "config", "", "the agent's configuration file (TOML; 'tributary-agent config sample' prints one)")
}

// loadConfig reads the --config file, or says how to give one.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return nil, cli.Usagef("give the agent's configuration file with --config FILE (write one with 'tributary-agent config sample > agent.toml')")
	}
	return config.Load(path)
}

func runCmd() *cobra.Command {
	var cfgPath, logFormat, logFile string
	var once, noProgress bool
	c := &cobra.Command{
		Use:   "run --config FILE [--once]",
		Short: "Run on the schedule in the foreground (what the service runs), or once now with --once",
		Long: `Run runs the agent in the foreground on the schedule in the configuration, which is what the
installed service does. With --once it makes one run now, prints what each plugin supplied,
what was not counted and why, and what was uploaded, then exits. While it works, a progress bar
on stderr shows the plugin running, the record batches and rows it has sent, and the objects
uploaded, when stderr is a terminal; nothing is added when it is not (a pipe, a file, a log).

A run that cannot be uploaded stays in the spool and goes with the next attempt. While the
service runs, --once is refused: stop the service first.`,
		Example: "  tributary-agent run --once --config /etc/tributary/agent.toml",
		Args:    cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmdRun(cmd.Context(), cfgPath, once, logFormat, logFile, noProgress, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	addConfigFlag(c.Flags(), &cfgPath)
	c.Flags().BoolVar(&once, "once", false, "run once now and exit, instead of on the schedule")
	c.Flags().StringVar(&logFormat, "log-format", "text", "log format: text or json")
	c.Flags().StringVar(&logFile, "log-file", "", "append logs to this file instead of stderr")
	c.Flags().BoolVar(&noProgress, "no-progress", false, "with --once, "+progress.FlagUsage)
	return c
}

func newLogger(w io.Writer, format string) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

func cmdRun(ctx context.Context, cfgPath string, once bool, logFormat, logFile string, noProgress bool, stdout, stderr io.Writer) error {
	if logFormat != "text" && logFormat != "json" {
		return cli.Usagef("--log-format %q: choose text or json", logFormat)
	}
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return err
	}
	logw := stderr
	if logFile != "" {
		f, err := os.OpenFile(logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("cannot open the log file: %w", err)
		}
		defer f.Close()
		logw = f
	}
	// A run by hand at a terminal shows its progress on stderr, the logs above the bar.
	var bar *progress.Bar
	if once {
		bar = progress.New(stderr, progress.Enabled(stderr, noProgress), 0, "starting the run")
		defer bar.Done()
		if logFile == "" {
			logw = bar.Above(logw)
		}
	}
	log := newLogger(logw, logFormat)
	if once && cfg.Listen != config.ListenOff && status.Healthy(ctx, cfg.Listen) {
		return fmt.Errorf("the service is running over this spool (it answers on %s) and runs on its schedule; to run now, stop it ('tributary-agent service stop --config %s'), run --once, then start it again", cfg.Listen, cfgPath)
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
			return openHint(err)
		}
		r, err := service.New(a, log)
		if err != nil {
			return err
		}
		if !once {
			return r.Serve(ctx)
		}
		if bar != nil {
			a.Progress = progress.NewRun(bar)
		}
		rep, err := r.Once(ctx)
		bar.Done()
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
			return errors.New("one or more plugins failed (see above); fix them and run again: the others' figures were uploaded")
		}
		return nil
	}
	if !once {
		if handled, err := service.RunManaged(service.DefaultName, serve); handled {
			if err != nil {
				log.Error("service failed", "error", err)
			}
			return err
		}
	}
	return serve(ctx)
}

// openHint adds to a store that cannot be opened for want of credentials where they come
// from: the service reads its environment file; a run by hand does not.
func openHint(err error) error {
	if strings.Contains(err.Error(), "no credentials for the S3 store") {
		return fmt.Errorf("%w; the service reads them from its environment file (EnvironmentFile=/etc/tributary/store.env), but a run by hand does not: source it first ('. /etc/tributary/store.env'), or put them in the [s3] section of the configuration", err)
	}
	return err
}

func printReport(w io.Writer, rep *agent.RunReport) {
	fmt.Fprintf(w, "run %s: months %s to %s, %d file(s) (%d periods, %d values, %d withheld by the disclosure audit), %d patients registered\n",
		rep.RunID, rep.From, rep.To, rep.Files, rep.Periods, rep.Values, rep.Withheld, rep.Patients)
	for _, p := range rep.Plugins {
		if p.Err != nil {
			fmt.Fprintf(w, "  plugin %s: FAILED: %v\n", p.Name, p.Err)
		} else {
			fmt.Fprintf(w, "  plugin %s %s: %d registrations, %d events\n", p.Name, p.Version, p.Registrations, p.Events)
		}
		// What the plugin read from the practice's system and left out, and why.
		for _, reason := range slices.Sorted(maps.Keys(p.Skipped)) {
			fmt.Fprintf(w, "    skipped by the plugin: %d source row(s): %s\n", p.Skipped[reason], reason)
		}
	}
	for _, reason := range slices.Sorted(maps.Keys(rep.Dropped)) {
		fmt.Fprintf(w, "  not counted: %d %s\n", rep.Dropped[reason], reason)
	}
	// FilesSent already counts each run's manifest.
	fmt.Fprintf(w, "  uploaded: %d run(s), %d object(s), %d bytes; %d run(s) waiting\n", rep.Upload.RunsSent, rep.Upload.FilesSent, rep.Upload.BytesSent, rep.Upload.RunsPending)
}

func configCmd() *cobra.Command {
	g := cli.Group("config", "Print a sample configuration, or check one", "")
	sample := &cobra.Command{
		Use:     "sample",
		Short:   "Print a commented sample configuration",
		Long:    "Sample prints a commented configuration to start from: the practice id, the key, the store, the spool, the schedule and the plugins.",
		Example: "  tributary-agent config sample > /etc/tributary/agent.toml",
		Args:    cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprint(cmd.OutOrStdout(), config.Sample())
			return err
		},
	}
	var cfgPath string
	check := &cobra.Command{
		Use:   "check --config FILE",
		Short: "Check a configuration and say what is wrong",
		Long: `Check makes every check a run makes before it reads any data, and says what is wrong and what
to do: the settings, the signing key (the private one), the store URL and its credentials
(nothing is written), and every plugin, started as a run starts it (its binary checked against
its pinned SHA-256) and asked to check its own configuration, with relative paths resolved
against the configuration file's folder. It exits 1 when a run would fail.`,
		Example: "  tributary-agent config check --config /etc/tributary/agent.toml",
		Args:    cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			c := agent.CheckSetup(cmd.Context(), cfg, agent.HostLauncher(cfg, log))
			out := cmd.OutOrStdout()
			for _, p := range c.Problems {
				fmt.Fprintf(out, "PROBLEM: %s\n", p)
			}
			for _, w := range c.Warnings {
				fmt.Fprintf(out, "warning: %s\n", w)
			}
			for _, p := range c.Plugins {
				fmt.Fprintln(out, p.String())
			}
			if !c.OK() {
				return errors.New("the configuration would fail a run; the lines above say what to change")
			}
			_, err = fmt.Fprintln(out, "configuration is valid: a run can start")
			return err
		},
	}
	addConfigFlag(check.Flags(), &cfgPath)
	g.AddCommand(sample, check)
	return g
}

func keysCmd() *cobra.Command {
	g := cli.Group("keys", "Make the practice's signing key pair", "")
	var out string
	initCmd := &cobra.Command{
		Use:   "init --out DIR",
		Short: "Make the practice's Ed25519 signing key pair in DIR",
		Long: `Init writes DIR/practice.key (private, mode 0600: it stays on this machine and is named as
key_file in the configuration) and DIR/practice.pub (public: send it to the federation lead,
who registers it). An existing key is never overwritten.`,
		Example: "  tributary-agent keys init --out /etc/tributary",
		Args:    cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return cli.Usagef("give the folder for the keys with --out DIR")
			}
			priv, pub, err := agent.InitKeys(out)
			if err != nil {
				return err
			}
			id, err := keyID(pub)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "private key: %s (keep it on this machine; name it as key_file in the config)\npublic key:  %s (send it to the federation lead to be registered)\nkey id:      %s (the lead's 'registry add' prints the same id)\n", priv, pub, id)
			return nil
		},
	}
	initCmd.Flags().StringVar(&out, "out", "", "folder for practice.key and practice.pub")
	g.AddCommand(initCmd)
	return g
}

// keyID is the id of the public key in the PEM file at path, as the registry shows it.
func keyID(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	pub, err := formats.ParsePublicKey(data)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return formats.KeyID(pub), nil
}

func releasesCmd() *cobra.Command {
	var cfgPath string
	c := &cobra.Command{
		Use:   "releases --config FILE",
		Short: "List what has left the practice (the release log)",
		Long: `Releases lists every object the agent has uploaded, oldest first, from the release log in
the spool: when, the run, the months it covers, its size and its key in the store (the bucket
or folder is named above the objects it holds).`,
		Example: "  tributary-agent releases --config /etc/tributary/agent.toml",
		Args:    cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				return err
			}
			rel, err := spool.View(cfg.Spool).Releases()
			if err != nil {
				return err
			}
			printReleases(cmd.OutOrStdout(), rel)
			return nil
		},
	}
	addConfigFlag(c.Flags(), &cfgPath)
	return c
}

// printReleases writes the release log as a table per store, each under a line naming the
// store as a person would: the bucket and its server, or the folder.
func printReleases(w io.Writer, rel []spool.Release) {
	if len(rel) == 0 {
		fmt.Fprintln(w, "Nothing has left this practice yet.")
		return
	}
	store := "\x00"
	for _, r := range rel {
		if r.Store != store {
			if store != "\x00" {
				fmt.Fprintln(w)
			}
			store = r.Store
			fmt.Fprintf(w, "Store: %s\n", describeStore(store))
			fmt.Fprintf(w, "%-20s  %-25s  %-16s  %8s  %s\n", "when (UTC)", "run", "months", "bytes", "key")
		}
		fmt.Fprintf(w, "%-20s  %-25s  %-16s  %8d  %s\n", r.Time.Format("2006-01-02 15:04:05"), r.RunID, r.Period, r.Size, r.Key)
	}
}

// describeStore names the store of a release log line (a URL without credentials) in words:
// "bucket fed on minio.example.org:9000 (TLS)", "folder /srv/tributary".
func describeStore(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		return fmt.Sprintf("%q", raw)
	}
	switch u.Scheme {
	case "s3":
		q := u.Query()
		transport := "TLS"
		if q.Get("insecure") == "true" {
			transport = "plain HTTP"
		}
		s := fmt.Sprintf("bucket %s on %s (%s", u.Host, q.Get("endpoint"), transport)
		if r := q.Get("region"); r != "" {
			s += ", region " + r
		}
		return s + ")"
	case "file":
		p := u.Path
		if len(p) > 2 && p[0] == '/' && p[2] == ':' {
			p = p[1:] // file:///C:/dir on Windows
		}
		return "folder " + filepath.FromSlash(p)
	}
	return raw
}
