package main

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/agent/aggregate"
	"github.com/tributary-health/tributary/formats"
)

// TestBuiltinMeasuresSynthea runs the extractor over the shared Synthea exports into the
// agent's aggregator with the built-in definitions, and compares each built-in measure that
// reads diagnoses or a rule with a count made here from the raw CSV files (REASONCODE as the
// primary diagnosis) and the published SNOMED CT lists.
func TestBuiltinMeasuresSynthea(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	const from, to = "1900-01", "2030-12"
	var acscTotal int64
	for _, set := range []string{"synthea_csv_unmc_ne111/csv", "synthea_csv_mcode_ma115/csv", "synthea_csv_ablack3_ma107/csv"} {
		dir := sharedData(t, set)
		out, err := extract(t, month(t, from), month(t, to), map[string]string{"dir": dir, "max_skipped_fraction": "1"})
		if err != nil {
			t.Fatal(err)
		}
		a := aggregate.New(month(t, from), month(t, to))
		for _, r := range out.regs {
			a.Registration(r)
		}
		for _, e := range out.events {
			a.Event(e)
		}
		desc := Extractor{}.Describe()
		s := aggregate.Supplies{Registrations: true, Methods: desc.Methods, Discharges: desc.Discharges, EventKinds: map[string]bool{}, Diagnoses: map[string]bool{}}
		for _, k := range desc.EventKinds {
			s.EventKinds[k] = true
		}
		for _, d := range desc.Diagnoses {
			s.Diagnoses[d] = true
		}
		res := a.Finish(s)

		want := independentSynthea(t, dir, london)
		for _, measure := range []string{"acsc_chronic_emergency", "acute_not_usually_admitted", "readmissions_emergency_30d", "ae_frequent_attenders"} {
			if !slices.Contains(res.Measures, measure) {
				t.Errorf("%s: %s absent (%v)", set, measure, res.Absent)
				continue
			}
			got := map[string]int64{}
			var gotN, wantN int64
			for mo := res.From; mo <= res.To; mo++ {
				if n := res.Total(mo, measure); n != 0 {
					got[mo.String()] = n
					gotN += n
				}
			}
			for _, n := range want[measure] {
				wantN += n
			}
			if measure == "acsc_chronic_emergency" {
				acscTotal += wantN
			}
			t.Logf("%s: %s: agent %d, independent count %d", strings.Split(set, "/")[0], measure, gotN, wantN)
			for _, mo := range unionKeys(got, want[measure]) {
				if got[mo] != want[measure][mo] {
					t.Errorf("%s: %s %s: agent %d, independent %d", set, measure, mo, got[mo], want[measure][mo])
				}
			}
		}
	}
	if acscTotal == 0 {
		t.Error("no chronic ACSC admission in any set: the comparison shows nothing")
	}
}

func unionKeys(a, b map[string]int64) []string {
	var out []string
	for k := range a {
		out = append(out, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// independentSynthea counts the built-in measures from encounters.csv and patients.csv:
// the README's mapping (class to kind, the 24-hour emergency rule, London days, no Death
// Certification, nothing after death or before birth, registered from birth to death), the
// published SNOMED CT lists matched exactly on REASONCODE, 30-day readmissions and frequent
// attenders by their definitions.
func independentSynthea(t *testing.T, dir string, loc *time.Location) map[string]map[string]int64 {
	snomed := func(measure string) map[string]bool {
		d, _ := formats.BuiltinDefinition(measure)
		out := map[string]bool{}
		for _, l := range d.Codes {
			if l.System == formats.DiagnosisSNOMED {
				for _, c := range l.Codes {
					out[c] = true
				}
			}
		}
		return out
	}
	chronic, acute := snomed("acsc_chronic_emergency"), snomed("acute_not_usually_admitted")
	type person struct{ birth, death string }
	people := map[string]person{}
	for _, p := range readAll(t, filepath.Join(dir, "patients.csv")) {
		people[p["Id"]] = person{p["BIRTHDATE"], p["DEATHDATE"]}
	}
	encs := readAll(t, filepath.Join(dir, "encounters.csv"))
	emergencies := map[string][]time.Time{}
	for _, e := range encs {
		if e["ENCOUNTERCLASS"] == "emergency" {
			s, _ := time.Parse(time.RFC3339, e["START"])
			emergencies[e["PATIENT"]] = append(emergencies[e["PATIENT"]], s)
		}
	}
	type stay struct {
		start, stop string // London days
		emergency   bool
		code        string
	}
	stays := map[string][]stay{}
	attend := map[string][]string{} // A&E days by patient
	for _, e := range encs {
		kind := refKinds[e["ENCOUNTERCLASS"]]
		if kind != "admission" && kind != "ae_attendance" {
			continue
		}
		start, _ := time.Parse(time.RFC3339, e["START"])
		stop, _ := time.Parse(time.RFC3339, e["STOP"])
		startDay, stopDay := start.In(loc).Format("2006-01-02"), stop.In(loc).Format("2006-01-02")
		p := people[e["PATIENT"]]
		if e["DESCRIPTION"] == "Death Certification" || (p.death != "" && startDay > p.death) || startDay < p.birth {
			continue
		}
		if startDay[:7] < p.birth[:7] {
			continue
		}
		if kind == "ae_attendance" {
			attend[e["PATIENT"]] = append(attend[e["PATIENT"]], startDay)
			continue
		}
		emergency := false
		for _, em := range emergencies[e["PATIENT"]] {
			if d := start.Sub(em); d >= 0 && d <= 24*time.Hour {
				emergency = true
			}
		}
		if !emergency && strings.Contains(strings.ToLower(e["DESCRIPTION"]), "emergency") {
			emergency = true
		}
		stays[e["PATIENT"]] = append(stays[e["PATIENT"]], stay{startDay, stopDay, emergency, e["REASONCODE"]})
	}
	out := map[string]map[string]int64{"acsc_chronic_emergency": {}, "acute_not_usually_admitted": {}, "readmissions_emergency_30d": {}, "ae_frequent_attenders": {}}
	for _, ss := range stays {
		for _, s := range ss {
			if !s.emergency {
				continue
			}
			if chronic[s.code] {
				out["acsc_chronic_emergency"][s.start[:7]]++
			}
			if acute[s.code] {
				out["acute_not_usually_admitted"][s.start[:7]]++
			}
			for _, o := range ss {
				so, _ := time.Parse("2006-01-02", o.stop)
				st, _ := time.Parse("2006-01-02", s.start)
				if o.start < s.start && o.stop <= s.start && st.Sub(so) <= 30*24*time.Hour {
					out["readmissions_emergency_30d"][s.start[:7]]++
					break
				}
			}
		}
	}
	for _, days := range attend {
		months := map[string]bool{}
		for _, d := range days {
			months[d[:7]] = true
		}
		for mo := range months {
			m, _ := time.Parse("2006-01", mo)
			lo := m.AddDate(0, -11, 0).Format("2006-01")
			n := 0
			for _, d := range days {
				if d[:7] >= lo && d[:7] <= mo {
					n++
				}
			}
			if n >= 4 {
				out["ae_frequent_attenders"][mo]++
			}
		}
	}
	return out
}
