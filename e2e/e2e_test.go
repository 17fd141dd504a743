package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/coordinator/query"
	"github.com/tributary-health/tributary/demo"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/miniotest"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/internal/testenv"
)

// The shared Synthea sets, split into practices by the patient's county: counties with ten
// or more patients are practices of their own, the rest one practice together.
var sharedSets = []struct{ prefix, dir string }{
	{"NE", "synthea_csv_unmc_ne111/csv"},
	{"MA", "synthea_csv_mcode_ma115/csv"},
}

var (
	e2eFrom = formats.MonthFor(2018, 1)
	e2eTo   = formats.MonthFor(2022, 12)
)

type rawPatient struct {
	id, first, last, birthS, county string
	practice                        string
	birth, death                    formats.Date // death NoEnd when alive
}

type rawEncounter struct {
	start, stop          time.Time
	hasStop              bool
	patient, class, code string
	description          string
}

// splitShared writes one folder per practice (patients.csv and encounters.csv holding that
// practice's patients' rows, every column kept) and returns the raw rows for the independent
// count.
func splitShared(t *testing.T, out string) (map[string]*rawPatient, []rawEncounter) {
	t.Helper()
	patients := map[string]*rawPatient{}
	var encounters []rawEncounter
	for _, set := range sharedSets {
		dir := testenv.SharedData(t, set.dir)
		pHeader, pRows := readCSV(t, filepath.Join(dir, "patients.csv"))
		eHeader, eRows := readCSV(t, filepath.Join(dir, "encounters.csv"))
		pc, ec := index(pHeader), index(eHeader)
		counties := map[string]int{}
		for _, r := range pRows {
			counties[r[pc["COUNTY"]]]++
		}
		practiceOf := map[string]string{}
		byPractice := map[string][][]string{}
		for _, r := range pRows {
			county := r[pc["COUNTY"]]
			id := set.prefix + "-OTHER"
			if counties[county] >= 10 {
				id = set.prefix + "-" + strings.ToUpper(strings.Fields(county)[0])
			}
			practiceOf[r[pc["Id"]]] = id
			byPractice[id] = append(byPractice[id], r)
			p := &rawPatient{id: r[pc["Id"]], first: r[pc["FIRST"]], last: r[pc["LAST"]], birthS: r[pc["BIRTHDATE"]], county: county, practice: id, death: formats.NoEnd}
			p.birth = mustDate(t, p.birthS)
			if d := r[pc["DEATHDATE"]]; d != "" {
				p.death = mustDate(t, d)
			}
			patients[p.id] = p
		}
		encByPractice := map[string][][]string{}
		for _, r := range eRows {
			pid := r[ec["PATIENT"]]
			encByPractice[practiceOf[pid]] = append(encByPractice[practiceOf[pid]], r)
			e := rawEncounter{patient: pid, class: r[ec["ENCOUNTERCLASS"]], code: r[ec["CODE"]], description: r[ec["DESCRIPTION"]]}
			e.start = mustTime(t, r[ec["START"]])
			if s := r[ec["STOP"]]; s != "" {
				e.stop, e.hasStop = mustTime(t, s), true
			}
			encounters = append(encounters, e)
		}
		for id, rows := range byPractice {
			writeCSV(t, filepath.Join(out, id, "patients.csv"), pHeader, rows)
			writeCSV(t, filepath.Join(out, id, "encounters.csv"), eHeader, encByPractice[id])
		}
	}
	return patients, encounters
}

// independentTruth counts every measure per month straight from the raw rows, following the
// mapping in plugins/synthea/README.md with the extractor's default settings, written again
// here without any of the extractor's or the agent's code: days in Europe/London; ambulatory,
// wellness, virtual and urgentcare are consultations, outpatient outpatient attendances,
// emergency A&E attendances, inpatient admissions; the Death Certification encounter and
// encounters after death or before birth do not count; a patient is registered from birth to
// the day of death; an admission is emergency when an emergency encounter of the same patient
// started in the 24 hours before it (or its description says emergency), elective when the
// description says elective or non-urgent; bed days are nights, counted in the month the stay
// ends.
func independentTruth(t testing.TB, patients map[string]*rawPatient, encounters []rawEncounter) map[string]map[formats.Month]int64 {
	return truthBy(t, patients, encounters, e2eFrom, e2eTo, func(*rawPatient) string { return "" })[""]
}

