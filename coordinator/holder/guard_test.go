package holder

import (
	"crypto/ed25519"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/tributary-health/tributary/coordinator/secure"
	"github.com/tributary-health/tributary/formats"
)

// ref names practice p's report of month in run, as a (dishonest) leader would plan it.
func (f *testFed) ref(p *testPractice, runID string, month formats.Month) PlannedReport {
	f.t.Helper()
	key := formats.ManifestKey(p.id, runID)
	raw, _, err := f.st.Get(f.ctx, key, formats.MaxEnvelopeBytes)
	if err != nil {
		f.t.Fatal(err)
	}
	data, _, err := f.st.Get(f.ctx, formats.SharesKey(p.id, runID, f.keys[0].ID), formats.MaxSharesBytes)
	if err != nil {
		f.t.Fatal(err)
	}
	s, err := formats.ReadShares(data)
	if err != nil {
		f.t.Fatal(err)
	}
	i := reportIndex(s, month.String())
	return PlannedReport{Practice: p.id, RunID: runID, Month: month.String(), Nonce: s.Header.Reports[i].Nonce, Manifest: key, ManifestSHA256: secure.SHA256(raw)}
}

// without drops practice's reports from a plan.
func without(practice string) func([]PlannedReport) []PlannedReport {
	return func(refs []PlannedReport) []PlannedReport {
		return slices.DeleteFunc(refs, func(r PlannedReport) bool { return r.Practice == practice })
	}
}

// withheldReasons joins every withheld reason of a round's months.
func withheldReasons(months []secure.MonthRecord) string {
	var out []string
	for _, m := range months {
		for _, w := range m.Withheld {
			out = append(out, m.Month+" "+w.Measure+": "+w.Reason)
		}
	}
	return strings.Join(out, "\n")
}

func totalOf(figs *secure.Figures, m formats.Month, measure string) formats.Protected {
	if figs == nil || figs.Values[formats.MonthPeriod(m)] == nil || figs.Values[formats.MonthPeriod(m)][measure] == nil {
		return formats.Protected{Status: "absent"}
	}
	return figs.Values[formats.MonthPeriod(m)][measure][formats.TotalShape]
}

// TestGuardMinimumPractices: a leader that asks for a total of two practices (its own minimum
// set to one) is refused by the helper, whose minimum is three: nothing is published.
func TestGuardMinimumPractices(t *testing.T) {
	m := formats.MonthFor(2024, 1)
	f := newTestFed(t, 2, m, m)
	for _, p := range f.practices {
		f.upload(p, uploadOptions{})
	}
	f.holders[0].MinPractices = 1
	lead, help := mustRound(t, f, LeadOptions{})
	if why := withheldReasons(help.Months); !strings.Contains(why, "only 2 practice(s) supplied it; a total needs at least 3") {
		t.Fatalf("the helper released a total of two practices: %s", why)
	}
	if len(lead.Published) != 1 { // the round record alone: no figures
		t.Errorf("published %v", lead.Published)
	}
	if v := totalOf(f.published(), m, formats.Admissions); v.Status != "absent" {
		t.Errorf("a total of two practices was published: %+v", v)
	}
}

// TestGuardSubsetRefusedInTheSameRound: after a round published a month over five practices,
// the leader rewrites that round's plan over four of them (signed with its own key, as a
// leader that has lost or forged its state could): the helper refuses it outright, since a
// practice-month goes into at most one total per round, and nothing changes.
func TestGuardSubsetRefusedInTheSameRound(t *testing.T) {
	m := formats.MonthFor(2024, 1)
	f := newTestFed(t, 5, m, m)
	for _, p := range f.practices {
		f.upload(p, uploadOptions{})
	}
	lead, _ := mustRound(t, f, LeadOptions{})
	before := totalOf(f.published(), m, formats.Admissions)

	key := secure.MessagePrefix(f.keys[0].ID, lead.Round) + planName
	var plan Plan
	if _, err := secure.GetSigned(f.ctx, f.st, key, kindPlan, f.keys[0].Sign.Public().(ed25519.PublicKey), &plan); err != nil {
		t.Fatal(err)
	}
	plan.Reports = without("P005")(plan.Reports)
	if _, err := secure.PutSigned(f.ctx, f.st, key, kindPlan, &plan, f.keys[0].Sign); err != nil {
		t.Fatal(err)
	}
	help, err := f.holders[1].Help(f.ctx, HelpOptions{Round: lead.Round})
	if !errors.Is(err, ErrRefused) || !strings.Contains(help.Refused, "at most one total per round") {
		t.Fatalf("a second plan for round %s: %v (%q)", lead.Round, err, help.Refused)
	}
	var answer Aggregate
	if _, err := secure.GetSigned(f.ctx, f.st, secure.MessagePrefix(f.keys[1].ID, lead.Round)+aggregateName, kindAggregate, f.keys[1].Sign.Public().(ed25519.PublicKey), &answer); err != nil || answer.Refused == "" || len(answer.Months) != 0 {
		t.Errorf("the helper's answer %+v, %v: want a refusal and no shares", answer, err)
	}
	if after := totalOf(f.published(), m, formats.Admissions); after != before {
		t.Errorf("the total changed from %+v to %+v", before, after)
	}
}

