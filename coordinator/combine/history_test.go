package combine_test

import (
	"crypto/ed25519"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/formats"
)

// TestClockInTheFuture is the review's attack: a run signed with the agent's clock ten
// years ahead superseded every later real run and stretched the federation's range to 2036;
// a manifest created 9999-12-31 was accepted; months 9999-10..9999-12 were combined. Each is
// now quarantined as "future", and the practice's next normal run is what is combined.
func TestClockInTheFuture(t *testing.T) {
	f := newFixture(t, "A81001", "B82002")
	now := time.Date(2024, 4, 2, 12, 0, 0, 0, time.UTC)
	jan := month("2024-01")
	ahead := f.writeRun("A81001", now.AddDate(10, 0, 0), runOf("A81001", runID(1, "aaaaaaa1"), jan, jan, formats.PolicyUK,
		truth{jan, formats.Admissions, "90+", "female", 30}))
	farAhead := f.writeRun("B82002", time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), runOf("B82002", runID(1, "bbbbbbb1"), jan, jan, formats.PolicyUK,
		truth{jan, formats.Admissions, "90+", "female", 30}))
	future := f.writeRun("B82002", now, runOf("B82002", runID(2, "bbbbbbb2"), month("9999-10"), month("9999-12"), formats.PolicyUK,
		truth{month("9999-10"), formats.Admissions, "90+", "female", 30}))
	real := f.writeRun("A81001", now.Add(-time.Hour), runOf("A81001", runID(2, "aaaaaaa2"), jan, jan, formats.PolicyUK,
		truth{jan, formats.Admissions, "90+", "female", 12}))
	res, err := combine.Run(f.ctx, f.st, f.coord.Public().(ed25519.PublicKey), combine.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	var quarantined []string
	for _, q := range res.Report.Quarantined {
		if q.Kind != "future" || !strings.Contains(q.Reason, "clock") {
			t.Errorf("%s quarantined as %s: %s", q.Key, q.Kind, q.Reason)
		}
		quarantined = append(quarantined, q.Key)
	}
	for _, k := range []string{ahead, farAhead, future} {
		if !slices.Contains(quarantined, k) {
			t.Errorf("%s was not quarantined", k)
		}
	}
	if res.Pointer.LastMonth != "2024-01" {
		t.Errorf("the federation's range ends %s, want 2024-01", res.Pointer.LastMonth)
	}
	var combined []string
	for _, in := range res.Report.Inputs {
		for _, fl := range in.Files {
			if fl.Use == combine.UseCombined {
				combined = append(combined, in.Manifest)
			}
		}
	}
	if !slices.Equal(combined, []string{real}) {
		t.Errorf("combined %v, want only the practice's real run %s", combined, real)
	}
}

// TestRetention: the history lists published outputs only, newest first, up to Keep; older
// outputs, an interrupted combine's leftovers and practice tables no longer named are pruned
// once they are old enough, and the current output is never touched.
func TestRetention(t *testing.T) {
	f := newFixture(t, "A81001")
	jan := month("2024-01")
	clock := time.Now()
	run := func(day int, n int64) *combine.Result {
		f.writeRun("A81001", time.Date(2024, 3, day, 0, 0, 0, 0, time.UTC), runOf("A81001", runID(day, "aaaaaaa"+string(rune('0'+day))), jan, jan, formats.PolicyUK,
			truth{jan, formats.Admissions, "90+", "female", n}))
		res, err := combine.Run(f.ctx, f.st, f.coord.Public().(ed25519.PublicKey), combine.Options{Keep: 2, Now: func() time.Time { return clock }})
		if err != nil || res.PruneErr != nil {
			t.Fatal(err, res.PruneErr)
		}
		return res
	}
	first := run(1, 10)
	// A combine killed before it wrote current.json left an output no pointer ever named.
	leftover := combine.CombinedPrefix + strings.Repeat("d", 32) + "/federation.arrow"
	f.put(leftover, []byte("half written"))
	second := run(2, 20)
	if _, _, err := f.st.Get(f.ctx, leftover, 100); err != nil {
		t.Error("a fresh unpublished output was pruned; another combine may still be writing it")
	}
	third := run(3, 30)
	clock = clock.Add(2 * time.Hour) // the leftover and the first output's tables are old now
	fourth := run(4, 40)

	h, err := combine.ReadHistory(f.ctx, f.st)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range h.Outputs {
		ids = append(ids, e.ID)
	}
	if !slices.Equal(ids, []string{fourth.Pointer.ID, third.Pointer.ID}) {
		t.Errorf("history %v, want the newest two published outputs", ids)
	}
	infos, err := f.st.List(f.ctx, formats.FederationPrefix)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, in := range infos {
		left = append(left, in.Key)
	}
	for _, gone := range []string{first.Pointer.Prefix, second.Pointer.Prefix, leftover} {
		for _, k := range left {
			if strings.HasPrefix(k, gone) {
				t.Errorf("%s was kept; the retention setting drops it", k)
			}
		}
	}
	for _, kept := range []string{fourth.Pointer.Prefix + combine.FederationArrow, third.Pointer.Prefix + combine.FederationArrow, fourth.Pointer.PracticeTables["A81001"].Key} {
		if !slices.Contains(left, kept) {
			t.Errorf("%s was pruned", kept)
		}
	}
	if fourth.Pruned == 0 {
		t.Error("the fourth combine says it pruned nothing")
	}
}
