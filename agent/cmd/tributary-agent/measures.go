package main

import (
	"fmt"
	"log/slog"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tributary-health/tributary/agent"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/cli"
)

func measuresCmd() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "measures --config FILE",
		Short: "List the measures this practice can supply, and why not the others",
		Long: `Measures starts every configured plugin as a run does, asks what it supplies with its
configuration (event kinds, admission methods, diagnosis code systems, discharge dates), reads
the federation's measure definitions as a run does (the built-in ones, and the federation's own
signed by the coordinator when coordinator_public_key is set), and lists every measure: supplied,
or absent with the reason. An absent measure is left out of the practice's figures, never sent
as zero. Nothing is extracted.`,
		Example: "  tributary-agent measures --config /etc/tributary/agent.toml",
		Args:    cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn}))
			c := agent.CheckMeasures(cmd.Context(), cfg, agent.HostLauncher(cfg, log))
			out := cmd.OutOrStdout()
			for _, p := range c.Plugins {
				fmt.Fprintln(out, p.String())
			}
			d := c.Definitions
			switch {
			case d.Err != nil:
				fmt.Fprintf(out, "PROBLEM: %v\n", d.Err)
				if d.Cached {
					fmt.Fprintf(out, "using the last good copy of the federation's measures (%d)\n", d.Federation)
				}
			case d.Federation > 0:
				fmt.Fprintf(out, "federation measures: %d, signed by the coordinator\n", d.Federation)
			case cfg.CoordinatorPublicKey == "":
				fmt.Fprintln(out, "built-in measures only: set coordinator_public_key to read the federation's own")
			}
			absent := map[string]string{}
			for _, a := range c.Absent {
				absent[a.Measure] = a.Reason
			}
			tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "MEASURE\tDIGEST\tSUPPLIED\tWHY NOT")
			for _, def := range d.Defs {
				why, gone := absent[def.Name]
				state := "yes"
				if gone {
					state = "ABSENT"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", def.Name, formats.ShortDigest(def.Digest()), state, why)
			}
			return tw.Flush()
		},
	}
	addConfigFlag(cmd.Flags(), &cfgPath)
	return cmd
}
