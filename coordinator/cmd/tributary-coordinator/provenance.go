package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/tributary-health/tributary/coordinator/provenance"
	"github.com/tributary-health/tributary/formats"
)

// provenanceCmd shows where a combined figure came from and re-verifies every stored byte
// of the chain; it fails when anything changed after the combine.
func provenanceCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("provenance", "provenance --store URL (--key COORDINATOR_KEY | --coordinator-pub PUB) --measure M --month YYYY-MM [--practice P]", stderr)
	store := fs.String("store", storeFlag(), "the federation's store URL (default $TRIBUTARY_STORE)")
	key := fs.String("key", "", "the coordinator's key file (private or public), to verify the registry")
	pubPath := fs.String("coordinator-pub", "", "the coordinator's public key file (coordinator.pub)")
	measure := fs.String("measure", "", "the measure, e.g. admissions")
	monthS := fs.String("month", "", "the month, YYYY-MM")
	practice := fs.String("practice", "", "only this practice's files")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *measure == "" || *monthS == "" {
		fmt.Fprintln(stderr, "provenance: give --measure and --month")
		return errUsage
	}
	month, err := formats.ParseMonth(*monthS)
	if err != nil {
		return err
	}
	pub, err := publicKey(*key, *pubPath)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, *store)
	if err != nil {
		return err
	}
	ch, err := provenance.Trace(ctx, st, pub, *measure, month, *practice)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s %s in combined output %s\n", ch.Measure, ch.Month, ch.CombineID)
	fmt.Fprintf(stdout, "  %s -> report %s (sha256 %s)\n", ch.Pointer, ch.Report.Key, ch.Report.SHA256)
	fmt.Fprintf(stdout, "  figures %s (sha256 %s)\n", ch.Figures.Key, ch.Figures.SHA256)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PRACTICE\tRUN\tMANIFEST SHA-256\tKEY\tFILE\tFILE SHA-256\tCELLS")
	for _, l := range ch.Links {
		cells := "?"
		if l.Cells >= 0 {
			cells = fmt.Sprint(l.Cells)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Practice, l.RunID, l.ManifestSHA256, l.KeyID, l.File.Key, l.File.SHA256, cells)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d practice files; manifests listed under practices/<id>/runs/<run>/\n", len(ch.Links))
	if len(ch.Problems) == 0 {
		fmt.Fprintln(stdout, "verified: every stored byte of this chain is what the combine read")
		return nil
	}
	for _, p := range ch.Problems {
		fmt.Fprintln(stdout, "CHANGED: "+p)
	}
	return fmt.Errorf("%d link(s) of the chain changed after the combine; see CHANGED above, then investigate before trusting the figure and run combine again", len(ch.Problems))
}
