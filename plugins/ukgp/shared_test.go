package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/testenv"
	"github.com/tributary-health/tributary/plugins/sdk/sdktest"
)

// The shared sets: two OpenSAFELY-shaped (ehrQL, TPP table names) and NHS Digital's artificial
// HES APC, which TestHESAgainstPlainReading turns into an export around it.
const (
	setDementia = "uk_opensafely_dummy_dementia1000"
	setExample  = "uk_opensafely_ehrql_example100"
	setHES      = "uk_nhs_artificial_hes_apc_0102"
)

// plainRead is the mapping of README.md written again from the shared files with encoding/csv
// and time.Parse, sharing no code with the extractor: what it must send for the months
// from..to, and what it must count as not sent.
type plainRead struct {
	regs, events []string // rendered rows, sorted
	// not sent, by file: before birth, after death, outside registration, patient unknown
	beforeBirth, afterDeath, outside, unknown map[string]int
}

type plainPatient struct {
	key          string
	sex          string
	birth, death time.Time // death zero when alive
	spells       [][2]time.Time
}

func readAll(t *testing.T, path string) (map[string]int, [][]string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	return col, rows[1:]
}

func day(s string) (time.Time, bool) {
	d, err := time.Parse("2006-01-02", s)
	return d, err == nil
}

const noEnd = "open"

func plainKey(salt, id string) string {
	m := hmac.New(sha256.New, []byte(salt))
	m.Write([]byte("ukgp patient\x00" + id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:16])
}

