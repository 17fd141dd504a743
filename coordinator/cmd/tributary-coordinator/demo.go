package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

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
	patients := fs.Int("patients", 0, fmt.Sprintf("patients per generated practice (default: each practice's own, %d to %d, drawn from --seed)", demo.MinPatients, demo.MaxPatients))
	from := fs.String("from", "", fmt.Sprintf("first month each agent extracts (default: the first month of the practices' encounters; %s for generated practices)", demo.DefaultFrom))
	to := fs.String("to", "", fmt.Sprintf("last month each agent extracts (default: the last month of the practices' encounters, at most the last complete month; %s for generated practices)", demo.DefaultTo))
	seed := fs.Int64("seed", 1, "seed of the generated data")
	verbose := fs.Bool("v", false, "show the agents' and plugins' logs")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *workdir == "" {
		fmt.Fprintln(stderr, "demo: --workdir DIR is required")
		return errUsage
	}
	// Zero months tell demo.Run to choose: see demo.Options.
	var f, t formats.Month
	var err error
	if *from != "" {
		if f, err = formats.ParseMonth(*from); err != nil {
			return fmt.Errorf("--from: %w", err)
		}
	}
	if *to != "" {
		if t, err = formats.ParseMonth(*to); err != nil {
			return fmt.Errorf("--to: %w", err)
		}
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
	t = res.To
	rep := res.Combine.Report
	fmt.Fprintf(stdout, "\ncombined %d practice(s); %d object(s) quarantined\n", res.Combine.Pointer.Practices, len(rep.Quarantined))
	if len(res.Skipped) > 0 {
		names := make([]string, len(res.Skipped))
		for i, s := range res.Skipped {
			names[i] = s.Practice
		}
		fmt.Fprintf(stdout, "skipped %d practice(s), for the reasons above: %s\n", len(res.Skipped), strings.Join(names, ", "))
	}
	st, err := objstore.Open(ctx, res.StoreURL, objstore.Options{})
	if err != nil {
		return err
	}
	c, err := query.Open(ctx, st)
	if err != nil {
		return err
	}
	q, err := c.Run(query.Request{
		Measures: []string{formats.RegisteredPatients, formats.AEAttendances, formats.Admissions, formats.AdmissionsEmergency},
		From:     t - 5, To: t, By: []string{query.ByMonth},
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nFederation figures, last six months. count is the figure to read and the true total lies in\n[lower, upper]; status partial means some practice values were suppressed (1-7) and count\nincludes their estimates (method estimated); rates are per 1,000 registered patients:\n\n")
	if err := q.Write(stdout, "table"); err != nil {
		return err
	}
	fmt.Fprintf(stdout, `
Query them yourself, for example:
  %[1]s query --store %[2]s --by month --measure admissions_emergency --format csv
  %[1]s query --store %[2]s --by age_band --measure ae_attendances --from %[3]s --to %[4]s
  %[1]s query --store %[2]s --by practice --measure admissions --from %[3]s --to %[4]s
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
