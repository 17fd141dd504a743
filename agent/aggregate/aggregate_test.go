package aggregate

import (
	"bytes"
	"math/rand/v2"
	"testing"

	"github.com/tributary-health/tributary/formats"
)

func d(s string) formats.Date {
	v, err := formats.ParseDate(s)
	if err != nil {
		panic(err)
	}
	return v
}

func m(s string) formats.Month {
	v, err := formats.ParseMonth(s)
	if err != nil {
		panic(err)
	}
	return v
}

// measureIndex is the built-in definitions' index, for results made by hand.
var measureIndex = func() map[string]uint16 {
	m := map[string]uint16{}
	for i, d := range formats.BuiltinDefinitions() {
		m[d.Name] = uint16(i)
	}
	return m
}()

var all = Supplies{Registrations: true, Methods: true, EventKinds: map[string]bool{
	formats.KindConsultation: true, formats.KindOutpatient: true, formats.KindAE: true, formats.KindAdmission: true}}

// TestCounts checks each measure on a hand-made practice whose figures are worked out in
// the comments.
func TestCounts(t *testing.T) {
	a := New(m("2024-01"), m("2024-02"))
	// Events before registrations: the aggregator must hold them until Finish.
	a.Event(formats.Event{PatientKey: "late", Kind: formats.KindConsultation, Start: d("2024-01-10"), End: formats.NoEnd})
	// alice: female, born 1950-06, registered throughout; 74 in Jan 2024 -> band 70-74.
	a.Registration(formats.Registration{PatientKey: "alice", Sex: "female", BirthMonth: m("1950-06"), From: d("2000-01-01"), To: formats.NoEnd})
	// bob: male, born 2020-02: 3 on 2024-01-01 (band 0-4); left on 2024-02-01 (exclusive), so
	// counted on 1 Jan, not on 1 Feb.
	a.Registration(formats.Registration{PatientKey: "bob", Sex: "male", BirthMonth: m("2020-02"), From: d("2020-02-15"), To: d("2024-02-01")})
	// carol registered twice with overlapping spells: counted once a month.
	a.Registration(formats.Registration{PatientKey: "carol", Sex: "female", BirthMonth: m("1990-01"), From: d("2010-01-01"), To: d("2024-01-20")})
	a.Registration(formats.Registration{PatientKey: "carol", Sex: "female", BirthMonth: m("1990-01"), From: d("2023-12-01"), To: formats.NoEnd})
	a.Registration(formats.Registration{PatientKey: "late", Sex: "unknown", BirthMonth: m("2000-01"), From: d("2023-01-01"), To: formats.NoEnd})

	for _, e := range []formats.Event{
		{PatientKey: "alice", Kind: formats.KindConsultation, Start: d("2024-01-03"), End: formats.NoEnd},
		{PatientKey: "alice", Kind: formats.KindConsultation, Start: d("2024-01-31"), End: formats.NoEnd},
		// Two emergency admissions in January: 2 admissions, 1 patient admitted in emergency;
		// the first stay runs 2024-01-05..2024-01-09 (4 nights, January); the second crosses
		// into February: 2024-01-30..2024-02-02 (3 nights, counted in February).
		{PatientKey: "alice", Kind: formats.KindAdmission, Start: d("2024-01-05"), End: d("2024-01-09"), Method: formats.MethodEmergency},
		{PatientKey: "alice", Kind: formats.KindAdmission, Start: d("2024-01-30"), End: d("2024-02-02"), Method: formats.MethodEmergency},
		// An admission whose method the source cannot tell: in admissions only.
		{PatientKey: "alice", Kind: formats.KindAdmission, Start: d("2024-02-10"), End: d("2024-02-10"), Method: formats.MethodUnknown},
		{PatientKey: "bob", Kind: formats.KindAE, Start: d("2024-01-15"), End: formats.NoEnd},
		// bob is no longer registered in February: not counted.
		{PatientKey: "bob", Kind: formats.KindAE, Start: d("2024-02-15"), End: formats.NoEnd},
		{PatientKey: "carol", Kind: formats.KindOutpatient, Start: d("2024-02-01"), End: formats.NoEnd},
		{PatientKey: "carol", Kind: formats.KindAdmission, Start: d("2024-02-01"), End: d("2024-02-03"), Method: formats.MethodElective},
		// Nobody registered with this key: dropped and counted.
		{PatientKey: "stranger", Kind: formats.KindConsultation, Start: d("2024-01-10"), End: formats.NoEnd},
		// Outside the months.
		{PatientKey: "alice", Kind: formats.KindConsultation, Start: d("2023-12-31"), End: formats.NoEnd},
	} {
		a.Event(e)
	}
	r := a.Finish(all)
	jan, feb := m("2024-01"), m("2024-02")
	checks := []struct {
		month         formats.Month
		measure, band string
		sex           string
		want          int64
	}{
		{jan, formats.RegisteredPatients, "70-74", "female", 1},
		{jan, formats.RegisteredPatients, "0-4", "male", 1},
		{feb, formats.RegisteredPatients, "0-4", "male", 0},
		{jan, formats.RegisteredPatients, "30-34", "female", 1}, // carol, 34
		{feb, formats.RegisteredPatients, "30-34", "female", 1},
		{jan, formats.RegisteredPatients, "20-24", "unknown", 1}, // late, 24
		{jan, formats.Consultations, "70-74", "female", 2},
		{jan, formats.Consultations, "20-24", "unknown", 1}, // the event that came first
		{jan, formats.Admissions, "70-74", "female", 2},
		{jan, formats.AdmissionsEmergency, "70-74", "female", 2},
		{jan, formats.PatientsAdmittedEmergency, "70-74", "female", 1},
		{jan, formats.BedDays, "70-74", "female", 4},
		{feb, formats.BedDays, "70-74", "female", 3},
		{feb, formats.Admissions, "70-74", "female", 1},
		{feb, formats.AdmissionsEmergency, "70-74", "female", 0},
		{feb, formats.AdmissionsElective, "30-34", "female", 1},
		{feb, formats.BedDays, "30-34", "female", 2},
		{feb, formats.OutpatientAttendances, "30-34", "female", 1},
		{jan, formats.AEAttendances, "0-4", "male", 1},
		{feb, formats.AEAttendances, "0-4", "male", 0},
	}
	for _, c := range checks {
		if got := r.Count(c.month, c.measure, c.band, c.sex); got != c.want {
			t.Errorf("%s %s %s %s = %d, want %d", c.month, c.measure, c.band, c.sex, got, c.want)
		}
	}
	if r.Dropped[DropUnknownPatient] != 1 || r.Dropped[DropOutsideRegistered] != 1 || r.Dropped[DropOutsideMonths] != 1 {
		t.Errorf("dropped = %v", r.Dropped)
	}
	if r.Patients != 4 {
		t.Errorf("patients = %d, want 4", r.Patients)
	}
}

