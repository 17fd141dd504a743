package combine_test

import (
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/coordinator/measures"
	"github.com/tributary-health/tributary/formats"
)

// TestDefinitionDigestsNotMixed: a change to a definition's code list is a new digest, and
// the combine adds a measure up only across practices whose manifests record the federation's
// digest; a practice counted by another definition is left out of that measure, with the
// reason in completeness, and still counts for the others.
func TestDefinitionDigestsNotMixed(t *testing.T) {
	const acsc = "acsc_chronic_emergency"
	f := newFixture(t, "A81001", "B82002")
	builtin, _ := formats.BuiltinDefinition(acsc)
	changed := builtin
	changed.Codes = append([]formats.CodeList(nil), builtin.Codes...)
	changed.Codes[0].Codes = append(append([]string(nil), builtin.Codes[0].Codes...), "I21") // myocardial infarction added
	changed.Version = 2
	if err := changed.Validate(); err != nil {
		t.Fatal(err)
	}
	if changed.Digest() == builtin.Digest() {
		t.Fatal("a code-list change kept the digest")
	}
	jan := month("2024-01")
	digests := func(acscDigest string) map[string]string {
		d := map[string]string{acsc: acscDigest}
		for _, m := range []string{formats.RegisteredPatients} {
			def, _ := formats.BuiltinDefinition(m)
			d[m] = def.Digest()
		}
		return d
	}
	write := func(practice, run string, n int64, acscDigest string) {
		sub := runOf(practice, run, jan, jan, formats.PolicyUK,
			truth{jan, formats.RegisteredPatients, "70-74", "female", 400},
			truth{jan, acsc, "70-74", "female", n})
		if _, err := fedgen.WriteSubmissionWith(f.ctx, f.st, f.keys[practice], time.Date(2024, 3, 1, 12, 0, 0, 0, time.UTC), sub, digests(acscDigest)); err != nil {
			t.Fatal(err)
		}
	}
	write("A81001", runID(1, "0000000a"), 40, builtin.Digest())
	write("B82002", runID(1, "0000000b"), 100, changed.Digest())

	total := func(res *combine.Result, measure string) int64 {
		fig, ok := f.federation(res)[figKey{"", "2024-01", measure, "", ""}]
		if !ok || fig.Count == nil {
			t.Fatalf("no federation total of %s", measure)
		}
		return *fig.Count
	}
	excluded := func(res *combine.Result) map[string]string {
		out := map[string]string{}
		for _, c := range res.Report.Completeness {
			for _, x := range c.Contributors {
				for _, e := range x.Excluded {
					out[x.Practice+" "+e.Measure] = e.Reason
				}
			}
		}
		return out
	}
	res := f.combine()
	if got := total(res, acsc); got != 40 {
		t.Errorf("federation %s = %d, want 40: A's only, B counted by another definition", acsc, got)
	}
	if got := total(res, formats.RegisteredPatients); got != 800 {
		t.Errorf("registered patients = %d, want 800: B still counts for the measures it shares", got)
	}
	want := "used definition digest " + formats.ShortDigest(changed.Digest()) + ", federation's is " + formats.ShortDigest(builtin.Digest())
	if got := excluded(res); len(got) != 1 || got["B82002 "+acsc] != want {
		t.Errorf("excluded %v, want B82002's %s: %q", got, acsc, want)
	}
	t.Logf("built-in %s digest %s; changed code list digest %s; combine 1: federation %d, excluded %v", acsc, formats.ShortDigest(builtin.Digest()), formats.ShortDigest(changed.Digest()), total(res, acsc), excluded(res))

	// The federation adopts the changed list: now B's counts are combined and A's are not.
	if _, err := measures.Add(f.ctx, f.st, f.coord, []formats.Definition{changed}, time.Date(2024, 3, 2, 0, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	res = f.combine()
	if got := total(res, acsc); got != 100 {
		t.Errorf("after the federation adopted the new list: %s = %d, want 100 (B's only)", acsc, got)
	}
	if got := excluded(res)["A81001 "+acsc]; !strings.Contains(got, "federation's is "+formats.ShortDigest(changed.Digest())) {
		t.Errorf("A's exclusion %q", got)
	}
	var listed bool
	for _, m := range res.Report.Measures {
		if m.Name == acsc {
			listed = m.Digest == changed.Digest() && m.Version == 2
		}
	}
	if !listed {
		t.Error("the report does not list the federation's new definition")
	}
	t.Logf("combine 2 (federation adopted the change): federation %d, excluded %v", total(res, acsc), excluded(res))

	// A manifest without digests (an agent from before measures were data) is read as the
	// built-in first catalogue; its other measures are not combined.
	sub := runOf("A81001", runID(2, "0000000c"), jan, jan, formats.PolicyUK,
		truth{jan, formats.RegisteredPatients, "70-74", "female", 410},
		truth{jan, acsc, "70-74", "female", 45})
	if _, err := fedgen.WriteSubmission(f.ctx, f.st, f.keys["A81001"], time.Date(2024, 3, 2, 12, 0, 0, 0, time.UTC), sub); err != nil {
		t.Fatal(err)
	}
	res = f.combine()
	if got := total(res, formats.RegisteredPatients); got != 810 {
		t.Errorf("registered patients = %d, want 810: a manifest without digests is the built-in first catalogue", got)
	}
	if got := excluded(res)["A81001 "+acsc]; !strings.Contains(got, "records no definition") {
		t.Errorf("A's exclusion without digests: %q", got)
	}
}
