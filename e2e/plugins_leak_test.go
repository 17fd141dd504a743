package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/tributary-health/tributary/internal/testenv"
	"github.com/tributary-health/tributary/plugins/host"
)

// leakSource is one extractor over one source, and the patient-level values of that source
// in the forms they are written there (and, for dates, in the form the code writes any date).
type leakSource struct {
	name, plugin string
	dir          string            // the source, searched as the control
	config       map[string]string // the plugin's configuration
	from, to     string
	needles      func(t *testing.T, dir string) []string
}

// TestPluginsLeakNothing runs the real tributary-agent binary (run --once) with each extractor's
// real plugin over a shared or example source, with the local directory store, then searches
// every file the run left (spool, uploaded objects, release log, state), the agent's log file
// and its stdout and stderr for the source's patient ids, names and birth dates. As a control,
// the same search over the source itself must find them. OMOP's person_id and the
// OpenSAFELY-shaped set's patient_id (small integers, which any file holds) are not searched
// for; OMOP's person_source_value and HES's PSEUDO_HESID are.
func TestPluginsLeakNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent and every plugin")
	}
	csvExamples := filepath.Join(testenv.RepoRoot(t), "plugins", "csv", "examples")
	sources := []leakSource{
		{name: "synthea", plugin: "./plugins/synthea", dir: testenv.SharedData(t, "synthea_csv_mcode_ma115/csv"),
			from: "2015-01", to: "2022-12", needles: syntheaNeedles},
		{name: "fhir-ndjson", plugin: "./plugins/fhir", dir: testenv.SharedData(t, "synthea_fhir_bulk_ndjson_ks13"),
			from: "2010-01", to: "2022-12", needles: fhirNeedles},
		{name: "fhir-bundles", plugin: "./plugins/fhir", dir: testenv.SharedData(t, "synthea_csv_mcode_ma115/fhir_r4_bundles"),
			from: "2015-01", to: "2022-12", needles: fhirNeedles},
		{name: "omop-csv", plugin: "./plugins/omop", dir: testenv.SharedData(t, "omop_eunomia_synthea27nj/cdm54"),
			from: "2010-01", to: "2022-12", needles: omopNeedles},
		{name: "csv-emis", plugin: "./plugins/csv", dir: filepath.Join(csvExamples, "emis"),
			config: exampleConfig(t, filepath.Join(csvExamples, "emis", "emis.toml")),
			from:   "2023-01", to: "2024-12", needles: csvNeedles("Registered patients.csv", "Patient Reference", "Date of Birth")},
		{name: "csv-systmone", plugin: "./plugins/csv", dir: filepath.Join(csvExamples, "systmone"),
			config: exampleConfig(t, filepath.Join(csvExamples, "systmone", "systmone.toml")),
			from:   "2023-01", to: "2024-12", needles: csvNeedles("Patient list.csv", "Patient ID", "Date of birth")},
	}
	sources = append(sources,
		leakSource{name: "ukgp-dementia", plugin: "./plugins/ukgp", dir: testenv.SharedData(t, "uk_opensafely_dummy_dementia1000"),
			config: map[string]string{"practice_code": "1", "clinical_events": "patient_days"},
			from:   "2014-01", to: "2025-12", needles: ukgpNeedles},
		leakSource{name: "ukgp-hes", plugin: "./plugins/ukgp", dir: hesExport(t),
			config: map[string]string{"practice_code": "P1"},
			from:   "2001-04", to: "2002-03", needles: hesNeedles},
	)
	agentBin := testenv.Binary(t, "./agent/cmd/tributary-agent")
	for i, src := range sources {
		t.Run(src.name, func(t *testing.T) {
			needles := dedupe(src.needles(t, src.dir))
			if len(needles) < 10 {
				t.Fatalf("only %d values to search for", len(needles))
			}
			// The control: the search finds the values where they are.
			if found := searchTree(t, needles, src.dir); len(found) < len(needles)/2 {
				t.Fatalf("the search found only %d of %d values in the source itself", len(found), len(needles))
			}
			work := t.TempDir()
			keys := filepath.Join(work, "keys")
			if out, err := exec.Command(agentBin, "keys", "init", "--out", keys).CombinedOutput(); err != nil {
				t.Fatalf("keys init: %v\n%s", err, out)
			}
			bin := testenv.Binary(t, src.plugin)
			sum, err := host.FileSHA256(bin)
			if err != nil {
				t.Fatal(err)
			}
			pc := map[string]string{"dir": src.dir, "key_salt": "leak test salt", "max_skipped_fraction": "1"}
			for k, v := range src.config {
				if k != "dir" && k != "key_salt" {
					pc[k] = v
				}
			}
			cfg := map[string]any{
				"practice": fmt.Sprintf("L%05d", 81001+i), "key_file": filepath.Join(keys, "practice.key"),
				"store": "file://" + filepath.Join(work, "store"), "spool": filepath.Join(work, "spool"),
				"listen": "off", "months": map[string]any{"from": src.from, "to": src.to},
				"plugins": []map[string]any{{"name": strings.Split(src.name, "-")[0], "path": bin, "sha256": sum, "config": pc}},
			}
			var b strings.Builder
			if err := toml.NewEncoder(&b).Encode(cfg); err != nil {
				t.Fatal(err)
			}
			cfgPath := filepath.Join(work, "agent.toml")
			if err := os.WriteFile(cfgPath, []byte(b.String()), 0o600); err != nil {
				t.Fatal(err)
			}
			logFile := filepath.Join(work, "agent.log")
			cmd := exec.Command(agentBin, "run", "--once", "--config", cfgPath, "--log-file", logFile, "--log-format", "json")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("run --once: %v\n%s", err, out)
			}
			logs, err := os.ReadFile(logFile)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(logs), `"events"`) && !strings.Contains(string(out), "events") {
				t.Fatalf("the run reports no events:\n%s\n%s", out, logs)
			}
			if hits := findValues(needles, out); len(hits) > 0 {
				t.Errorf("patient-level values in the agent's output: %v", hits)
			}
			if hits := findValues(needles, logs); len(hits) > 0 {
				t.Errorf("patient-level values in the agent's log: %v", hits)
			}
			// Everything the run left: spool, store objects, release log, state, the log.
			files := 0
			filepath.Walk(work, func(p string, info os.FileInfo, err error) error {
				if err != nil || info.IsDir() || p == cfgPath {
					return err // the configuration names the source folder, not a patient
				}
				files++
				data, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if hits := findValues(needles, data); len(hits) > 0 {
					t.Errorf("%s holds patient-level values: %v", strings.TrimPrefix(p, work), hits)
				}
				return nil
			})
			objects := 0
			filepath.Walk(filepath.Join(work, "store"), func(p string, info os.FileInfo, err error) error {
				if err == nil && !info.IsDir() {
					objects++
				}
				return err
			})
			if objects < 2 {
				t.Fatalf("only %d objects uploaded to the store; the run should have uploaded its files and manifest", objects)
			}
			if !t.Failed() {
				t.Logf("searched %d files (%d uploaded objects) and %d bytes of log and output for %d patient-level values: none found",
					files, objects, len(logs)+len(out), len(needles))
			}
		})
	}
}