func plain(t *testing.T, dir, practice, salt string, patientDays bool, from, to formats.Month) plainRead {
	t.Helper()
	first := from.Start()
	end := (to + 1).Start() // exclusive
	in := func(d time.Time) bool { return !d.Before(first) && d.Before(end) }
	out := plainRead{beforeBirth: map[string]int{}, afterDeath: map[string]int{}, outside: map[string]int{}, unknown: map[string]int{}}

	patients := map[string]*plainPatient{}
	var order []string
	col, rows := readAll(t, filepath.Join(dir, "patients.csv"))
	for _, r := range rows {
		p := &plainPatient{key: plainKey(salt, r[col["patient_id"]])}
		patients[r[col["patient_id"]]] = p // a skipped patient is still known (nil birth: bad)
		b, ok := day(r[col["date_of_birth"]])
		if !ok {
			p.key = ""
			continue
		}
		p.birth = b
		if c, has := col["date_of_death"]; has && r[c] != "" {
			d, ok := day(r[c])
			if !ok || d.Before(b) {
				p.key = ""
				continue
			}
			p.death = d
		}
		switch r[col["sex"]] {
		case "female", "male":
			p.sex = r[col["sex"]]
		default:
			p.sex = "unknown"
		}
		order = append(order, r[col["patient_id"]])
	}

	col, rows = readAll(t, filepath.Join(dir, "practice_registrations.csv"))
	for _, r := range rows {
		if practice != "" && r[col["practice_pseudo_id"]] != practice {
			continue
		}
		p := patients[r[col["patient_id"]]]
		if p == nil || p.key == "" {
			continue
		}
		s, ok := day(r[col["start_date"]])
		if !ok {
			continue
		}
		e := time.Time{} // zero: open
		if c, has := col["end_date"]; has && r[c] != "" {
			if e, ok = day(r[c]); !ok || e.Before(s) {
				continue
			}
			e = e.AddDate(0, 0, 1)
		}
		p.spells = append(p.spells, [2]time.Time{s, e})
	}
	after := func(a, b time.Time) bool { // a later than b, zero meaning no end
		switch {
		case a.IsZero():
			return !b.IsZero()
		case b.IsZero():
			return false
		}
		return a.After(b)
	}
	for _, id := range order {
		p := patients[id]
		sort.Slice(p.spells, func(i, j int) bool { return p.spells[i][0].Before(p.spells[j][0]) })
		var merged [][2]time.Time
		for _, s := range p.spells {
			if n := len(merged); n > 0 && (merged[n-1][1].IsZero() || !s[0].After(merged[n-1][1])) {
				if after(s[1], merged[n-1][1]) {
					merged[n-1][1] = s[1]
				}
				continue
			}
			merged = append(merged, s)
		}
		p.spells = nil
		for _, s := range merged {
			if !p.death.IsZero() {
				if s[0].After(p.death) {
					continue
				}
				if stop := p.death.AddDate(0, 0, 1); s[1].IsZero() || s[1].After(stop) {
					s[1] = stop
				}
			}
			if s[0].Before(p.birth) {
				s[0] = p.birth
				if !s[1].IsZero() && !s[1].After(s[0]) {
					continue
				}
			}
			p.spells = append(p.spells, s)
			if !s[0].Before(end) || !s[1].IsZero() && !s[1].After(first) {
				continue
			}
			stop := noEnd
			if !s[1].IsZero() {
				stop = s[1].Format("2006-01-02")
			}
			out.regs = append(out.regs, fmt.Sprintf("%s %s %s %s %s", p.key, p.sex, p.birth.Format("2006-01"), s[0].Format("2006-01-02"), stop))
		}
	}

	// admit applies the event rules in order; true: send it.
	admit := func(file, id string, d time.Time) *plainPatient {
		p := patients[id]
		switch {
		case p == nil:
			out.unknown[file]++
		case p.key == "":
		case d.Before(p.birth):
			out.beforeBirth[file]++
		case !p.death.IsZero() && d.After(p.death):
			out.afterDeath[file]++
		default:
			for _, s := range p.spells {
				if !d.Before(s[0]) && (s[1].IsZero() || d.Before(s[1])) {
					return p
				}
			}
			out.outside[file]++
		}
		return nil
	}
	icd := func(v string) string {
		v = strings.ToUpper(strings.ReplaceAll(v, ".", ""))
		if len(v) == 4 && v[3] == 'X' {
			v = v[:3]
		}
		if len(v) < 3 || v[0] < 'A' || v[0] > 'Z' || v[1] < '0' || v[1] > '9' {
			return ""
		}
		return " dx icd10:" + v
	}
	method := func(v string) string {
		switch {
		case slices.Contains([]string{"11", "12", "13"}, v):
			return "elective"
		case slices.Contains([]string{"21", "22", "23", "24", "25", "2A", "2B", "2C", "2D", "28"}, v):
			return "emergency"
		case v == "" || v == "98" || v == "99" || v == "9":
			return "unknown"
		}
		return "other"
	}

	if _, err := os.Stat(filepath.Join(dir, "apcs.csv")); err == nil {
		col, rows = readAll(t, filepath.Join(dir, "apcs.csv"))
		pid, adm, dis, meth, dx := "patient_id", "admission_date", "discharge_date", "admission_method", "primary_diagnosis"
		_, hes := col["ADMIDATE"]
		if hes {
			pid, adm, dis, meth, dx = "PSEUDO_HESID", "ADMIDATE", "DISDATE", "ADMIMETH", "DIAG_4_01"
		}
		for _, r := range rows {
			if hes && r[col["FAE"]] != "1" {
				continue
			}
			s, ok := day(r[col[adm]])
			if !ok {
				continue
			}
			stop := "open"
			e, hasEnd := day(r[col[dis]])
			if r[col[dis]] != "" && (!hasEnd || e.Before(s)) {
				continue
			}
			if hasEnd {
				stop = e.Format("2006-01-02")
			}
			if !in(s) && !(hasEnd && in(e)) {
				continue
			}
			p := admit("apcs.csv", r[col[pid]], s)
			if p == nil {
				continue
			}
			d := ""
			if v := r[col[dx]]; v != "" {
				d = icd(v)
			}
			out.events = append(out.events, fmt.Sprintf("%s admission %s..%s %s%s", p.key, s.Format("2006-01-02"), stop, method(r[col[meth]]), d))
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "emergency_care_attendances.csv")); err == nil {
		col, rows = readAll(t, filepath.Join(dir, "emergency_care_attendances.csv"))
		for _, r := range rows {
			s, ok := day(r[col["arrival_date"]])
			if !ok || !in(s) {
				continue
			}
			if p := admit("emergency_care_attendances.csv", r[col["patient_id"]], s); p != nil {
				// The shared set's diagnosis_01 values (A1111 ...) are not SNOMED CT codes.
				out.events = append(out.events, fmt.Sprintf("%s ae_attendance %s", p.key, s.Format("2006-01-02")))
			}
		}
	}
	if patientDays {
		col, rows = readAll(t, filepath.Join(dir, "clinical_events.csv"))
		seen := map[string]bool{}
		for _, r := range rows {
			s, ok := day(r[col["date"]])
			if !ok || !in(s) || seen[r[col["patient_id"]]+" "+r[col["date"]]] {
				continue
			}
			if p := admit("clinical_events.csv", r[col["patient_id"]], s); p != nil {
				seen[r[col["patient_id"]]+" "+r[col["date"]]] = true
				out.events = append(out.events, fmt.Sprintf("%s consultation %s", p.key, s.Format("2006-01-02")))
			}
		}
	}
	sort.Strings(out.regs)
	sort.Strings(out.events)
	return out
}

