package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/coordinator/query"
	"github.com/tributary-health/tributary/demo"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/internal/testenv"
)

// The months of the mixed federation: years that every shared set has activity in.
var (
	mixedFrom = formats.MonthFor(2014, 1)
	mixedTo   = formats.MonthFor(2021, 12)
)

// figures are one practice's true monthly totals: measure -> month -> count.
type figures map[string]map[formats.Month]int64

func (f figures) add(measure string, m formats.Month, n int64) {
	if f[measure] == nil {
		f[measure] = map[formats.Month]int64{}
	}
	f[measure][m] += n
}

// mixedPractice is a practice of the mixed federation: its folder (a shared set as it is), the
// measures its source supplies, and its figures counted independently from its files.
type mixedPractice struct {
	id, shape string
	supplies  []string
	truth     figures
}

// TestMixedFederation is the mixed-federation must-show of issue 12: the demo over practices on
// different systems together — Synthea CSV, OMOP CDM CSV, UK GP tables in ehrQL's shapes and
// FHIR bulk NDJSON — each read as the shared set holds it
// by the extractor the demo recognises it needs. Each practice's figures are counted
// independently from its own files in this test (plain CSV reading, the mapping of the
// extractor's README and the agent's counting rules written again); for every month and
// measure the federation's published bounds must hold the sum over the practices that supply
// it, and the number of practices contributing must be that many.
func TestMixedFederation(t *testing.T) {
	ctx := context.Background()
	pluginDir := t.TempDir()
	for _, name := range []string{"synthea", "omop", "ukgp", "fhir"} {
		copyFile(t, testenv.Binary(t, "./plugins/"+name), filepath.Join(pluginDir, name))
	}
	practices := t.TempDir()
	var mixed []mixedPractice
	link := func(id, rel string) string {
		dir := testenv.SharedData(t, rel)
		if err := os.Symlink(dir, filepath.Join(practices, id)); err != nil {
			t.Fatal(err)
		}
		return dir
	}

	dir := link("SYN-MA", "synthea_csv_mcode_ma115/csv")
	pats, encs := readSyntheaSet(t, dir)
	mixed = append(mixed, mixedPractice{id: "SYN-MA", shape: "synthea", supplies: formats.Measures,
		truth: figures(truthBy(t, pats, encs, mixedFrom, mixedTo, func(*rawPatient) string { return "" })[""])})

	dir = link("OMOP-NJ", "omop_eunomia_synthea27nj/cdm54")
	mixed = append(mixed, mixedPractice{id: "OMOP-NJ", shape: "omop",
		// The set records no 262 visit and no admitted-from concept: no admission methods.
		supplies: []string{formats.RegisteredPatients, formats.OutpatientAttendances, formats.AEAttendances, formats.Admissions, formats.BedDays},
		truth:    omopTruth(t, dir)})

	dir = link("UKGP-DEM", "uk_opensafely_dummy_dementia1000")
	mixed = append(mixed, mixedPractice{id: "UKGP-DEM", shape: "ukgp",
		// apcs has admission_method (its 1 and 2 are no NHS codes: other); no opa.csv; clinical
		// events are not consultations by default.
		supplies: []string{formats.RegisteredPatients, formats.AEAttendances, formats.Admissions, formats.AdmissionsEmergency,
			formats.AdmissionsElective, formats.BedDays, formats.PatientsAdmittedEmergency},
		truth: ukgpTruth(t, dir)})

	dir = link("FHIR-KS", "synthea_fhir_bulk_ndjson_ks13")
	mixed = append(mixed, mixedPractice{id: "FHIR-KS", shape: "fhir",
		// No outpatient_types: Synthea's AMB cannot tell outpatients from consultations.
		supplies: []string{formats.RegisteredPatients, formats.Consultations, formats.AEAttendances, formats.Admissions,
			formats.AdmissionsEmergency, formats.AdmissionsElective, formats.BedDays, formats.PatientsAdmittedEmergency},
		truth: fhirTruth(t, dir)})

	logs := &testenv.LogBuffer{}
	res, err := demo.Run(ctx, demo.Options{Practices: practices, Workdir: t.TempDir(), PluginDir: pluginDir,
		From: mixedFrom, To: mixedTo, Log: slog.New(slog.NewTextHandler(logs, nil)), Out: logs})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, logs)
	}
	t.Logf("demo output:\n%s", logs)
	for _, p := range mixed {
		if got := string(res.Shapes[p.id]); got != p.shape {
			t.Errorf("practice %s recognised as %q, want %s", p.id, got, p.shape)
		}
	}
	if len(res.Practices) != len(mixed) || len(res.Skipped) != 0 {
		t.Fatalf("practices run %v, skipped %v; want all %d", res.Practices, res.Skipped, len(mixed))
	}
	if n := len(res.Combine.Report.Quarantined); n != 0 {
		t.Fatalf("%d objects quarantined", n)
	}
	st, err := objstore.Open(ctx, res.StoreURL, objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := query.Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	q, err := c.Run(query.Request{From: mixedFrom, To: mixedTo, By: []string{query.ByMonth}, Measures: formats.Measures})
	if err != nil {
		t.Fatal(err)
	}

	// The sum of the practices' own figures, over those that supply each measure.
	sum := figures{}
	suppliers := map[string]int64{}
	for _, p := range mixed {
		for _, m := range p.supplies {
			suppliers[m]++
			for month := mixedFrom; month <= mixedTo; month++ {
				sum.add(m, month, p.truth[m][month])
			}
		}
	}
	type total struct{ truth, count, lower, upper, exact, rows int64 }
	totals := map[string]*total{}
	for _, r := range q.Rows {
		m, err := formats.ParseMonth(r.Period)
		if err != nil {
			t.Fatal(err)
		}
		want := sum[r.Measure][m]
		if want < r.Lower || want > r.Upper {
			t.Errorf("%s %s: the sum of the practices' figures, %d, is outside the published bounds [%d, %d]", r.Period, r.Measure, want, r.Lower, r.Upper)
		}
		if r.Practices != suppliers[r.Measure] {
			t.Errorf("%s %s: %d practices contributed, want the %d that supply it", r.Period, r.Measure, r.Practices, suppliers[r.Measure])
		}
		tt := totals[r.Measure]
		if tt == nil {
			tt = &total{}
			totals[r.Measure] = tt
		}
		tt.truth += want
		if r.Count != nil {
			tt.count += *r.Count
			if *r.Count == want {
				tt.exact++
			}
		}
		tt.lower += r.Lower
		tt.upper += r.Upper
		tt.rows++
	}
	for _, m := range formats.Measures {
		if suppliers[m] > 0 && totals[m] == nil {
			t.Errorf("no federation rows for %s, which %d practices supply", m, suppliers[m])
		}
	}
	t.Logf("federation totals over %s to %s against the sum of the practices' independently counted figures:", mixedFrom, mixedTo)
	t.Logf("%-28s %9s %9s %9s %9s %8s %12s", "measure", "practices", "sum", "count", "lower", "upper", "months exact")
	for _, m := range formats.Measures {
		if tt := totals[m]; tt != nil {
			t.Logf("%-28s %9d %9d %9d %9d %8d %6d of %d", m, suppliers[m], tt.truth, tt.count, tt.lower, tt.upper, tt.exact, tt.rows)
		}
	}
	for _, p := range mixed {
		var parts []string
		for _, m := range p.supplies {
			var n int64
			for _, v := range p.truth[m] {
				n += v
			}
			parts = append(parts, fmt.Sprintf("%s %d", m, n))
		}
		t.Logf("%s (%s): %s", p.id, p.shape, strings.Join(parts, ", "))
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

// readSyntheaSet reads a Synthea set's patients and encounters as splitShared does, for one
// practice.
func readSyntheaSet(t *testing.T, dir string) (map[string]*rawPatient, []rawEncounter) {
	t.Helper()
	pHeader, pRows := readCSV(t, filepath.Join(dir, "patients.csv"))
	eHeader, eRows := readCSV(t, filepath.Join(dir, "encounters.csv"))
	pc, ec := index(pHeader), index(eHeader)
	patients := map[string]*rawPatient{}
	for _, r := range pRows {
		p := &rawPatient{id: r[pc["Id"]], first: r[pc["FIRST"]], last: r[pc["LAST"]], birthS: r[pc["BIRTHDATE"]], death: formats.NoEnd}
		p.birth = mustDate(t, p.birthS)
		if d := r[pc["DEATHDATE"]]; d != "" {
			p.death = mustDate(t, d)
		}
		patients[p.id] = p
	}
	var encounters []rawEncounter
	for _, r := range eRows {
		e := rawEncounter{patient: r[ec["PATIENT"]], class: r[ec["ENCOUNTERCLASS"]], code: r[ec["CODE"]], description: r[ec["DESCRIPTION"]]}
		e.start = mustTime(t, r[ec["START"]])
		if s := r[ec["STOP"]]; s != "" {
			e.stop, e.hasStop = mustTime(t, s), true
		}
		encounters = append(encounters, e)
	}
	return patients, encounters
}

// rowsPatient and rowEvent are a source's rows as the contract has them, read by this test.
type rowsPatient struct {
	birth  formats.Month
	spells [][2]formats.Date // from, to (exclusive; NoEnd open)
}

type rowEvent struct {
	patient, kind, method string
	start, end            formats.Date
}

// countRows counts the measures from rows as the agent's rules say (agent/aggregate, written
// again): list size on the first day of each month; an event counts when its patient is
// registered on its start day and it is not before the birth month, in the month it starts;
// bed days are nights, in the month the stay ends; patients admitted as emergencies are
// distinct per month. Only spells overlapping the months are sent by the extractors, so only
// they register.
func countRows(patients map[string]*rowsPatient, events []rowEvent, from, to formats.Month) figures {
	out := figures{}
	first, end := formats.DateOf(from.Start()), formats.DateOf((to + 1).Start())
	for _, p := range patients {
		kept := p.spells[:0]
		for _, s := range p.spells {
			if s[0] < end && s[1] > first {
				kept = append(kept, s)
			}
		}
		p.spells = kept
		for m := from; m <= to; m++ {
			d := formats.DateOf(m.Start())
			for _, s := range p.spells {
				if s[0] <= d && d < s[1] {
					out.add(formats.RegisteredPatients, m, 1)
					break
				}
			}
		}
	}
	type pm struct {
		patient string
		m       formats.Month
	}
	emergency := map[pm]bool{}
	in := func(m formats.Month) bool { return m >= from && m <= to }
	for _, e := range events {
		p := patients[e.patient]
		if p == nil || e.start.Month() < p.birth {
			continue
		}
		registered := false
		for _, s := range p.spells {
			registered = registered || s[0] <= e.start && e.start < s[1]
		}
		if !registered {
			continue
		}
		m := e.start.Month()
		if in(m) {
			switch e.kind {
			case formats.KindConsultation:
				out.add(formats.Consultations, m, 1)
			case formats.KindOutpatient:
				out.add(formats.OutpatientAttendances, m, 1)
			case formats.KindAE:
				out.add(formats.AEAttendances, m, 1)
			case formats.KindAdmission:
				out.add(formats.Admissions, m, 1)
				switch e.method {
				case formats.MethodEmergency:
					out.add(formats.AdmissionsEmergency, m, 1)
					if !emergency[pm{e.patient, m}] {
						emergency[pm{e.patient, m}] = true
						out.add(formats.PatientsAdmittedEmergency, m, 1)
					}
				case formats.MethodElective:
					out.add(formats.AdmissionsElective, m, 1)
				}
			}
		}
		if e.kind == formats.KindAdmission && e.end != formats.NoEnd && in(e.end.Month()) && e.end > e.start {
			out.add(formats.BedDays, e.end.Month(), int64(e.end-e.start))
		}
	}
	return out
}

func plainDate(t *testing.T, s string) (formats.Date, bool) {
	t.Helper()
	if len(s) > 10 {
		s = s[:10]
	}
	d, err := time.Parse("2006-01-02", s)
	if err != nil {
		return 0, false
	}
	return formats.DateOf(d), true
}

// omopTruth reads an OMOP CDM CSV folder as plugins/omop/README.md maps it: a registration per
// observation period (to the day after its end), visits 9202 outpatient, 9203 A&E, 9201 an
// admission of unknown method to visit_end_date, 262 both A&E and an emergency admission,
// 581477 a consultation; persons not in PERSON are not counted.
func omopTruth(t *testing.T, dir string) figures {
	ph, prows := readCSV(t, filepath.Join(dir, "PERSON.csv"))
	pc := index(ph)
	patients := map[string]*rowsPatient{}
	for _, r := range prows {
		y, err1 := strconv.Atoi(r[pc["year_of_birth"]])
		mo, err2 := strconv.Atoi(r[pc["month_of_birth"]])
		if err1 != nil || err2 != nil {
			t.Fatalf("PERSON.csv: a person without year and month of birth; the test reads only those")
		}
		patients[r[pc["person_id"]]] = &rowsPatient{birth: formats.MonthFor(y, time.Month(mo))}
	}
	oh, orows := readCSV(t, filepath.Join(dir, "OBSERVATION_PERIOD.csv"))
	oc := index(oh)
	for _, r := range orows {
		p := patients[r[oc["person_id"]]]
		from, ok1 := plainDate(t, r[oc["observation_period_start_date"]])
		end, ok2 := plainDate(t, r[oc["observation_period_end_date"]])
		if p == nil || !ok1 {
			continue
		}
		to := formats.NoEnd
		if ok2 {
			to = end + 1
		}
		p.spells = append(p.spells, [2]formats.Date{from, to})
	}
	vh, vrows := readCSV(t, filepath.Join(dir, "VISIT_OCCURRENCE.csv"))
	vc := index(vh)
	var events []rowEvent
	for _, r := range vrows {
		start, ok := plainDate(t, r[vc["visit_start_date"]])
		if !ok {
			continue
		}
		e := rowEvent{patient: r[vc["person_id"]], start: start, end: formats.NoEnd}
		switch r[vc["visit_concept_id"]] {
		case "581477":
			e.kind = formats.KindConsultation
		case "9202":
			e.kind = formats.KindOutpatient
		case "9203":
			e.kind = formats.KindAE
		case "9201", "262":
			if r[vc["visit_concept_id"]] == "262" {
				events = append(events, rowEvent{patient: e.patient, kind: formats.KindAE, start: start, end: formats.NoEnd})
			}
			e.kind, e.method = formats.KindAdmission, formats.MethodUnknown
			if r[vc["visit_concept_id"]] == "262" {
				e.method = formats.MethodEmergency
			}
			if end, ok := plainDate(t, r[vc["visit_end_date"]]); ok {
				e.end = end
			}
		default:
			continue
		}
		events = append(events, e)
	}
	return countRows(patients, events, mixedFrom, mixedTo)
}

// ukgpTruth reads the ehrQL-shaped tables as plugins/ukgp/README.md maps them, every practice's
// spells (the demo sets no practice_code): spells merged where they overlap or meet, end_date
// the last day registered, ended by death (its day the last) and begun no earlier than birth;
// apcs admissions with NHS admission method codes, A&E attendances; a patient whose death is
// before their birth is left out.
func ukgpTruth(t *testing.T, dir string) figures {
	ph, prows := readCSV(t, filepath.Join(dir, "patients.csv"))
	pc := index(ph)
	type person struct {
		birth, death formats.Date
		spells       [][2]formats.Date
	}
	people := map[string]*person{}
	for _, r := range prows {
		b, ok := plainDate(t, r[pc["date_of_birth"]])
		if !ok {
			continue
		}
		p := &person{birth: b, death: formats.NoEnd}
		if v := r[pc["date_of_death"]]; v != "" {
			d, ok := plainDate(t, v)
			if !ok || d < b {
				continue
			}
			p.death = d
		}
		people[r[pc["patient_id"]]] = p
	}
	rh, rrows := readCSV(t, filepath.Join(dir, "practice_registrations.csv"))
	rc := index(rh)
	for _, r := range rrows {
		p := people[r[rc["patient_id"]]]
		from, ok := plainDate(t, r[rc["start_date"]])
		if p == nil || !ok {
			continue
		}
		to := formats.NoEnd
		if v := r[rc["end_date"]]; v != "" {
			end, ok := plainDate(t, v)
			if !ok || end < from {
				continue
			}
			to = end + 1
		}
		p.spells = append(p.spells, [2]formats.Date{from, to})
	}
	patients := map[string]*rowsPatient{}
	for id, p := range people {
		sort.Slice(p.spells, func(i, j int) bool { return p.spells[i][0] < p.spells[j][0] })
		rp := &rowsPatient{birth: p.birth.Month()}
		for _, s := range p.spells {
			if n := len(rp.spells); n > 0 && s[0] <= rp.spells[n-1][1] {
				rp.spells[n-1][1] = max(rp.spells[n-1][1], s[1])
				continue
			}
			rp.spells = append(rp.spells, s)
		}
		kept := rp.spells[:0]
		for _, s := range rp.spells {
			if p.death != formats.NoEnd {
				if s[0] > p.death {
					continue
				}
				s[1] = min(s[1], p.death+1)
			}
			s[0] = max(s[0], p.birth)
			if s[1] > s[0] {
				kept = append(kept, s)
			}
		}
		rp.spells = kept
		patients[id] = rp
	}
	var events []rowEvent
	ah, arows := readCSV(t, filepath.Join(dir, "apcs.csv"))
	ac := index(ah)
	for _, r := range arows {
		start, ok := plainDate(t, r[ac["admission_date"]])
		if !ok {
			continue
		}
		e := rowEvent{patient: r[ac["patient_id"]], kind: formats.KindAdmission, start: start, end: formats.NoEnd}
		if end, ok := plainDate(t, r[ac["discharge_date"]]); ok {
			e.end = end
		}
		switch v := r[ac["admission_method"]]; {
		case v == "11" || v == "12" || v == "13":
			e.method = formats.MethodElective
		case strings.HasPrefix(v, "2") && len(v) == 2 && strings.ContainsRune("12345ABCD8", rune(v[1])):
			e.method = formats.MethodEmergency
		case v == "" || v == "98" || v == "99" || v == "9":
			e.method = formats.MethodUnknown
		default:
			e.method = formats.MethodOther
		}
		events = append(events, e)
	}
	eh, erows := readCSV(t, filepath.Join(dir, "emergency_care_attendances.csv"))
	ec := index(eh)
	for _, r := range erows {
		if start, ok := plainDate(t, r[ec["arrival_date"]]); ok {
			events = append(events, rowEvent{patient: r[ec["patient_id"]], kind: formats.KindAE, start: start, end: formats.NoEnd})
		}
	}
	return countRows(patients, events, mixedFrom, mixedTo)
}

// fhirTruth reads a FHIR bulk export's Patient and Encounter NDJSON with encoding/json as
// plugins/fhir/README.md maps it with the demo's configuration (life span registrations, no
// outpatient types, Europe/London days): AMB, VR and HH (not hospice) consultations, EMER A&E,
// IMP, ACUTE, NONAC, SS admissions (not skilled nursing, nursing home or hospice); Encounters
// that did not happen and Death Certification are not counted; an admission is emergency when
// an EMER encounter of the patient began at most 24 hours before it, else by its type's words.
func fhirTruth(t *testing.T, dir string) figures {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	type coding struct{ Code, Display string }
	type concept struct {
		Coding []coding
		Text   string
	}
	type resource struct {
		ResourceType     string
		ID               string
		Gender           string
		BirthDate        string
		DeceasedDateTime string
		Status           string
		Class            coding
		Type             []concept
		Subject          struct{ Reference string }
		Period           struct{ Start, End string }
	}
	read := func(name string, fn func(r resource)) {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		dec := json.NewDecoder(f)
		for {
			var r resource
			if err := dec.Decode(&r); err == io.EOF {
				return
			} else if err != nil {
				t.Fatal(err)
			}
			fn(r)
		}
	}
	day := func(s string) (formats.Date, time.Time, bool) {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			return 0, tm, false
		}
		l := tm.In(london)
		return formats.DateOf(time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, time.UTC)), tm, true
	}
	patients := map[string]*rowsPatient{}
	read("Patient.000.ndjson", func(r resource) {
		b, ok := plainDate(t, r.BirthDate)
		if !ok {
			return
		}
		to := formats.NoEnd
		if r.DeceasedDateTime != "" {
			d, ok := plainDate(t, r.DeceasedDateTime)
			if !ok {
				return
			}
			to = d + 1
		}
		patients[r.ID] = &rowsPatient{birth: b.Month(), spells: [][2]formats.Date{{b, to}}}
	})
	type enc struct {
		patient, class, words string
		start, end            formats.Date
		at                    time.Time
		hasEnd, hospice, snf  bool
	}
	var encs []enc
	aeStarts := map[string][]time.Time{}
	read("Encounter.000.ndjson", func(r resource) {
		switch r.Status {
		case "planned", "cancelled", "entered-in-error":
			return
		}
		e := enc{patient: strings.TrimPrefix(r.Subject.Reference, "Patient/"), class: strings.ToUpper(r.Class.Code)}
		var words []string
		for _, c := range r.Type {
			words = append(words, c.Text)
			for _, cd := range c.Coding {
				words = append(words, cd.Display)
				switch cd.Code {
				case "308646001":
					return // Death Certification
				case "305336008":
					e.hospice = true
				case "449411000124106", "449214001":
					e.snf = true
				}
			}
		}
		e.words = strings.ToLower(strings.Join(words, " "))
		var ok bool
		if e.start, e.at, ok = day(r.Period.Start); !ok {
			return
		}
		if r.Period.End != "" {
			e.end, _, e.hasEnd = day(r.Period.End)
		}
		if e.class == "EMER" {
			aeStarts[e.patient] = append(aeStarts[e.patient], e.at)
		}
		encs = append(encs, e)
	})
	var events []rowEvent
	for _, e := range encs {
		ev := rowEvent{patient: e.patient, start: e.start, end: formats.NoEnd}
		switch e.class {
		case "AMB", "VR":
			ev.kind = formats.KindConsultation
		case "HH":
			if e.hospice {
				continue
			}
			ev.kind = formats.KindConsultation
		case "EMER":
			ev.kind = formats.KindAE
		case "IMP", "ACUTE", "NONAC", "SS":
			if e.hospice || e.snf {
				continue
			}
			ev.kind, ev.method = formats.KindAdmission, formats.MethodUnknown
			if e.hasEnd {
				ev.end = e.end
			}
			for _, s := range aeStarts[e.patient] {
				if !s.After(e.at) && e.at.Sub(s) <= 24*time.Hour {
					ev.method = formats.MethodEmergency
				}
			}
			if ev.method == formats.MethodUnknown {
				switch {
				case strings.Contains(e.words, "emergency"):
					ev.method = formats.MethodEmergency
				case strings.Contains(e.words, "elective") || strings.Contains(e.words, "non-urgent"):
					ev.method = formats.MethodElective
				}
			}
		default:
			continue
		}
		events = append(events, ev)
	}
	return countRows(patients, events, mixedFrom, mixedTo)
}
