package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/sdk"
	"github.com/tributary-health/tributary/plugins/sdk/sdktest"
)

var update = flag.Bool("update", false, "rewrite testcases/*/expected.txt from the extractor's output")

// TestGolden runs every testcases/<case> folder: its NDJSON and Bundle files are the export,
// request.conf holds from, to and configuration keys (key = value; dir is the folder itself),
// and expected.txt is the summary of what the extractor must send, skip and log.
func TestGolden(t *testing.T) {
	cases, err := filepath.Glob(filepath.Join("testcases", "*", "request.conf"))
	if err != nil || len(cases) == 0 {
		t.Fatalf("no test cases: %v", err)
	}
	for _, conf := range cases {
		dir := filepath.Dir(conf)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			from, to, config := readRequest(t, conf)
			abs, err := filepath.Abs(dir)
			if err != nil {
				t.Fatal(err)
			}
			config["dir"] = abs
			var log bytes.Buffer
			logger := hclog.New(&hclog.LoggerOptions{Output: &log, DisableTime: true, Level: hclog.Info})
			rec, err := sdktest.Run(context.Background(), Extractor{}, sdk.Request{From: from, To: to, Config: config, Log: logger})
			got := summary(rec, err, log.String())
			path := filepath.Join(dir, "expected.txt")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update to create it, then check it by hand)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s\n--- got\n%s--- want\n%s", path, got, want)
			}
			if u := rec.Uncounted(); len(u) > 0 {
				t.Errorf("%d events sent that the agent does not count", len(u))
			}
		})
	}
}

func readRequest(t *testing.T, path string) (from, to formats.Month, config map[string]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	config = map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not key = value", path, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "from":
			from = month(t, v)
		case "to":
			to = month(t, v)
		default:
			config[k] = v
		}
	}
	return from, to, config
}

// summary renders an extraction for people: patients are labelled p1, p2 … in the order of
// their first registration, events are sorted, skips listed by reason.
func summary(rec *sdktest.Recording, err error, log string) string {
	var b strings.Builder
	labels := map[string]string{}
	for _, r := range rec.Registrations {
		if _, ok := labels[r.PatientKey]; !ok {
			labels[r.PatientKey] = fmt.Sprintf("p%d", len(labels)+1)
		}
		to := "open"
		if r.To != formats.NoEnd {
			to = r.To.String()
		}
		fmt.Fprintf(&b, "registration %s %s born %s from %s to %s\n", labels[r.PatientKey], r.Sex, r.BirthMonth, r.From, to)
	}
	var events []string
	for _, e := range rec.Events {
		label, ok := labels[e.PatientKey]
		if !ok {
			label = "p?"
		}
		s := fmt.Sprintf("event %s %s %s", label, e.Kind, e.Start)
		if e.End != formats.NoEnd {
			s += ".." + e.End.String()
		} else if e.Kind == formats.KindAdmission {
			s += "..open"
		}
		if e.Method != "" {
			s += " " + e.Method
		}
		if e.DiagnosisCode != "" {
			s += " dx " + e.DiagnosisSystem + " " + e.DiagnosisCode
		}
		events = append(events, s)
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
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		if line != "" {
			b.WriteString("log " + line + "\n")
		}
	}
	if err != nil {
		fmt.Fprintf(&b, "error %v\n", err)
	}
	return b.String()
}