func TestAbsentMeasures(t *testing.T) {
	s := Supplies{Registrations: true, EventKinds: map[string]bool{formats.KindAdmission: true}}
	got, absent := s.Measures(formats.BuiltinDefinitions())
	want := []string{formats.RegisteredPatients, formats.Admissions, formats.BedDays}
	reasons := map[string]string{}
	for _, ab := range absent {
		reasons[ab.Measure] = ab.Reason
	}
	for m, why := range map[string]string{
		formats.AdmissionsEmergency: "no source tells emergency from elective admissions",
		"acsc_chronic_emergency":    "no source tells emergency from elective admissions",
		"ae_frequent_attenders":     "no source supplies ae_attendance events",
		formats.Consultations:       "no source supplies consultation events",
	} {
		if reasons[m] != why {
			t.Errorf("%s absent because %q, want %q", m, reasons[m], why)
		}
	}
	s.Methods = true
	_, absent = s.Measures(formats.BuiltinDefinitions())
	reasons = map[string]string{}
	for _, ab := range absent {
		reasons[ab.Measure] = ab.Reason
	}
	if want := "no source sends primary diagnoses in icd10 or snomedct (the definition's code systems)"; reasons["acsc_chronic_emergency"] != want {
		t.Errorf("acsc_chronic_emergency absent because %q, want %q", reasons["acsc_chronic_emergency"], want)
	}
	if want := "no source sends admissions' discharge dates"; reasons["readmissions_emergency_30d"] != want {
		t.Errorf("readmissions absent because %q, want %q", reasons["readmissions_emergency_30d"], want)
	}
	s.Methods = false
	if len(got) != len(want) {
		t.Fatalf("measures %v, want %v: without admission methods the method measures are absent", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("measures %v, want %v", got, want)
		}
	}
}

