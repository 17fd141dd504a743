package sdktest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// Golden runs every case folder root/<case> that holds a request.conf, as a plugin's golden
// tests do:
//
//	var update = flag.Bool("update", false, "rewrite testcases/*/expected.txt")
//
//	func TestGolden(t *testing.T) { sdktest.Golden(t, Extractor{}, "testcases", *update) }
//
// request.conf holds from, to and configuration keys, one "key = value" a line ("#" starts a
// comment); the key "dir" is set to the case folder itself. The extraction runs through Run
// and its Summary must equal the case's expected.txt; with update the file is rewritten first
// (check the diff by hand). Every case also fails when the extractor sends events the agent
// will not count for the requested months (Recording.Uncounted).
func Golden(t *testing.T, ex sdk.Extractor, root string, update bool) {
	t.Helper()
	cases, err := filepath.Glob(filepath.Join(root, "*", "request.conf"))
	if err != nil || len(cases) == 0 {
		t.Fatalf("no test cases under %s (each is a folder with a request.conf): %v", root, err)
	}
	for _, conf := range cases {
		dir := filepath.Dir(conf)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			from, to, config, err := ReadRequest(conf)
			if err != nil {
				t.Fatal(err)
			}
			abs, err := filepath.Abs(dir)
			if err != nil {
				t.Fatal(err)
			}
			config["dir"] = abs
			rec, err := Run(context.Background(), ex, sdk.Request{From: from, To: to, Config: config})
			CompareGolden(t, filepath.Join(dir, "expected.txt"), Summary(rec, err), update)
			if u := rec.Uncounted(); len(u) > 0 {
				t.Errorf("%d events sent that the agent does not count for %s to %s", len(u), from, to)
			}
		})
	}
}

// CompareGolden fails t when got differs from the file at path, printing both; with update it
// writes got to the file first.
func CompareGolden(t testing.TB, path, got string, update bool) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run the test with -update to create it, then check it by hand)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// ReadRequest reads a case's request.conf: from and to (YYYY-MM), and every other
// "key = value" line as configuration.
func ReadRequest(path string) (from, to formats.Month, config map[string]string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return from, to, nil, err
	}
	defer f.Close()
	config = map[string]string{}
	var haveFrom, haveTo bool
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return from, to, nil, fmt.Errorf("%s:%d: %q is not key = value", path, n, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "from", "to":
			m, err := formats.ParseMonth(v)
			if err != nil {
				return from, to, nil, fmt.Errorf("%s:%d: %s: %w", path, n, k, err)
			}
			if k == "from" {
				from, haveFrom = m, true
			} else {
				to, haveTo = m, true
			}
		default:
			config[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		return from, to, nil, fmt.Errorf("%s: %w", path, err)
	}
	if !haveFrom || !haveTo {
		return from, to, nil, fmt.Errorf("%s: from and to are both needed (from = YYYY-MM)", path)
	}
	return from, to, config, nil
}

// Summary renders a recording for a golden file, in an order that does not depend on how the
// extractor batches its rows: what it supplies; registrations, with patients labelled p1, p2 …
// in the order of their first registration; events sorted; skipped rows by reason; the log;
// the error. No patient key appears, so a summary is safe to commit.
func Summary(rec *Recording, err error) string {
	var b strings.Builder
	s := rec.Supplies
	fmt.Fprintf(&b, "supplies %v %v methods=%v diagnoses=%v discharges=%v\n", s.RowKinds, s.EventKinds, s.Methods, s.Diagnoses, s.Discharges)
	labels := map[string]string{}
	label := func(key string) string {
		if l, ok := labels[key]; ok {
			return l
		}
		return "p?"
	}
	for _, r := range rec.Registrations {
		if _, ok := labels[r.PatientKey]; !ok {
			labels[r.PatientKey] = fmt.Sprintf("p%d", len(labels)+1)
		}
		to := "open"
		if r.To != formats.NoEnd {
			to = r.To.String()
		}
		fmt.Fprintf(&b, "registration %s %s born %s from %s to %s\n", label(r.PatientKey), r.Sex, r.BirthMonth, r.From, to)
	}
	events := make([]string, 0, len(rec.Events))
	for _, e := range rec.Events {
		events = append(events, "event "+EventString(label(e.PatientKey), e))
	}
	sort.Strings(events)
	for _, e := range events {
		b.WriteString(e + "\n")
	}
	var skips []string
	for r, n := range rec.Stats.Skipped {
		skips = append(skips, fmt.Sprintf("skipped %s: %d", r, n))
	}
	sort.Strings(skips)
	for _, s := range skips {
		b.WriteString(s + "\n")
	}
	for _, line := range strings.Split(strings.TrimSpace(rec.Log), "\n") {
		if line != "" {
			b.WriteString("log " + line + "\n")
		}
	}
	if err != nil {
		fmt.Fprintf(&b, "error %v\n", err)
	}
	return b.String()
}

// EventString renders one event as Summary does, with who standing for its patient:
// "p1 admission 2024-01-03..2024-01-05 emergency dx icd10:J45".
func EventString(who string, e formats.Event) string {
	s := fmt.Sprintf("%s %s %s", who, e.Kind, e.Start)
	if e.End != formats.NoEnd {
		s += ".." + e.End.String()
	} else if e.Kind == formats.KindAdmission {
		s += "..open"
	}
	if e.Method != "" {
		s += " " + e.Method
	}
	if e.DiagnosisCode != "" {
		s += " dx " + e.DiagnosisSystem + ":" + e.DiagnosisCode
	}
	return s
}