// ukgpNeedles: the OpenSAFELY-shaped set's dates of birth (ehrQL gives the first of the month).
// Its patient_id values are small integers, which any file holds, and are not searched for. A
// birth date that is the first day of a month the run covers could be a period's start in what
// the agent writes, so those are left out too.
func ukgpNeedles(t *testing.T, dir string) []string {
	header, rows := readCSV(t, filepath.Join(dir, "patients.csv"))
	c := index(header)
	var out []string
	for _, r := range rows {
		if b := r[c["date_of_birth"]]; b < "2014-01-01" {
			out = addDate(out, b, b)
		}
	}
	return out
}

// hesExport is the artificial HES APC extract as apcs.csv, in a folder with the patients and
// registrations its PSEUDO_HESID, MYDOB and SEX give (as plugins/ukgp's TestHESAgainstPlainReading
// builds it).
func hesExport(t *testing.T) string {
	src := filepath.Join(testenv.SharedData(t, "uk_nhs_artificial_hes_apc_0102"), "artificial_hes_apc_0102.csv")
	dir := t.TempDir()
	if err := os.Symlink(src, filepath.Join(dir, "apcs.csv")); err != nil {
		t.Fatal(err)
	}
	header, rows := readCSV(t, src)
	c := index(header)
	var pat, reg [][]string
	seen := map[string]bool{}
	for _, r := range rows {
		id := r[c["PSEUDO_HESID"]]
		if seen[id] {
			continue
		}
		seen[id] = true
		dob := r[c["MYDOB"]] // MMYYYY
		sex := map[string]string{"1": "male", "2": "female"}[r[c["SEX"]]]
		pat = append(pat, []string{id, dob[2:] + "-" + dob[:2] + "-01", sex, ""})
		reg = append(reg, []string{id, "1990-01-01", "", "P1"})
	}
	writeCSV(t, filepath.Join(dir, "patients.csv"), []string{"patient_id", "date_of_birth", "sex", "date_of_death"}, pat)
	writeCSV(t, filepath.Join(dir, "practice_registrations.csv"), []string{"patient_id", "start_date", "end_date", "practice_pseudo_id"}, reg)
	return dir
}

