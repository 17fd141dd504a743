package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/tributary-health/tributary/agent/config"
	"github.com/tributary-health/tributary/agent/service"
	"github.com/tributary-health/tributary/agent/status"
)

// exitAttention is status's exit code when something needs a person.
const exitAttention = 3

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file")
	if err := fs.Parse(args); err != nil {
		return 1
	}
	todo, err := printStatus(stdout, *cfgPath)
	if err != nil {
		fmt.Fprintln(stderr, "tributary-agent:", err)
		return 1
	}
	if len(todo) > 0 {
		return exitAttention
	}
	return 0
}

func printStatus(w io.Writer, cfgPath string) ([]string, error) {
	if cfgPath == "" {
		return nil, errors.New("status: --config FILE is required")
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return nil, err
	}
	st, stats, last, running, err := status.Gather(context.Background(), cfg.Spool)
	if err != nil {
		return nil, err
	}
	in := status.Input{Practice: cfg.Practice, State: st, Spool: stats, LastRelease: last, Running: running,
		MaxBytes: cfg.SpoolMaxMB << 20, MaxAge: cfg.SpoolMaxAge.Duration, Now: time.Now()}
	for _, p := range cfg.Plugins {
		in.Plugins = append(in.Plugins, p.Name)
	}
	return status.Report(w, in), nil
}

func cmdService(args []string, stdout, stderr io.Writer) error {
	const use = "usage: tributary-agent service install|uninstall|start|stop|status --config FILE [--name NAME] [--user USER] [--unit-dir DIR] [--binary PATH]"
	if len(args) == 0 {
		return errors.New(use)
	}
	fs := flag.NewFlagSet("service", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "configuration file")
	o := service.Options{}
	fs.StringVar(&o.Name, "name", service.DefaultName, "service name")
	fs.StringVar(&o.User, "user", "", "systemd: run as this account (default root)")
	fs.StringVar(&o.UnitDir, "unit-dir", "", "systemd: write the unit here instead of /etc/systemd/system, and enable nothing")
	fs.StringVar(&o.Binary, "binary", "", "the agent binary the service runs (default: this one)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *cfgPath == "" {
		return errors.New("service: --config FILE is required\n" + use)
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		return err
	}
	o.Config, _ = filepath.Abs(*cfgPath)
	if o.Binary == "" {
		if o.Binary, err = os.Executable(); err != nil {
			return err
		}
	}
	if runtime.GOOS == "windows" {
		o.LogFile = filepath.Join(cfg.Spool, "agent.log")
	}
	switch args[0] {
	case "install":
		msg, err := service.Install(o)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, msg)
	case "uninstall":
		msg, err := service.Uninstall(o)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, msg)
	case "start":
		if err := service.Start(o); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "started; 'tributary-agent status --config "+*cfgPath+"' says what it is doing")
	case "stop":
		if err := service.Stop(o); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "stopped; runs waiting in the spool are sent after the next start")
	case "status":
		state, err := service.State(o)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "service %s: %s\n\n", o.Name, state)
		if _, err := printStatus(stdout, *cfgPath); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown service command %q\n%s", args[0], use)
	}
	return nil
}
