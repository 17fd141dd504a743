package aggregate

import (
	"testing"

	"github.com/tributary-health/tributary/formats"
)

// TestRules checks the rule-based built-ins on a hand-made practice, including the events of
// the look-back before the run's first month, which count in no month but feed the rules.
func TestRules(t *testing.T) {
	a := New(m("2024-01"), m("2024-02"))
	if got := a.First(); got != m("2023-02") {
		t.Fatalf("first month asked of the sources = %s, want 2023-02 (12 months of A&E ending in January)", got)
	}
	reg := func(key string) {
		a.Registration(formats.Registration{PatientKey: key, Sex: "female", BirthMonth: m("1950-01"), From: d("2000-01-01"), To: formats.NoEnd})
	}
	reg("freq")
	reg("three")
	reg("readm")
	ae := func(key, day string) {
		a.Event(formats.Event{PatientKey: key, Kind: formats.KindAE, Start: d(day), End: formats.NoEnd})
	}
	// freq: 4 attendances in the 12 months to January (one in it), 5 to February.
	for _, day := range []string{"2023-03-01", "2023-06-01", "2023-12-30", "2024-01-10", "2024-02-02"} {
		ae("freq", day)
	}
	// three: 3 attendances in any 12 months: never a frequent attender.
	for _, day := range []string{"2023-02-01", "2023-12-01", "2024-01-05"} {
		ae("three", day)
	}
	adm := func(key, start, end, method, dx string) {
		e := formats.Event{PatientKey: key, Kind: formats.KindAdmission, Start: d(start), End: d(end), Method: method}
		if dx != "" {
			e.DiagnosisCode, e.DiagnosisSystem = dx, formats.DiagnosisICD10
		}
		a.Event(e)
	}
	// readm: discharged 20 December (before the run), readmitted as an emergency on 15
	// January (26 days: a readmission), discharged 16 January, then an emergency admission
	// on 20 February (35 days: not one). The January one is for asthma (J45.9): a chronic
	// ACSC admission too.
	adm("readm", "2023-12-10", "2023-12-20", formats.MethodElective, "")
	adm("readm", "2024-01-15", "2024-01-16", formats.MethodEmergency, "J459")
	adm("readm", "2024-02-20", "2024-02-21", formats.MethodEmergency, "K358")
	r := a.Finish(Supplies{Registrations: true, Methods: true, Discharges: true,
		EventKinds: map[string]bool{formats.KindAE: true, formats.KindAdmission: true}, Diagnoses: map[string]bool{formats.DiagnosisICD10: true}})
	jan, feb := m("2024-01"), m("2024-02")
	for _, c := range []struct {
		month   formats.Month
		measure string
		want    int64
	}{
		{jan, "ae_frequent_attenders", 1},
		{feb, "ae_frequent_attenders", 1},
		{jan, formats.AEAttendances, 2}, // the look-back's attendances count in no month
		{jan, "readmissions_emergency_30d", 1},
		{feb, "readmissions_emergency_30d", 0},
		{jan, "acsc_chronic_emergency", 1},
		{feb, "acsc_chronic_emergency", 0},
		{jan, formats.Admissions, 1},
		{jan, formats.BedDays, 1},
	} {
		if got := r.Total(c.month, c.measure); got != c.want {
			t.Errorf("%s %s = %d, want %d", c.month, c.measure, got, c.want)
		}
	}
	if r.Total(m("2023-12"), formats.Admissions) != 0 {
		t.Error("a look-back month was counted")
	}
}

// TestFederationDefinition counts a definition that is not built in, by its own rule.
func TestFederationDefinition(t *testing.T) {
	defs, err := formats.ParseDefinitions([]byte(`version = 1
[[measure]]
name = "falls_first_admission"
version = 1
title = "First falls admission"
description = "each patient's first admission for a fall in the year before and the months"
source = "federation"
count = "events"
kind = "admission"
rule = { type = "first_per_patient" }
[[measure.codes]]
system = "icd10"
match = "prefix"
codes = ["W19", "R29.6"]
`))
	if err != nil {
		t.Fatal(err)
	}
	a := New(m("2024-01"), m("2024-03"), defs...)
	a.Registration(formats.Registration{PatientKey: "p", Sex: "male", BirthMonth: m("1940-01"), From: d("2000-01-01"), To: formats.NoEnd})
	a.Registration(formats.Registration{PatientKey: "q", Sex: "male", BirthMonth: m("1940-01"), From: d("2000-01-01"), To: formats.NoEnd})
	for _, e := range []struct{ key, day, dx string }{{"p", "2024-01-05", "W199"}, {"p", "2024-03-01", "R296"}, {"q", "2023-06-01", "W19"}, {"q", "2024-02-01", "W19"}, {"q", "2024-02-09", "I10"}} {
		a.Event(formats.Event{PatientKey: e.key, Kind: formats.KindAdmission, Start: d(e.day), End: d(e.day), Method: formats.MethodUnknown, DiagnosisCode: e.dx, DiagnosisSystem: formats.DiagnosisICD10})
	}
	r := a.Finish(Supplies{Registrations: true, EventKinds: map[string]bool{formats.KindAdmission: true}, Diagnoses: map[string]bool{formats.DiagnosisICD10: true}})
	if len(r.Measures) != 1 || r.Measures[0] != "falls_first_admission" {
		t.Fatalf("measures %v", r.Measures)
	}
	// p's first is in January; q's first was in June 2023, in the look-back: counted nowhere.
	if got := []int64{r.Total(m("2024-01"), "falls_first_admission"), r.Total(m("2024-02"), "falls_first_admission"), r.Total(m("2024-03"), "falls_first_admission")}; got[0] != 1 || got[1] != 0 || got[2] != 0 {
		t.Errorf("first falls admissions by month %v, want [1 0 0]", got)
	}
	if r.Digests["falls_first_admission"] != defs[0].Digest() {
		t.Error("the result does not carry the definition's digest")
	}
}
