package aggregate

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/formats"
)

// sharedData is the project's shared synthetic data (../shared/data from the repository).
func sharedData(t *testing.T, parts ...string) string {
	t.Helper()
	p := filepath.Join(append([]string{"..", "..", "..", "shared", "data"}, parts...)...)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared data not found: %v", err)
	}
	return p
}

func readCSV(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, r := range rows[1:] {
		m := map[string]string{}
		for i, h := range rows[0] {
			m[h] = r[i]
		}
		out = append(out, m)
	}
	return out
}

func day(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse("2006-01-02", s)
	if err != nil {
		t.Fatalf("date %q: %v", s, err)
	}
	return v
}

// rawCode is the independent reading of a raw diagnosis: upper case, no dot, HES's X filler
// after a three-character code dropped.
func rawCode(s string) string {
	s = strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), ".", ""))
	if len(s) == 4 && s[3] == 'X' {
		s = s[:3]
	}
	return s
}

// inList is the independent match: any of the published ICD-10 codes is a prefix of code.
func inList(t *testing.T, measure, code string) bool {
	d, ok := formats.BuiltinDefinition(measure)
	if !ok {
		t.Fatalf("no built-in %s", measure)
	}
	for _, l := range d.Codes {
		if l.System != formats.DiagnosisICD10 {
			continue
		}
		for _, c := range l.Codes {
			if strings.HasPrefix(code, c) {
				return true
			}
		}
	}
	return false
}

type admission struct {
	patient          string
	start, end       time.Time // end zero: not discharged
	emergency        bool
	code             string
	birth            time.Time // first of the birth month
	registeredOnFrom func(time.Time) bool
}

func monthOf(t time.Time) string { return t.Format("2006-01") }

// independentCounts counts the hospital measures from the admissions by month, as the NHS
// definitions say, without the aggregator: emergency admissions by code list, and emergency
// admissions within 30 days of an earlier admission's discharge.
func independentCounts(t *testing.T, adms []admission, from, to string) map[string]map[string]int64 {
	out := map[string]map[string]int64{}
	add := func(measure, month string) {
		if out[measure] == nil {
			out[measure] = map[string]int64{}
		}
		out[measure][month]++
	}
	inRun := func(m string) bool { return m >= from && m <= to }
	for i, a := range adms {
		if !a.registeredOnFrom(a.start) || monthOf(a.start) < monthOf(a.birth) {
			continue
		}
		m := monthOf(a.start)
		if !inRun(m) || !a.emergency {
			continue
		}
		add("admissions_emergency", m)
		for _, measure := range []string{"acsc_chronic_emergency", "acute_not_usually_admitted"} {
			if inList(t, measure, a.code) {
				add(measure, m)
			}
		}
		for j, b := range adms {
			if j == i || b.patient != a.patient || b.end.IsZero() || !b.registeredOnFrom(b.start) || monthOf(b.start) < monthOf(b.birth) {
				continue
			}
			gap := a.start.Sub(b.end).Hours() / 24
			if !b.end.After(a.start) && gap <= 30 && b.start.Before(a.start) {
				add("readmissions_emergency_30d", m)
				break
			}
		}
	}
	return out
}

func agentCounts(r *Result, measure string) map[string]int64 {
	out := map[string]int64{}
	for mo := r.From; mo <= r.To; mo++ {
		if n := r.Total(mo, measure); n != 0 {
			out[mo.String()] = n
		}
	}
	return out
}

func compareCounts(t *testing.T, set string, r *Result, want map[string]map[string]int64, measures ...string) {
	t.Helper()
	for _, measure := range measures {
		if !slices.Contains(r.Measures, measure) {
			t.Errorf("%s: %s absent from the result (absent: %v)", set, measure, r.Absent)
			continue
		}
		got := agentCounts(r, measure)
		var gotN, wantN int64
		for _, n := range got {
			gotN += n
		}
		for _, n := range want[measure] {
			wantN += n
		}
		t.Logf("%s: %s: agent %d, independent count %d (months with any: %d)", set, measure, gotN, wantN, len(want[measure]))
		for mo, n := range want[measure] {
			if got[mo] != n {
				t.Errorf("%s: %s %s: agent %d, independent %d", set, measure, mo, got[mo], n)
			}
		}
		for mo, n := range got {
			if want[measure][mo] != n {
				t.Errorf("%s: %s %s: agent %d, independent %d", set, measure, mo, n, want[measure][mo])
			}
		}
	}
}

