package combine_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
	"github.com/apache/arrow/go/v17/parquet/file"
	"github.com/apache/arrow/go/v17/parquet/pqarrow"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/figures"
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

// truth is a true count before disclosure control: one measure in one month, age band and sex.
type truth struct {
	month              formats.Month
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

// runOf is the complete submission of a run of practice over from..to under pol: every
// measure a truth names, for every period of the run and every shape, zero wherever no truth
// gives a count. A measure no truth names is not supplied.
func runOf(practice, run string, from, to formats.Month, pol formats.Policy, cells ...truth) *formats.Submission {
	type key struct {
		month   formats.Month
		measure string
		b, x    int
	}
	counts := map[key]int64{}
	var measures []string
	for _, c := range cells {
		b, x := formats.AgeBandIndex(c.band), slices.Index(formats.Sexes, c.sex)
		if b < 0 || x < 0 || c.month < from || c.month > to {
			panic(fmt.Sprintf("truth %+v is not a cell of a run over %s to %s", c, from, to))
		}
		counts[key{c.month, c.measure, b, x}] += c.n
		if !slices.Contains(measures, c.measure) {
			measures = append(measures, c.measure)
		}
	}
	slices.SortFunc(measures, formats.CompareMeasures)
	s := fedgen.Publish(pol, practice, run, from, to, measures, func(m formats.Month, measure string, b, x int) int64 {
		return counts[key{m, measure, b, x}]
	})
	s.Extractors = []string{"hand@1"}
	return s
}

// writeRun stores a run of practice, signed with its key, and returns the manifest key.
func (f *fixture) writeRun(practice string, created time.Time, sub *formats.Submission) string {
	f.t.Helper()
	key, err := fedgen.WriteSubmission(f.ctx, f.st, f.keys[practice], created, sub)
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
	return f.combineUnder(formats.PolicyUK)
}

func (f *fixture) combineUnder(pol formats.Policy) *combine.Result {
	f.t.Helper()
	res, err := combine.Run(f.ctx, f.st, f.coord.Public().(ed25519.PublicKey), combine.Options{Workers: 3, Policy: pol})
	if err != nil {
		f.t.Fatal(err)
	}
	return res
}

// figKey names a value: practice ("" for the federation), period, measure, age band and sex
// ("" for all: a margin).
type figKey struct{ practice, period, measure, band, sex string }

func label(s string) string {
	if s == formats.All {
		return ""
	}
	return s
}

// federation reads federation.arrow back by figure.
func (f *fixture) federation(res *combine.Result) map[figKey]figures.Figure {
	f.t.Helper()
	out := map[figKey]figures.Figure{}
	_, err := combine.ReadFederationTable(f.get(res.Pointer.Objects[combine.FederationArrow].Key), func(r *figures.Figure) error {
		k := figKey{"", r.Period, r.Measure, r.AgeBand, r.Sex}
		if _, dup := out[k]; dup {
			return fmt.Errorf("federation row %v appears twice", k)
		}
		out[k] = *r
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

// practices reads every practice table back by value.
func (f *fixture) practices(res *combine.Result) map[figKey]combine.PracticeRow {
	f.t.Helper()
	out := map[figKey]combine.PracticeRow{}
	for id, ref := range res.Pointer.PracticeTables {
		md, err := combine.ReadPracticeTable(f.get(ref.Key), func(r *combine.PracticeRow) error {
			if r.Practice != id {
				return fmt.Errorf("the table of %s holds a row of %s", id, r.Practice)
			}
			k := figKey{r.Practice, r.Period.String(), r.Measure, label(r.AgeBand), label(r.Sex)}
			if _, dup := out[k]; dup {
				return fmt.Errorf("practice row %v appears twice", k)
			}
			out[k] = *r
			return nil
		})
		if err != nil {
			f.t.Fatal(err)
		}
		if md[formats.MetaKind] != combine.KindPractices || md[formats.MetaPolicy] != res.Report.Policy {
			f.t.Errorf("practice table of %s has metadata %v", id, md)
		}
	}
	return out
}

// uses maps every input file of the report to what became of it.
func uses(rep *combine.Report) map[string]combine.InputFile {
	out := map[string]combine.InputFile{}
	for _, in := range rep.Inputs {
		for _, u := range in.Files {
			out[u.Key] = u
		}
	}
	return out
}

func monthsOf(from, to formats.Month) []string {
	var out []string
	for m := from; m <= to; m++ {
		out = append(out, m.String())
	}
	return out
}

var (
	jan = month("2024-01")
	feb = month("2024-02")
	day = func(d int) time.Time { return time.Date(2024, 3, d, 12, 0, 0, 0, time.UTC) }
)

func deref(p *int64) any {
	if p == nil {
		return "null"
	}
	return *p
}

// TestCombineByHand checks federation figures worked out by hand, and the newest-revision
// rule: a newer run takes only the months it covers.
func TestCombineByHand(t *testing.T) {
	const a, b, c = "A81001", "B82002", "C83003"
	f := newFixture(t, a, b, c)
	uk := formats.PolicyUK
	adm, emg, rp := formats.Admissions, formats.AdmissionsEmergency, formats.RegisteredPatients
	runA1, runA2 := runID(1, "aaaaaaaa"), runID(5, "aaaaaaab")
	runB0, runB := runID(1, "bbbbbbb0"), runID(2, "bbbbbbbb")
	runC := runID(3, "cccccccc")
	// A's first run covers January and February; a newer run covers February only, so it
	// takes February and January stays with the first.
	f.writeRun(a, day(1), runOf(a, runA1, jan, feb, uk,
		truth{jan, adm, "0-4", "female", 12}, truth{jan, rp, "0-4", "female", 100}, truth{jan, emg, "5-9", "male", 0},
		truth{feb, adm, "0-4", "female", 40}, truth{feb, rp, "0-4", "female", 100}))
	f.writeRun(a, day(5), runOf(a, runA2, feb, feb, uk, truth{feb, adm, "0-4", "female", 51}, truth{feb, rp, "0-4", "female", 101}))
	// B's older run is superseded in every month: a revision, never read.
	f.writeRun(b, day(1), runOf(b, runB0, jan, jan, uk, truth{jan, adm, "0-4", "female", 90}))
	f.writeRun(b, day(2), runOf(b, runB, jan, jan, uk,
		truth{jan, adm, "0-4", "female", 3}, truth{jan, rp, "0-4", "female", 52}, truth{jan, emg, "5-9", "male", 2}))
	f.writeRun(c, day(3), runOf(c, runC, jan, jan, uk, truth{jan, adm, "0-4", "female", 0}, truth{jan, rp, "0-4", "female", 23}))

	res := f.combine()
	fed := f.federation(res)
	none := int64(-1) // no list size: the measure is the list size, or no practice supplied it
	tests := []struct {
		name                       string
		key                        figKey
		count                      *int64
		lower, upper, published    int64
		status, method             string
		list, listLower, listUpper int64
		practices                  int64
	}{
		// A 12 -> 10 (8-12), B 3 -> suppressed (1-7), C 0: bounds 9-19. B's margins are all
		// suppressed too, so its estimate has no information: E[X | 1 <= X <= 7] under a
		// Poisson of mean 1, 1.58, and the count is 10 + 1.58, rounded. List sizes
		// 100 -> 100 (98-102), 52 -> 50 (48-52), 23 -> 25 (23-27).
		{"partial", figKey{"", "2024-01", adm, "0-4", "female"}, ptr(12), 9, 19, 10, combine.StatusPartial, figures.MethodEstimated, 175, 169, 181, 3},
		// The margins are each practice's own published margins, the same values here.
		{"band margin", figKey{"", "2024-01", adm, "0-4", ""}, ptr(12), 9, 19, 10, combine.StatusPartial, figures.MethodEstimated, 175, 169, 181, 3},
		{"sex margin", figKey{"", "2024-01", adm, "", "female"}, ptr(12), 9, 19, 10, combine.StatusPartial, figures.MethodEstimated, 175, 169, 181, 3},
		{"total", figKey{"", "2024-01", adm, "", ""}, ptr(12), 9, 19, 10, combine.StatusPartial, figures.MethodEstimated, 175, 169, 181, 3},
		// Every practice supplied admissions, and none counted any here: zero, not absent.
		{"zero", figKey{"", "2024-01", adm, "0-4", "male"}, ptr(0), 0, 0, 0, formats.StatusRounded, figures.MethodPublished, 0, 0, 0, 3},
		// Only B's suppressed 2 and A's 0 (C supplies no emergency admissions): the total is
		// known to be 1-7, so it stays suppressed.
		{"suppressed", figKey{"", "2024-01", emg, "5-9", "male"}, nil, 1, 7, 0, formats.StatusSuppressed, figures.MethodEstimated, 0, 0, 0, 2},
		{"list size", figKey{"", "2024-01", rp, "0-4", "female"}, ptr(175), 169, 181, 175, formats.StatusRounded, figures.MethodPublished, none, 0, 0, 3},
		// February from A's newer run: 51 -> 50 (48-52), not the older 40; its list 101 -> 100.
		{"newest revision", figKey{"", "2024-02", adm, "0-4", "female"}, ptr(50), 48, 52, 50, formats.StatusRounded, figures.MethodPublished, 100, 98, 102, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := fed[tc.key]
			if !ok {
				t.Fatalf("no federation row %v", tc.key)
			}
			if r.Status != tc.status || r.Method != tc.method || r.Lower != tc.lower || r.Upper != tc.upper ||
				r.PublishedSum != tc.published || r.Practices != tc.practices || r.Note != "" {
				t.Errorf("got status %s method %s bounds %d-%d published %d practices %d note %q; want %s %s %d-%d %d %d and no note",
					r.Status, r.Method, r.Lower, r.Upper, r.PublishedSum, r.Practices, r.Note, tc.status, tc.method, tc.lower, tc.upper, tc.published, tc.practices)
			}
			if (r.Count == nil) != (tc.count == nil) || (r.Count != nil && *r.Count != *tc.count) {
				t.Errorf("count %v, want %v", deref(r.Count), deref(tc.count))
			}
			switch {
			case tc.list == none:
				if r.ListSize != nil || r.ListLower != nil || r.ListUpper != nil || r.Rate != nil {
					t.Errorf("list size %v (%v-%v), rate %v; want none", deref(r.ListSize), r.ListLower, r.ListUpper, r.Rate)
				}
			case r.ListSize == nil || r.ListLower == nil || r.ListUpper == nil:
				t.Errorf("no list size, want %d", tc.list)
			case *r.ListSize != tc.list || *r.ListLower != float64(tc.listLower) || *r.ListUpper != float64(tc.listUpper):
				t.Errorf("list size %d (%v-%v), want %d (%d-%d)", *r.ListSize, *r.ListLower, *r.ListUpper, tc.list, tc.listLower, tc.listUpper)
			}
		})
	}
	// The rate's bounds are interval arithmetic on the count's and the list size's.
	if r := fed[figKey{"", "2024-01", adm, "0-4", "female"}]; r.Rate == nil || r.RateLower == nil || r.RateUpper == nil ||
		*r.RateLower != 9.0/181*1000 || *r.RateUpper != 19.0/169*1000 || *r.Rate < *r.RateLower || *r.Rate > *r.RateUpper {
		t.Errorf("rate %v in %v-%v, want within 9/181 to 19/169 per 1,000", r.Rate, r.RateLower, r.RateUpper)
	}
	// January: admissions, emergency admissions, list sizes; February: admissions, list sizes;
	// 80 shapes each.
	if want := 5 * formats.NumShapes; res.Report.FederationRows != int64(want) || len(fed) != want {
		t.Errorf("federation rows: report %d, table %d; want %d", res.Report.FederationRows, len(fed), want)
	}

	// Each practice's table keeps its published values, from the run combined for each month.
	if len(res.Pointer.PracticeTables) != 3 {
		t.Errorf("%d practice tables, want 3", len(res.Pointer.PracticeTables))
	}
	pr := f.practices(res)
	// A: 3 measures in January, 2 in February; B: 3; C: 2.
	if want := (5 + 3 + 2) * formats.NumShapes; res.Report.PracticeRows != int64(want) || len(pr) != want {
		t.Errorf("practice rows: report %d, tables %d; want %d", res.Report.PracticeRows, len(pr), want)
	}
	if r := pr[figKey{b, "2024-01", adm, "0-4", "female"}]; r.Status != formats.StatusSuppressed || r.Lower != 1 || r.Upper != 7 || r.RunID != runB {
		t.Errorf("practice row for B: %+v", r)
	}
	if r := pr[figKey{a, "2024-02", adm, "0-4", "female"}]; r.Count != 50 || r.RunID != runA2 {
		t.Errorf("practice row for A in February: %+v, want 50 from the newer run", r)
	}
	if r := pr[figKey{a, "2024-01", adm, "", ""}]; r.Count != 10 || r.RunID != runA1 {
		t.Errorf("practice row for A's January total: %+v, want 10 from the first run", r)
	}
	if r, ok := pr[figKey{a, "2024-02", emg, "", ""}]; ok {
		t.Errorf("A's February emergency admissions %+v are kept from the first run, whose February was superseded", r)
	}
	if r := pr[figKey{a, "2024-02", rp, "0-4", "female"}]; r.Count != 100 || r.RunID != runA2 {
		t.Errorf("A's February list size: %+v, want 100 from the newer run", r)
	}

	// A's first run is combined for January only; B's older run is a revision, never read.
	u := uses(res.Report)
	if got := u[formats.SubmissionKey(a, runA1)]; got.Use != combine.UseCombined || !slices.Equal(got.Months, []string{"2024-01"}) {
		t.Errorf("A's first run: %+v, want combined for 2024-01", got)
	}
	if got := u[formats.SubmissionKey(a, runA2)]; got.Use != combine.UseCombined || !slices.Equal(got.Months, []string{"2024-02"}) {
		t.Errorf("A's newer run: %+v, want combined for 2024-02", got)
	}
	if got := u[formats.SubmissionKey(b, runB0)]; got.Use != combine.UseRevision || got.SupersededBy != runB || len(got.Months) != 0 {
		t.Errorf("B's older run: %+v, want a revision superseded by %s", got, runB)
	}
	for _, in := range res.Report.Inputs {
		if in.Practice == a && in.RunID == runA1 && (in.From != "2024-01" || in.To != "2024-02") {
			t.Errorf("A's first run is reported over %s to %s", in.From, in.To)
		}
	}
	if rep := res.Report; rep.Practices != 3 || rep.FilesCombined != 4 || rep.MonthsCombined != 4 || len(rep.Inputs) != 5 {
		t.Errorf("report: %d practices, %d files, %d practice-months, %d inputs; want 3, 4, 4, 5", rep.Practices, rep.FilesCombined, rep.MonthsCombined, len(rep.Inputs))
	}
	if len(res.Report.Quarantined) != 0 {
		t.Errorf("unexpected quarantine: %+v", res.Report.Quarantined)
	}
	// Completeness: all three in January, only A in February with its newer run.
	if got := len(res.Report.Completeness); got != 2 {
		t.Fatalf("completeness for %d months, want 2", got)
	}
	janc, febc := res.Report.Completeness[0], res.Report.Completeness[1]
	if len(janc.Contributors) != 3 || janc.Contributors[0].RunID != runA1 || janc.Contributors[0].Measures != 3 || len(janc.Missing) != 0 {
		t.Errorf("January completeness: %+v", janc)
	}
	if len(febc.Contributors) != 1 || febc.Contributors[0].RunID != runA2 || febc.Contributors[0].Measures != 2 ||
		strings.Join(febc.Missing, ",") != "B82002,C83003" {
		t.Errorf("February completeness: %+v", febc)
	}
	if res.Pointer.FirstMonth != "2024-01" || res.Pointer.LastMonth != "2024-02" || res.Pointer.Practices != 3 {
		t.Errorf("pointer: months %s to %s, %d practices", res.Pointer.FirstMonth, res.Pointer.LastMonth, res.Pointer.Practices)
	}
}

func ptr(n int64) *int64 { return &n }

// TestRevisionKeepsOnlyCurrentQuartersAndYears: a newer run covering only the last months of
// an older one supersedes those months only; the older run's quarter and year values that
// cover a superseded month are dropped, so those figures fall back to finer values and say
// so, while quarters and years it still wholly answers stay current.
func TestRevisionKeepsOnlyCurrentQuartersAndYears(t *testing.T) {
	const a, b = "A81001", "B82002"
	f := newFixture(t, a, b)
	uk := formats.PolicyUK
	adm, rp := formats.Admissions, formats.RegisteredPatients
	from, to, revised := month("2023-01"), month("2024-12"), month("2024-11")
	runA1, runA2, runB := runID(1, "a0000001"), runID(6, "a0000002"), runID(2, "b0000001")
	// True admissions (40-44 female, and 70-74 male at a third of it) by practice and month.
	trueA := func(m formats.Month) int64 {
		if m >= revised {
			return 40 + int64(m-revised)
		}
		return 9 + int64(m-from)%7
	}
	trueA1 := func(m formats.Month) int64 { return 9 + int64(m-from)%7 } // what A's first run said
	trueB := func(m formats.Month) int64 { return 20 + int64(m-from)%5 }
	cells := func(from, to formats.Month, n func(formats.Month) int64) []truth {
		var out []truth
		for m := from; m <= to; m++ {
			out = append(out, truth{m, adm, "40-44", "female", n(m)}, truth{m, adm, "70-74", "male", n(m) / 3},
				truth{m, rp, "40-44", "female", 600}, truth{m, rp, "70-74", "male", 300})
		}
		return out
	}
	f.writeRun(a, day(1), runOf(a, runA1, from, to, uk, cells(from, to, trueA1)...))
	f.writeRun(a, day(6), runOf(a, runA2, revised, to, uk, cells(revised, to, trueA)...))
	f.writeRun(b, day(2), runOf(b, runB, from, to, uk, cells(from, to, trueB)...))
	res := f.combine()
	if len(res.Report.Quarantined) != 0 {
		t.Fatalf("quarantine: %+v", res.Report.Quarantined)
	}

	u := uses(res.Report)
	if got := u[formats.SubmissionKey(a, runA1)]; got.Use != combine.UseCombined || !slices.Equal(got.Months, monthsOf(from, revised-1)) {
		t.Errorf("A's first run: %+v, want combined for 2023-01 to 2024-10", got)
	}
	if got := u[formats.SubmissionKey(a, runA2)]; got.Use != combine.UseCombined || !slices.Equal(got.Months, monthsOf(revised, to)) {
		t.Errorf("A's newer run: %+v, want combined for 2024-11 and 2024-12", got)
	}
	if res.Report.MonthsCombined != 48 || res.Report.FilesCombined != 3 {
		t.Errorf("%d practice-months from %d files, want 48 from 3", res.Report.MonthsCombined, res.Report.FilesCombined)
	}

	// A's table holds every month, the quarters and the year its first run still wholly
	// answers, and nothing of 2024-Q4 or 2024; B's holds every period of its run.
	pr := f.practices(res)
	periods := map[string][]string{}
	for k := range pr {
		if k.measure == adm && k.band == "" && k.sex == "" {
			periods[k.practice] = append(periods[k.practice], k.period)
		}
	}
	var wantA, wantB []string
	for _, p := range formats.PeriodsOf(from, to) {
		wantB = append(wantB, p.String())
		if p.Kind == formats.KindMonth || !p.Contains(revised) {
			wantA = append(wantA, p.String())
		}
	}
	slices.Sort(wantA)
	slices.Sort(wantB)
	for p, want := range map[string][]string{a: wantA, b: wantB} {
		got := periods[p]
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s's table holds periods %v, want %v", p, got, want)
		}
	}
	if r := pr[figKey{a, "2024-11", adm, "40-44", "female"}]; r.RunID != runA2 || r.Count != uk.Apply(trueA(revised)).Count {
		t.Errorf("A's November: %+v, want %d from the newer run", r, uk.Apply(trueA(revised)).Count)
	}

	// The federation's figures: a sum of what each practice published for the figure's
	// period where that is current, else of the finer values that cover it.
	fed := f.federation(res)
	// sum is a practice's true total admissions over the months of per.
	sum := func(n func(formats.Month) int64, per formats.Period) int64 {
		var s int64
		for m := per.Start; m <= per.End(); m++ {
			s += n(m) + n(m)/3
		}
		return s
	}
	// pieces adds up the bounds and published values of the given periods of one practice.
	pieces := func(n func(formats.Month) int64, pers ...formats.Period) (lo, hi, pub int64) {
		for _, per := range pers {
			v := uk.Apply(sum(n, per))
			lo, hi, pub = lo+v.Lower, hi+v.Upper, pub+v.Count
		}
		return lo, hi, pub
	}
	y2023, y2024 := formats.YearOf(from), formats.YearOf(to)
	q := func(y, n int) formats.Period { return formats.QuarterOf(formats.MonthFor(y, time.Month(3*n-2))) }
	tests := []struct {
		name     string
		per      formats.Period
		aPieces  []formats.Period // A's values that answer the period
		fallback bool
	}{
		{"an untouched year stays current", y2023, []formats.Period{y2023}, false},
		{"a year with a superseded month falls back", y2024,
			[]formats.Period{q(2024, 1), q(2024, 2), q(2024, 3), formats.MonthPeriod(month("2024-10")), formats.MonthPeriod(revised), formats.MonthPeriod(to)}, true},
		{"an untouched quarter of that year stays current", q(2024, 3), []formats.Period{q(2024, 3)}, false},
		{"the quarter with a superseded month falls back", q(2024, 4),
			[]formats.Period{formats.MonthPeriod(month("2024-10")), formats.MonthPeriod(revised), formats.MonthPeriod(to)}, true},
		{"a revised month is the newer run's", formats.MonthPeriod(revised), []formats.Period{formats.MonthPeriod(revised)}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, ok := fed[figKey{"", tc.per.String(), adm, "", ""}]
			if !ok {
				t.Fatalf("no federation total of %s", tc.per)
			}
			// A's pieces come from its first run before the revision and from the newer run
			// after it, each telling the truth of its months; B's value of the period itself
			// is current.
			lo, hi, pub := pieces(trueA, tc.aPieces...)
			bl, bh, bp := pieces(trueB, tc.per)
			lo, hi, pub = lo+bl, hi+bh, pub+bp
			if r.Lower != lo || r.Upper != hi || r.PublishedSum != pub || r.Practices != 2 {
				t.Errorf("%s: bounds %d-%d published %d practices %d; want %d-%d, %d, 2", tc.per, r.Lower, r.Upper, r.PublishedSum, r.Practices, lo, hi, pub)
			}
			if truth := sum(trueA, tc.per) + sum(trueB, tc.per); truth < r.Lower || truth > r.Upper || r.Count == nil || *r.Count < r.Lower || *r.Count > r.Upper {
				t.Errorf("%s: the truth %d or the count %v lies outside %d-%d", tc.per, truth, deref(r.Count), r.Lower, r.Upper)
			}
			if tc.fallback != (r.Note != "") || (tc.fallback && !strings.Contains(r.Note, "finer values")) {
				t.Errorf("%s: note %q; want one saying finer values answered: %v", tc.per, r.Note, tc.fallback)
			}
			// The fine cells of the period fall back in the same way.
			if cell := fed[figKey{"", tc.per.String(), adm, "40-44", "female"}]; tc.fallback != (cell.Note != "") {
				t.Errorf("%s 40-44 female: note %q, want a note: %v", tc.per, cell.Note, tc.fallback)
			}
		})
	}
}

// TestRunUnderAnotherPolicyIsQuarantined: a run made under a policy other than the
// federation's verifies, but is quarantined as "policy" and never combined, whichever policy
// the federation chose.
func TestRunUnderAnotherPolicyIsQuarantined(t *testing.T) {
	const a, b = "A81001", "B82002"
	f := newFixture(t, a, b)
	adm := formats.Admissions
	runA, runB := runID(1, "aaaaaaaa"), runID(2, "bbbbbbbb")
	f.writeRun(a, day(1), runOf(a, runA, jan, feb, formats.PolicyUK, truth{jan, adm, "0-4", "male", 20}, truth{feb, adm, "0-4", "male", 25}))
	f.writeRun(b, day(2), runOf(b, runB, jan, feb, formats.PolicyMidpoint6, truth{jan, adm, "0-4", "male", 10}, truth{feb, adm, "0-4", "male", 13}))
	for _, tc := range []struct {
		pol           formats.Policy
		kept, refused string
		other         formats.Policy
		keptPublished int64
		keptBoundsJan [2]int64
	}{
		// A's 20 under the UK policy: 20 (18-22); B's 10 under midpoint-6: 9 (7-12).
		{formats.PolicyUK, a, b, formats.PolicyMidpoint6, 20, [2]int64{18, 22}},
		{formats.PolicyMidpoint6, b, a, formats.PolicyUK, 9, [2]int64{7, 12}},
	} {
		t.Run(tc.pol.Name, func(t *testing.T) {
			res := f.combineUnder(tc.pol)
			rep := res.Report
			if rep.Policy != tc.pol.Name || res.Pointer.Policy != tc.pol.Name || res.Pointer.SuppressMax != tc.pol.SuppressMax {
				t.Errorf("report policy %s, pointer %s (suppress max %d)", rep.Policy, res.Pointer.Policy, res.Pointer.SuppressMax)
			}
			if len(rep.Quarantined) != 1 {
				t.Fatalf("quarantine %+v, want the run of %s only", rep.Quarantined, tc.refused)
			}
			q := rep.Quarantined[0]
			if q.Key != formats.ManifestKey(tc.refused, map[string]string{a: runA, b: runB}[tc.refused]) || q.Kind != "policy" || q.Practice != tc.refused ||
				!strings.Contains(q.Reason, tc.other.Name) || !strings.Contains(q.Reason, tc.pol.Name) {
				t.Errorf("quarantined %+v; want %s's manifest as policy, naming both policies", q, tc.refused)
			}
			if rep.Practices != 1 || len(res.Pointer.PracticeTables) != 1 || res.Pointer.PracticeTables[tc.kept].Key == "" {
				t.Errorf("%d practices combined, tables %v; want %s only", rep.Practices, res.Pointer.PracticeTables, tc.kept)
			}
			for _, in := range rep.Inputs {
				if in.Practice == tc.refused {
					t.Errorf("the refused run is an input: %+v", in)
				}
			}
			for _, c := range rep.Completeness {
				if len(c.Contributors) != 1 || c.Contributors[0].Practice != tc.kept || !slices.Equal(c.Missing, []string{tc.refused}) {
					t.Errorf("completeness of %s: %+v", c.Month, c)
				}
			}
			r := f.federation(res)[figKey{"", "2024-01", adm, "0-4", "male"}]
			if r.Practices != 1 || r.PublishedSum != tc.keptPublished || r.Lower != tc.keptBoundsJan[0] || r.Upper != tc.keptBoundsJan[1] {
				t.Errorf("January admissions 0-4 male: %+v; want %s's value alone", r, tc.kept)
			}
		})
	}
}

// craft writes the cells of s as a submission file as they stand, without the checks
// formats.WriteSubmission makes, as a broken or hostile agent could.
func craft(t *testing.T, s *formats.Submission) []byte {
	t.Helper()
	md := arrow.NewMetadata(
		[]string{formats.MetaFormatVersion, formats.MetaKind, formats.MetaPractice, formats.MetaRunID, formats.MetaFrom, formats.MetaTo, formats.MetaExtractors, formats.MetaPolicy},
		[]string{fmt.Sprint(formats.FormatVersion), formats.KindSubmission, s.Practice, s.RunID, s.From.String(), s.To.String(), strings.Join(s.Extractors, ","), s.Policy})
	schema := arrow.NewSchema(formats.SubmissionSchema.Fields(), &md)
	b := array.NewRecordBuilder(memory.NewGoAllocator(), schema)
	defer b.Release()
	// One row per period and measure, in the order the cells name them; a shape no cell
	// gives is written as a null, as a hand-made or damaged file could hold it.
	type rowKey struct {
		period  formats.Period
		measure string
	}
	var order []rowKey
	rows := map[rowKey]*[formats.NumShapes]*int32{}
	for _, c := range s.Cells {
		k := rowKey{c.Period, c.Measure}
		if rows[k] == nil {
			rows[k] = new([formats.NumShapes]*int32)
			order = append(order, k)
		}
		code := int32(c.Count)
		switch c.Status {
		case formats.StatusSuppressed:
			code = -1
		case formats.StatusWithheld:
			code = -2
		}
		rows[k][formats.ShapeIndex(c.AgeBand, c.Sex)] = &code
	}
	for _, k := range order {
		b.Field(0).(*array.StringBuilder).Append(k.period.String())
		b.Field(1).(*array.StringBuilder).Append(k.measure)
		for i, code := range rows[k] {
			if code == nil {
				b.Field(2 + i).(*array.Int32Builder).AppendNull()
			} else {
				b.Field(2 + i).(*array.Int32Builder).Append(*code)
			}
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	var buf bytes.Buffer
	w, err := ipc.NewFileWriter(&seekBuffer{&buf}, ipc.WithSchema(schema), ipc.WithZstd())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// seekBuffer lets Arrow's file writer, which only asks for its position, write to a buffer.
type seekBuffer struct{ *bytes.Buffer }

func (s *seekBuffer) Seek(offset int64, whence int) (int64, error) { return int64(s.Len()), nil }

// without returns s without its cell of (period, measure, band, sex).
func without(s *formats.Submission, per formats.Period, measure, band, sex string) *formats.Submission {
	c := *s
	c.Cells = slices.DeleteFunc(slices.Clone(s.Cells), func(x formats.Cell) bool {
		return x.Period == per && x.Measure == measure && x.AgeBand == band && x.Sex == sex
	})
	if len(c.Cells) != len(s.Cells)-1 {
		panic("no such cell")
	}
	return &c
}

// TestFileMissingAValueIsQuarantined: a file that lacks one value of a measure it supplies is
// quarantined, never read as if the value were 0; the practice's months go to its next newest
// run, or to nobody.
func TestFileMissingAValueIsQuarantined(t *testing.T) {
	const a, b = "A81001", "B82002"
	adm := formats.Admissions
	runA, runB1, runB2 := runID(1, "aaaaaaaa"), runID(1, "bbbbbbb1"), runID(3, "bbbbbbb2")
	for _, tc := range []struct {
		name  string
		older bool // B has an older good run
	}{{"the older run answers", true}, {"no older run", false}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, a, b)
			f.writeRun(a, day(1), runOf(a, runA, jan, feb, formats.PolicyUK, truth{jan, adm, "0-4", "male", 20}, truth{feb, adm, "0-4", "male", 20}))
			if tc.older {
				f.writeRun(b, day(1), runOf(b, runB1, jan, feb, formats.PolicyUK, truth{jan, adm, "0-4", "male", 10}, truth{feb, adm, "0-4", "male", 10}))
			}
			full := runOf(b, runB2, jan, feb, formats.PolicyUK, truth{jan, adm, "0-4", "male", 50}, truth{jan, adm, "5-9", "female", 30}, truth{feb, adm, "0-4", "male", 50})
			if err := without(full, formats.MonthPeriod(jan), adm, "5-9", "female").Validate(); err == nil {
				t.Fatal("a submission missing a value validates")
			}
			data := craft(t, without(full, formats.MonthPeriod(jan), adm, "5-9", "female"))
			f.sealRun(b, runB2, jan, feb, day(3), f.keys[b], data, nil)
			res := f.combine()
			key := formats.SubmissionKey(b, runB2)
			if len(res.Report.Quarantined) != 1 || res.Report.Quarantined[0].Key != key || res.Report.Quarantined[0].Kind != "invalid_value" ||
				!strings.Contains(res.Report.Quarantined[0].Reason, "missing") {
				t.Fatalf("quarantine %+v, want %s as invalid_value for the value it does not carry", res.Report.Quarantined, key)
			}
			if u := uses(res.Report)[key]; u.Use != combine.UseQuarantined || len(u.Months) != 0 {
				t.Errorf("the incomplete file is used as %+v", u)
			}
			fed := f.federation(res)
			cell, total := fed[figKey{"", "2024-01", adm, "5-9", "female"}], fed[figKey{"", "2024-01", adm, "", ""}]
			if tc.older {
				// B's older run answers both months: 0 in 5-9 female, 10 in 0-4 male.
				if cell.Practices != 2 || cell.Upper != 0 || total.PublishedSum != 30 || total.Practices != 2 {
					t.Errorf("January: 5-9 female %+v, total %+v; want B's older run beside A", cell, total)
				}
			} else if cell.Practices != 1 || total.Practices != 1 || total.PublishedSum != 20 || res.Report.Practices != 1 {
				// Read as 0, B would count as a practice with none in 5-9 female.
				t.Errorf("January: 5-9 female %+v, total %+v; want A alone", cell, total)
			}
		})
	}
}

// TestParquetHoldsWhatArrowDoes reads the Parquet copy of the federation table with the
// Parquet reader and checks it holds the Arrow table's columns and values exactly.
func TestParquetHoldsWhatArrowDoes(t *testing.T) {
	const a, b = "A81001", "B82002"
	f := newFixture(t, a, b)
	for i, p := range []string{a, b} {
		run := runID(i+1, "0000000"+fmt.Sprint(i))
		var cells []truth
		for m := month("2023-10"); m <= month("2024-03"); m++ {
			cells = append(cells, truth{m, formats.Consultations, "30-34", "male", 33 + int64(i)}, truth{m, formats.Admissions, "30-34", "male", 3 * int64(i)},
				truth{m, formats.RegisteredPatients, "30-34", "male", 300})
		}
		f.writeRun(p, day(i+1), runOf(p, run, month("2023-10"), month("2024-03"), formats.PolicyUK, cells...))
	}
	res := f.combine()
	ctx := context.Background()
	pf, err := file.NewParquetReader(bytes.NewReader(f.get(res.Pointer.Objects[combine.FederationParquet].Key)))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{}, memory.NewGoAllocator())
	if err != nil {
		t.Fatal(err)
	}
	pq, err := fr.ReadTable(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer pq.Release()
	rdr, err := ipc.NewFileReader(bytes.NewReader(f.get(res.Pointer.Objects[combine.FederationArrow].Key)))
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Close()
	var recs []arrow.Record
	for i := 0; i < rdr.NumRecords(); i++ {
		rec, err := rdr.Record(i)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec)
	}
	ar := array.NewTableFromRecords(rdr.Schema(), recs)
	defer ar.Release()
	// 6 months, 2 quarters; 3 measures; 80 shapes.
	if want := int64(8 * 3 * formats.NumShapes); ar.NumRows() != want || pq.NumRows() != want || res.Report.FederationRows != want {
		t.Fatalf("rows: arrow %d, parquet %d, report %d; want %d", ar.NumRows(), pq.NumRows(), res.Report.FederationRows, want)
	}
	if pq.NumCols() != ar.NumCols() {
		t.Fatalf("parquet columns %v, arrow columns %v", pq.Schema(), ar.Schema())
	}
	for i, af := range ar.Schema().Fields() {
		if pf := pq.Schema().Field(i); pf.Name != af.Name || !arrow.TypeEqual(pf.Type, af.Type) || pf.Nullable != af.Nullable {
			t.Errorf("column %d: parquet %v, arrow %v", i, pf, af)
		}
	}
	for i := range int(ar.NumCols()) {
		if !array.ChunkedEqual(ar.Column(i).Data(), pq.Column(i).Data()) {
			t.Errorf("column %s differs between the Arrow and Parquet tables", ar.Schema().Field(i).Name)
		}
	}
	// The Parquet file carries the table's metadata as its key-value metadata.
	kv := pf.MetaData().KeyValueMetadata()
	for _, k := range []string{formats.MetaKind, formats.MetaFormatVersion, formats.MetaPolicy, combine.MetaInputsSHA256, combine.MetaSuppressMax} {
		av, _ := ar.Schema().Metadata().GetValue(k)
		var pv string
		if v := kv.FindValue(k); v != nil {
			pv = *v
		}
		if av == "" || av != pv {
			t.Errorf("metadata %s: arrow %q, parquet %q", k, av, pv)
		}
	}
	if av, _ := ar.Schema().Metadata().GetValue(combine.MetaInputsSHA256); av != res.Report.InputsSHA256 {
		t.Errorf("the table's inputs digest %s is not the report's %s", av, res.Report.InputsSHA256)
	}
}