// truthBy is independentTruth for the months from..to, by a key of the patient (its
// practice, say): key -> measure -> month -> count.
func truthBy(t testing.TB, patients map[string]*rawPatient, encounters []rawEncounter, from, to formats.Month, key func(*rawPatient) string) map[string]map[string]map[formats.Month]int64 {
	t.Helper()
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	day := func(tm time.Time) formats.Date {
		l := tm.In(london)
		return formats.DateOf(time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, time.UTC))
	}
	out := map[string]map[string]map[formats.Month]int64{}
	var truth map[string]map[formats.Month]int64
	add := func(measure string, m formats.Month, n int64) {
		if m < from || m > to {
			return
		}
		if truth[measure] == nil {
			truth[measure] = map[formats.Month]int64{}
		}
		truth[measure][m] += n
	}
	use := func(p *rawPatient) {
		k := key(p)
		if out[k] == nil {
			out[k] = map[string]map[formats.Month]int64{}
		}
		truth = out[k]
	}
	for _, p := range patients {
		use(p)
		for m := from; m <= to; m++ {
			first := formats.DateOf(m.Start())
			if p.birth <= first && (p.death == formats.NoEnd || first <= p.death) {
				add(formats.RegisteredPatients, m, 1)
			}
		}
	}
	emergencyStarts := map[string][]time.Time{}
	for _, e := range encounters {
		if e.class == "emergency" {
			emergencyStarts[e.patient] = append(emergencyStarts[e.patient], e.start)
		}
	}
	type pm struct {
		patient string
		month   formats.Month
	}
	admittedEmergency := map[pm]bool{}
	for _, e := range encounters {
		p := patients[e.patient]
		d := day(e.start)
		if p == nil || e.code == "308646001" || d < p.birth || (p.death != formats.NoEnd && d > p.death) {
			continue
		}
		use(p)
		m := d.Month()
		switch e.class {
		case "ambulatory", "wellness", "virtual", "urgentcare":
			add(formats.Consultations, m, 1)
		case "outpatient":
			add(formats.OutpatientAttendances, m, 1)
		case "emergency":
			add(formats.AEAttendances, m, 1)
		case "inpatient":
			add(formats.Admissions, m, 1)
			method := ""
			for _, s := range emergencyStarts[e.patient] {
				if !s.After(e.start) && e.start.Sub(s) <= 24*time.Hour {
					method = "emergency"
				}
			}
			desc := strings.ToLower(e.description)
			if method == "" && strings.Contains(desc, "emergency") {
				method = "emergency"
			}
			if method == "" && (strings.Contains(desc, "elective") || strings.Contains(desc, "non-urgent")) {
				method = "elective"
			}
			switch method {
			case "emergency":
				add(formats.AdmissionsEmergency, m, 1)
				if k := (pm{e.patient, m}); !admittedEmergency[k] {
					admittedEmergency[k] = true
					add(formats.PatientsAdmittedEmergency, m, 1)
				}
			case "elective":
				add(formats.AdmissionsElective, m, 1)
			}
			if e.hasStop {
				end := day(e.stop)
				if nights := int64(end - d); nights > 0 {
					add(formats.BedDays, end.Month(), nights)
				}
			}
		}
	}
	return out
}