func fdate(tm time.Time) formats.Date { return formats.DateOf(tm) }

// TestBuiltinMeasuresOpenSAFELY runs the built-in measures over the OpenSAFELY-shaped dummy
// data (apcs admissions with ICD-10 primary diagnoses, A&E attendances, registrations) and
// compares each with a count made here from the raw files and the published code lists.
func TestBuiltinMeasuresOpenSAFELY(t *testing.T) {
	dir := sharedData(t, "uk_opensafely_dummy_dementia1000")
	const from, to = "2014-01", "2025-12"
	pats := map[string]map[string]string{}
	for _, p := range readCSV(t, filepath.Join(dir, "patients.csv")) {
		pats[p["patient_id"]] = p
	}
	type spell struct{ from, to time.Time } // to inclusive, as the file has it
	spells := map[string][]spell{}
	a := New(m(from), m(to))
	for _, r := range readCSV(t, filepath.Join(dir, "practice_registrations.csv")) {
		p := pats[r["patient_id"]]
		if p == nil {
			continue
		}
		s := spell{day(t, r["start_date"]), day(t, r["end_date"])}
		spells[r["patient_id"]] = append(spells[r["patient_id"]], s)
		a.Registration(formats.Registration{PatientKey: r["patient_id"], Sex: p["sex"], BirthMonth: formats.MonthOf(day(t, p["date_of_birth"])),
			From: fdate(s.from), To: fdate(s.to.AddDate(0, 0, 1))})
	}
	registered := func(id string) func(time.Time) bool {
		return func(d time.Time) bool {
			for _, s := range spells[id] {
				if !d.Before(s.from) && !d.After(s.to) {
					return true
				}
			}
			return false
		}
	}
	var adms []admission
	for _, r := range readCSV(t, filepath.Join(dir, "apcs.csv")) {
		p := pats[r["patient_id"]]
		if p == nil {
			continue
		}
		// admission_method here is 1 or 2: the first digit of the NHS codes (1x elective,
		// 2x emergency).
		ad := admission{patient: r["patient_id"], start: day(t, r["admission_date"]), emergency: strings.HasPrefix(r["admission_method"], "2"),
			code: rawCode(r["primary_diagnosis"]), birth: day(t, p["date_of_birth"][:8]+"01"), registeredOnFrom: registered(r["patient_id"])}
		e := formats.Event{PatientKey: r["patient_id"], Kind: formats.KindAdmission, Start: fdate(ad.start), End: formats.NoEnd, Method: formats.MethodElective}
		if ad.emergency {
			e.Method = formats.MethodEmergency
		}
		if r["discharge_date"] != "" {
			ad.end = day(t, r["discharge_date"])
			e.End = fdate(ad.end)
		}
		if c, ok := formats.NormalizeDiagnosis(formats.DiagnosisICD10, r["primary_diagnosis"]); ok {
			e.DiagnosisCode, e.DiagnosisSystem = c, formats.DiagnosisICD10
		}
		adms = append(adms, ad)
		a.Event(e)
	}
	// A&E attendances, for frequent attenders.
	type att struct {
		patient string
		at      time.Time
	}
	var atts []att
	for _, r := range readCSV(t, filepath.Join(dir, "emergency_care_attendances.csv")) {
		if pats[r["patient_id"]] == nil {
			continue
		}
		at := day(t, r["arrival_date"])
		atts = append(atts, att{r["patient_id"], at})
		a.Event(formats.Event{PatientKey: r["patient_id"], Kind: formats.KindAE, Start: fdate(at), End: formats.NoEnd})
	}
	res := a.Finish(Supplies{Registrations: true, Methods: true, Discharges: true,
		EventKinds: map[string]bool{formats.KindAdmission: true, formats.KindAE: true}, Diagnoses: map[string]bool{formats.DiagnosisICD10: true}})

	want := independentCounts(t, adms, from, to)
	// Frequent attenders: patients with an attendance in the month (while registered) and 4
	// or more attendances (while registered) in the 12 months ending with it.
	want["ae_frequent_attenders"] = map[string]int64{}
	for mo := m(from); mo <= m(to); mo++ {
		lo := (mo - 11).String()
		counted := map[string]bool{}
		for _, x := range atts {
			if monthOf(x.at) != mo.String() || counted[x.patient] || !registered(x.patient)(x.at) {
				continue
			}
			n := 0
			for _, y := range atts {
				if y.patient == x.patient && monthOf(y.at) >= lo && monthOf(y.at) <= mo.String() && registered(y.patient)(y.at) {
					n++
				}
			}
			if n >= 4 {
				counted[x.patient] = true
				want["ae_frequent_attenders"][mo.String()]++
			}
		}
	}
	compareCounts(t, "opensafely apcs", res, want, "admissions_emergency", "acsc_chronic_emergency", "acute_not_usually_admitted", "readmissions_emergency_30d", "ae_frequent_attenders")
	var acsc int64
	for _, n := range want["acsc_chronic_emergency"] {
		acsc += n
	}
	if acsc == 0 {
		t.Error("the independent count found no chronic ACSC admission: the comparison shows nothing")
	}
}

