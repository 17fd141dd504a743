package synthgen

import (
	"bytes"
	"encoding/csv"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// TestEnglandRates generates a practice with EnglandRates and counts, from the files alone,
// each class's encounters per patient-year of the list: they must be within 15% of the
// preset, and the age factors must survive the scaling.
func TestEnglandRates(t *testing.T) {
	from := time.Date(2019, 1, 1, 0, 0, 0, 0, time.UTC)
	to := time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	if _, err := Write(dir, Config{Seed: 2023, Patients: 20000, From: from, To: to, Rates: EnglandRates}); err != nil {
		t.Fatal(err)
	}

	// Patient-years from patients.csv: from birth or From to the end of the day of death or
	// To, split by age band for the age factors.
	type life struct{ birth, end time.Time }
	lives := map[string]life{}
	bands := []float64{5, 18, 65, math.Inf(1)}
	exposure := make([]float64, len(bands))
	total := 0.0
	eachRow(t, filepath.Join(dir, "patients.csv"), func(col map[string]int, r []string) {
		birth := mustDay(t, r[col["BIRTHDATE"]])
		end := to
		if d := r[col["DEATHDATE"]]; d != "" {
			end = mustDay(t, d).AddDate(0, 0, 1)
		}
		lives[r[col["Id"]]] = life{birth, end}
		lo := birth
		if lo.Before(from) {
			lo = from
		}
		for i, b := range bands {
			hi := end
			if !math.IsInf(b, 1) {
				hi = minTime(end, birth.Add(time.Duration(b*365.25*24)*time.Hour))
			}
			if hi.After(lo) {
				y := hi.Sub(lo).Hours() / 24 / 365.25
				exposure[i] += y
				total += y
				lo = hi
			}
		}
	})

	byClass := map[string]float64{}
	byBand := make([]float64, len(bands))
	type key struct{ patient, start string }
	emergencyAt := map[key]bool{}
	var admissions []key
	eachRow(t, filepath.Join(dir, "encounters.csv"), func(col map[string]int, r []string) {
		start, err := time.Parse(time.RFC3339, r[col["START"]])
		if err != nil {
			t.Fatalf("START %q: %v", r[col["START"]], err)
		}
		p, ok := lives[r[col["PATIENT"]]]
		if !ok {
			t.Fatalf("encounter of unknown patient %s", r[col["PATIENT"]])
		}
		// Outside the window, or Synthea's rows after a death: no patient-year holds them.
		if start.Before(from) || !start.Before(to) || !start.Before(p.end) || r[col["CODE"]] == DeathCertificationCode {
			return
		}
		class := r[col["ENCOUNTERCLASS"]]
		byClass[class]++
		age := start.Sub(p.birth).Hours() / 24 / 365.25
		for i, b := range bands {
			if age < b {
				byBand[i]++
				break
			}
		}
		k := key{r[col["PATIENT"]], r[col["START"]]}
		switch class {
		case ClassEmergency:
			emergencyAt[k] = true
		case ClassInpatient:
			admissions = append(admissions, k)
		}
	})
	emergencyAdmissions := 0
	for _, k := range admissions {
		if emergencyAt[k] {
			emergencyAdmissions++
		}
	}

	rate := func(classes ...string) float64 {
		n := 0.0
		for _, c := range classes {
			n += byClass[c]
		}
		return n / total
	}
	want := EnglandRates
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"A&E attendances (emergency) per patient-year", rate(ClassEmergency), want.Emergency},
		{"admissions (inpatient) per patient-year", rate(ClassInpatient), want.Inpatient},
		{"emergency share of admissions", float64(emergencyAdmissions) / byClass[ClassInpatient], want.EmergencyAdmissionShare},
		{"outpatient attendances per patient-year", rate(ClassOutpatient), want.Outpatient},
		{"primary care contacts per patient-year", rate(ClassAmbulatory, ClassWellness, ClassVirtual), want.Ambulatory + want.Wellness + want.Virtual},
	} {
		t.Logf("%-45s %.3f (target %.3f, %+.1f%%)", c.name, c.got, c.want, 100*(c.got/c.want-1))
		if math.Abs(c.got/c.want-1) > 0.15 {
			t.Errorf("%s = %.3f, want %.3f ± 15%%", c.name, c.got, c.want)
		}
	}
	t.Logf("over %.0f patient-years, %d admissions", total, len(admissions))

	adult := byBand[2] / exposure[2]
	for _, b := range []struct {
		name string
		i    int
	}{{"under 5", 0}, {"65 and over", 3}} {
		ratio := (byBand[b.i] / exposure[b.i]) / adult
		t.Logf("encounter rate %s / 18-64: %.2f", b.name, ratio)
		if ratio < 1.4 {
			t.Errorf("patients %s have %.2f times the encounters of adults under 65, want more (the age factor)", b.name, ratio)
		}
	}
}

