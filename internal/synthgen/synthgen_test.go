package synthgen

import (
	"bytes"
	"encoding/csv"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func readCSV(t *testing.T, path string) ([]string, [][]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	head, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]string
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		rows = append(rows, rec)
	}
	return head, rows
}

func TestDeterministic(t *testing.T) {
	cfg := Config{Seed: 42, Patients: 300, BadRows: 2}
	a, b, c := t.TempDir(), t.TempDir(), t.TempDir()
	sa, err := Write(a, cfg)
	if err != nil {
		t.Fatal(err)
	}
	sb, err := Write(b, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Seed = 43
	if _, err := Write(c, cfg); err != nil {
		t.Fatal(err)
	}
	if sa.Bytes != sb.Bytes || sa.Encounters != sb.Encounters {
		t.Errorf("stats differ for the same seed: %+v vs %+v", sa, sb)
	}
	for _, name := range []string{"patients.csv", "encounters.csv"} {
		da, _ := os.ReadFile(filepath.Join(a, name))
		db, _ := os.ReadFile(filepath.Join(b, name))
		dc, _ := os.ReadFile(filepath.Join(c, name))
		if !bytes.Equal(da, db) {
			t.Errorf("%s differs between two runs with the same seed", name)
		}
		if bytes.Equal(da, dc) {
			t.Errorf("%s is the same for seeds 42 and 43", name)
		}
	}
}

func TestShape(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Seed: 7, Patients: 2000, BadRows: 3, DeathsPerThousandYear: 20}
	st, err := Write(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ph, patients := readCSV(t, filepath.Join(dir, "patients.csv"))
	eh, encs := readCSV(t, filepath.Join(dir, "encounters.csv"))
	if got, want := strings.Join(ph, ","), strings.Join(patientHeader, ","); got != want {
		t.Errorf("patients header\n got %s\nwant %s", got, want)
	}
	if got, want := strings.Join(eh, ","), strings.Join(encounterHeader, ","); got != want {
		t.Errorf("encounters header\n got %s\nwant %s", got, want)
	}
	if len(patients) != st.Patients || st.Patients != cfg.Patients {
		t.Errorf("patients: %d rows, stats %d, asked %d", len(patients), st.Patients, cfg.Patients)
	}
	if len(encs) != st.Encounters {
		t.Errorf("encounters: %d rows, stats say %d", len(encs), st.Encounters)
	}
	col := func(h []string, name string) int {
		for i, c := range h {
			if c == name {
				return i
			}
		}
		t.Fatalf("no column %s", name)
		return -1
	}
	death := map[string]string{}
	nonASCII, quotedComma := 0, 0
	for _, p := range patients {
		if d := p[col(ph, "DEATHDATE")]; d != "" {
			death[p[0]] = d
		}
		name := p[col(ph, "FIRST")] + p[col(ph, "LAST")]
		if utf8.RuneCountInString(name) != len(name) {
			nonASCII++
		}
		if strings.Contains(p[col(ph, "ADDRESS")], ",") {
			quotedComma++
		}
	}
	if len(death) != st.Deaths || st.Deaths == 0 {
		t.Errorf("deaths: %d in file, stats %d (want some)", len(death), st.Deaths)
	}
	if nonASCII == 0 || quotedComma == 0 {
		t.Errorf("want non-ASCII names and addresses with commas, got %d and %d", nonASCII, quotedComma)
	}
	classes := map[string]int{}
	certs, crossMonth := 0, 0
	for _, e := range encs {
		cls := e[col(eh, "ENCOUNTERCLASS")]
		start, err := time.Parse(time.RFC3339, e[col(eh, "START")])
		if err != nil {
			continue // planted
		}
		classes[cls]++
		if e[col(eh, "DESCRIPTION")] == "Death Certification" {
			certs++
			d, ok := death[e[col(eh, "PATIENT")]]
			if !ok || start.AddDate(0, 0, -1).Format("2006-01-02") != d {
				t.Errorf("death certification not dated the day after a death")
			}
		}
		if cls == ClassInpatient {
			stop, err := time.Parse(time.RFC3339, e[col(eh, "STOP")])
			if err == nil && stop.Month() != start.Month() {
				crossMonth++
			}
		}
	}
	for _, c := range Classes {
		if classes[c] == 0 {
			t.Errorf("no %s encounter", c)
		}
	}
	if certs != st.DeathCertifications || certs != st.Deaths {
		t.Errorf("death certifications: %d in file, stats %d, deaths %d", certs, st.DeathCertifications, st.Deaths)
	}
	if crossMonth == 0 {
		t.Error("no inpatient stay crosses a month end")
	}
	for _, p := range Plants {
		if st.Planted[p] != cfg.BadRows {
			t.Errorf("planted %s: %d, want %d", p, st.Planted[p], cfg.BadRows)
		}
	}
}

func TestColumnsNoFIPS(t *testing.T) {
	dir := t.TempDir()
	if _, err := Write(dir, Config{Seed: 1, Patients: 20, Columns: ColumnsNoFIPS}); err != nil {
		t.Fatal(err)
	}
	ph, rows := readCSV(t, filepath.Join(dir, "patients.csv"))
	h := strings.Join(ph, ",")
	if strings.Contains(h, "FIPS") || strings.Contains(h, "INCOME") {
		t.Errorf("header has FIPS or INCOME: %s", h)
	}
	for _, r := range rows {
		if len(r) != len(ph) {
			t.Fatalf("row has %d fields, header %d", len(r), len(ph))
		}
	}
}

func TestWriteFederation(t *testing.T) {
	dir := t.TempDir()
	st, err := WriteFederation(dir, 3, Config{Seed: 5, Patients: 50})
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 3 {
		t.Fatalf("got %d stats, want 3", len(st))
	}
	var first []byte
	for i := 1; i <= 3; i++ {
		b, err := os.ReadFile(filepath.Join(dir, PracticeDir(i), "encounters.csv"))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(b, first) {
			t.Errorf("practice %d has the same encounters as practice 1", i)
		}
		if i == 1 {
			first = b
		}
	}
	if _, err := WriteFederation(dir, 0, Config{}); err == nil {
		t.Error("0 practices: want an error")
	}
}

func TestConfigErrors(t *testing.T) {
	at := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, cfg := range []Config{
		{Patients: -1},
		{Patients: 1, From: at, To: at},
		{Patients: 1, EncountersPerPatientYear: -2},
		{Patients: 1, BadRows: -1},
	} {
		if _, err := Write(t.TempDir(), cfg); err == nil {
			t.Errorf("%+v: want an error", cfg)
		}
	}
}

func TestCivil(t *testing.T) {
	for d := int64(-40000); d < 40000; d += 37 {
		want := time.Unix(d*day, 0).UTC().Format("2006-01-02")
		if got := string(appendDate(nil, d)); got != want {
			t.Fatalf("day %d: got %s want %s", d, got, want)
		}
	}
}

func BenchmarkWrite(b *testing.B) {
	dir := b.TempDir()
	for b.Loop() {
		st, err := Write(dir, Config{Seed: 1, Patients: 10000})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(st.Encounters), "encounters/op")
	}
}
