package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/formats"
)

func TestIndex(t *testing.T) {
	x := newIndex()
	ids := []string{
		"982192b6-6843-4011-ef46-32caaf87d8a9",
		"982192B6-6843-4011-EF46-32CAAF87D8A9", // upper case: another patient
		"982192b6-6843-4011-ef46-32caaf87d8a8",
		"p1",
		"982192b6x6843-4011-ef46-32caaf87d8a9",
		"",
	}
	for i, id := range ids {
		if _, ok := x.lookup(id); ok {
			t.Fatalf("%q found before it was added", id)
		}
		x.add(id, int32(i))
	}
	for i, id := range ids {
		if got, ok := x.lookup(id); !ok || got != int32(i) {
			t.Errorf("lookup(%q) = %d, %v; want %d", id, got, ok, i)
		}
	}
	if len(x.uuids) != 2 {
		t.Errorf("%d ids in the UUID map, want 2", len(x.uuids))
	}
}

func TestInstant(t *testing.T) {
	london, _ := time.LoadLocation("Europe/London")
	c := newClock(london)
	tests := []struct {
		in   string
		want string // local day, "" when invalid
	}{
		{"2021-06-30T23:30:00Z", "2021-07-01"},
		{"2021-01-31T23:30:00Z", "2021-01-31"},
		{"2021-03-28T00:59:59Z", "2021-03-28"},
		{"2021-10-30T23:00:00Z", "2021-10-31"},
		{"2021-10-31T23:00:00Z", "2021-10-31"},
		{"1936-11-20T04:04:05Z", "1936-11-20"},
		{"2024-02-29T12:00:00Z", "2024-02-29"},
		{"2021-06-15", "2021-06-15"},
		{"2021-06-10T01:00:00-04:00", "2021-06-10"},
		{"2021-06-21T00:00:00.5Z", "2021-06-21"},
		{"2023-02-29T12:00:00Z", ""},
		{"2021-13-01T12:00:00Z", ""},
		{"2021-06-10T24:00:00Z", ""},
		{"2021-06-10T12:60:00Z", ""},
		{"2021-06-1OT12:00:00Z", ""},
		{"1700-01-01", ""},
		{"", ""},
		{"yesterday", ""},
	}
	for _, tt := range tests {
		sec, d, ok := c.instant(tt.in)
		got := ""
		if ok {
			got = d.String()
		}
		if got != tt.want {
			t.Errorf("instant(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if ok && len(tt.in) == 20 {
			want, _ := time.Parse(time.RFC3339, tt.in)
			if sec != want.Unix() || d != formats.DateOf(want.In(london)) {
				t.Errorf("instant(%q) = %d %s, want %d %s", tt.in, sec, d, want.Unix(), formats.DateOf(want.In(london)))
			}
		}
	}
}

// TestInstantAgainstTime compares the fast path with the time package over decades of hours.
func TestInstantAgainstTime(t *testing.T) {
	for _, tz := range []string{"Europe/London", "America/New_York", "Australia/Lord_Howe", "UTC"} {
		loc, err := time.LoadLocation(tz)
		if err != nil {
			t.Fatal(err)
		}
		c := newClock(loc)
		for ts := time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC); ts.Year() < 2040; ts = ts.Add(7*time.Hour + 13*time.Minute + 7*time.Second) {
			s := ts.Format("2006-01-02T15:04:05Z")
			sec, d, ok := c.instant(s)
			if !ok || sec != ts.Unix() || d != formats.DateOf(ts.In(loc)) {
				t.Fatalf("%s in %s: got %d %s %v, want %d %s", s, tz, sec, d, ok, ts.Unix(), formats.DateOf(ts.In(loc)))
			}
		}
	}
}

// TestUnclosedQuoteFailsTheRun: a quote that is never closed would swallow every later row as
// one "malformed" row, under any error budget; the run must fail instead, naming the lines.
func TestUnclosedQuoteFailsTheRun(t *testing.T) {
	dir := t.TempDir()
	patients := "Id,BIRTHDATE,DEATHDATE,GENDER\np1,1970-01-01,,F\n"
	var enc strings.Builder
	enc.WriteString("Id,START,STOP,PATIENT,ENCOUNTERCLASS,CODE,DESCRIPTION\n")
	for i := 0; i < 200; i++ {
		desc := "Encounter for check up"
		if i == 10 {
			desc = `"Encounter, unclosed` // the quote opens and never closes
		}
		fmt.Fprintf(&enc, "e%d,2024-01-%02dT09:00:00Z,2024-01-%02dT09:15:00Z,p1,ambulatory,185349003,%s\n", i, 1+i%28, 1+i%28, desc)
	}
	os.WriteFile(filepath.Join(dir, "patients.csv"), []byte(patients), 0o644)
	os.WriteFile(filepath.Join(dir, "encounters.csv"), []byte(enc.String()), 0o644)
	jan := month(t, "2024-01")
	_, err := extract(t, jan, jan, map[string]string{"dir": dir, "max_skipped_fraction": "1"})
	if err == nil || !strings.Contains(err.Error(), "encounters.csv: a quoted field opened on line 12") || strings.Contains(err.Error(), "p1") {
		t.Fatalf("err = %v; want the run to fail naming encounters.csv and line 12, and no value", err)
	}
}