// smallPractice is a year of small counts in a few cells of every catalogue measure, so
// that the audit has suppressed values to protect; the admission relations hold.
func smallPractice(seed uint64) *Result {
	r := rand.New(rand.NewPCG(seed, 3))
	from, to := m("2024-01"), m("2024-12")
	res := &Result{From: from, To: to, counts: map[cellKey]int64{}, index: measureIndex,
		Measures: []string{formats.RegisteredPatients, formats.AEAttendances, formats.Admissions, formats.AdmissionsEmergency, formats.PatientsAdmittedEmergency}}
	set := func(month formats.Month, measure string, b, x int, n int64) {
		if n != 0 {
			res.counts[cellKey{month, measureIndex[measure], uint8(b), uint8(x), 0}] = n
		}
	}
	for month := from; month <= to; month++ {
		for _, b := range []int{8} {
			for x := range 3 {
				set(month, formats.RegisteredPatients, b, x, 5+r.Int64N(40))
				set(month, formats.Consultations, b, x, r.Int64N(30))
				set(month, formats.AEAttendances, b, x, r.Int64N(6))
				em, el, other := r.Int64N(4), r.Int64N(4), r.Int64N(3)
				set(month, formats.Admissions, b, x, em+el+other)
				set(month, formats.AdmissionsEmergency, b, x, em)
				set(month, formats.AdmissionsElective, b, x, el)
				set(month, formats.PatientsAdmittedEmergency, b, x, max(0, em-r.Int64N(2)))
				set(month, formats.BedDays, b, x, r.Int64N(12))
			}
		}
	}
	return res
}

// TestReleaseFormat2 checks the submission against the contract of format 2: one file with
// From/To the run's months; for every period of formats.PeriodsOf, every measure and every
// shape, the policy applied to the true sum of the shape's cells over the period's months
// (so quarter and year values are sums of their months), unless the audit withheld it; and
// only margins and quarter or year values are ever withheld.
func TestReleaseFormat2(t *testing.T) {
	res := smallPractice(1)
	sub, err := res.Release("P1", "20250101T000000Z-00000000", []string{"b@1", "a@1"}, formats.PolicyUK)
	if err != nil {
		t.Fatal(err)
	}
	periods := formats.PeriodsOf(res.From, res.To)
	if sub.From != res.From || sub.To != res.To || len(periods) != 12+4+1 {
		t.Fatalf("months %s..%s, %d periods", sub.From, sub.To, len(periods))
	}
	if want := len(periods) * len(res.Measures) * formats.NumShapes; len(sub.Cells) != want {
		t.Fatalf("%d values, want %d", len(sub.Cells), want)
	}
	if sub.Extractors[0] != "a@1" {
		t.Errorf("extractors %v are not sorted", sub.Extractors)
	}
	withheld := 0
	for _, c := range sub.Cells {
		var n int64
		shape := formats.ShapeIndex(c.AgeBand, c.Sex)
		for month := c.Period.Start; month <= c.Period.End(); month++ {
			formats.ShapeCells(shape, func(fine int) {
				b, x := formats.ShapeDims(fine)
				n += res.Count(month, c.Measure, formats.AgeBands[b], formats.Sexes[x])
			})
		}
		if c.Status == formats.StatusWithheld {
			withheld++
			if c.Period.Kind == formats.KindMonth && formats.IsFineShape(shape) {
				t.Errorf("%s %s %s %s: a month fine cell was withheld", c.Period, c.Measure, c.AgeBand, c.Sex)
			}
			continue
		}
		if want := formats.PolicyUK.Apply(n); c.Protected != want {
			t.Errorf("%s %s %s %s = %+v, want %+v (true %d)", c.Period, c.Measure, c.AgeBand, c.Sex, c.Protected, want, n)
		}
	}
	if withheld == 0 {
		t.Error("nothing was withheld: the practice does not exercise the audit")
	}
	// Deterministic: the same counts give the same file.
	again, err := res.Release("P1", "20250101T000000Z-00000000", []string{"b@1", "a@1"}, formats.PolicyUK)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := formats.MarshalSubmission(sub)
	b, _ := formats.MarshalSubmission(again)
	if !bytes.Equal(a, b) {
		t.Error("two releases of the same counts differ")
	}
	t.Logf("%d values, %d withheld", len(sub.Cells), withheld)
}

