package main

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tributary-health/tributary/plugins/sdk"
	"github.com/tributary-health/tributary/plugins/sdk/sdktest"
)

var update = flag.Bool("update", false, "rewrite testcases/*/expected.txt from the extractor's output")

// TestGolden runs every testcases/<case>: a folder of CDM CSV files, request.conf (from, to and
// configuration keys; dir is the folder itself) and expected.txt, the summary of what the
// extractor must send, skip and log (sdktest.Golden).
func TestGolden(t *testing.T) { sdktest.Golden(t, Extractor{}, "testcases", *update) }

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "person.csv")
	if err := os.WriteFile(file, []byte("person_id,gender_concept_id,year_of_birth\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		config map[string]string
		errHas string
	}{
		{"neither source", map[string]string{}, "set dir"},
		{"both sources", map[string]string{keyDir: dir, keyDatabaseURL: "postgres://x@h/db"}, "not both"},
		{"dir is a file", map[string]string{keyDir: file}, "is not a folder"},
		{"not postgres", map[string]string{keyDatabaseURL: "mysql://x@h/db"}, "must be a PostgreSQL URL"},
		{"bad schema", map[string]string{keyDatabaseURL: "postgres://x@h/db", keySchema: "cdm; drop table person"}, "schema must be a schema name"},
		{"bad concepts", map[string]string{keyDir: dir, keyConsultation: "581477,office"}, "must be concept ids"},
		{"version", map[string]string{keyDir: dir, keyCDMVersion: "6.0"}, "cdm_version must be"},
		{"misspelt", map[string]string{"dri": dir}, "unknown key dri"},
		{"password for a folder", map[string]string{keyDir: dir, keyPasswordFile: file}, "password_file is for database_url"},
		{"no tables", map[string]string{keyDir: dir}, "neither observation_period.csv nor visit_occurrence.csv"},
		{"no person", map[string]string{keyDir: t.TempDir()}, "person.csv (or PERSON.csv) is not in the folder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sdk.ValidateConfig(Extractor{}, tt.config)
			if !errors.Is(err, sdk.ErrConfig) || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("got %v, want an sdk.ErrConfig error containing %q", err, tt.errHas)
			}
		})
	}
}

// TestPasswordNeverShown: a URL whose password is wrong or unparsable is refused without the
// password in the error.
func TestPasswordNeverShown(t *testing.T) {
	for _, u := range []string{"postgres://u:s3cretpw@127.0.0.1:1/db?connect_timeout=2", "postgres://u:s3cretpw@[bad/db"} {
		_, err := sdk.ValidateConfig(Extractor{}, map[string]string{keyDatabaseURL: u})
		if err == nil || strings.Contains(err.Error(), "s3cretpw") {
			t.Errorf("%v", err)
		}
	}
}

func TestDescribe(t *testing.T) {
	d := Extractor{}.Describe()
	if d.Name != "omop" || !d.Methods || len(d.EventKinds) != 4 {
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

// TestSkipReasonsFit: the SDK cuts a skip reason at 64 bytes; every reason must fit whole.
func TestSkipReasonsFit(t *testing.T) {
	for _, r := range []string{skipPersonRow, skipPersonID, skipPersonDup, skipPeriodRow, skipPeriodPerson, skipPeriodStart,
		skipPeriodEnd, skipPeriodBefore, skipPeriodYear, skipPeriodBirth, skipPeriodContract, skipVisitRow, skipVisitPerson,
		skipVisitStart, skipVisitEnd, skipVisitConcept, skipVisitBefore, skipVisitContract} {
		if len(r) > 64 {
			t.Errorf("%q is %d bytes", r, len(r))
		}
	}
}