// TestFederationEndToEnd runs the whole flow over the shared Synthea data split into
// practices: real plugin binaries, every practice's agent, the combine, the query. For each
// month and measure the federation figure must bound the total counted independently from
// the raw CSV; the test prints how far rounding and suppression moved each total. Then it
// searches everything the flow wrote, and its logs, for any patient's id, name or birth date.
func TestFederationEndToEnd(t *testing.T) {
	stores := []struct {
		name string
		url  func(t *testing.T) (string, objstore.Options)
	}{
		{"dir", func(t *testing.T) (string, objstore.Options) { return "", objstore.Options{} }},
		{"minio", func(t *testing.T) (string, objstore.Options) {
			srv := miniotest.Shared(t)
			bucket := miniotest.Bucket(t)
			srv.Store(t, bucket) // creates the bucket
			return srv.URL(bucket), objstore.Options{AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}
		}},
	}
	plugin := testenv.Binary(t, "./plugins/synthea")
	practices := t.TempDir()
	patients, encounters := splitShared(t, practices)
	truth := independentTruth(t, patients, encounters)
	for _, sc := range stores {
		t.Run(sc.name, func(t *testing.T) {
			ctx := context.Background()
			storeURL, opts := sc.url(t)
			work := t.TempDir()
			logs := &testenv.LogBuffer{}
			res, err := demo.Run(ctx, demo.Options{
				Practices: practices, Workdir: work, Plugin: plugin, From: e2eFrom, To: e2eTo,
				Store: storeURL, StoreOptions: opts,
				Log: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Out: logs,
			})
			if err != nil {
				t.Fatalf("demo: %v\nlogs:\n%s", err, logs)
			}
			if n := len(res.Combine.Report.Quarantined); n != 0 {
				t.Fatalf("%d objects quarantined in an honest run: %+v", n, res.Combine.Report.Quarantined)
			}
			st, err := objstore.Open(ctx, res.StoreURL, opts)
			if err != nil {
				t.Fatal(err)
			}
			c, err := query.Open(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			// The first catalogue, which independentTruth counts; the built-in measures beyond
			// it are checked against independent counts in agent/aggregate and plugins/synthea.
			q, err := c.Run(query.Request{From: e2eFrom, To: e2eTo, By: []string{query.ByMonth}, Measures: formats.Measures})
			if err != nil {
				t.Fatal(err)
			}
			checkAgainstTruth(t, q, truth, len(res.Practices))
			checkNoLeak(t, patients, logs.String(), work, storeDirOf(res.StoreURL))
			if sc.name == "minio" {
				checkNoLeakInStore(t, ctx, st, patients)
			}
		})
	}
}

func storeDirOf(url string) string {
	if p, ok := strings.CutPrefix(url, "file://"); ok {
		return p
	}
	return ""
}

func checkAgainstTruth(t testing.TB, q *query.Result, truth map[string]map[formats.Month]int64, practices int) {
	t.Helper()
	type moved struct {
		abs, width, n, exact, tot int64
		pubAbs                    float64
	}
	byMeasure := map[string]*moved{}
	seen := 0
	for _, r := range q.Rows {
		m, err := formats.ParseMonth(r.Period)
		if err != nil {
			t.Fatal(err)
		}
		want := truth[r.Measure][m]
		seen++
		if want < r.Lower || want > r.Upper {
			t.Errorf("%s %s: true total %d is outside the published bounds [%d, %d] (count %v)", r.Period, r.Measure, want, r.Lower, r.Upper, r.Count)
		}
		if r.Count != nil && (*r.Count < r.Lower || *r.Count > r.Upper) {
			t.Errorf("%s %s: count %d is outside its own bounds [%d, %d]", r.Period, r.Measure, *r.Count, r.Lower, r.Upper)
		}
		if r.Practices != int64(practices) {
			t.Errorf("%s %s: %d practices contributed, want %d", r.Period, r.Measure, r.Practices, practices)
		}
		mv := byMeasure[r.Measure]
		if mv == nil {
			mv = &moved{}
			byMeasure[r.Measure] = mv
		}
		var published int64
		if r.Count != nil {
			published = *r.Count
		}
		d := published - want
		if d < 0 {
			d = -d
		}
		mv.abs += d
		mv.pubAbs += math.Abs(float64(r.PublishedSum - want))
		mv.width += r.Upper - r.Lower
		mv.n++
		mv.tot += want
		if d == 0 {
			mv.exact++
		}
	}
	if want := len(formats.Measures) * int(e2eTo-e2eFrom+1); seen != want {
		t.Errorf("query returned %d month × measure rows, want %d", seen, want)
	}
	names := make([]string, 0, len(byMeasure))
	for k := range byMeasure {
		names = append(names, k)
	}
	sort.Strings(names)
	t.Logf("how far disclosure control moved each month's federation total from the truth:")
	t.Logf("%-28s %7s %11s %17s %24s %11s", "measure", "months", "true total", "mean |count-true|", "mean |published_sum-true|", "mean width")
	for _, k := range names {
		mv := byMeasure[k]
		t.Logf("%-28s %7d %11d %17.1f %24.1f %11.1f", k, mv.n, mv.tot, float64(mv.abs)/float64(mv.n), mv.pubAbs/float64(mv.n), float64(mv.width)/float64(mv.n))
	}
}

// checkNoLeak searches every file under dirs, and the logs, for patient-level values of the
// input: ids, names and birth dates. As a control, the same search over the practices' own
// input must find them.
func checkNoLeak(t *testing.T, patients map[string]*rawPatient, logs string, dirs ...string) {
	t.Helper()
	needles := leakNeedles(patients)
	if len(needles) < 300 {
		t.Fatalf("only %d values to search for", len(needles))
	}
	if hits := findLeaks(needles, []byte(logs)); len(hits) > 0 {
		t.Errorf("patient-level values in the logs: %v", hits)
	}
	files := 0
	for _, d := range dirs {
		if d == "" {
			continue
		}
		filepath.Walk(d, func(p string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			files++
			if hits := findLeaks(needles, b); len(hits) > 0 {
				t.Errorf("%s holds patient-level values: %v", p, hits)
			}
			return nil
		})
	}
	if files < 10 {
		t.Fatalf("searched only %d files; the flow should have written far more", files)
	}
	t.Logf("searched %d files and %d bytes of logs for %d patient-level values: none found", files, len(logs), len(needles))
}

func findLeaks(needles []string, hay []byte) []string {
	var hits []string
	for _, n := range needles {
		if bytes.Contains(hay, []byte(n)) {
			hits = append(hits, n)
		}
	}
	return hits
}

// TestLeakSearchFindsValues is the control of checkNoLeak: the search finds patient values
// where they are.
func TestLeakSearchFindsValues(t *testing.T) {
	practices := t.TempDir()
	patients, _ := splitShared(t, practices)
	needles := leakNeedles(patients)
	found := 0
	filepath.Walk(practices, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && filepath.Base(p) == "patients.csv" {
			b, _ := os.ReadFile(p)
			found += len(findLeaks(needles, b))
		}
		return err
	})
	if found < len(patients)*3 {
		t.Fatalf("the leak search found %d values in the input itself, want at least %d", found, len(patients)*3)
	}
}

