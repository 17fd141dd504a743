package main

import (
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/synthgen"
)

// TestGenerated runs the generator's output through the extractor: the only rows skipped are
// the ones the generator planted or dated after a death, and every event is accounted for.
func TestGenerated(t *testing.T) {
	dir := t.TempDir()
	cfg := synthgen.Config{Seed: 11, Patients: 3000, BadRows: 5, DeathsPerThousandYear: 30}
	st, err := synthgen.Write(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The generator writes encounters in 2015-01 … 2024-12, and Death Certifications up to a
	// day after: ask for one more month.
	out, err := extract(t, month(t, "2015-01"), month(t, "2025-01"), map[string]string{"dir": dir, "max_skipped_fraction": "1"})
	if err != nil {
		t.Fatal(err)
	}
	wantSkips := map[string]int64{
		skipStart:      int64(st.Planted[synthgen.PlantBadStart]),
		skipStop:       int64(st.Planted[synthgen.PlantBadStop]),
		skipClass:      int64(st.Planted[synthgen.PlantUnknownClass]),
		skipNoPatient:  int64(st.Planted[synthgen.PlantMissingPatient]),
		skipAfterDeath: int64(st.AfterDeath),
	}
	for reason, n := range out.stats.Skipped {
		if wantSkips[reason] != n {
			t.Errorf("skipped %q: %d, want %d", reason, n, wantSkips[reason])
		}
	}
	for reason, n := range wantSkips {
		if n == 0 {
			t.Errorf("the generator planted no %q rows; the test proves nothing about them", reason)
		}
		if out.stats.Skipped[reason] != n {
			t.Errorf("skipped %q: %d, want %d", reason, out.stats.Skipped[reason], n)
		}
	}

	kinds := map[string]int{}
	emergency := 0
	for _, e := range out.events {
		kinds[e.Kind]++
		if e.Method == formats.MethodEmergency {
			emergency++
		}
	}
	c := st.ByClass
	want := map[string]int{
		formats.KindConsultation: c["ambulatory"] + c["wellness"] + c["virtual"] + c["urgentcare"] - st.DeathCertifications,
		formats.KindOutpatient:   c["outpatient"],
		formats.KindAE:           c["emergency"] - st.AfterDeath, // the generator's after-death rows are emergencies
		formats.KindAdmission:    c["inpatient"],
	}
	for k, n := range want {
		if kinds[k] != n {
			t.Errorf("%s events: got %d, want %d", k, kinds[k], n)
		}
	}
	if emergency < st.EmergencyAdmissions {
		t.Errorf("emergency admissions: got %d, the generator wrote at least %d", emergency, st.EmergencyAdmissions)
	}
	if len(out.regs) != st.Patients {
		t.Errorf("registrations: got %d, want %d", len(out.regs), st.Patients)
	}
}

// TestGeneratedMatchesReference compares the extractor with the plain reference reading on a
// generated practice without planted rows, over a year and over the whole window.
func TestGeneratedMatchesReference(t *testing.T) {
	dir := t.TempDir()
	patients := 1500
	if testing.Short() {
		patients = 300
	}
	if _, err := synthgen.Write(dir, synthgen.Config{Seed: 12, Patients: patients}); err != nil {
		t.Fatal(err)
	}
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	for _, rg := range [][2]string{{"2015-01", "2025-01"}, {"2019-03", "2020-02"}} {
		out, err := extract(t, month(t, rg[0]), month(t, rg[1]), map[string]string{"dir": dir})
		if err != nil {
			t.Fatal(err)
		}
		ref := referenceCounts(t, dir, london, rg[0], rg[1])
		if d := diff(eventCounts(out), ref.events); len(d) > 0 {
			t.Errorf("%v: events differ from the reference:\n%s", rg, strings.Join(d, "\n"))
		}
		if d := diff(registrationCounts(out), ref.regs); len(d) > 0 {
			t.Errorf("%v: registrations differ from the reference:\n%s", rg, strings.Join(d, "\n"))
		}
		if got := out.stats.TotalSkipped(); got != int64(ref.afterDeath) {
			t.Errorf("%v: skipped %d (%s), want %d after death", rg, got, out.stats.SkippedSummary(), ref.afterDeath)
		}
	}
}
