package query_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/csv"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/figures"
	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/coordinator/query"
	"github.com/tributary-health/tributary/coordinator/registry"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

type cell struct {
	month              string
	measure, band, sex string
	n                  int64
}

func month(s string) formats.Month {
	m, err := formats.ParseMonth(s)
	if err != nil {
		panic(err)
	}
	return m
}

// run is the complete submission of a run over from..to under the UK policy: every measure a
// cell names, zero wherever no cell gives a count.
func run(practice, runID, from, to string, cells ...cell) *formats.Submission {
	type key struct {
		m       formats.Month
		measure string
		b, x    int
	}
	counts := map[key]int64{}
	var measures []string
	for _, c := range cells {
		counts[key{month(c.month), c.measure, formats.AgeBandIndex(c.band), slices.Index(formats.Sexes, c.sex)}] += c.n
		if !slices.Contains(measures, c.measure) {
			measures = append(measures, c.measure)
		}
	}
	slices.SortFunc(measures, formats.CompareMeasures)
	return fedgen.Publish(formats.PolicyUK, practice, runID, month(from), month(to), measures, func(m formats.Month, measure string, b, x int) int64 {
		return counts[key{m, measure, b, x}]
	})
}

// withhold marks a value of s withheld, as the agent's disclosure audit may.
func withhold(s *formats.Submission, period, measure, band, sex string) {
	for i, c := range s.Cells {
		if c.Period.String() == period && c.Measure == measure && c.AgeBand == band && c.Sex == sex {
			s.Cells[i].Protected = formats.Protected{Status: formats.StatusWithheld}
			return
		}
	}
	panic("no such value")
}

// fixture is a store with two practices' hand-made runs:
//
//	A, 2024-01: admissions 0-4 female 12 (10, 8-12), 5-9 male 3 (suppressed, 1-7), total 15 (13-17);
//	            registered 0-4 female 100, 5-9 male 200
//	A, 2024-02: admissions 0-4 female 30; registered as in January
//	A, both:    consultations 0-4 female 40 and 45; February's total and 0-4 margin withheld
//	B, 2024-01: admissions 0-4 female 20; registered 0-4 female 50
//	B, 2024-02: admissions 0-4 female 10; registered 0-4 female 50
type fixture struct {
	ctx   context.Context
	st    objstore.Store
	coord ed25519.PrivateKey
	keys  map[string]ed25519.PrivateKey
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := objstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, coord, _ := formats.GenerateKey()
	f := &fixture{ctx: ctx, st: st, coord: coord, keys: map[string]ed25519.PrivateKey{}}
	adm, rp, cons := formats.Admissions, formats.RegisteredPatients, formats.Consultations
	a := run("A81001", "20240301T000000Z-0000000a", "2024-01", "2024-02",
		cell{"2024-01", adm, "0-4", "female", 12}, cell{"2024-01", adm, "5-9", "male", 3},
		cell{"2024-01", rp, "0-4", "female", 100}, cell{"2024-01", rp, "5-9", "male", 200},
		cell{"2024-02", adm, "0-4", "female", 30}, cell{"2024-02", rp, "0-4", "female", 100}, cell{"2024-02", rp, "5-9", "male", 200},
		cell{"2024-01", cons, "0-4", "female", 40}, cell{"2024-02", cons, "0-4", "female", 45})
	withhold(a, "2024-02", cons, formats.All, formats.All)
	withhold(a, "2024-02", cons, "0-4", formats.All)
	b := run("B82002", "20240302T000000Z-0000000b", "2024-01", "2024-02",
		cell{"2024-01", adm, "0-4", "female", 20}, cell{"2024-01", rp, "0-4", "female", 50},
		cell{"2024-02", adm, "0-4", "female", 10}, cell{"2024-02", rp, "0-4", "female", 50})
	for _, s := range []*formats.Submission{a, b} {
		pub, priv, _ := formats.GenerateKey()
		f.keys[s.Practice] = priv
		if _, err := registry.Add(ctx, st, coord, s.Practice, "Surgery "+s.Practice, pub, time.Now()); err != nil {
			t.Fatal(err)
		}
		f.write(t, s, time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC))
	}
	f.combine(t)
	return f
}

func (f *fixture) write(t *testing.T, s *formats.Submission, created time.Time) {
	t.Helper()
	if _, err := fedgen.WriteSubmission(f.ctx, f.st, f.keys[s.Practice], created, s); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) combine(t *testing.T) *combine.Result {
	t.Helper()
	res, err := combine.Run(f.ctx, f.st, f.coord.Public().(ed25519.PublicKey), combine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Report.Quarantined) != 0 {
		t.Fatalf("quarantine: %+v", res.Report.Quarantined)
	}
	return res
}