// rendered renders the extractor's rows as plain does.
func rendered(rec *sdktest.Recording) (regs, events []string) {
	for _, r := range rec.Registrations {
		to := noEnd
		if r.To != formats.NoEnd {
			to = r.To.String()
		}
		regs = append(regs, fmt.Sprintf("%s %s %s %s %s", r.PatientKey, r.Sex, r.BirthMonth, r.From, to))
	}
	for _, e := range rec.Events {
		events = append(events, sdktest.EventString(e.PatientKey, e))
	}
	sort.Strings(regs)
	sort.Strings(events)
	return regs, events
}

// compare fails t with the first differences between the extractor's rows and the plain
// reading's, and checks the counts the extractor logged.
func compare(t *testing.T, rec *sdktest.Recording, want plainRead) {
	t.Helper()
	regs, events := rendered(rec)
	diff := func(what string, got, want []string) {
		if slices.Equal(got, want) {
			return
		}
		g, w := map[string]int{}, map[string]int{}
		for _, s := range got {
			g[s]++
		}
		for _, s := range want {
			w[s]++
		}
		var lines []string
		for s, n := range g {
			if w[s] != n {
				lines = append(lines, fmt.Sprintf("  extractor %d, plain reading %d: %s", n, w[s], s))
			}
		}
		for s, n := range w {
			if _, ok := g[s]; !ok {
				lines = append(lines, fmt.Sprintf("  extractor 0, plain reading %d: %s", n, s))
			}
		}
		sort.Strings(lines)
		if len(lines) > 10 {
			lines = append(lines[:10], fmt.Sprintf("  … %d more", len(lines)-10))
		}
		t.Errorf("%s: the extractor sent %d, the plain reading expects %d:\n%s", what, len(got), len(want), strings.Join(lines, "\n"))
	}
	diff("registrations", regs, want.regs)
	diff("events", events, want.events)
	for _, c := range []struct {
		what string
		by   map[string]int
	}{
		{"events before the patient's birth were not sent", want.beforeBirth},
		{"events after the patient's death were not sent", want.afterDeath},
		{"events outside the patient's registration at the practice were not sent", want.outside},
	} {
		for file, n := range c.by {
			if line := fmt.Sprintf("%s: file=%s count=%d", c.what, file, n); !strings.Contains(rec.Log, line) {
				t.Errorf("the log does not say %q:\n%s", line, rec.Log)
			}
		}
	}
}

// TestAgainstPlainReading: on both OpenSAFELY-shaped sets, with a practice code and without,
// over all their years and over a few years (stays crossing the edges), the extractor sends
// exactly the registrations and events that the mapping, read again with plain CSV code,
// gives, and counts what it leaves out (before birth, after death, outside registration).
func TestAgainstPlainReading(t *testing.T) {
	cases := []struct {
		set, practice string
		patientDays   bool
		from, to      string
	}{
		{setDementia, "", true, "1900-01", "2025-12"},
		{setDementia, "1", true, "1900-01", "2025-12"},
		{setDementia, "10", false, "2016-01", "2019-06"},
		{setDementia, "", false, "2014-02", "2016-12"},
		{setExample, "", true, "1900-01", "2025-12"},
		{setExample, "79802", true, "2020-01", "2024-12"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s/practice=%s/%s..%s", c.set, c.practice, c.from, c.to), func(t *testing.T) {
			dir := testenv.SharedData(t, c.set)
			// A few bad rows of patients.csv and practice_registrations.csv (death before
			// birth, a spell ending before it starts) are skipped whatever the months: over
			// a few months at one practice they are more than 1% of the rows.
			config := map[string]string{keyDir: dir, keyPracticeCode: c.practice, keyKeySalt: "plain", "max_skipped_fraction": "0.05"}
			if c.patientDays {
				config[keyClinicalEvents] = clinicalPatientDays
			}
			from, to := month(t, c.from), month(t, c.to)
			rec := sdktest.Extract(t, Extractor{}, from, to, config)
			want := plain(t, dir, c.practice, "plain", c.patientDays, from, to)
			if len(want.regs) == 0 {
				t.Fatal("the plain reading finds no registration: the case tests nothing")
			}
			compare(t, rec, want)
			t.Logf("%d registrations, events %v; not sent: before birth %v, after death %v, outside registration %v, patient unknown %v",
				len(rec.Registrations), rec.EventCounts(), want.beforeBirth, want.afterDeath, want.outside, want.unknown)
		})
	}
}

