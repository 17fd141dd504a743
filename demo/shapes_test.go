package demo

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/formats"
)

// TestDetectShape tells each export by its files' names, in either case, and names a folder
// it cannot tell with the shapes it knows.
func TestDetectShape(t *testing.T) {
	for _, c := range []struct {
		files []string
		want  Shape
	}{
		{[]string{"patients.csv", "encounters.csv", "conditions.csv"}, ShapeSynthea},
		{[]string{"patients.csv", "practice_registrations.csv", "apcs.csv"}, ShapeUKGP},
		{[]string{"PERSON.csv", "VISIT_OCCURRENCE.csv", "OBSERVATION_PERIOD.csv"}, ShapeOMOP},
		{[]string{"person.csv", "observation_period.csv"}, ShapeOMOP},
		{[]string{"Patient.000.ndjson.gz", "Encounter.000.ndjson.gz"}, ShapeFHIR},
		{[]string{"Agustin437_Schiller186.json"}, ShapeFHIR},
	} {
		dir := t.TempDir()
		for _, f := range c.files {
			if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := DetectShape(dir); err != nil || got != c.want {
			t.Errorf("%v: %q, %v; want %s", c.files, got, err, c.want)
		}
	}
	dir := filepath.Join(t.TempDir(), "P-NOTES")
	if err := os.MkdirAll(filepath.Join(dir, "patients.csv.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "patients.csv"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := DetectShape(dir)
	if !errors.Is(err, ErrUnknownShape) || !strings.Contains(err.Error(), "practice folder P-NOTES") {
		t.Fatalf("error %v", err)
	}
	for _, s := range Shapes {
		if !strings.Contains(err.Error(), s.What) {
			t.Errorf("the error does not name %s", s.What)
		}
	}
}

// TestActivityMonths: each shape's contacts by month, from its own date columns.
func TestActivityMonths(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Skip("no zone data:", err)
	}
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("apcs.csv", "patient_id,admission_date\n1,2020-01-05\n2,not a date\n")
	write("emergency_care_attendances.csv", "patient_id,arrival_date\n1,2020-03-01\n")
	m, known, err := activityMonths(ShapeUKGP, dir, london)
	if err != nil || !known || m[formats.MonthFor(2020, 1)] != 1 || m[formats.MonthFor(2020, 3)] != 1 || len(m) != 2 {
		t.Errorf("ukgp: %v %v %v", m, known, err)
	}
	write("VISIT_OCCURRENCE.csv", "VISIT_OCCURRENCE_ID,VISIT_START_DATE\n1,2019-07-31\n")
	if m, known, err := activityMonths(ShapeOMOP, dir, london); err != nil || !known || m[formats.MonthFor(2019, 7)] != 1 {
		t.Errorf("omop: %v %v %v", m, known, err)
	}
	write("Encounter.ndjson", `{"resourceType":"Encounter","id":"e1","period":{"start":"2021-03-31T23:30:00-04:00","end":"2021-04-01T01:00:00-04:00"}}`+"\n")
	write("Patient.ndjson", `{"resourceType":"Patient","id":"p1","period":{"start":"1999-01-01"}}`+"\n")
	if m, known, err := activityMonths(ShapeFHIR, dir, london); err != nil || !known || m[formats.MonthFor(2021, 4)] != 1 || len(m) != 1 {
		t.Errorf("fhir: %v %v %v", m, known, err)
	}
}