func combined(t *testing.T) *query.Combined {
	t.Helper()
	f := newFixture(t)
	c, err := query.Open(f.ctx, f.st)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const header = "count,lower,upper,status,method,published_sum,list_size,rate_per_1000,rate_lower,rate_upper,dsr_per_1000,dsr_at_lower,dsr_at_upper,practices,note"

// TestQueryCSV asks the CLI's questions and checks every figure worked out by hand. The
// directly standardised rate, where there is one, is checked for lying within its bounds.
func TestQueryCSV(t *testing.T) {
	c := combined(t)
	adm, rp := formats.Admissions, formats.RegisteredPatients
	jan, feb := month("2024-01"), month("2024-02")
	tests := []struct {
		name   string
		req    query.Request
		header string
		rows   []string // "DSR" stands for the three DSR columns, which must be filled
	}{
		// January: A's total 15 (13-17) and B's 20 (18-22); lists 300 (298-302) and
		// 50 (48-52). February: A's 30 (28-32) and B's 10 (8-12), the same lists.
		{"by month", query.Request{Measures: []string{adm}, By: []string{query.ByMonth}}, "period,measure," + header, []string{
			"2024-01,admissions,35,31,39,rounded,published,35,350,100.000,87.571,112.717,DSR,2,",
			"2024-02,admissions,40,36,44,rounded,published,40,350,114.286,101.695,127.168,DSR,2,",
		}},
		// Without a breakdown by month, one row covers the whole period.
		{"whole period", query.Request{Measures: []string{adm}}, "period,measure," + header, []string{
			"2024-01..2024-02,admissions,75,67,83,rounded,published,75,350,214.286,189.266,239.884,DSR,2,",
		}},
		// One row per practice and measure over the period; the list size is the mean over
		// its months, the registered patients' own count patient-months.
		{"by practice over a period", query.Request{Measures: []string{adm, rp}, From: jan, To: feb, By: []string{query.ByPractice}},
			"period,measure,practice," + header, []string{
				"2024-01..2024-02,admissions,A81001,45,41,49,rounded,published,45,300,150.000,135.762,164.430,DSR,1,",
				"2024-01..2024-02,registered_patients,A81001,600,596,604,rounded,published,600,,,,,,,,1,",
				"2024-01..2024-02,admissions,B82002,30,26,34,rounded,published,30,50,600.000,500.000,708.333,DSR,1,",
				"2024-01..2024-02,registered_patients,B82002,100,96,104,rounded,published,100,,,,,,,,1,",
			}},
		{"by month and practice", query.Request{Measures: []string{adm}, By: []string{query.ByMonth, query.ByPractice}},
			"period,measure,practice," + header, []string{
				"2024-01,admissions,A81001,15,13,17,rounded,published,15,300,50.000,43.046,57.047,DSR,1,",
				"2024-02,admissions,A81001,30,28,32,rounded,published,30,300,100.000,92.715,107.383,DSR,1,",
				"2024-01,admissions,B82002,20,18,22,rounded,published,20,50,400.000,346.154,458.333,DSR,1,",
				"2024-02,admissions,B82002,10,8,12,rounded,published,10,50,200.000,153.846,250.000,DSR,1,",
			}},
		// A's 5-9 male is suppressed and B's is 0: the federation's figure is a small count
		// the policy itself withholds, shown by its bounds only.
		{"by age band and sex", query.Request{Measures: []string{adm}, From: jan, To: jan, By: []string{query.ByAgeBand, query.BySex}},
			"period,measure,age_band,sex," + header, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.Run(tc.req)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := res.Write(&buf, query.FormatCSV); err != nil {
				t.Fatal(err)
			}
			recs, err := csv.NewReader(bytes.NewReader(buf.Bytes())).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(recs[0], ","); got != tc.header {
				t.Errorf("header %q, want %q", got, tc.header)
			}
			if len(recs)-1 != len(res.Rows) {
				t.Errorf("%d CSV rows for %d result rows", len(recs)-1, len(res.Rows))
			}
			if tc.rows != nil && len(recs)-1 != len(tc.rows) {
				t.Fatalf("got\n%s\nwant %d rows", buf.String(), len(tc.rows))
			}
			for i, want := range tc.rows {
				rec := slices.Clone(recs[i+1])
				if strings.Contains(want, ",DSR,") {
					d := slices.Index(recs[0], "dsr_per_1000")
					dsr, lo, hi := num(t, rec[d]), num(t, rec[d+1]), num(t, rec[d+2])
					if !(lo <= dsr && dsr <= hi) {
						t.Errorf("row %d: DSR %v outside %v-%v", i, dsr, lo, hi)
					}
					rec = slices.Replace(rec, d, d+3, "DSR")
				}
				if got := strings.Join(rec, ","); got != want {
					t.Errorf("row %d:\ngot  %s\nwant %s", i, got, want)
				}
			}
			if tc.name == "by age band and sex" {
				if len(res.Rows) != formats.NumFine {
					t.Errorf("%d rows by age band and sex, want %d", len(res.Rows), formats.NumFine)
				}
				for _, line := range []string{
					"2024-01,admissions,0-4,female,30,26,34,rounded,published,30,150,200.000,168.831,232.877,,,,2,",
					"2024-01,admissions,0-4,male,0,0,0,rounded,published,0,0,,,,,,,2,",
					"2024-01,admissions,5-9,male,,1,7,suppressed,estimated,0,200,,4.950,35.354,,,,2,",
				} {
					if !strings.Contains(buf.String(), line+"\n") {
						t.Errorf("no line %q in\n%s", line, buf.String())
					}
				}
			}
		})
	}
}

