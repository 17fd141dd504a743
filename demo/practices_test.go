package demo

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/synthgen"
	"github.com/tributary-health/tributary/internal/testenv"
)

// TestEncounterMonths reads START by its header name, in Europe/London, past quoted commas
// and newlines, a byte-order mark and rows whose START is not a timestamp.
func TestEncounterMonths(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Skip("no zone data:", err)
	}
	path := filepath.Join(t.TempDir(), "encounters.csv")
	csv := "\ufeffId,PATIENT,START,DESCRIPTION\n" +
		"e1,p1,2020-02-06T08:45:50Z,\"Encounter for symptom, acute\"\n" +
		"e2,p1,2021-03-31T23:30:00Z,\"two\nlines\"\n" + // 00:30 on 1 April in London (BST)
		"e3,p2,not a time,x\n" +
		"e4,p2,2020-02-29T12:00:00Z,x\n"
	if err := os.WriteFile(path, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := encounterMonths(path, london)
	if err != nil {
		t.Fatal(err)
	}
	want := map[formats.Month]int{formats.MonthFor(2020, 2): 2, formats.MonthFor(2021, 4): 1}
	if len(got) != len(want) || got[formats.MonthFor(2020, 2)] != 2 || got[formats.MonthFor(2021, 4)] != 1 {
		t.Errorf("months %v, want %v", got, want)
	}

	for name, body := range map[string]string{
		"no START column": "Id,PATIENT,STOP\ne1,p1,2020-02-06T08:45:50Z\n",
		"line 3":          "Id,START\ne1,2020-02-06T08:45:50Z\ne2,\"Zoë O'Connor 2020\n",
		"no header row":   "",
	} {
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := encounterMonths(path, london)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "Zoë") {
			t.Errorf("the error quotes the file: %v", err)
		}
	}
	if _, err := encounterMonths(filepath.Join(t.TempDir(), "missing.csv"), london); err == nil {
		t.Error("missing file: want an error")
	}
}

