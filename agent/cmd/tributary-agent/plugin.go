package main

import (
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/cli"
	"github.com/tributary-health/tributary/plugins/conformance"
)

func pluginCmd() *cobra.Command {
	g := cli.Group("plugin", "Check an extractor plugin against the contract", "")
	var (
		o         conformance.Options
		cfgFile   string
		from, to  string
		verbose   bool
		extractTO time.Duration
	)
	check := &cobra.Command{
		Use:   "check PATH",
		Short: "Run the plugin at PATH against the contract and report what it got wrong",
		Long: `Check starts the extractor plugin at PATH as the agent would, calls every RPC, and prints
what it got wrong. It exits 0 when every check passes and 1 when one fails.

--config names the plugin's own configuration: a TOML file of key = "value" pairs, what
goes in [plugins.config] of the agent's configuration (not the agent's configuration itself).`,
		Example: "  tributary-agent plugin check ./myplugin --config my.toml --from 2024-01 --to 2024-03",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return cli.Usagef("give exactly one plugin path (got %d)", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Path = args[0]
			o.ExtractTimeout = extractTO
			if (from == "") != (to == "") {
				return cli.Usagef("give both --from and --to, or neither")
			}
			if from != "" {
				var err error
				if o.From, err = formats.ParseMonth(from); err != nil {
					return cli.Usagef("--from %q is not a month; write it as YYYY-MM, e.g. 2024-03", from)
				}
				if o.To, err = formats.ParseMonth(to); err != nil {
					return cli.Usagef("--to %q is not a month; write it as YYYY-MM, e.g. 2024-03", to)
				}
				if o.To < o.From {
					return cli.Usagef("--to %s is before --from %s; give the earlier month first", o.To, o.From)
				}
			}
			if cfgFile != "" {
				// Relative paths resolve against the configuration file's folder, as in a run.
				if err := o.LoadConfig(cfgFile); err != nil {
					return err
				}
			}
			level := hclog.Warn
			if verbose {
				level = hclog.Debug
			}
			o.Logger = hclog.New(&hclog.LoggerOptions{Output: cmd.ErrOrStderr(), Level: level})
			r, err := conformance.Run(cmd.Context(), o, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			if !r.Passed() {
				return fmt.Errorf("%s does not meet the plugin contract; the report above says what it got wrong", o.Path)
			}
			return nil
		},
	}
	f := check.Flags()
	f.StringVar(&cfgFile, "config", "", `the plugin's configuration: TOML key = "value" pairs`)
	f.StringVar(&from, "from", "", "first month to extract, YYYY-MM (default: the twelve months before this one)")
	f.StringVar(&to, "to", "", "last month to extract, YYYY-MM")
	f.StringVar(&o.SHA256, "sha256", "", "the checksum the binary must have (default: compute and print it, for pinning)")
	f.DurationVar(&extractTO, "timeout", 10*time.Minute, "how long the extraction may take")
	f.BoolVarP(&verbose, "verbose", "v", false, "show the plugin's own log lines on stderr")
	g.AddCommand(check)
	return g
}