func num(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("%q is not a number", s)
	}
	return v
}

// TestQueryFormats writes one result as JSON, a table and CSV: the same rows, nulls shown as
// such, and a note printed once under the table.
func TestQueryFormats(t *testing.T) {
	c := combined(t)
	res, err := c.Run(query.Request{Measures: []string{formats.Admissions, formats.Consultations}, By: []string{query.ByMonth, query.ByAgeBand}})
	if err != nil {
		t.Fatal(err)
	}
	// 2 months × 2 measures × 19 bands.
	if len(res.Rows) != 2*2*formats.NumBands || !slices.Equal(res.By, []string{query.ByAgeBand}) || res.Policy != formats.PolicyUK.Name {
		t.Fatalf("%d rows by %v under %s", len(res.Rows), res.By, res.Policy)
	}
	var js bytes.Buffer
	if err := res.Write(&js, query.FormatJSON); err != nil {
		t.Fatal(err)
	}
	var back query.Result
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Rows) != len(res.Rows) || back.Combined != c.Pointer.ID || !slices.Equal(back.By, res.By) {
		t.Fatalf("%d JSON rows (combined %q, by %v), want %d", len(back.Rows), back.Combined, back.By, len(res.Rows))
	}
	// 5-9 in January is A's suppressed value and B's 0: withheld, with its bounds.
	r := back.Rows[1]
	if r.Period != "2024-01" || r.Measure != formats.Admissions || r.AgeBand != "5-9" || r.Count != nil || r.Status != formats.StatusSuppressed ||
		r.Lower != 1 || r.Upper != 7 || r.Method != figures.MethodEstimated || r.From != "2024-01" || r.To != "2024-01" {
		t.Errorf("JSON row %+v, want January 5-9 suppressed 1-7 with a null count", r)
	}
	if !bytes.Contains(js.Bytes(), []byte(`"count": null`)) {
		t.Error("the JSON shows no null count")
	}

	var tbl bytes.Buffer
	if err := res.Write(&tbl, query.FormatTable); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(tbl.String(), "\n"), "\n")
	head := strings.Fields(lines[0])
	if head[0] != "period" || head[2] != "age_band" || head[3] != "count" || slices.Contains(head, "note") {
		t.Errorf("table header %q", lines[0])
	}
	if f := strings.Fields(lines[2]); f[1] != formats.Admissions || f[2] != "5-9" || f[3] != "-" || f[6] != "suppressed" {
		t.Errorf("table row for the suppressed value: %q", lines[2])
	}
	// February's consultations in 0-4 fell back to finer values at A, where the band's
	// margin was withheld: its row carries a note, which the table prints under it.
	var notes []string
	for _, l := range lines[1:] {
		if n, ok := strings.CutPrefix(l, "note: "); ok {
			notes = append(notes, n)
		}
	}
	if len(lines) != 1+len(res.Rows)+len(notes) || len(notes) != 1 || !strings.Contains(notes[0], "finer values") {
		t.Errorf("table of %d rows has %d lines and notes %q:\n%s", len(res.Rows), len(lines), notes, tbl.String())
	}

	var cs bytes.Buffer
	if err := res.Write(&cs, query.FormatCSV); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&cs).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(recs[0], res.Columns()) || recs[0][0] != "period" || len(recs) != 1+len(res.Rows) {
		t.Fatalf("CSV header %v, %d records", recs[0], len(recs))
	}
	noted := 0
	for i, rec := range recs[1:] {
		row := res.Rows[i]
		if rec[len(rec)-1] != row.Note {
			t.Errorf("CSV row %d's note %q, want %q", i, rec[len(rec)-1], row.Note)
		}
		if row.Note != "" {
			noted++
			if row.Period != "2024-02" || row.Measure != formats.Consultations || row.AgeBand != "0-4" {
				t.Errorf("a note on %+v; only A's February consultations in 0-4 fell back", row)
			}
		}
	}
	if noted != 1 {
		t.Errorf("%d rows with a note, want 1", noted)
	}
	if err := res.Write(&tbl, "xml"); err == nil || !strings.Contains(err.Error(), "table, csv, json") {
		t.Errorf("unknown format: %v", err)
	}
}