// TestBuiltinMeasuresHES does the same over NHS Digital's artificial HES APC: each first
// episode (EPIORDER 1) is an admission, ADMIMETH its method, DIAG_4_01 its primary diagnosis.
// HES has no registrations: every patient is registered throughout (born 1900).
func TestBuiltinMeasuresHES(t *testing.T) {
	dir := sharedData(t, "uk_nhs_artificial_hes_apc_0102")
	const from, to = "1990-01", "2030-12"
	a := New(m(from), m(to))
	seen := map[string]bool{}
	var adms []admission
	always := func(time.Time) bool { return true }
	for _, r := range readCSV(t, filepath.Join(dir, "artificial_hes_apc_0102.csv")) {
		if r["EPIORDER"] != "1" || r["ADMIDATE"] == "" {
			continue
		}
		id := r["PSEUDO_HESID"]
		if !seen[id] {
			seen[id] = true
			a.Registration(formats.Registration{PatientKey: id, Sex: "unknown", BirthMonth: m("1900-01"), From: fdate(day(t, "1900-01-01")), To: formats.NoEnd})
		}
		start := day(t, r["ADMIDATE"])
		ad := admission{patient: id, start: start, emergency: formats.AdmissionMethodFromNHS(r["ADMIMETH"]) == formats.MethodEmergency,
			code: rawCode(r["DIAG_4_01"]), birth: day(t, "1900-01-01"), registeredOnFrom: always}
		e := formats.Event{PatientKey: id, Kind: formats.KindAdmission, Start: fdate(start), End: formats.NoEnd, Method: formats.AdmissionMethodFromNHS(r["ADMIMETH"])}
		if r["DISDATE"] != "" {
			end := day(t, r["DISDATE"])
			if end.Before(start) {
				continue // the artificial data's random dates: a discharge before admission is not a stay
			}
			ad.end, e.End = end, fdate(end)
		}
		if c, ok := formats.NormalizeDiagnosis(formats.DiagnosisICD10, r["DIAG_4_01"]); ok {
			e.DiagnosisCode, e.DiagnosisSystem = c, formats.DiagnosisICD10
		}
		adms = append(adms, ad)
		a.Event(e)
	}
	res := a.Finish(Supplies{Registrations: true, Methods: true, Discharges: true,
		EventKinds: map[string]bool{formats.KindAdmission: true}, Diagnoses: map[string]bool{formats.DiagnosisICD10: true}})
	want := independentCounts(t, adms, from, to)
	compareCounts(t, "HES APC", res, want, "admissions_emergency", "acsc_chronic_emergency", "acute_not_usually_admitted", "readmissions_emergency_30d")
	if len(want["acsc_chronic_emergency"]) == 0 || len(want["acute_not_usually_admitted"]) == 0 {
		t.Error("the independent count found no ACSC admission: the comparison shows nothing")
	}
	for _, ab := range res.Absent {
		if ab.Measure == "ae_frequent_attenders" && ab.Reason != "no source supplies ae_attendance events" {
			t.Errorf("frequent attenders absent because %q", ab.Reason)
		}
	}
}
