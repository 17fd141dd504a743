// Command tributary-demo runs a whole federation on this machine: every practice's agent
// against a local store, then the coordinator's combine, and prints the federation's figures.
// It is what deploy/demo.sh runs; see package demo.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tributary-health/tributary/coordinator/query"
	"github.com/tributary-health/tributary/coordinator/secure"
	"github.com/tributary-health/tributary/demo"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/cli"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/internal/progress"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Execute(ctx, newRoot(), os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

type options struct {
	practices, workdir, plugin, pluginDir, from, to string
	generate, patients                              int
	seed                                            int64
	verbose, secureAggregation, noProgress          bool
	concurrency                                     int
}

func newRoot() *cobra.Command {
	var o options
	root := cli.NewRoot("tributary-demo", "Run a whole federation on this machine: every practice's agent, then combine",
		`tributary-demo runs a whole federation on this machine, with no server: it generates synthetic
practices (or takes your practices' exports, one subfolder per practice: Synthea CSV, FHIR
NDJSON, OMOP CDM CSV or UK GP tables, each recognised by its files and read by the matching
extractor, so one federation can mix practice systems), gives every practice a key and an agent, registers them, runs every agent once against the store file://WORKDIR/store,
combines, and prints the federation's figures for the last six months with the 'query'
commands to ask for more. deploy/demo.sh builds it and runs it, then serves the dashboard.

The practices' agents run side by side, --concurrency at a time (default one per CPU); the
practices are reported in their order and the figures do not depend on it. When stderr is a
terminal a progress bar there shows the practices extracted and uploaded and the combine;
--no-progress, NO_PROGRESS=1 or TERM=dumb turn it off, and nothing is added when stderr is
not a terminal.`)
	root.Use = "tributary-demo --workdir DIR [--practices DIR] [--from YYYY-MM --to YYYY-MM]"
	root.Example = `  tributary-demo --workdir .tributary-demo --plugin bin/synthea
  tributary-demo --workdir /tmp/fed --practices ./exports --from 2022-01 --to 2023-12`
	root.Args = cli.NoArgs
	root.RunE = func(cmd *cobra.Command, _ []string) error {
		return runDemo(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
	}
	f := root.Flags()
	f.StringVar(&o.practices, "practices", "", "folder with one subfolder per practice (its name is the practice id) holding its export: Synthea CSV, FHIR NDJSON, OMOP CDM CSV or UK GP tables; empty: generate synthetic practices")
	f.StringVar(&o.workdir, "workdir", "", "folder for keys, spools and the store (file://WORKDIR/store)")
	f.StringVar(&o.plugin, "plugin", "", "the synthea plugin binary (default: 'synthea' in --plugin-dir)")
	f.StringVar(&o.pluginDir, "plugin-dir", "", "folder holding the extractor plugins, named synthea, fhir, omop and ukgp (default: this program's folder)")
	f.IntVar(&o.generate, "generate", 5, "how many practices to generate when --practices is empty")
	f.IntVar(&o.patients, "patients", 0, fmt.Sprintf("patients per generated practice (default: each practice's own, %d to %d, drawn from --seed)", demo.MinPatients, demo.MaxPatients))
	f.StringVar(&o.from, "from", "", fmt.Sprintf("first month each agent extracts (default: the first month of the practices' encounters; %s for generated practices)", demo.DefaultFrom))
	f.StringVar(&o.to, "to", "", fmt.Sprintf("last month each agent extracts (default: the last month of the practices' encounters, at most the last complete month; %s for generated practices)", demo.DefaultTo))
	f.Int64Var(&o.seed, "seed", 1, "seed of the generated data")
	f.BoolVarP(&o.verbose, "verbose", "v", false, "show the agents' and plugins' logs")
	f.IntVar(&o.concurrency, "concurrency", 0, "how many practices' agents run at once (default: one per CPU the Go runtime uses, GOMAXPROCS); the practices are reported in their order and the figures are the same whatever it is")
	f.BoolVar(&o.noProgress, "no-progress", false, progress.FlagUsage)
	f.BoolVar(&o.secureAggregation, "secure-aggregation", false, "also send every practice's exact counts as secret shares to two holders on this machine, run their round of secure aggregation, and print the federation's exact-then-rounded totals")
	return root
}

// runDemo runs the demo and prints the federation's figures.
func runDemo(ctx context.Context, o options, stdout, stderr io.Writer) error {
	if o.workdir == "" {
		return cli.Usagef("give the folder for keys, spools and the store with --workdir DIR")
	}
	// Zero months tell demo.Run to choose: see demo.Options.
	var f, t formats.Month
	var err error
	if o.from != "" {
		if f, err = formats.ParseMonth(o.from); err != nil {
			return cli.Usagef("--from %q is not a month; write it as YYYY-MM, e.g. 2024-03", o.from)
		}
	}
	if o.to != "" {
		if t, err = formats.ParseMonth(o.to); err != nil {
			return cli.Usagef("--to %q is not a month; write it as YYYY-MM, e.g. 2024-03", o.to)
		}
	}
	if o.pluginDir == "" {
		if exe, err := os.Executable(); err == nil {
			o.pluginDir = filepath.Dir(exe)
		}
	}
	if o.plugin == "" {
		o.plugin = besideMe("synthea")
		if p := filepath.Join(o.pluginDir, "synthea"); o.pluginDir != "" && fileExists(p) {
			o.plugin = p
		}
	}
	if o.concurrency < 0 {
		return cli.Usagef("--concurrency %d: give how many agents run at once, 1 or more (0: one per CPU)", o.concurrency)
	}
	// At a terminal, a progress bar on stderr while the agents run and combine; the lines
	// printed meanwhile go above it, and it is gone before the figures.
	bar := progress.New(stderr, progress.Enabled(stderr, o.noProgress), 0, "starting")
	defer bar.Done()
	log := slog.New(slog.DiscardHandler)
	if o.verbose {
		log = slog.New(slog.NewTextHandler(bar.Above(stderr), nil))
	}
	res, err := demo.Run(ctx, demo.Options{
		Practices: o.practices, Generate: o.generate, PatientsPerPractice: o.patients,
		Workdir: o.workdir, Plugin: o.plugin, PluginDir: o.pluginDir, From: f, To: t, Seed: o.seed, Log: log, Out: bar.Above(stdout),
		SecureAggregation: o.secureAggregation, Concurrency: o.concurrency, Progress: bar,
	})
	bar.Done()
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
	fmt.Fprintf(stdout, "\nFederation figures, last six months. count is the figure to read and the true total lies in\n[lower, upper]; status partial means some practice values were suppressed (1-7) and count\nincludes their estimates (method estimated); rates are per 1,000 registered patients\n(registered_patients, the denominator, has none):\n\n")
	if err := q.Write(stdout, "table"); err != nil {
		return err
	}
	coordinator := "tributary-coordinator"
	if p := besideMe(coordinator); p != "" {
		coordinator = shortPath(p)
	}
	if res.Secure != nil {
		if err := writeSecure(stdout, res.Secure.Figures, t-5, t); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "\nThe secure totals alone: %s holder figures --store %s --key %s\n", coordinator, res.StoreURL, res.CoordKey)
	}
	fmt.Fprintf(stdout, `
Query them yourself with tributary-coordinator, for example:
  %[1]s query --store %[2]s --by month --measure admissions_emergency --format csv
  %[1]s query --store %[2]s --by age_band --measure ae_attendances --from %[3]s --to %[4]s
  %[1]s query --store %[2]s --by practice --measure admissions --from %[3]s --to %[4]s
The practices' release logs: %[5]s/agents/<practice>/spool/release.log
`, coordinator, res.StoreURL, t-2, t, o.workdir)
	return nil
}

// besideMe returns the program named name in this program's folder, or "" when there is none.
func besideMe(name string) string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	for _, n := range []string{name, name + ".exe"} {
		p := filepath.Join(filepath.Dir(exe), n)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}

// shortPath is p relative to the working directory when it is below it, for a person to type.
func shortPath(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	if rel, err := filepath.Rel(wd, p); err == nil && !filepath.IsAbs(rel) && !strings.HasPrefix(rel, "..") {
		if !strings.ContainsRune(rel, filepath.Separator) {
			rel = "." + string(filepath.Separator) + rel // a bare name would be looked up on PATH
		}
		return rel
	}
	return p
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}

// secureMeasures are the measures of the demo's table.
var secureMeasures = []string{formats.RegisteredPatients, formats.AEAttendances, formats.Admissions, formats.AdmissionsEmergency}

// writeSecure prints the securely aggregated monthly federation totals of from..to: the
// exact sums of the practices' counts, through the disclosure policy once.
func writeSecure(w io.Writer, figs *secure.Figures, from, to formats.Month) error {
	fmt.Fprintf(w, "\nThe same months by secure aggregation (method secure): the exact sum of every practice's counts,\nverified and summed by two holders neither of which saw a practice's counts, then rounded once\n(so within 2 of the truth, which lies in [lower, upper]):\n\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "month\tmeasure\tcount\tlower\tupper\tstatus\tpractices\tmethod\t")
	rows := 0
	for m := from; m <= to; m++ {
		for _, measure := range secureMeasures {
			vals := figs.Values[formats.MonthPeriod(m)][measure]
			if vals == nil {
				continue
			}
			v := vals[formats.TotalShape]
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%d\t%s\t\n", m, measure, v.Count, v.Lower, v.Upper, v.Status, figs.Practices[m][measure], secure.MethodSecure)
			rows++
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if rows == 0 {
		fmt.Fprintln(w, "(no secure totals: fewer practices than the differencing guard's minimum of 3)")
	}
	return nil
}
