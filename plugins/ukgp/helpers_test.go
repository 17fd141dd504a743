package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/sdk/sdktest"
)

func month(t testing.TB, s string) formats.Month {
	t.Helper()
	m, err := formats.ParseMonth(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
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

// summary renders a run for people: patients are p1, p2 … in the order of their first
// registration, events sorted, skips by reason, then the log and the error.
func summary(rec *sdktest.Recording, err error) string {
	var b strings.Builder
	labels := map[string]string{}
	label := func(key string) string {
		if l, ok := labels[key]; ok {
			return l
		}
		return "p?"
	}
	fmt.Fprintf(&b, "supplies %v %v methods=%v diagnoses=%v discharges=%v\n", rec.Supplies.RowKinds, rec.Supplies.EventKinds, rec.Supplies.Methods, rec.Supplies.Diagnoses, rec.Supplies.Discharges)
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
	var events []string
	for _, e := range rec.Events {
		events = append(events, "event "+eventString(label(e.PatientKey), e))
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

func eventString(who string, e formats.Event) string {
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
