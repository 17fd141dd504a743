package combine_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/coordinator/registry"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// fixture is a store with a registry and helpers to write practices' runs by hand.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	st    *objstore.Dir
	coord ed25519.PrivateKey
	keys  map[string]ed25519.PrivateKey
}

func newFixture(t *testing.T, practices ...string) *fixture {
	t.Helper()
	st, err := objstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, coord, err := formats.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: context.Background(), st: st, coord: coord, keys: map[string]ed25519.PrivateKey{}}
	for _, p := range practices {
		pub, priv, err := formats.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		f.keys[p] = priv
		if _, err := registry.Add(f.ctx, st, coord, p, "Surgery "+p, pub, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// truth is a cell's true count before disclosure control.
type truth struct {
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

func runID(day int, suffix string) string {
	return fmt.Sprintf("202403%02dT120000Z-%s", day, suffix)
}

// submission applies the policy to true counts.
func submission(practice, run string, period formats.Month, pol formats.Policy, cells ...truth) *formats.Submission {
	s := &formats.Submission{Practice: practice, Period: period, RunID: run, Policy: pol.Name, Extractors: []string{"hand@1"}}
	for _, c := range cells {
		s.Cells = append(s.Cells, formats.Cell{Measure: c.measure, AgeBand: c.band, Sex: c.sex, Protected: pol.Apply(c.n)})
	}
	return s
}

// writeRun stores the submissions (of one run) as a run of practice, signed with its key, and returns
// the manifest key.
func (f *fixture) writeRun(practice string, created time.Time, subs ...*formats.Submission) string {
	f.t.Helper()
	key, err := fedgen.WriteSubmissions(f.ctx, f.st, f.keys[practice], created, subs...)
	if err != nil {
		f.t.Fatal(err)
	}
	return key
}

func (f *fixture) put(key string, data []byte) {
	f.t.Helper()
	if _, err := f.st.Put(f.ctx, key, data); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) get(key string) []byte {
	f.t.Helper()
	data, _, err := f.st.Get(f.ctx, key, 1<<30)
	if err != nil {
		f.t.Fatal(err)
	}
	return data
}

func (f *fixture) combine() *combine.Result {
	f.t.Helper()
	res, err := combine.Run(f.ctx, f.st, f.coord.Public().(ed25519.PublicKey), combine.Options{Workers: 3})
	if err != nil {
		f.t.Fatal(err)
	}
	return res
}

type cellKey struct{ practice, month, measure, band, sex string }

// table reads a combined output table back by cell: the federation table, or with name
// practiceTables every practice's table.
func (f *fixture) table(res *combine.Result, name string) map[cellKey]combine.Row {
	f.t.Helper()
	out := map[cellKey]combine.Row{}
	var keys []string
	if name == practiceTables {
		for _, ref := range res.Pointer.PracticeTables {
			keys = append(keys, ref.Key)
		}
	} else {
		keys = append(keys, res.Pointer.Objects[name].Key)
	}
	for _, k := range keys {
		_, err := combine.ReadTable(f.get(k), func(r *combine.Row) error {
			out[cellKey{r.Practice, r.Month.String(), r.Measure, r.AgeBand, r.Sex}] = *r
			return nil
		})
		if err != nil {
			f.t.Fatal(err)
		}
	}
	return out
}

const practiceTables = "practice tables"

var (
	jan = month("2024-01")
	feb = month("2024-02")
	day = func(d int) time.Time { return time.Date(2024, 3, d, 12, 0, 0, 0, time.UTC) }
)

// TestCombineByHand checks federation figures worked out by hand, and the newest-revision
// rule: a newer run replaces only the months it carries.
func TestCombineByHand(t *testing.T) {
	f := newFixture(t, "A81001", "B82002", "C83003")
	uk := formats.PolicyUK
	adm, emg, rp := formats.Admissions, formats.AdmissionsEmergency, formats.RegisteredPatients
	f.writeRun("A81001", day(1),
		submission("A81001", runID(1, "aaaaaaaa"), jan, uk,
			truth{adm, "0-4", "female", 12}, truth{rp, "0-4", "female", 100}, truth{emg, "5-9", "male", 0}),
		submission("A81001", runID(1, "aaaaaaaa"), feb, uk, truth{adm, "0-4", "female", 40}))
	// A newer run of A replaces February only.
	f.writeRun("A81001", day(5),
		submission("A81001", runID(5, "aaaaaaab"), feb, uk, truth{adm, "0-4", "female", 51}))
	f.writeRun("B82002", day(2),
		submission("B82002", runID(2, "bbbbbbbb"), jan, uk,
			truth{adm, "0-4", "female", 3}, truth{rp, "0-4", "female", 52}, truth{emg, "5-9", "male", 2}))
	f.writeRun("C83003", day(3),
		submission("C83003", runID(3, "cccccccc"), jan, uk,
			truth{adm, "0-4", "female", 0}, truth{rp, "0-4", "female", 23}))

	res := f.combine()
	fed := f.table(res, combine.FederationArrow)
	tests := []struct {
		name                string
		key                 cellKey
		count, lower, upper int64
		status              string
		list, practices     int64
	}{
		// A 12 -> 10 (8-12), B 3 -> suppressed (1-7), C 0: count 10, bounds 9-19.
		// List sizes 100 -> 100, 52 -> 50, 23 -> 25.
		{"partial", cellKey{"", "2024-01", adm, "0-4", "female"}, 10, 9, 19, combine.StatusPartial, 175, 3},
		// Nobody published this cell of a supplied measure: zero, with the male list sizes (none).
		{"absent is zero", cellKey{"", "2024-01", adm, "0-4", "male"}, 0, 0, 0, formats.StatusRounded, 0, 3},
		// Only B's suppressed 2 and A's 0: the total is known to be 1-7, so it stays suppressed.
		{"suppressed", cellKey{"", "2024-01", emg, "5-9", "male"}, 0, 1, 7, formats.StatusSuppressed, 0, 2},
		{"list size", cellKey{"", "2024-01", rp, "0-4", "female"}, 175, 169, 181, formats.StatusRounded, 175, 3},
		// February from A's newer run: 51 -> 50 (49-53), not the older 40.
		{"newest revision", cellKey{"", "2024-02", adm, "0-4", "female"}, 50, 48, 52, formats.StatusRounded, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := fed[tc.key]
			if !ok {
				t.Fatalf("no federation row %v", tc.key)
			}
			if r.Status != tc.status || r.Lower != tc.lower || r.Upper != tc.upper || r.ListSize != tc.list || r.Practices != tc.practices {
				t.Errorf("got status %s bounds %d-%d list %d practices %d, want %s %d-%d list %d practices %d",
					r.Status, r.Lower, r.Upper, r.ListSize, r.Practices, tc.status, tc.lower, tc.upper, tc.list, tc.practices)
			}
			if r.Status != formats.StatusSuppressed && r.Count != tc.count {
				t.Errorf("count %d, want %d", r.Count, tc.count)
			}
		})
	}
	// 2 months; January has 3 measures, February 1; 57 cells each.
	if want := int64(4 * 57); res.Report.FederationRows != want {
		t.Errorf("federation rows %d, want %d", res.Report.FederationRows, want)
	}

	// The practice table keeps each practice's published cells.
	if len(res.Pointer.PracticeTables) != 3 {
		t.Errorf("%d practice tables, want 3", len(res.Pointer.PracticeTables))
	}
	pr := f.table(res, practiceTables)
	if r := pr[cellKey{"B82002", "2024-01", adm, "0-4", "female"}]; r.Status != formats.StatusSuppressed || r.Lower != 1 || r.Upper != 7 || r.ListSize != 50 {
		t.Errorf("practice row for B: %+v", r)
	}
	if r := pr[cellKey{"A81001", "2024-02", adm, "0-4", "female"}]; r.Count != 50 {
		t.Errorf("practice row for A in February: count %d, want 50 from the newer run", r.Count)
	}

	// A practice table is one batch per month; reading February decodes only February.
	var febRows int
	md, err := combine.ReadTableMonths(f.get(res.Pointer.PracticeTables["A81001"].Key), feb, feb, func(r *combine.Row) error {
		if r.Month != feb {
			t.Errorf("row of %s read for February only", r.Month)
		}
		febRows++
		return nil
	})
	if err != nil || febRows != 57 || md[combine.MetaBatchMonths] != "2024-01,2024-02" {
		t.Errorf("February of A: %d rows, batch months %q, %v", febRows, md[combine.MetaBatchMonths], err)
	}

	// The older February file is a revision, not combined.
	uses := map[string]combine.InputFile{}
	for _, in := range res.Report.Inputs {
		for _, u := range in.Files {
			uses[u.Key] = u
		}
	}
	old := uses[formats.SubmissionKey("A81001", runID(1, "aaaaaaaa"), feb)]
	if old.Use != combine.UseRevision || old.SupersededBy != runID(5, "aaaaaaab") {
		t.Errorf("older February file: %+v, want a revision superseded by the newer run", old)
	}
	if u := uses[formats.SubmissionKey("A81001", runID(1, "aaaaaaaa"), jan)]; u.Use != combine.UseCombined {
		t.Errorf("older January file: %+v, want combined (the newer run has no January)", u)
	}
	if len(res.Report.Quarantined) != 0 {
		t.Errorf("unexpected quarantine: %+v", res.Report.Quarantined)
	}
	// Completeness: all three in January, only A in February with its newer run.
	if got := len(res.Report.Completeness); got != 2 {
		t.Fatalf("completeness for %d months, want 2", got)
	}
	febc := res.Report.Completeness[1]
	if len(febc.Contributors) != 1 || febc.Contributors[0].RunID != runID(5, "aaaaaaab") ||
		strings.Join(febc.Missing, ",") != "B82002,C83003" {
		t.Errorf("February completeness: %+v", febc)
	}
}

// TestParquetReadsBack reads the Parquet outputs with the Parquet reader.
func TestParquetReadsBack(t *testing.T) {
	f := newFixture(t, "A81001", "B82002")
	for i, p := range []string{"A81001", "B82002"} {
		run := runID(i+1, "0000000"+fmt.Sprint(i))
		f.writeRun(p, day(i+1), submission(p, run, jan, formats.PolicyUK,
			truth{formats.Consultations, "30-34", "male", 33}, truth{formats.RegisteredPatients, "30-34", "male", 300}))
	}
	res := f.combine()
	for _, tc := range []struct {
		name string
		rows int64
	}{{combine.FederationParquet, res.Report.FederationRows}} {
		pf, err := file.NewParquetReader(bytes.NewReader(f.get(res.Pointer.Objects[tc.name].Key)))
		if err != nil {
			t.Fatal(err)
		}
		fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.NewGoAllocator())
		if err != nil {
			t.Fatal(err)
		}
		tbl, err := fr.ReadTable(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if tbl.NumRows() != tc.rows || tc.rows == 0 {
			t.Errorf("%s: %d rows, want %d", tc.name, tbl.NumRows(), tc.rows)
		}
		if idx := tbl.Schema().FieldIndices("count"); len(idx) != 1 {
			t.Errorf("%s: no count column", tc.name)
		}
		tbl.Release()
		pf.Close()
	}
}

// TestDeterministic combines the same inputs twice and expects identical bytes.
func TestDeterministic(t *testing.T) {
	f := newFixture(t, "A81001", "B82002")
	f.writeRun("A81001", day(1), submission("A81001", runID(1, "aaaaaaaa"), jan, formats.PolicyUK,
		truth{formats.Admissions, "90+", "unknown", 9}))
	f.writeRun("B82002", day(2), submission("B82002", runID(2, "bbbbbbbb"), jan, formats.PolicyUK,
		truth{formats.Admissions, "90+", "unknown", 4}))
	f.put("practices/B82002/stray.txt", []byte("x"))
	first := f.combine()
	snapshot := func() map[string][]byte {
		out := map[string][]byte{}
		infos, err := f.st.List(f.ctx, formats.FederationPrefix)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range infos {
			out[in.Key] = f.get(in.Key)
		}
		return out
	}
	a := snapshot()
	second := f.combine()
	b := snapshot()
	if first.Pointer.ID != second.Pointer.ID {
		t.Errorf("ids differ: %s, %s", first.Pointer.ID, second.Pointer.ID)
	}
	if len(a) != len(b) || len(a) < 7 {
		t.Fatalf("%d objects, then %d", len(a), len(b))
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			t.Errorf("%s differs between two combines of the same inputs", k)
		}
	}
	// A new input gives a new output name, and the pointer moves to it.
	f.writeRun("A81001", day(9), submission("A81001", runID(9, "aaaaaaa9"), jan, formats.PolicyUK,
		truth{formats.Admissions, "90+", "unknown", 19}))
	third := f.combine()
	if third.Pointer.ID == first.Pointer.ID {
		t.Error("a new run did not change the output's name")
	}
	var ptr combine.Pointer
	if err := json.Unmarshal(f.get(combine.CurrentKey), &ptr); err != nil || ptr.ID != third.Pointer.ID {
		t.Errorf("current.json names %q (%v), want %s", ptr.ID, err, third.Pointer.ID)
	}
}