// TestGuardSubsetRefusedInALaterRound: a later round that drops one practice of the last
// total (its difference from the first would be that practice's counts) is refused by the
// helper, month by month, and nothing is published; the honest leader's own guard refuses it
// as well.
func TestGuardSubsetRefusedInALaterRound(t *testing.T) {
	from, to := formats.MonthFor(2024, 1), formats.MonthFor(2024, 2)
	f := newTestFed(t, 5, from, to)
	for _, p := range f.practices {
		f.upload(p, uploadOptions{})
	}
	mustRound(t, f, LeadOptions{})
	before := f.published()

	lead, help := mustRound(t, f, LeadOptions{editPlan: without("P005"), skipOwnGuard: true})
	why := withheldReasons(help.Months)
	if !strings.Contains(why, "P005 of the last total") || strings.Count(why, "\n")+1 != 2*len(formats.Measures) {
		t.Fatalf("the helper released a total without P005:\n%s", why)
	}
	if len(lead.Published) != 1 {
		t.Errorf("published %v", lead.Published)
	}
	after := f.published()
	for m := from; m <= to; m++ {
		if a, b := totalOf(before, m, formats.Admissions), totalOf(after, m, formats.Admissions); a != b {
			t.Errorf("%s: %+v became %+v", m, a, b)
		}
	}

	// The helper is honest here; the leader's own guard also refuses a subset.
	f.holders[0].MinPractices = 3
	_, lerr, _, herr := f.round(LeadOptions{editPlan: without("P004")})
	if lerr != nil || herr != nil {
		t.Fatal(lerr, herr)
	}
}

// TestGuardRevisions: one practice's revision is held back (the month is published again
// unchanged) until at least three practices have revised; then the new total is exact. A
// leader that asks for the one-practice revision anyway is refused by the helper, and so is
// one that brings back reports an earlier total counted and a later one replaced.
func TestGuardRevisions(t *testing.T) {
	m := formats.MonthFor(2024, 1)
	f := newTestFed(t, 5, m, m)
	first := map[string]string{}
	for _, p := range f.practices {
		first[p.id] = f.upload(p, uploadOptions{})
	}
	var exact []uint64
	capture := func(_ formats.Month, _ []string, cells []uint64) { exact = cells }
	mustRound(t, f, LeadOptions{Exact: capture})
	if !slices.Equal(exact, exactTotal(f.practices, m)) {
		t.Fatal("round 1 is not exact")
	}
	before := totalOf(f.published(), m, formats.RegisteredPatients)

	// P001 revises: held back.
	f.practices[0].version[m] = 1
	second := f.upload(f.practices[0], uploadOptions{})
	exact = nil
	mustRound(t, f, LeadOptions{Exact: capture})
	f.practices[0].version[m] = 0
	if !slices.Equal(exact, exactTotal(f.practices, m)) {
		t.Error("round 2 did not hold P001's revision back")
	}
	f.practices[0].version[m] = 1
	if after := totalOf(f.published(), m, formats.RegisteredPatients); after != before {
		t.Errorf("a one-practice revision changed the total from %+v to %+v", before, after)
	}

	// A dishonest leader asks for it anyway: refused.
	lead, help := mustRound(t, f, LeadOptions{skipOwnGuard: true, editPlan: func(refs []PlannedReport) []PlannedReport {
		for i := range refs {
			if refs[i].Practice == "P001" {
				refs[i] = f.ref(f.practices[0], second, m)
			}
		}
		return refs
	}})
	if why := withheldReasons(help.Months); !strings.Contains(why, "1 practice(s) changed since the last total") {
		t.Fatalf("the helper released a one-practice revision:\n%s", why)
	}
	if len(lead.Published) != 1 {
		t.Errorf("published %v", lead.Published)
	}

	// Two more revise: three have, and the new total is released, exactly.
	f.practices[1].version[m], f.practices[2].version[m] = 1, 1
	f.upload(f.practices[1], uploadOptions{})
	f.upload(f.practices[2], uploadOptions{})
	exact = nil
	mustRound(t, f, LeadOptions{Exact: capture})
	if !slices.Equal(exact, exactTotal(f.practices, m)) {
		t.Error("round 4 did not release the three practices' revisions")
	}

	// Bringing back the three replaced reports (three changes, but to reports counted before
	// and since replaced) is refused.
	_, help = mustRound(t, f, LeadOptions{skipOwnGuard: true, editPlan: func(refs []PlannedReport) []PlannedReport {
		for i := range refs {
			for _, p := range f.practices[:3] {
				if refs[i].Practice == p.id {
					refs[i] = f.ref(p, first[p.id], m)
				}
			}
		}
		return refs
	}})
	if why := withheldReasons(help.Months); !strings.Contains(why, "was counted in an earlier total and then replaced") {
		t.Fatalf("the helper released a total with replaced reports brought back:\n%s", why)
	}
}