// TestDeterministic combines the same inputs twice and expects identical bytes.
func TestDeterministic(t *testing.T) {
	f := newFixture(t, "A81001", "B82002")
	f.writeRun("A81001", day(1), runOf("A81001", runID(1, "aaaaaaaa"), month("2023-12"), feb, formats.PolicyUK,
		truth{jan, formats.Admissions, "90+", "unknown", 9}, truth{month("2023-12"), formats.RegisteredPatients, "90+", "unknown", 40}))
	f.writeRun("B82002", day(2), runOf("B82002", runID(2, "bbbbbbbb"), jan, jan, formats.PolicyUK,
		truth{jan, formats.Admissions, "90+", "unknown", 4}))
	f.put("practices/B82002/stray.txt", []byte("x"))
	first := f.combine()
	snapshot := func() map[string][]byte {
		out := map[string][]byte{}
		infos, err := f.st.List(f.ctx, formats.FederationPrefix)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range infos {
			if in.Key != combine.HistoryKey { // a log of when each output was published
				out[in.Key] = f.get(in.Key)
			}
		}
		return out
	}
	a := snapshot()
	second := f.combine()
	b := snapshot()
	if first.Pointer.ID != second.Pointer.ID {
		t.Errorf("ids differ: %s, %s", first.Pointer.ID, second.Pointer.ID)
	}
	// registry, current.json, federation.arrow, .parquet, report.json, two practice tables,
	// and the dataset's file of each month
	months := 0
	for name := range first.Pointer.Objects {
		if strings.HasPrefix(name, combine.DatasetDir) {
			months++
		}
	}
	if months == 0 || len(a) != len(b) || len(a) != 7+months {
		t.Fatalf("%d objects, then %d; want %d", len(a), len(b), 7+months)
	}
	for k, v := range a {
		if !bytes.Equal(v, b[k]) {
			t.Errorf("%s differs between two combines of the same inputs", k)
		}
	}
	// A new input gives a new output name, and the pointer moves to it.
	f.writeRun("A81001", day(9), runOf("A81001", runID(9, "aaaaaaa9"), jan, jan, formats.PolicyUK,
		truth{jan, formats.Admissions, "90+", "unknown", 19}))
	third := f.combine()
	if third.Pointer.ID == first.Pointer.ID {
		t.Error("a new run did not change the output's name")
	}
	var ptr combine.Pointer
	if err := json.Unmarshal(f.get(combine.CurrentKey), &ptr); err != nil || ptr.ID != third.Pointer.ID {
		t.Errorf("current.json names %q (%v), want %s", ptr.ID, err, third.Pointer.ID)
	}
}