// TestReleaseAbsentMeasure: a measure nobody supplies is absent from the file, never zero.
func TestReleaseAbsentMeasure(t *testing.T) {
	a := New(m("2024-01"), m("2024-03"))
	for i := range 12 {
		a.Registration(formats.Registration{PatientKey: string(rune('a' + i)), Sex: "female", BirthMonth: m("1980-01"), From: d("2000-01-01"), To: formats.NoEnd})
	}
	a.Registration(formats.Registration{PatientKey: "z", Sex: "male", BirthMonth: m("1980-01"), From: d("2000-01-01"), To: formats.NoEnd})
	sub, err := a.Finish(Supplies{Registrations: true}).Release("P1", "20240101T000000Z-00000000", []string{"test@1"}, formats.PolicyUK)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range sub.Cells {
		if c.Measure != formats.RegisteredPatients {
			t.Fatalf("measure %s is in the file but nobody supplies it", c.Measure)
		}
	}
	if len(sub.Cells) != 4*formats.NumShapes {
		t.Fatalf("%d values, want 4 periods x %d shapes", len(sub.Cells), formats.NumShapes)
	}
	// One man among twelve women of 40-44: his cell is suppressed, and every margin that
	// holds it and a woman's is not, so the audit withholds what would give him away.
	for _, c := range sub.Cells {
		if c.Period.Kind == formats.KindMonth && c.AgeBand == "40-44" && c.Sex == "male" && c.Status != formats.StatusSuppressed {
			t.Errorf("%s: one man must be suppressed, got %+v", c.Period, c.Protected)
		}
	}
}

// TestDiscard: a source that fails part-way leaves nothing behind, and the other sources'
// figures are exactly what they would be without it.
func TestDiscard(t *testing.T) {
	run := func(withFailure bool) *Result {
		a := New(m("2024-01"), m("2024-01"))
		a.Begin(0)
		a.Registration(formats.Registration{PatientKey: "p", Sex: "male", BirthMonth: m("1960-01"), From: d("2000-01-01"), To: formats.NoEnd})
		a.Event(formats.Event{PatientKey: "p", Kind: formats.KindAdmission, Start: d("2024-01-20"), End: d("2024-01-22"), Method: formats.MethodEmergency})
		if withFailure {
			a.Begin(1)
			a.Registration(formats.Registration{PatientKey: "q", Sex: "female", BirthMonth: m("1960-01"), From: d("2000-01-01"), To: formats.NoEnd})
			a.Event(formats.Event{PatientKey: "p", Kind: formats.KindAdmission, Start: d("2024-01-02"), End: d("2024-01-03"), Method: formats.MethodEmergency})
			a.Event(formats.Event{PatientKey: "nobody", Kind: formats.KindAE, Start: d("2024-01-02"), End: formats.NoEnd})
			a.Discard(1)
		}
		return a.Finish(all)
	}
	clean, failed := run(false), run(true)
	for _, measure := range formats.Measures {
		for _, band := range formats.AgeBands {
			for _, sex := range formats.Sexes {
				if c, f := clean.Count(m("2024-01"), measure, band, sex), failed.Count(m("2024-01"), measure, band, sex); c != f {
					t.Errorf("%s %s %s: %d with a discarded source, %d without", measure, band, sex, f, c)
				}
			}
		}
	}
	if failed.Patients != 1 || len(failed.Dropped) != 0 {
		t.Errorf("discarded source left patients=%d dropped=%v", failed.Patients, failed.Dropped)
	}
	if clean.Count(m("2024-01"), formats.PatientsAdmittedEmergency, "60-64", "male") != 1 {
		t.Error("patients_admitted_emergency must count p once")
	}
}
