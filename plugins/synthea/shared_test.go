package main

import (
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/formats"
)

// reference is a second, deliberately plain reading of a Synthea export with encoding/csv,
// time.Parse and its own small mapping table. It shares no code with the extractor, so the
// two agreeing is evidence that the extractor does what the README says.
type reference struct {
	events     map[string]int // "kind method start end diagnosis" → count
	regs       map[string]int // "sex birth-month from to" → count
	afterDeath int            // in-range encounters dated after death (not Death Certification)
}

// refKinds is the README's mapping table, written out again.
var refKinds = map[string]string{
	"ambulatory": "consultation",
	"wellness":   "consultation",
	"virtual":    "consultation",
	"urgentcare": "consultation",
	"outpatient": "outpatient_attendance",
	"emergency":  "ae_attendance",
	"inpatient":  "admission",
	"hospice":    "",
	"snf":        "",
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
		t.Fatalf("%s: %v", path, err)
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

// referenceCounts reads dir for the months from..to (inclusive) in loc.
func referenceCounts(t testing.TB, dir string, loc *time.Location, from, to string) reference {
	t.Helper()
	first := from + "-01"
	last, err := time.Parse("2006-01", to)
	if err != nil {
		t.Fatal(err)
	}
	end := last.AddDate(0, 1, 0).Format("2006-01-02") // exclusive

	type person struct{ sex, birth, death string }
	people := map[string]person{}
	ref := reference{events: map[string]int{}, regs: map[string]int{}}
	for _, p := range readAll(t, filepath.Join(dir, "patients.csv")) {
		sex := map[string]string{"F": "female", "M": "male"}[p["GENDER"]]
		if sex == "" {
			sex = "unknown"
		}
		people[p["Id"]] = person{sex, p["BIRTHDATE"], p["DEATHDATE"]}
		regTo := "open"
		if p["DEATHDATE"] != "" {
			d, _ := time.Parse("2006-01-02", p["DEATHDATE"])
			regTo = d.AddDate(0, 0, 1).Format("2006-01-02")
		}
		if p["BIRTHDATE"] < end && (regTo == "open" || regTo > first) {
			ref.regs[fmt.Sprintf("%s %s %s %s", sex, p["BIRTHDATE"][:7], p["BIRTHDATE"], regTo)]++
		}
	}

	encs := readAll(t, filepath.Join(dir, "encounters.csv"))
	emergencies := map[string][]time.Time{}
	for _, e := range encs {
		if e["ENCOUNTERCLASS"] == "emergency" {
			s, _ := time.Parse(time.RFC3339, e["START"])
			emergencies[e["PATIENT"]] = append(emergencies[e["PATIENT"]], s)
		}
	}
	for _, e := range encs {
		start, err := time.Parse(time.RFC3339, e["START"])
		if err != nil {
			t.Fatalf("reference: bad START in shared data: %v", err)
		}
		stop, err := time.Parse(time.RFC3339, e["STOP"])
		if err != nil {
			t.Fatalf("reference: bad STOP in shared data: %v", err)
		}
		startDay := start.In(loc).Format("2006-01-02")
		stopDay := stop.In(loc).Format("2006-01-02")
		kind := refKinds[e["ENCOUNTERCLASS"]]
		// Sent when it starts in the months, or is a stay discharged in them.
		startsIn := startDay >= first && startDay < end
		endsIn := kind == "admission" && stopDay >= first && stopDay < end
		if !startsIn && !endsIn {
			continue
		}
		p := people[e["PATIENT"]]
		switch {
		case e["DESCRIPTION"] == "Death Certification":
			continue
		case p.death != "" && startDay > p.death:
			ref.afterDeath++
			continue
		case kind == "":
			continue
		}
		// REASONCODE is the primary diagnosis, in SNOMED CT (every code in the shared sets
		// is a valid concept id).
		dx := "-"
		if e["REASONCODE"] != "" {
			dx = "snomedct:" + e["REASONCODE"]
		}
		if kind != "admission" {
			ref.events[kind+" - "+startDay+" - "+dx]++
			continue
		}
		method := "unknown"
		desc := strings.ToLower(e["DESCRIPTION"])
		for _, em := range emergencies[e["PATIENT"]] {
			if d := start.Sub(em); d >= 0 && d <= 24*time.Hour {
				method = "emergency"
			}
		}
		if method == "unknown" && strings.Contains(desc, "emergency") {
			method = "emergency"
		}
		if method == "unknown" && (strings.Contains(desc, "non-urgent") || strings.Contains(desc, "elective")) {
			method = "elective"
		}
		ref.events[kind+" "+method+" "+startDay+" "+stopDay+" "+dx]++
	}
	return ref
}

func eventCounts(out output) map[string]int {
	m := map[string]int{}
	for _, e := range out.events {
		method, end := "-", "-"
		if e.Method != "" {
			method = e.Method
		}
		if e.End != formats.NoEnd {
			end = e.End.String()
		}
		dx := "-"
		if e.DiagnosisCode != "" {
			dx = e.DiagnosisSystem + ":" + e.DiagnosisCode
		}
		m[e.Kind+" "+method+" "+e.Start.String()+" "+end+" "+dx]++
	}
	return m
}

func registrationCounts(out output) map[string]int {
	m := map[string]int{}
	for _, r := range out.regs {
		to := "open"
		if r.To != formats.NoEnd {
			to = r.To.String()
		}
		m[fmt.Sprintf("%s %s %s %s", r.Sex, r.BirthMonth, r.From, to)]++
	}
	return m
}

// diff lists the keys whose counts differ, at most 20 of them.
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

// byKindMonth folds event counts into kind × start month, the shape of the measures.
func byKindMonth(events map[string]int) map[string]int {
	m := map[string]int{}
	for k, n := range events {
		f := strings.Fields(k)
		m[f[0]+" "+f[1]+" "+f[2][:7]] += n
	}
	return m
}

func TestSharedDataMatchesReference(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	sets := []string{"synthea_csv_unmc_ne111/csv", "synthea_csv_mcode_ma115/csv", "synthea_csv_ablack3_ma107/csv"}
	ranges := [][2]string{{"1900-01", "2030-12"}, {"2015-01", "2016-06"}, {"2020-02", "2020-02"}}
	for _, set := range sets {
		for _, rg := range ranges {
			t.Run(strings.Split(set, "/")[0]+"/"+rg[0]+"_"+rg[1], func(t *testing.T) {
				dir := sharedData(t, set)
				out, err := extract(t, month(t, rg[0]), month(t, rg[1]), map[string]string{"dir": dir, "max_skipped_fraction": "1"})
				if err != nil {
					t.Fatal(err)
				}
				ref := referenceCounts(t, dir, london, rg[0], rg[1])
				if d := diff(byKindMonth(eventCounts(out)), byKindMonth(ref.events)); len(d) > 0 {
					t.Errorf("events by kind, method and month differ from the reference:\n%s", strings.Join(d, "\n"))
				}
				if d := diff(eventCounts(out), ref.events); len(d) > 0 {
					t.Errorf("events differ from the reference:\n%s", strings.Join(d, "\n"))
				}
				if d := diff(registrationCounts(out), ref.regs); len(d) > 0 {
					t.Errorf("registrations differ from the reference:\n%s", strings.Join(d, "\n"))
				}
				if got := out.stats.Skipped[skipAfterDeath]; got != int64(ref.afterDeath) {
					t.Errorf("skipped after death: got %d, want %d", got, ref.afterDeath)
				}
				if got, want := out.stats.TotalSkipped(), int64(ref.afterDeath); got != want {
					t.Errorf("skipped %d rows (%s), want only the %d after death", got, out.stats.SkippedSummary(), want)
				}
				if rg[0] == "1900-01" && len(out.events) == 0 {
					t.Error("no events from the whole export")
				}
			})
		}
	}
}

// TestSharedDataDefaultBudget runs the whole Nebraska export with the SDK's default error
// budget: a real export must not trip it.
func TestSharedDataDefaultBudget(t *testing.T) {
	dir := sharedData(t, "synthea_csv_unmc_ne111/csv")
	out, err := extract(t, month(t, "1930-01"), month(t, "2024-12"), map[string]string{"dir": dir})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	methods := map[string]int{}
	for _, e := range out.events {
		kinds[e.Kind]++
		if e.Kind == formats.KindAdmission {
			methods[e.Method]++
		}
	}
	// The counts of the README's worked example.
	want := map[string]int{"consultation": 6050, "outpatient_attendance": 1198, "ae_attendance": 250, "admission": 49}
	for k, n := range want {
		if kinds[k] != n {
			t.Errorf("%s: got %d, want %d", k, kinds[k], n)
		}
	}
	if methods["emergency"] != 13 || methods["elective"] != 1 || methods["unknown"] != 35 {
		t.Errorf("admission methods: got %v, want emergency 13, elective 1, unknown 35", methods)
	}
	if len(out.regs) != 111 {
		t.Errorf("registrations: got %d, want 111", len(out.regs))
	}
}