// hesNeedles: PSEUDO_HESID, and the month of birth as HES writes it (MYDOB, MMYYYY).
func hesNeedles(t *testing.T, dir string) []string {
	header, rows := readCSV(t, filepath.Join(dir, "apcs.csv"))
	c := index(header)
	var out []string
	for _, r := range rows {
		out = append(out, r[c["PSEUDO_HESID"]], r[c["MYDOB"]])
	}
	return out
}

// exampleConfig reads a plugin configuration file of the csv extractor's examples (flat keys).
func exampleConfig(t *testing.T, path string) map[string]string {
	t.Helper()
	var m map[string]any
	if _, err := toml.DecodeFile(path, &m); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range m {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// runDays are the dates every log line and the release log carry (the run's own): a birth date
// on one of them is not searched for (see leakNeedlesAt).
func runDays() map[string]bool {
	run := map[string]bool{}
	now := time.Now()
	for _, d := range []int{-1, 0, 1} {
		for _, loc := range []*time.Location{time.UTC, time.Local} {
			run[now.In(loc).AddDate(0, 0, d).Format(time.DateOnly)] = true
		}
	}
	return run
}

// addDate adds a birth date as written and, when it is a full date, as the code writes dates.
func addDate(out []string, written string, iso string) []string {
	run := runDays()
	if iso != "" && run[iso] {
		return out
	}
	if written != "" {
		out = append(out, written)
	}
	if iso != "" && iso != written {
		out = append(out, iso)
	}
	return out
}

func syntheaNeedles(t *testing.T, dir string) []string {
	header, rows := readCSV(t, filepath.Join(dir, "patients.csv"))
	c := index(header)
	var out []string
	for _, r := range rows {
		out = append(out, r[c["Id"]], r[c["FIRST"]], r[c["LAST"]])
		out = addDate(out, r[c["BIRTHDATE"]], r[c["BIRTHDATE"]])
	}
	return out
}

// fhirNeedles reads every Patient of the folder's NDJSON files and Bundles: its id, its
// Bundle entry's fullUrl id, its given and family names, its birthDate.
func fhirNeedles(t *testing.T, dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	type name struct {
		Given  []string `json:"given"`
		Family string   `json:"family"`
	}
	type patient struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
		BirthDate    string `json:"birthDate"`
		Name         []name `json:"name"`
	}
	var out []string
	add := func(p patient) {
		if p.ResourceType != "Patient" {
			return
		}
		out = append(out, p.ID)
		for _, n := range p.Name {
			out = append(out, n.Given...)
			out = append(out, n.Family)
		}
		out = addDate(out, p.BirthDate, p.BirthDate)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case strings.HasSuffix(e.Name(), ".ndjson"):
			for _, line := range strings.Split(string(data), "\n") {
				if !strings.Contains(line, `"resourceType":"Patient"`) {
					continue
				}
				var p patient
				if err := json.Unmarshal([]byte(line), &p); err != nil {
					t.Fatal(err)
				}
				add(p)
			}
		case strings.HasSuffix(e.Name(), ".json"):
			var bundle struct {
				Entry []struct {
					FullURL  string          `json:"fullUrl"`
					Resource json.RawMessage `json:"resource"`
				} `json:"entry"`
			}
			if err := json.Unmarshal(data, &bundle); err != nil {
				t.Fatal(err)
			}
			for _, en := range bundle.Entry {
				var typ struct {
					ResourceType string `json:"resourceType"`
				}
				if json.Unmarshal(en.Resource, &typ) != nil || typ.ResourceType != "Patient" {
					continue
				}
				var p patient
				if err := json.Unmarshal(en.Resource, &p); err != nil {
					t.Fatal(err)
				}
				add(p)
				out = append(out, strings.TrimPrefix(en.FullURL, "urn:uuid:"))
			}
		}
	}
	return out
}