func checkNoLeakInStore(t *testing.T, ctx context.Context, st objstore.Store, patients map[string]*rawPatient) {
	t.Helper()
	needles := leakNeedles(patients)
	objs, err := st.List(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		b, _, err := st.Get(ctx, o.Key, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		if hits := findLeaks(needles, b); len(hits) > 0 {
			t.Errorf("object %s holds patient-level values: %v", o.Key, hits)
		}
	}
	t.Logf("searched %d objects in the S3 store: no patient-level value", len(objs))
}

// leakNeedles lists the patient-level values of the input in the forms they can take in what
// the flow writes: ids and names as written in the input, and birth dates as written in the
// input and as the code writes any date (formats.Date, time.Time: 1985-03-12). No code writes a
// date as eight bare digits except a run id, whose digits are the run's own time and random
// hex: searching for 19850312 matched those in release.log and failed the test on noise. For
// the same reason a birth date within a day of the run is left out: every log line and the
// release log carry the run's own date.
func leakNeedles(patients map[string]*rawPatient) []string {
	return leakNeedlesAt(patients, time.Now())
}

func leakNeedlesAt(patients map[string]*rawPatient, now time.Time) []string {
	run := map[string]bool{}
	for _, d := range []int{-1, 0, 1} {
		for _, loc := range []*time.Location{time.UTC, time.Local} {
			run[now.In(loc).AddDate(0, 0, d).Format(time.DateOnly)] = true
		}
	}
	var out []string
	for _, p := range patients {
		out = append(out, p.id, p.first, p.last)
		if !run[p.birthS] {
			out = append(out, p.birthS)
		}
	}
	return out
}

// TestLeakSearchForms: a birth date's digits in a run id (its time, its random hex) or a
// digest are not a leak, and the run's own date is not a birth date; the date as written is.
func TestLeakSearchForms(t *testing.T) {
	now := time.Date(2026, 11, 30, 17, 5, 1, 0, time.UTC)
	patients := map[string]*rawPatient{
		"a": {id: "3f1c2e0a-9b7d-4c55-8e21-6a0b1c2d3e4f", first: "Ana123", last: "Lowe45", birthS: "1985-03-12"},
		"b": {id: "0c9d8e7f-1a2b-4c3d-8e4f-5a6b7c8d9e0f", first: "Ben456", last: "Hart78", birthS: "2026-11-30"}, // born on the run's day
	}
	needles := leakNeedlesAt(patients, now)
	releaseLog := `{"time":"2026-11-30T17:05:01.198503121Z","run_id":"20261130T170501Z-19850312","period":"2024-01..2024-03",` +
		`"key":"practices/A81001/runs/20261130T170501Z-19850312/figures.arrow","size":19850312,"sha256":"9ab19850312f0c7d"}`
	if hits := findLeaks(needles, []byte(releaseLog)); len(hits) > 0 {
		t.Errorf("a release log line without patient values: found %v", hits)
	}
	for _, hay := range []string{"dob=1985-03-12", "id 3f1c2e0a-9b7d-4c55-8e21-6a0b1c2d3e4f", "name: Ana123", "Hart78"} {
		if hits := findLeaks(needles, []byte(hay)); len(hits) != 1 {
			t.Errorf("%q: found %v, want the one value it holds", hay, hits)
		}
	}
}

func readCSV(t testing.TB, path string) ([]string, [][]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	header, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]string
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, rec)
	}
	return header, rows
}

func writeCSV(t testing.TB, path string, header []string, rows [][]string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write(header)
	w.WriteAll(rows)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func index(header []string) map[string]int {
	m := map[string]int{}
	for i, h := range header {
		m[h] = i
	}
	return m
}

var dateRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}$`)

func mustDate(t testing.TB, s string) formats.Date {
	t.Helper()
	if !dateRE.MatchString(s) {
		t.Fatalf("not a date: %q", s)
	}
	d, err := formats.ParseDate(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(fmt.Errorf("not a time: %w", err))
	}
	return tm
}
