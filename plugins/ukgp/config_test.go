package main

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tributary-health/tributary/plugins/sdk"
	"github.com/tributary-health/tributary/plugins/sdk/sdktest"
)

var update = flag.Bool("update", false, "rewrite testcases/*/expected.txt from the extractor's output")

// TestGolden runs every testcases/<case>: the tables as CSV files, request.conf (from, to and
// configuration keys; dir is the folder itself) and expected.txt, the summary of what the
// extractor must send, skip and log (sdktest.Golden).
func TestGolden(t *testing.T) { sdktest.Golden(t, Extractor{}, "testcases", *update) }

// TestConfigErrors: each mistake a practice manager can make is refused with what to do,
// naming the file and column, never a value.
func TestConfigErrors(t *testing.T) {
	rules, err := filepath.Abs(filepath.Join("testcases", "rules"))
	if err != nil {
		t.Fatal(err)
	}
	noPractice := t.TempDir()
	write := func(dir, name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(noPractice, "patients.csv", "patient_id,date_of_birth,sex\n1,1950-01-01,female\n")
	write(noPractice, "practice_registrations.csv", "patient_id,start_date\n1,2000-01-01\n")
	badAPCS := t.TempDir()
	write(badAPCS, "patients.csv", "patient_id,date_of_birth,sex\n1,1950-01-01,female\n")
	write(badAPCS, "practice_registrations.csv", "patient_id,start_date\n1,2000-01-01\n")
	write(badAPCS, "apcs.csv", "patient_id,admitted\n1,2024-01-01\n")
	for _, c := range []struct {
		config map[string]string
		want   string
	}{
		{map[string]string{}, "dir"},
		{map[string]string{keyDir: filepath.Join(rules, "nowhere")}, "set dir to the folder holding patients.csv"},
		{map[string]string{keyDir: filepath.Join(rules, "apcs.csv")}, "is not a folder"},
		{map[string]string{keyDir: filepath.Dir(rules)}, "has no patients.csv"},
		{map[string]string{keyDir: noPractice, keyPracticeCode: "A"}, "has no practice_pseudo_id column"},
		{map[string]string{keyDir: noPractice, keyClinicalEvents: clinicalPatientDays}, "has no clinical_events.csv"},
		{map[string]string{keyDir: badAPCS}, "apcs.csv has no admission_date column"},
		{map[string]string{keyDir: rules, keyClinicalEvents: "all"}, "clinical_events"},
		{map[string]string{keyDir: rules, "practise_code": "A"}, "did you mean practice_code"},
	} {
		_, err := sdk.ValidateConfig(Extractor{}, c.config)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want an error saying %q", c.config, err, c.want)
		}
	}
	if _, err := sdk.ValidateConfig(Extractor{}, map[string]string{keyDir: noPractice}); err != nil {
		t.Errorf("an export without a practice column, with no practice_code: %v", err)
	}
}

// TestNoValueInErrors: a damaged file fails the run naming the file and line, never a value.
func TestNoValueInErrors(t *testing.T) {
	dir := t.TempDir()
	secret := "Ada Lovelace 1815-12-10"
	body := "patient_id,date_of_birth,sex\n1,1950-01-01,female\n2,\"" + secret + "\n" + strings.Repeat("x\n", 20)
	if err := os.WriteFile(filepath.Join(dir, "patients.csv"), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "practice_registrations.csv"), []byte("patient_id,start_date\n1,2000-01-01\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rec, err := sdktest.Run(context.Background(), Extractor{}, sdk.Request{From: month(t, "2024-01"), To: month(t, "2024-01"), Config: map[string]string{keyDir: dir}})
	if err == nil || !strings.Contains(err.Error(), "patients.csv") || !strings.Contains(err.Error(), "line 3") {
		t.Fatalf("want an error naming patients.csv line 3, got %v", err)
	}
	if strings.Contains(err.Error(), "Ada") || strings.Contains(rec.Log, "Ada") || strings.Contains(rec.Log, "1815") {
		t.Errorf("a value reached the error or the log: %v\n%s", err, rec.Log)
	}
}

func TestDescribe(t *testing.T) {
	d := Extractor{}.Describe()
	if d.Name != "ukgp" || !d.Methods || len(d.EventKinds) != 4 {
		t.Errorf("unexpected description %+v", d)
	}
	if err := sdk.CheckSchema(append(d.Config, sdk.GenericConfig...)); err != nil {
		t.Error(err)
	}
	for _, k := range d.Config {
		if k.Help == "" {
			t.Errorf("key %s has no help", k.Name)
		}
	}
}

// TestSampleConfig keeps sample.toml in step with Describe's keys and defaults.
func TestSampleConfig(t *testing.T) {
	data, err := os.ReadFile("sample.toml")
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "#"))
		k, v, ok := strings.Cut(line, "=")
		if ok {
			found[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	for _, k := range append(Extractor{}.Describe().Config, sdk.GenericConfig...) {
		v, ok := found[k.Name]
		if !ok {
			t.Errorf("sample.toml does not mention %s", k.Name)
		}
		if k.Default != "" && v != k.Default {
			t.Errorf("sample.toml shows %s = %q, the default is %q", k.Name, v, k.Default)
		}
	}
}
