package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/tributary-health/tributary/agent/service"
	"github.com/tributary-health/tributary/agent/status"
	"github.com/tributary-health/tributary/internal/cli"
)

// exitAttention is status's exit code when something needs a person.
const exitAttention = cli.ExitAttention

func statusCmd() *cobra.Command {
	var cfgPath string
	c := &cobra.Command{
		Use:   "status --config FILE",
		Short: "Say what the agent is doing, in plain words, and what to do (exit 3 if a person is needed)",
		Long: `Status says, in plain words, whether the service is running, how the last run went, how
each plugin is doing, what waits in the outbox and what was last sent, and then what, if
anything, a person should do. It reads the spool and asks the running service; it changes
nothing, so it is safe at any time.

Exit status 0: nothing to do; 3: the report ends with "What to do" (a person is needed);
1: the status could not be read.`,
		Example: "  tributary-agent status --config /etc/tributary/agent.toml",
		Args:    cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			todo, err := printStatus(cmd.Context(), cmd.OutOrStdout(), cfgPath)
			if err != nil {
				return err
			}
			if len(todo) > 0 {
				return cli.Exit(exitAttention)
			}
			return nil
		},
	}
	addConfigFlag(c.Flags(), &cfgPath)
	return c
}

func printStatus(ctx context.Context, w io.Writer, cfgPath string) ([]string, error) {
	cfg, err := loadConfig(cfgPath)
	if err != nil {
		return nil, err
	}
	st, stats, last, running, err := status.Gather(ctx, cfg.Spool)
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

// serviceCmd is the service group; its flags are declared once, on the group.
func serviceCmd() *cobra.Command {
	var cfgPath string
	o := service.Options{}
	g := cli.Group("service", "Run the agent as a system service (systemd on Linux, the Service Control Manager on Windows)",
		`Service installs, starts, stops and removes the agent as a system service, which runs
'tributary-agent run --config FILE' on the configuration's schedule and restarts it if it
fails.`)
	pf := g.PersistentFlags()
	addConfigFlag(pf, &cfgPath)
	pf.StringVar(&o.Name, "name", service.DefaultName, "service name")
	pf.StringVar(&o.User, "user", "", "systemd: run as this account (default root)")
	pf.StringVar(&o.UnitDir, "unit-dir", "", "systemd: write the unit here instead of /etc/systemd/system, and enable nothing")
	pf.StringVar(&o.Binary, "binary", "", "the agent binary the service runs (default: this one)")

	// prepare loads the configuration and fills in the options every verb needs.
	prepare := func() error {
		cfg, err := loadConfig(cfgPath)
		if err != nil {
			return err
		}
		o.Config, _ = filepath.Abs(cfgPath)
		if o.Binary == "" {
			if o.Binary, err = os.Executable(); err != nil {
				return err
			}
		}
		if runtime.GOOS == "windows" {
			o.LogFile = filepath.Join(cfg.Spool, "agent.log")
		}
		return nil
	}
	verb := func(use, short, example string, do func(cmd *cobra.Command) error) *cobra.Command {
		return &cobra.Command{
			Use: use + " --config FILE", Short: short, Example: example, Args: cli.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				if err := prepare(); err != nil {
					return err
				}
				return do(cmd)
			},
		}
	}
	g.AddCommand(
		verb("install", "Install the service (it is not started: see start)",
			"  sudo tributary-agent service install --config /etc/tributary/agent.toml --user tributary",
			func(cmd *cobra.Command) error {
				msg, err := service.Install(o)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(cmd.OutOrStdout(), msg)
				return err
			}),
		verb("uninstall", "Remove the service (the spool, keys and configuration are kept)", "",
			func(cmd *cobra.Command) error {
				msg, err := service.Uninstall(o)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(cmd.OutOrStdout(), msg)
				return err
			}),
		verb("start", "Start the installed service", "",
			func(cmd *cobra.Command) error {
				if err := service.Start(o); err != nil {
					return err
				}
				_, err := fmt.Fprintln(cmd.OutOrStdout(), "started; 'tributary-agent status --config "+cfgPath+"' says what it is doing")
				return err
			}),
		verb("stop", "Stop the service (runs waiting in the spool are sent after the next start)", "",
			func(cmd *cobra.Command) error {
				if err := service.Stop(o); err != nil {
					return err
				}
				_, err := fmt.Fprintln(cmd.OutOrStdout(), "stopped; runs waiting in the spool are sent after the next start")
				return err
			}),
		verb("status", "Say whether the service is installed and running, then what status says (exit 3 if a person is needed)", "",
			func(cmd *cobra.Command) error {
				state, err := service.State(o)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "service %s: %s\n\n", o.Name, state)
				todo, err := printStatus(cmd.Context(), cmd.OutOrStdout(), cfgPath)
				if err != nil {
					return err
				}
				if len(todo) > 0 {
					return cli.Exit(exitAttention)
				}
				return nil
			}),
	)
	return g
}