func TestDataRange(t *testing.T) {
	m := formats.MonthFor
	months := func(ms ...formats.Month) map[formats.Month]int {
		out := map[formats.Month]int{}
		for _, x := range ms {
			out[x]++
		}
		return out
	}
	now := m(2026, 10)
	for _, c := range []struct {
		name             string
		practices        map[string]map[formats.Month]int
		from, to         formats.Month // given
		wantFrom, wantTo formats.Month
		wantErr          string
	}{
		{name: "union", practices: map[string]map[formats.Month]int{
			"A": months(m(2019, 3), m(2020, 6)), "B": months(m(2019, 7), m(2021, 2)), "C": {},
		}, wantFrom: m(2019, 3), wantTo: m(2021, 2)},
		{name: "to given", practices: map[string]map[formats.Month]int{"A": months(m(2019, 3), m(2020, 6))},
			to: m(2019, 12), wantFrom: m(2019, 3), wantTo: m(2019, 12)},
		{name: "from given", practices: map[string]map[formats.Month]int{"A": months(m(2019, 3), m(2020, 6))},
			from: m(2020, 1), wantFrom: m(2020, 1), wantTo: m(2020, 6)},
		{name: "not past the last complete month", practices: map[string]map[formats.Month]int{"A": months(m(2024, 3), m(2027, 6))},
			wantFrom: m(2024, 3), wantTo: now},
		{name: "at most 50 years", practices: map[string]map[formats.Month]int{"A": months(m(1936, 11), m(2023, 10))},
			wantFrom: m(1973, 11), wantTo: m(2023, 10)},
		{name: "only this month", practices: map[string]map[formats.Month]int{"A": months(now + 1)},
			wantErr: "leaves no months"},
		{name: "no encounters", practices: map[string]map[formats.Month]int{"A": {}},
			wantErr: "pass --from and --to"},
	} {
		var out bytes.Buffer
		from, to, err := dataRange(&out, c.practices, c.from, c.to, now)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("%s: error %v, want %q", c.name, err, c.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if from != c.wantFrom || to != c.wantTo {
			t.Errorf("%s: %s to %s, want %s to %s", c.name, from, to, c.wantFrom, c.wantTo)
		}
		if !strings.Contains(out.String(), from.String()+" to "+to.String()) {
			t.Errorf("%s: the range is not reported: %q", c.name, out.String())
		}
	}
}

// TestPracticesFolder runs the demo over a folder named by a relative path, without
// --from/--to: the months come from the practices' encounters; a practice with none in them
// and a practice whose plugin fails are reported by name and skipped while the others run;
// only when none runs does the demo fail.
func TestPracticesFolder(t *testing.T) {
	ctx := context.Background()
	plugin := testenv.Binary(t, "./plugins/synthea")
	dir := t.TempDir()
	day := func(y int, mo time.Month, d int) time.Time { return time.Date(y, mo, d, 0, 0, 0, 0, time.UTC) }
	write := func(id string, patients int, from, to time.Time) {
		t.Helper()
		if _, err := synthgen.Write(filepath.Join(dir, id), synthgen.Config{Seed: int64(len(id) + patients), Patients: patients,
			From: from, To: to, Rates: synthgen.EnglandRates, DeathsPerThousandYear: -1}); err != nil {
			t.Fatal(err)
		}
	}
	write("P001", 300, day(2019, 3, 1), day(2020, 7, 1))
	write("P002", 300, day(2019, 7, 1), day(2021, 2, 15))
	write("P003", 0, day(2019, 3, 1), day(2020, 1, 1)) // headers only
	write("P004", 300, day(2019, 3, 1), day(2020, 7, 1))
	// P004's plugin fails: its patients.csv has no BIRTHDATE column.
	pp := filepath.Join(dir, "P004", "patients.csv")
	b, err := os.ReadFile(pp)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pp, bytes.Replace(b, []byte("BIRTHDATE"), []byte("BORN"), 1), 0o644); err != nil {
		t.Fatal(err)
	}

	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(wd, dir)
	if err != nil || filepath.IsAbs(rel) {
		t.Skipf("no relative path from %s to %s", wd, dir)
	}

	out := &testenv.LogBuffer{}
	res, err := Run(ctx, Options{Practices: rel, Workdir: t.TempDir(), Plugin: plugin, Out: out})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	t.Logf("demo output:\n%s", out)
	if res.From != formats.MonthFor(2019, 3) || res.To != formats.MonthFor(2021, 2) {
		t.Errorf("extracted %s to %s, want 2019-03 to 2021-02, the span of the practices' encounters", res.From, res.To)
	}
	if got := strings.Join(res.Practices, " "); got != "P001 P002" {
		t.Errorf("practices run: %s, want P001 P002", got)
	}
	skipped := map[string]string{}
	for _, s := range res.Skipped {
		skipped[s.Practice] = s.Err.Error()
	}
	if len(skipped) != 2 || !strings.Contains(skipped["P004"], "BIRTHDATE") {
		t.Errorf("skipped %v, want P003 (no encounters) and P004 (its plugin's error)", skipped)
	}
	for _, line := range []string{
		"practice P003 has no encounters between 2019-03 and 2021-02; skipped",
		"practice P004: ",
	} {
		if !strings.Contains(out.String(), line) {
			t.Errorf("the output does not say %q", line)
		}
	}
	if n := res.Combine.Pointer.Practices; n != 2 {
		t.Errorf("combined %d practices, want 2", n)
	}
	if strings.Contains(out.String(), "not a folder this plugin can read") {
		t.Error("the plugin could not read the relative practices folder")
	}

	// --from/--to given: used as they are, and P001's encounters end before them.
	res, err = Run(ctx, Options{Practices: rel, Workdir: t.TempDir(), Plugin: plugin, Out: out,
		From: formats.MonthFor(2020, 9), To: formats.MonthFor(2020, 12)})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	if res.From != formats.MonthFor(2020, 9) || res.To != formats.MonthFor(2020, 12) || strings.Join(res.Practices, " ") != "P002" {
		t.Errorf("with --from/--to: %s to %s, practices %v; want 2020-09 to 2020-12, P002", res.From, res.To, res.Practices)
	}
	if !strings.Contains(out.String(), "practice P001 has no encounters between 2020-09 and 2020-12; skipped") {
		t.Errorf("P001 is not reported as having no encounters in 2020-09..2020-12:\n%s", out)
	}

	// No practice runs: the demo fails, naming each.
	if err := os.RemoveAll(filepath.Join(dir, "P001")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "P002")); err != nil {
		t.Fatal(err)
	}
	_, err = Run(ctx, Options{Practices: rel, Workdir: t.TempDir(), Plugin: plugin, Out: out})
	if err == nil || !strings.Contains(err.Error(), "P003") || !strings.Contains(err.Error(), "P004") {
		t.Errorf("no practice can run: error %v, want one naming P003 and P004", err)
	}
}
