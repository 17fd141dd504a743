package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tributary-health/tributary/coordinator/provenance"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/cli"
)

// provenanceCmd shows where a combined figure came from and re-verifies every stored byte
// of the chain; it fails when anything changed after the combine.
func provenanceCmd() *cobra.Command {
	var store, measure, monthS, practice string
	var keys keyFlags
	c := &cobra.Command{
		Use:   "provenance --store URL (--key COORDINATOR_KEY | --coordinator-pub PUB) --measure M --month YYYY-MM [--practice P]",
		Short: "Trace a combined figure to the signed files it came from, and re-verify their bytes",
		Long: `Provenance prints the chain of a combined figure: current.json, the combined output's
report, and for each practice the manifest, its run and signing key, and the file with its
SHA-256. It re-reads every link; any difference is printed as CHANGED and the command fails.`,
		Example: "  tributary-coordinator provenance --store file:///srv/tributary --key coordinator.pub --measure admissions --month 2024-01",
		Args:    cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if measure == "" || monthS == "" {
				return cli.Usagef("give --measure and --month")
			}
			month, err := formats.ParseMonth(monthS)
			if err != nil {
				return cli.Usagef("--month %q is not a month; write it as YYYY-MM, e.g. 2024-03", monthS)
			}
			st, pub, err := keys.openStore(cmd.Context(), store)
			if err != nil {
				return err
			}
			ch, err := provenance.Trace(cmd.Context(), st, pub, measure, month, practice)
			if err != nil {
				return err
			}
			stdout := cmd.OutOrStdout()
			fmt.Fprintf(stdout, "%s %s in combined output %s\n", ch.Measure, ch.Month, ch.CombineID)
			fmt.Fprintf(stdout, "  %s -> report %s (sha256 %s)\n", ch.Pointer, ch.Report.Key, ch.Report.SHA256)
			fmt.Fprintf(stdout, "  figures %s (sha256 %s), made from inputs digesting to %s\n", ch.Figures.Key, ch.Figures.SHA256, ch.InputsSHA256)
			for _, l := range ch.Links {
				cells := "unreadable now"
				if l.Cells >= 0 {
					cells = fmt.Sprintf("%d cells of %s", l.Cells, ch.Measure)
				}
				fmt.Fprintf(stdout, "practice %s\n  manifest %s\n           run %s, sha256 %s, signed by key %s\n  file     %s\n           sha256 %s, %d bytes, %s\n",
					l.Practice, l.Manifest, l.RunID, l.ManifestSHA256, l.KeyID, l.File.Key, l.File.SHA256, l.File.Size, cells)
			}
			fmt.Fprintf(stdout, "%d practice files made this figure\n", len(ch.Links))
			if len(ch.Problems) == 0 {
				fmt.Fprintln(stdout, "verified: every stored byte of this chain is what the combine read")
				return nil
			}
			for _, p := range ch.Problems {
				fmt.Fprintln(stdout, "CHANGED: "+p)
			}
			return fmt.Errorf("%d link(s) of the chain changed after the combine; see CHANGED above, then investigate before trusting the figure and run combine again", len(ch.Problems))
		},
	}
	f := c.Flags()
	addStoreFlag(f, &store)
	keys.add(f, false)
	f.StringVar(&measure, "measure", "", "the measure, e.g. admissions")
	f.StringVar(&monthS, "month", "", "the month, YYYY-MM")
	f.StringVar(&practice, "practice", "", "only this practice's files")
	return c
}
