package e2e

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tributary-health/tributary/coordinator/query"
	"github.com/tributary-health/tributary/demo"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/internal/testenv"
)

// BenchmarkFigures runs the whole flow (real Synthea plugin, every practice's agent with its
// disclosure control and audit, the store, the combine, the query) on a generated federation
// of practices of 2,000 to 12,000 patients at England's hospital rates, and measures the
// figures a lead reads against the truth counted independently from the practices' CSV files:
//
//	go test -run '^$' -bench BenchmarkFigures -benchtime 1x -timeout 30m ./e2e/
//
// It prints, for A&E attendances and admissions, the median width of the bounds of monthly
// federation totals and of per-practice year totals (as a share of the figure), the median
// distance of count from the truth, and how often the truth lay outside the bounds (it must
// never). TRIBUTARY_BENCH_PRACTICES sets the number of practices (default 10).
func BenchmarkFigures(b *testing.B) {
	ctx := context.Background()
	n := testenv.EnvInt(b, "TRIBUTARY_BENCH_PRACTICES", 10)
	plugin := testenv.Binary(b, "./plugins/synthea")
	from, to := formats.MonthFor(2023, 1), formats.MonthFor(2024, 12)
	measures := []string{formats.AEAttendances, formats.Admissions, formats.AdmissionsEmergency}
	for range b.N {
		work := b.TempDir()
		res, err := demo.Run(ctx, demo.Options{Generate: n, Workdir: work, Plugin: plugin, From: from, To: to, Seed: 2024})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		patients, encounters := readPractices(b, filepath.Join(work, "practices"))
		truth := truthBy(b, patients, encounters, from, to, func(p *rawPatient) string { return p.practice })
		st, err := objstore.Open(ctx, res.StoreURL, objstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		c, err := query.Open(ctx, st)
		if err != nil {
			b.Fatal(err)
		}
		fed, err := c.Run(query.Request{Measures: measures, From: from, To: to, By: []string{query.ByMonth}})
		if err != nil {
			b.Fatal(err)
		}
		type stat struct {
			widths, errs []float64
			outside, n   int
		}
		stats := map[string]*stat{}
		record := func(key string, truth, lower, upper int64, count *int64) {
			s := stats[key]
			if s == nil {
				s = &stat{}
				stats[key] = s
			}
			s.n++
			if truth < lower || truth > upper {
				s.outside++
				b.Errorf("%s: the truth %d lies outside %d-%d", key, truth, lower, upper)
			}
			if truth > 0 {
				s.widths = append(s.widths, float64(upper-lower)/float64(truth))
				if count != nil {
					d := float64(*count-truth) / float64(truth)
					s.errs = append(s.errs, max(d, -d))
				}
			}
		}
		for _, r := range fed.Rows {
			m, _ := formats.ParseMonth(r.Period)
			var want int64
			for _, byMeasure := range truth {
				want += byMeasure[r.Measure][m]
			}
			record("federation month "+r.Measure, want, r.Lower, r.Upper, r.Count)
		}
		for y := from; y <= to; y += 12 {
			rows, err := c.Run(query.Request{Measures: measures, From: y, To: y + 11, By: []string{query.ByPractice}})
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range rows.Rows {
				var want int64
				for m := y; m <= y+11; m++ {
					want += truth[r.Practice][r.Measure][m]
				}
				record("practice year "+r.Measure, want, r.Lower, r.Upper, r.Count)
			}
		}
		median := func(v []float64) float64 {
			if len(v) == 0 {
				return 0
			}
			slices.Sort(v)
			return v[len(v)/2]
		}
		keys := make([]string, 0, len(stats))
		for k := range stats {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b.Logf("%d practices, %s to %s; figures against the truth counted from the CSV files:", len(res.Practices), from, to)
		b.Logf("%-44s %7s %22s %22s %14s", "figure", "rows", "median bound width", "median |count-truth|", "truth outside")
		for _, k := range keys {
			s := stats[k]
			b.Logf("%-44s %7d %21.2f%% %21.2f%% %14d", k, s.n, 100*median(s.widths), 100*median(s.errs), s.outside)
		}
		for _, m := range []string{formats.AEAttendances, formats.Admissions} {
			fm, py := stats["federation month "+m], stats["practice year "+m]
			b.ReportMetric(100*median(fm.widths), "%width-month-"+m)
			b.ReportMetric(100*median(py.widths), "%width-year-"+m)
			b.ReportMetric(100*median(append(slices.Clone(fm.errs), py.errs...)), "%err-"+m)
		}
		b.StartTimer()
	}
}

// readPractices reads every practice folder's patients.csv and encounters.csv: the raw rows
// for the independent count, each patient marked with its practice.
func readPractices(b testing.TB, dir string) (map[string]*rawPatient, []rawEncounter) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	patients := map[string]*rawPatient{}
	var encounters []rawEncounter
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		pHeader, pRows := readCSV(b, filepath.Join(dir, e.Name(), "patients.csv"))
		pc := index(pHeader)
		for _, r := range pRows {
			p := &rawPatient{id: r[pc["Id"]], first: r[pc["FIRST"]], last: r[pc["LAST"]], birthS: r[pc["BIRTHDATE"]], practice: e.Name(), death: formats.NoEnd}
			p.birth = mustDate(b, p.birthS)
			if d := r[pc["DEATHDATE"]]; d != "" {
				p.death = mustDate(b, d)
			}
			patients[p.id] = p
		}
		eHeader, eRows := readCSV(b, filepath.Join(dir, e.Name(), "encounters.csv"))
		ec := index(eHeader)
		for _, r := range eRows {
			x := rawEncounter{patient: r[ec["PATIENT"]], class: r[ec["ENCOUNTERCLASS"]], code: r[ec["CODE"]], description: r[ec["DESCRIPTION"]]}
			x.start = mustTime(b, r[ec["START"]])
			if s := r[ec["STOP"]]; s != "" {
				x.stop, x.hasStop = mustTime(b, s), true
			}
			encounters = append(encounters, x)
		}
	}
	return patients, encounters
}