// TestAdmissionsAfterDeathAndBeforeBirth pins what the dementia set holds: over all its years
// and every practice, 9 admissions after the patient's death and 2 before birth, 11 A&E
// attendances after death; none is sent, each is counted in the log.
func TestAdmissionsAfterDeathAndBeforeBirth(t *testing.T) {
	dir := testenv.SharedData(t, setDementia)
	rec := sdktest.Extract(t, Extractor{}, month(t, "1900-01"), month(t, "2025-12"), map[string]string{keyDir: dir})
	for _, line := range []string{
		"events after the patient's death were not sent: file=apcs.csv count=9",
		"events before the patient's birth were not sent: file=apcs.csv count=2",
		"events after the patient's death were not sent: file=emergency_care_attendances.csv count=11",
	} {
		if !strings.Contains(rec.Log, line) {
			t.Errorf("the log does not say %q:\n%s", line, rec.Log)
		}
	}
	// Counted, not skipped: they are facts about the records, not unreadable rows.
	for reason := range rec.Stats.Skipped {
		if strings.Contains(reason, "death") && !strings.Contains(reason, "date_of_death") || strings.Contains(reason, "birth") && !strings.Contains(reason, "date_of_birth") {
			t.Errorf("skipped for %q", reason)
		}
	}
}

// TestHESAgainstPlainReading: NHS Digital's artificial HES APC extract read as apcs.csv (its
// header tells the layout), around a patients table and registrations the test writes from
// its PSEUDO_HESID, MYDOB and SEX: admissions are first episodes (FAE = 1), ADMIMETH through
// the NHS codes, DIAG_4_01 the diagnosis; admissions before the birth month are counted.
func TestHESAgainstPlainReading(t *testing.T) {
	src := filepath.Join(testenv.SharedData(t, setHES), "artificial_hes_apc_0102.csv")
	dir := t.TempDir()
	if err := os.Symlink(src, filepath.Join(dir, "apcs.csv")); err != nil {
		t.Fatal(err)
	}
	col, rows := readAll(t, src)
	var pat, reg [][]string
	seen := map[string]bool{}
	for _, r := range rows {
		id := r[col["PSEUDO_HESID"]]
		if seen[id] {
			continue
		}
		seen[id] = true
		dob := r[col["MYDOB"]] // MMYYYY
		sex := map[string]string{"1": "male", "2": "female"}[r[col["SEX"]]]
		pat = append(pat, []string{id, dob[2:] + "-" + dob[:2] + "-01", sex, ""})
		reg = append(reg, []string{id, "1990-01-01", "", "P1"})
	}
	write := func(name string, header []string, rows [][]string) {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		w := csv.NewWriter(f)
		w.Write(header)
		w.WriteAll(rows)
		if err := f.Close(); err != nil || w.Error() != nil {
			t.Fatal(err, w.Error())
		}
	}
	write("patients.csv", []string{"patient_id", "date_of_birth", "sex", "date_of_death"}, pat)
	write("practice_registrations.csv", []string{"patient_id", "start_date", "end_date", "practice_pseudo_id"}, reg)
	from, to := month(t, "2001-04"), month(t, "2002-03")
	rec := sdktest.Extract(t, Extractor{}, from, to, map[string]string{keyDir: dir, keyPracticeCode: "P1", keyKeySalt: "plain"})
	want := plain(t, dir, "P1", "plain", false, from, to)
	compare(t, rec, want)
	counts := rec.EventCounts()
	if counts["admission/emergency"] == 0 || counts["admission/elective"] == 0 || counts["admission/other"] == 0 {
		t.Errorf("admission methods %v: want emergency, elective and other from ADMIMETH", counts)
	}
	if want.beforeBirth["apcs.csv"] == 0 {
		t.Error("the HES set has admissions before the birth month; the plain reading found none")
	}
	if !strings.Contains(rec.Log, "HES episodes that do not start a spell") {
		t.Errorf("the log does not count the later episodes:\n%s", rec.Log)
	}
	t.Logf("%d patients, admissions %v, before birth %d; log:\n%s", len(pat), counts, want.beforeBirth["apcs.csv"], rec.Log)
}
