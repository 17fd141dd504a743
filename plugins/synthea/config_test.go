package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/sdk"
)

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "patients.csv")
	if err := os.WriteFile(file, []byte("Id,BIRTHDATE,GENDER\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		config map[string]string
		errHas string
	}{
		{"no dir", map[string]string{}, "dir"},
		{"empty dir", map[string]string{"dir": " "}, "dir is empty"},
		{"dir is a file", map[string]string{"dir": file}, "is not a folder"},
		{"unknown key", map[string]string{"dir": dir, "tmezone": "UTC"}, `unknown key tmezone (did you mean timezone?); known keys are dir, key_salt, max_skipped_fraction`},
		{"misspelt dir", map[string]string{"dri": dir}, `unknown key dri (is it dir, misspelt? the required key dir is not set`},
		{"bad timezone", map[string]string{"dir": dir, "timezone": "Europe/Londn"}, "not an IANA time zone"},
		{"local timezone", map[string]string{"dir": dir, "timezone": "Local"}, "not an IANA time zone"},
		{"registered_from", map[string]string{"dir": dir, "registered_from": "registration"}, "registered_from must be"},
		{"urgentcare_kind", map[string]string{"dir": dir, "urgentcare_kind": "admission"}, "urgentcare_kind must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := extract(t, formats.MonthFor(2020, 1), formats.MonthFor(2020, 12), tt.config)
			if !errors.Is(err, sdk.ErrConfig) || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("got %v, want an sdk.ErrConfig error containing %q", err, tt.errHas)
			}
		})
	}
}

func TestExportErrors(t *testing.T) {
	tests := []struct {
		name       string
		patients   string // "" means no file
		encounters string
		errHas     string
	}{
		{"no patients.csv", "", "START,STOP,PATIENT,ENCOUNTERCLASS\n", "patients.csv is not in the folder"},
		{"no encounters.csv", "Id,BIRTHDATE,GENDER\n", "", "encounters.csv is not in the folder"},
		{"header without Id", "X,Y\n", "START,STOP,PATIENT,ENCOUNTERCLASS\n", "patients.csv has no Id column"},
		{"zero-byte patients.csv", "-", "START,STOP,PATIENT,ENCOUNTERCLASS\n", "patients.csv is empty"},
		{"no GENDER", "Id,BIRTHDATE\n", "START,STOP,PATIENT,ENCOUNTERCLASS\n", "patients.csv has no GENDER column"},
		{"no ENCOUNTERCLASS", "Id,BIRTHDATE,GENDER\n", "START,STOP,PATIENT,CLASS\n", "encounters.csv has no ENCOUNTERCLASS column"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, body := range map[string]string{"patients.csv": tt.patients, "encounters.csv": tt.encounters} {
				if body == "-" {
					body = ""
				} else if body == "" {
					continue
				}
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := extract(t, formats.MonthFor(2020, 1), formats.MonthFor(2020, 12), map[string]string{"dir": dir})
			if !errors.Is(err, sdk.ErrExtract) || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("got %v, want an sdk.ErrExtract error containing %q", err, tt.errHas)
			}
		})
	}
}

// TestNoValuesInSkipsOrErrors checks that nothing of a row reaches the skip reasons.
func TestNoValuesInSkipsOrErrors(t *testing.T) {
	out, err := extract(t, formats.MonthFor(2021, 1), formats.MonthFor(2021, 12),
		map[string]string{"dir": filepath.Join("testcases", "bad_rows"), "max_skipped_fraction": "0"})
	if !errors.Is(err, sdk.ErrBudget) {
		t.Fatalf("got %v, want sdk.ErrBudget", err)
	}
	text := err.Error() + out.stats.SkippedSummary()
	for _, value := range []string{"p1", "p2", "nobody", "teleportation", "yesterday", "1990-02-30", "2021-02-30", "soon", "Smith"} {
		if strings.Contains(text, value) {
			t.Errorf("a row's value %q appears in the error or skip reasons: %s", value, text)
		}
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := filepath.Join("testcases", "admissions")
	_, err := sdk.Run(ctx, Extractor{}, sdk.Request{From: formats.MonthFor(2021, 1), To: formats.MonthFor(2021, 2), Config: map[string]string{"dir": dir}}, collect(t, &output{}))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

func TestDescribe(t *testing.T) {
	d := Extractor{}.Describe()
	if d.Name != "synthea" || !d.Methods || len(d.EventKinds) != 4 {
		t.Errorf("unexpected description %+v", d)
	}
	for _, k := range d.Config {
		if k.Name == keyDir && !k.Required {
			t.Error("dir must be required")
		}
		if k.Help == "" {
			t.Errorf("key %s has no help", k.Name)
		}
	}
}

// TestSampleConfig keeps sample.toml in step with the configuration keys.
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
	for _, k := range append(configKeys, sdk.GenericConfig...) {
		v, ok := found[k.Name]
		if !ok {
			t.Errorf("sample.toml does not mention %s", k.Name)
		}
		if k.Default != "" && v != k.Default {
			t.Errorf("sample.toml shows %s = %q, the default is %q", k.Name, v, k.Default)
		}
	}
}