// omopNeedles: person_source_value (the source system's patient id) and the birth date.
func omopNeedles(t *testing.T, dir string) []string {
	header, rows := readCSV(t, filepath.Join(dir, "PERSON.csv"))
	c := index(header)
	var out []string
	for _, r := range rows {
		if v := r[c["person_source_value"]]; v != "" {
			out = append(out, v)
		}
		if b := r[c["birth_datetime"]]; len(b) >= 10 {
			out = addDate(out, "", b[:10])
		}
	}
	return out
}

// csvNeedles: the patients file's identifier and date of birth (as written, and as a date when
// it is a full one).
func csvNeedles(file, idCol, birthCol string) func(t *testing.T, dir string) []string {
	return func(t *testing.T, dir string) []string {
		header, rows := readCSV(t, filepath.Join(dir, file))
		c := index(header)
		var out []string
		for _, r := range rows {
			out = append(out, r[c[idCol]])
			written := r[c[birthCol]]
			iso := ""
			for _, layout := range []string{"02-Jan-2006", "02/01/2006", "2006-01-02"} {
				if d, err := time.Parse(layout, written); err == nil {
					iso = d.Format(time.DateOnly)
				}
			}
			out = addDate(out, written, iso)
		}
		return out
	}
}

// findValues is findLeaks, except that a value of digits only (an EMIS patient reference, a HES
// month of birth) must stand apart from other digits: 100234 inside a timestamp's nanoseconds is
// not that patient.
func findValues(needles []string, hay []byte) []string {
	var hits []string
	for _, n := range needles {
		if n == "" {
			continue
		}
		if !digitsOnly(n) {
			if bytes.Contains(hay, []byte(n)) {
				hits = append(hits, n)
			}
			continue
		}
		for i := 0; ; {
			j := bytes.Index(hay[i:], []byte(n))
			if j < 0 {
				break
			}
			start, end := i+j, i+j+len(n)
			if (start == 0 || !isDigit(hay[start-1])) && (end == len(hay) || !isDigit(hay[end])) {
				hits = append(hits, n)
				break
			}
			i = start + 1
		}
	}
	return hits
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digitsOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// searchTree returns the values found in any file under dir.
func searchTree(t *testing.T, needles []string, dir string) map[string]bool {
	t.Helper()
	found := map[string]bool{}
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		var left []string
		for _, n := range needles {
			if !found[n] {
				left = append(left, n)
			}
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range findValues(left, data) {
			found[h] = true
		}
		return nil
	})
	return found
}

func dedupe(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if x != "" && !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