func TestRatesErrors(t *testing.T) {
	bad := func(f func(r *Rates)) Rates {
		r := EnglandRates
		f(&r)
		return r
	}
	for _, cfg := range []Config{
		{Patients: 1, Rates: EnglandRates, EncountersPerPatientYear: 6},
		{Patients: 1, Rates: bad(func(r *Rates) { r.Outpatient = -1 })},
		{Patients: 1, Rates: bad(func(r *Rates) { r.Virtual = math.NaN() })},
		{Patients: 1, Rates: bad(func(r *Rates) { r.EmergencyAdmissionShare = 1.5 })},
		{Patients: 1, Rates: bad(func(r *Rates) { r.Emergency = 0.1 })},
		{Patients: 1, Rates: Rates{EmergencyAdmissionShare: 0.5}},
	} {
		if _, err := Write(t.TempDir(), cfg); err == nil {
			t.Errorf("%+v: want an error", cfg.Rates)
		}
	}
}

func TestWriteFederationSizes(t *testing.T) {
	sizes, err := Sizes(9, 5, 2000, 12000)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Sizes(9, 5, 2000, 12000)
	other, _ := Sizes(10, 5, 2000, 12000)
	if !reflect.DeepEqual(sizes, again) || reflect.DeepEqual(sizes, other) {
		t.Errorf("sizes are not a function of the seed: %v, %v, seed 10 %v", sizes, again, other)
	}
	distinct := map[int]bool{}
	for _, n := range sizes {
		distinct[n] = true
		if n < 2000 || n > 12000 {
			t.Errorf("size %d outside 2000..12000", n)
		}
	}
	if len(distinct) < 3 {
		t.Errorf("sizes %v: want a spread", sizes)
	}
	if _, err := Sizes(1, 2, 10, 5); err == nil {
		t.Error("lo > hi: want an error")
	}

	// Small sizes, to check each practice gets its own and that equal sizes write what
	// WriteFederation writes.
	dir, plain := t.TempDir(), t.TempDir()
	cfg := Config{Seed: 5, Patients: 50, Rates: EnglandRates}
	st, err := WriteFederationSizes(dir, []int{50, 120, 7}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteFederation(plain, 2, cfg); err != nil {
		t.Fatal(err)
	}
	for i, n := range []int{50, 120, 7} {
		if st[i].Patients != n {
			t.Errorf("practice %d: %d patients, want %d", i+1, st[i].Patients, n)
		}
		rows := 0
		eachRow(t, filepath.Join(dir, PracticeDir(i+1), "patients.csv"), func(map[string]int, []string) { rows++ })
		if rows != n {
			t.Errorf("practice %d: patients.csv has %d rows, want %d", i+1, rows, n)
		}
	}
	a, _ := os.ReadFile(filepath.Join(dir, PracticeDir(1), "encounters.csv"))
	b, _ := os.ReadFile(filepath.Join(plain, PracticeDir(1), "encounters.csv"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Error("practice 1 of 50 patients differs between WriteFederationSizes and WriteFederation")
	}
	if _, err := WriteFederationSizes(dir, nil, cfg); err == nil {
		t.Error("no sizes: want an error")
	}
}

// eachRow streams a CSV file's rows with its header's column indexes.
func eachRow(t *testing.T, path string, f func(col map[string]int, row []string)) {
	t.Helper()
	fl, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Close()
	r := csv.NewReader(fl)
	r.ReuseRecord = true
	head, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[h] = i
	}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		f(col, rec)
	}
}

func mustDay(t *testing.T, s string) time.Time {
	t.Helper()
	d, err := time.Parse("2006-01-02", s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
