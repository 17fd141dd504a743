package main

import (
	"context"
	"fmt"
	"io"

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
}
