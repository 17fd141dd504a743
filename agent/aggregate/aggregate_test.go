package aggregate

import (
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
	got := s.Measures()
	want := []string{formats.RegisteredPatients, formats.Admissions, formats.BedDays}
	if len(got) != len(want) {
		t.Fatalf("measures %v, want %v: without admission methods the method measures are absent", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("measures %v, want %v", got, want)
		}
	}
}

func TestReleaseFullGridAndPolicy(t *testing.T) {
	a := New(m("2024-01"), m("2024-01"))
	for i := 0; i < 12; i++ {
		a.Registration(formats.Registration{PatientKey: string(rune('a' + i)), Sex: "female", BirthMonth: m("1980-01"), From: d("2000-01-01"), To: formats.NoEnd})
	}
	a.Registration(formats.Registration{PatientKey: "z", Sex: "male", BirthMonth: m("1980-01"), From: d("2000-01-01"), To: formats.NoEnd})
	r := a.Finish(Supplies{Registrations: true})
	subs, err := r.Release("P1", "20240101T000000Z-00000000", []string{"test@1"}, formats.PolicyUK)
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 1 || len(subs[0].Cells) != 19*3 {
		t.Fatalf("want one month of 57 cells, got %d files", len(subs))
	}
	for _, c := range subs[0].Cells {
		switch {
		case c.AgeBand == "40-44" && c.Sex == "female":
			if c.Count != 10 || c.Status != formats.StatusRounded {
				t.Errorf("12 women must publish as 10, got %+v", c)
			}
		case c.AgeBand == "40-44" && c.Sex == "male":
			if c.Status != formats.StatusSuppressed || c.Count != 0 || c.Lower != 1 || c.Upper != 7 {
				t.Errorf("1 man must be suppressed with bounds 1-7, got %+v", c)
			}
		default:
			if c.Count != 0 || c.Lower != 0 || c.Upper != 0 {
				t.Errorf("empty cell must be an explicit 0, got %+v", c)
			}
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