func TestQueryErrors(t *testing.T) {
	c := combined(t)
	tests := []struct {
		req  query.Request
		want string
	}{
		{query.Request{Measures: []string{"admisions"}}, "choose one of: registered_patients, consultations"},
		{query.Request{By: []string{"region"}}, "choose from: month, age_band, sex, practice"},
		{query.Request{From: month("2024-03"), To: month("2024-01")}, "give the earlier month first"},
	}
	for _, tc := range tests {
		_, err := c.Run(tc.req)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one containing %q", tc.req, err, tc.want)
		}
	}
	// A month range outside the figures answers with no rows, not an error.
	if res, err := c.Run(query.Request{From: month("2030-01"), To: month("2030-02"), By: []string{query.ByMonth}}); err != nil || len(res.Rows) != 0 {
		t.Errorf("months without figures: %d rows, %v", len(res.Rows), err)
	}
	empty, err := objstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := query.Open(context.Background(), empty); !errors.Is(err, query.ErrNotCombined) {
		t.Errorf("empty store: %v", err)
	}
}

// TestLoadReusesUnchangedPractices: loading a new combined output re-reads only the practices
// whose tables changed, and answers as a fresh load does; a table changed after the combine
// is refused.
func TestLoadReusesUnchangedPractices(t *testing.T) {
	f := newFixture(t)
	prev, err := query.Open(f.ctx, f.st)
	if err != nil {
		t.Fatal(err)
	}
	f.write(t, run("B82002", "20240310T000000Z-0000000c", "2024-02", "2024-02", cell{"2024-02", formats.Admissions, "0-4", "female", 25},
		cell{"2024-02", formats.RegisteredPatients, "0-4", "female", 50}), time.Date(2024, 3, 10, 0, 0, 0, 0, time.UTC))
	res := f.combine(t)
	next, err := query.Load(f.ctx, f.st, res.Pointer, prev)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := query.Open(f.ctx, f.st)
	if err != nil {
		t.Fatal(err)
	}
	if next.Engine.Practice("A81001") != prev.Engine.Practice("A81001") {
		t.Error("A's unchanged table was read again")
	}
	if next.Engine.Practice("B82002") == prev.Engine.Practice("B82002") {
		t.Error("B's changed table was not read again")
	}
	req := query.Request{By: []string{query.ByMonth, query.ByPractice, query.BySex}}
	a, err := next.Run(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := fresh.Run(req)
	if err != nil {
		t.Fatal(err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if !bytes.Equal(ja, jb) || a.Combined != res.Pointer.ID {
		t.Error("a load reusing unchanged practices answers differently from a fresh one")
	}
	adm, _ := next.Engine.MeasureIndex(formats.Admissions)
	feb := next.Engine.Figures(&figures.Query{From: month("2024-02"), To: month("2024-02"), Measures: []int{adm}, ByPractice: true, Practices: []string{"B82002"}})
	if len(feb) != 1 || feb[0].Measure != formats.Admissions || feb[0].Count == nil || *feb[0].Count != 25 {
		t.Errorf("B's February after its new run: %+v, want 25", feb)
	}

	// A practice table changed after the combine is refused, naming what to do.
	ref := res.Pointer.PracticeTables["A81001"]
	data, _, err := f.st.Get(f.ctx, ref.Key, ref.Size)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if _, err := f.st.Put(f.ctx, ref.Key, data); err != nil {
		t.Fatal(err)
	}
	if _, err := query.Open(f.ctx, f.st); err == nil || !strings.Contains(err.Error(), "does not match the SHA-256") || !strings.Contains(err.Error(), "combine") {
		t.Errorf("a changed practice table: %v", err)
	}
}
