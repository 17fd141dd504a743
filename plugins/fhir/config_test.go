package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/klauspost/compress/gzip"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/testenv"
	"github.com/tributary-health/tributary/plugins/sdk"
	"github.com/tributary-health/tributary/plugins/sdk/sdktest"
)

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	empty := t.TempDir()
	file := filepath.Join(dir, "Patient.ndjson")
	if err := os.WriteFile(file, []byte(`{"resourceType":"Patient","id":"x","birthDate":"2000-01-01"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		config map[string]string
		errHas string
	}{
		{"no dir", map[string]string{}, "the required key dir is not set"},
		{"dir is a file", map[string]string{"dir": file}, "is not a folder"},
		{"nothing to read", map[string]string{"dir": empty}, "holds no Patient NDJSON file"},
		{"unknown key", map[string]string{"dir": dir, "tmezone": "UTC"}, "unknown key tmezone (did you mean timezone?)"},
		{"bad timezone", map[string]string{"dir": dir, "timezone": "Europe/Londn"}, "not an IANA time zone"},
		{"registration", map[string]string{"dir": dir, "registration": "gp"}, "registration must be"},
		{"home_visits", map[string]string{"dir": dir, "home_visits": "ae"}, "home_visits must be"},
		{"negative hours", map[string]string{"dir": dir, "emergency_after_ae_hours": "-1"}, "emergency_after_ae_hours must be"},
		{"hours not a number", map[string]string{"dir": dir, "emergency_after_ae_hours": "a day"}, "emergency_after_ae_hours"},
		{"outpatient type with a space", map[string]string{"dir": dir, "outpatient_types": "185389009, follow up"}, "outpatient_types"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sdktest.Run(context.Background(), Extractor{}, sdk.Request{From: formats.MonthFor(2020, 1), To: formats.MonthFor(2020, 12), Config: tt.config})
			if !errors.Is(err, sdk.ErrConfig) || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("got %v, want an sdk.ErrConfig error containing %q", err, tt.errHas)
			}
		})
	}
}

// TestSupplies: outpatient attendances only with outpatient_types.
func TestSupplies(t *testing.T) {
	dir := filepath.Join("testcases", "classes")
	for _, c := range []struct {
		types string
		want  bool
	}{{"", false}, {"185389009", true}} {
		s, err := sdk.ValidateConfig(Extractor{}, map[string]string{"dir": dir, "outpatient_types": c.types})
		if err != nil {
			t.Fatal(err)
		}
		if got := slices.Contains(s.EventKinds, formats.KindOutpatient); got != c.want || !s.Methods || len(s.RowKinds) != 2 {
			t.Errorf("outpatient_types %q: supplies %+v", c.types, s)
		}
	}
}

// TestSampleConfig keeps sample.toml in step with Describe: every key of the schema is there
// (the optional ones commented out, with their defaults), and nothing else.
func TestSampleConfig(t *testing.T) {
	data, err := os.ReadFile("sample.toml")
	if err != nil {
		t.Fatal(err)
	}
	var parsed struct {
		Plugins []struct {
			Name   string
			Config map[string]string
		}
	}
	if _, err := toml.Decode(string(data), &parsed); err != nil || len(parsed.Plugins) != 1 || parsed.Plugins[0].Name != "fhir" {
		t.Fatalf("sample.toml: %v %+v", err, parsed)
	}
	found := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), "#"))
		if k, v, ok := strings.Cut(line, "="); ok && !strings.Contains(strings.TrimSpace(k), " ") {
			found[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	keys := append(Extractor{}.Describe().Config, sdk.GenericConfig...)
	for _, k := range keys {
		v, ok := found[k.Name]
		if !ok {
			t.Errorf("sample.toml does not mention %s", k.Name)
			continue
		}
		if _, set := parsed.Plugins[0].Config[k.Name]; !set && v != k.Default {
			t.Errorf("sample.toml shows %s = %q, the default is %q", k.Name, v, k.Default)
		}
	}
	for k := range parsed.Plugins[0].Config {
		if !slices.ContainsFunc(keys, func(c sdk.ConfigKey) bool { return c.Name == k }) {
			t.Errorf("sample.toml sets %s, which Describe does not list", k)
		}
	}
	if err := sdk.CheckSchema(keys); err != nil {
		t.Error(err)
	}
}

// TestGzipReadsTheSame: the shared bulk export compressed file by file gives what the plain
// files give.
func TestGzipReadsTheSame(t *testing.T) {
	src := testenv.SharedData(t, "synthea_fhir_bulk_ndjson_ks13")
	gz := t.TempDir()
	for _, name := range []string{"Patient.000.ndjson", "Encounter.000.ndjson", "Condition.000.ndjson"} {
		data, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(data)
		zw.Close()
		if err := os.WriteFile(filepath.Join(gz, name+".gz"), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	from, to := formats.MonthFor(1900, 1), formats.MonthFor(2030, 12)
	plain := sdktest.Extract(t, Extractor{}, from, to, map[string]string{"dir": src})
	zipped := sdktest.Extract(t, Extractor{}, from, to, map[string]string{"dir": gz})
	if d := diff(eventKeys(zipped.Events), eventKeys(plain.Events)); len(d) > 0 || len(plain.Events) == 0 {
		t.Errorf("gzip-compressed files read differently:\n%s", strings.Join(d, "\n"))
	}
	if d := diff(registrationKeys(zipped.Registrations), registrationKeys(plain.Registrations)); len(d) > 0 {
		t.Errorf("registrations differ:\n%s", strings.Join(d, "\n"))
	}
}

// TestLongLineSkipped: a line over 16 MiB is skipped, read past without being kept, and the
// lines after it are read.
func TestLongLineSkipped(t *testing.T) {
	dir := t.TempDir()
	var b bytes.Buffer
	b.WriteString(`{"resourceType":"Patient","id":"l1","gender":"female","birthDate":"2000-01-01"}` + "\n")
	b.WriteString(`{"resourceType":"Patient","id":"l2","photo":[{"data":"`)
	b.Write(bytes.Repeat([]byte("A"), 17<<20))
	b.WriteString(`"}]}` + "\n")
	b.WriteString(`{"resourceType":"Patient","id":"l3","gender":"male","birthDate":"2001-01-01"}` + "\n")
	if err := os.WriteFile(filepath.Join(dir, "Patient.ndjson"), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := sdktest.Extract(t, Extractor{}, formats.MonthFor(2020, 1), formats.MonthFor(2020, 1), map[string]string{"dir": dir, "max_skipped_fraction": "1"})
	if len(rec.Registrations) != 2 || rec.Stats.Skipped[skipTooLong] != 1 {
		t.Errorf("%d registrations, skipped %v; want 2 and one line too long", len(rec.Registrations), rec.Stats.Skipped)
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := sdk.Run(ctx, Extractor{}, sdk.Request{From: formats.MonthFor(2021, 1), To: formats.MonthFor(2021, 2),
		Config: map[string]string{"dir": filepath.Join("testcases", "classes")}}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}
