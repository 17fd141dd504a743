package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/tributary-health/tributary/coordinator/demo"
	"github.com/tributary-health/tributary/coordinator/query"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// demoCmd runs a whole federation on this machine: see package demo.
func demoCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	practices := fs.String("practices", "", "folder with one subfolder of Synthea CSV files per practice (its name is the practice id); empty: generate synthetic practices")
	workdir := fs.String("workdir", "", "folder for keys, spools and the store (file://WORKDIR/store)")
	plugin := fs.String("plugin", "", "the synthea plugin binary (default: 'synthea' beside this program)")
	generate := fs.Int("generate", 5, "how many practices to generate when --practices is empty")
	patients := fs.Int("patients", 2000, "patients per generated practice")
	from := fs.String("from", "2023-01", "first month each agent extracts")
	to := fs.String("to", "2024-12", "last month each agent extracts")
	seed := fs.Int64("seed", 1, "seed of the generated data")
	verbose := fs.Bool("v", false, "show the agents' and plugins' logs")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *workdir == "" {
		fmt.Fprintln(stderr, "demo: --workdir DIR is required")
		return errUsage
	}
	f, err := formats.ParseMonth(*from)
	if err != nil {
		return fmt.Errorf("--from: %w", err)
	}
	t, err := formats.ParseMonth(*to)
	if err != nil {
		return fmt.Errorf("--to: %w", err)
	}
	if *plugin == "" {
		if exe, err := os.Executable(); err == nil {
			if p := filepath.Join(filepath.Dir(exe), "synthea"); fileExists(p) {
				*plugin = p
			} else if p += ".exe"; fileExists(p) {
				*plugin = p
			}
		}
	}
	log := slog.New(slog.DiscardHandler)
	if *verbose {
		log = slog.New(slog.NewTextHandler(stderr, nil))
	}
	res, err := demo.Run(ctx, demo.Options{
		Practices: *practices, Generate: *generate, PatientsPerPractice: *patients,
		Workdir: *workdir, Plugin: *plugin, From: f, To: t, Seed: *seed, Log: log, Out: stdout,
	})
	if err != nil {
		return err
	}
	rep := res.Combine.Report
	fmt.Fprintf(stdout, "\ncombined %d practice(s); %d object(s) quarantined\n", res.Combine.Pointer.Practices, len(rep.Quarantined))
	st, err := objstore.Open(ctx, res.StoreURL, objstore.Options{})
	if err != nil {
		return err
	}
	c, err := query.Open(ctx, st)
	if err != nil {
		return err
	}
	q, err := c.Run(ctx, query.Request{
		Measures: []string{formats.RegisteredPatients, formats.Consultations, formats.AEAttendances, formats.AdmissionsEmergency},
		From:     t - 5, To: t,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nFederation figures, last six months. The true total lies in [lower, upper]; count sums what\npractices published, leaving suppressed cells out; estimate is the figure to read; rate per 1,000 registered:\n\n")
	if err := q.Write(stdout, "table"); err != nil {
		return err
	}
	fmt.Fprintf(stdout, `
Query them yourself, for example:
  %[1]s query --store %[2]s --by month --measure admissions_emergency --format csv
  %[1]s query --store %[2]s --by age_band --measure ae_attendances --from %[3]s --to %[4]s
  %[1]s query --store %[2]s --by practice --measure consultations
The practices' release logs: %[5]s/agents/<practice>/spool/release.log
`, progName(), res.StoreURL, t-2, t, *workdir)
	return nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

func progName() string {
	if exe, err := os.Executable(); err == nil {
		if rel, err := filepath.Rel(".", exe); err == nil && len(rel) < len(exe) && !filepath.IsAbs(rel) && rel[0] != '.' {
			return rel
		}
		return exe
	}
	return "tributary-coordinator"
}
