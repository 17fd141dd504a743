package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/testenv"
	"github.com/tributary-health/tributary/plugins/sdk"
	"github.com/tributary-health/tributary/plugins/sdk/sdktest"
)

var update = flag.Bool("update", false, "rewrite testdata/*.expected.txt from the extractor's output")

// loadConfig reads a plugin configuration file (TOML key = "value" pairs) as the agent's
// plugin check does: relative paths against the file's folder.
func loadConfig(t testing.TB, path string) map[string]string {
	t.Helper()
	m := map[string]string{}
	if _, err := toml.DecodeFile(path, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return sdk.ResolvePaths(m, Extractor{}.Describe().PathKeys(), filepath.Dir(path))
}

func month(t testing.TB, s string) formats.Month {
	t.Helper()
	m, err := formats.ParseMonth(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestExamples runs each example configuration over its example export, and compares the run
// with testdata/<example>.expected.txt (go test -run TestExamples -update rewrites them; check
// the diff by hand).
func TestExamples(t *testing.T) {
	confs, err := filepath.Glob(filepath.Join("examples", "*", "*.toml"))
	if err != nil || len(confs) < 2 {
		t.Fatalf("examples: %v %v", confs, err)
	}
	for _, conf := range confs {
		name := strings.TrimSuffix(filepath.Base(conf), ".toml")
		t.Run(name, func(t *testing.T) {
			cfg := loadConfig(t, conf)
			cfg["max_skipped_fraction"] = "1"
			rec, err := sdktest.Run(context.Background(), Extractor{}, sdk.Request{From: month(t, "2024-01"), To: month(t, "2024-03"), Config: cfg})
			sdktest.CompareGolden(t, filepath.Join("testdata", name+".expected.txt"), sdktest.Summary(rec, err), *update)
			if len(rec.Uncounted()) > 0 {
				t.Errorf("events the agent will not count were sent: %v", rec.Uncounted())
			}
		})
	}
}

// TestErrorsNameFileLineColumn: a skipped row is named by file, line and column in the log,
// never by its value; a missing column names the file, the header and the key to fix.
func TestErrorsNameFileLineColumn(t *testing.T) {
	cfg := loadConfig(t, filepath.Join("examples", "emis", "emis.toml"))
	cfg["max_skipped_fraction"] = "0"
	rec, err := sdktest.Run(context.Background(), Extractor{}, sdk.Request{From: month(t, "2024-01"), To: month(t, "2024-03"), Config: cfg})
	if !errors.Is(err, sdk.ErrBudget) {
		t.Fatalf("got %v, want the skip budget exceeded", err)
	}
	for _, want := range []string{
		`row skipped: file="Registered patients.csv" line=7 column="Date of Birth" problem="is not a date in birth_date_format"`,
		`file="Consultations and hospital activity.csv" line=12 column="Patient Reference" problem="is not in the patients file"`,
		`file="Consultations and hospital activity.csv" line=14 column=Date problem="is not a date in date_format"`,
	} {
		if !strings.Contains(rec.Log, want) {
			t.Errorf("the log does not say %s:\n%s", want, rec.Log)
		}
	}
	for _, value := range []string{"not recorded", "100240", "100239", "31/03/2024", "12345"} {
		if strings.Contains(rec.Log+err.Error()+rec.Stats.SkippedSummary(), value) {
			t.Errorf("a row's value %q appears in the log or error", value)
		}
	}
	cfg[keySexColumn] = "Gender"
	_, err = sdk.ValidateConfig(Extractor{}, cfg)
	if err == nil || !strings.Contains(err.Error(), `Registered patients.csv has no column headed "Gender"; set the sex_column key`) {
		t.Errorf("missing column: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	base := loadConfig(t, filepath.Join("examples", "systmone", "systmone.toml"))
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for a, b := range base {
			m[a] = b
		}
		if v == "<unset>" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	tests := []struct {
		name   string
		config map[string]string
		errHas string
	}{
		{"date format", with(keyDateFormat, "DD/MM"), "needs YYYY"},
		{"date letters", with(keyDateFormat, "DD/MM/YYYY hh"), "is not a date pattern"},
		{"kind", with(keyKinds, "Appointment=consultations"), `"consultations" is not one of`},
		{"kind pair", with(keyKinds, "Appointment"), "each entry is value="},
		{"no kinds", with(keyKinds, "<unset>"), "kinds is required with events_file"},
		{"no file", with(keyEventsFile, "Activity 2.csv"), "Activity 2.csv is not in the folder"},
		{"a folder", with(keyPatientsFile, "../x.csv"), "without a folder"},
		{"events keys without events", with(keyEventsFile, "<unset>"), "is set but events_file is not"},
		{"method", with(keyMethods, "Emergency=urgent"), `"urgent" is not one of`},
		{"sex", with(keySexValues, "F=woman"), `"woman" is not one of`},
		{"delimiter", with(keyDelimiter, ":"), "delimiter must be one of"},
		{"column", with(keyEventType, "Type"), `Activity.csv has no column headed "Type"; set the event_type_column key`},
		{"required", with(keyPatientColumn, "<unset>"), "the required key patient_column is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sdk.ValidateConfig(Extractor{}, tt.config)
			if !errors.Is(err, sdk.ErrConfig) || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("got %v, want an sdk.ErrConfig error containing %q", err, tt.errHas)
			}
		})
	}
	s, err := sdk.ValidateConfig(Extractor{}, with(keyMethodColumn, "<unset>"))
	if err != nil || s.Methods || len(s.EventKinds) != 4 {
		t.Errorf("without a method column: %+v %v", s, err)
	}
	s, err = sdk.ValidateConfig(Extractor{}, with(keyKinds, "Appointment - Face to face=consultation"))
	if err != nil || s.Methods || fmt.Sprint(s.EventKinds) != "[consultation]" {
		t.Errorf("consultations only: %+v %v", s, err)
	}
}

func TestDescribe(t *testing.T) {
	d := Extractor{}.Describe()
	if d.Name != "csv" || !d.Methods || len(d.EventKinds) != 4 {
		t.Errorf("unexpected description %+v", d)
	}
	if err := sdk.CheckSchema(append(d.Config, sdk.GenericConfig...)); err != nil {
		t.Error(err)
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

// syntheaConfig configures the csv extractor for a Synthea CSV export, as a practice manager
// would from its headers: no code is specific to Synthea.
func syntheaConfig(dir string) map[string]string {
	return map[string]string{
		keyDir: dir, keyPatientsFile: "patients.csv", keyEventsFile: "encounters.csv",
		keyDateFormat: "YYYY-MM-DD", keyPatientColumn: "Id", keySexColumn: "GENDER", keyBirthColumn: "BIRTHDATE",
		keyRegFromColumn: "BIRTHDATE", keyRegToColumn: "DEATHDATE", keyEventPatient: "PATIENT",
		keyEventDate: "START", keyEventEnd: "STOP", keyEventType: "ENCOUNTERCLASS",
		keyKinds:    "ambulatory=consultation; wellness=consultation; virtual=consultation; urgentcare=consultation; outpatient=outpatient_attendance; emergency=ae_attendance; inpatient=admission",
		keyUnmapped: unmappedIgnore, keyDiagnosis: "REASONCODE", keyDiagnosisSys: formats.DiagnosisSNOMED, keyKeySalt: "s",
	}
}

// refKey is the README's patient key computed again.
func refKey(id string) string {
	m := hmac.New(sha256.New, []byte("s"))
	m.Write([]byte("csv patient\x00" + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

func readAll(t testing.TB, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, r := range recs[1:] {
		m := map[string]string{}
		for i, h := range recs[0] {
			m[h] = r[i]
		}
		out = append(out, m)
	}
	return out
}

// TestSharedSyntheaMatchesReference reads the shared Synthea exports through a configuration
// and compares the rows with a plain reading of the same files (encoding/csv, time.Parse and
// the configuration's mapping written out again).
func TestSharedSyntheaMatchesReference(t *testing.T) {
	kinds := map[string]string{"ambulatory": "consultation", "wellness": "consultation", "virtual": "consultation", "urgentcare": "consultation",
		"outpatient": "outpatient_attendance", "emergency": "ae_attendance", "inpatient": "admission"}
	for _, set := range []string{"synthea_csv_unmc_ne111/csv", "synthea_csv_mcode_ma115/csv"} {
		for _, rg := range [][2]string{{"1900-01", "2030-12"}, {"2015-01", "2016-06"}} {
			t.Run(strings.Split(set, "/")[0]+"/"+rg[0], func(t *testing.T) {
				dir := testenv.SharedData(t, set)
				rec := sdktest.Extract(t, Extractor{}, month(t, rg[0]), month(t, rg[1]), syntheaConfig(dir))
				first, _ := time.Parse("2006-01", rg[0])
				last, _ := time.Parse("2006-01", rg[1])
				lo, hi := first.Format(time.DateOnly), last.AddDate(0, 1, 0).Format(time.DateOnly)
				wantRegs, wantEvents := map[string]int{}, map[string]int{}
				for _, p := range readAll(t, filepath.Join(dir, "patients.csv")) {
					sex := map[string]string{"F": "female", "M": "male"}[p["GENDER"]]
					to := p["DEATHDATE"]
					if to == "" {
						to = "open"
					}
					if p["BIRTHDATE"] < hi && (to == "open" || to > lo) {
						wantRegs[strings.Join([]string{refKey(p["Id"]), sex, p["BIRTHDATE"][:7], p["BIRTHDATE"], to}, " ")]++
					}
				}
				for _, e := range readAll(t, filepath.Join(dir, "encounters.csv")) {
					kind, ok := kinds[e["ENCOUNTERCLASS"]]
					start, stop := e["START"][:10], e["STOP"][:10]
					if !ok || !(start >= lo && start < hi || kind == "admission" && stop >= lo && stop < hi) {
						continue
					}
					method, end, dx := "-", "-", "-"
					if kind == "admission" {
						method, end = "unknown", stop
					}
					if e["REASONCODE"] != "" {
						dx = e["REASONCODE"]
					}
					wantEvents[strings.Join([]string{refKey(e["PATIENT"]), kind, method, start, end, dx}, " ")]++
				}
				gotRegs, gotEvents := map[string]int{}, map[string]int{}
				for _, r := range rec.Registrations {
					to := "open"
					if r.To != formats.NoEnd {
						to = r.To.String()
					}
					gotRegs[strings.Join([]string{r.PatientKey, r.Sex, r.BirthMonth.String(), r.From.String(), to}, " ")]++
				}
				for _, e := range rec.Events {
					method, end, dx := "-", "-", "-"
					if e.Method != "" {
						method = e.Method
					}
					if e.End != formats.NoEnd {
						end = e.End.String()
					}
					if e.DiagnosisCode != "" {
						dx = e.DiagnosisCode
					}
					gotEvents[strings.Join([]string{e.PatientKey, e.Kind, method, e.Start.String(), end, dx}, " ")]++
				}
				if d := diff(gotRegs, wantRegs); len(d) > 0 {
					t.Errorf("registrations differ from the reference:\n%s", strings.Join(d, "\n"))
				}
				if d := diff(gotEvents, wantEvents); len(d) > 0 {
					t.Errorf("events differ from the reference:\n%s", strings.Join(d, "\n"))
				}
				if n := rec.Stats.TotalSkipped(); n != 0 {
					t.Errorf("skipped %s", rec.Stats.SkippedSummary())
				}
				t.Logf("%d registrations, %d events %v: as the plain reading", len(rec.Registrations), len(rec.Events), rec.EventCounts())
			})
		}
	}
}

func diff(got, want map[string]int) []string {
	var out []string
	for k, w := range want {
		if got[k] != w {
			out = append(out, fmt.Sprintf("%s: got %d, want %d", k, got[k], w))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			out = append(out, fmt.Sprintf("%s: got %d, want 0", k, g))
		}
	}
	sort.Strings(out)
	if len(out) > 20 {
		out = append(out[:20], "...")
	}
	return out
}
