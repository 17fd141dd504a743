package holder

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/cloudflare/circl/vdaf/prio3/sumvec"

	"github.com/tributary-health/tributary/coordinator/secure"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/secagg"
)

// The differencing guard. Both holders apply it, each from its own history, to every total
// before taking part in it (the helper before it releases its aggregate share, the leader
// before it publishes), so that neither holder nor anyone who can ask for rounds can learn
// one practice's counts as the difference of totals. A total is one month and measure over
// a set of reports, one per practice ("units"). With k the minimum number of practices:
//
//  1. Minimum size: a total counts at least k practices that supply the measure.
//  2. One total per practice-month per round: a round aggregates each month once, each
//     practice-month in it at most once (the plan may not name a practice-month twice, and
//     a round once prepared is never planned again).
//  3. Revisions: after a month and measure's first total, a new total must (a) keep every
//     practice of the last released one (none dropped), (b) change the report of no
//     practice or of at least k (a practice joining counts as a change), and (c) never
//     bring back a report that an earlier total counted and a later one replaced.
//
// Why this is enough: the totals of one month and measure form a chain U1, U2, ... in which
// each step adds or replaces at least k practices' reports with reports never counted before
// and drops none. Any linear combination of the totals that is not zero gives the same
// non-zero weight to every fresh report of its latest step (they appear in no earlier total),
// so it involves at least k practices: no combination isolates fewer than k, so one practice,
// even knowing its own counts, learns only sums over at least k-1 others. Pairwise checks
// alone would not do: totals over {1,2,3}, {1,4,5} and {2,3,4,5} differ pairwise by at least
// three practices, yet the first plus the second minus the third is twice practice 1.

// unit is one practice's report in a month's aggregate.
type unit struct {
	nonce    string
	run      string
	supplied []string
}

// guard decides which measures of a month's aggregate over units (practice -> report) may be
// released under this holder's history, with k the minimum practices.
func (h *Holder) guard(month string, units map[string]unit, k int) (released []string, withheld []secure.Withheld) {
	for _, measure := range h.vdaf.Params.Measures {
		set := map[string]string{}
		for p, u := range units {
			if slices.Contains(u.supplied, measure) {
				set[p] = u.nonce
			}
		}
		if len(set) == 0 {
			continue // nobody supplies it: there is no total, nothing to withhold
		}
		if why := h.refuse(month, measure, set, k); why != "" {
			withheld = append(withheld, secure.Withheld{Measure: measure, Reason: why})
			continue
		}
		released = append(released, measure)
	}
	return released, withheld
}

// refuse says why a total of month and measure over set (practice -> nonce) may not be
// released, or "" if it may.
func (h *Holder) refuse(month, measure string, set map[string]string, k int) string {
	if len(set) < k {
		return fmt.Sprintf("only %d practice(s) supplied it; a total needs at least %d", len(set), k)
	}
	last := h.State.lastRelease(month, measure)
	if last == nil {
		return ""
	}
	var dropped, changed []string
	for p := range last.Units {
		if _, ok := set[p]; !ok {
			dropped = append(dropped, p)
		}
	}
	for p, n := range set {
		if last.Units[p] != n {
			changed = append(changed, p)
		}
	}
	slices.Sort(dropped)
	slices.Sort(changed)
	if len(dropped) > 0 {
		return fmt.Sprintf("practice(s) %s of the last total (round %s) are missing; a total without them would reveal them by difference", strings.Join(dropped, ", "), last.Round)
	}
	if len(changed) > 0 && len(changed) < k {
		return fmt.Sprintf("%d practice(s) changed since the last total (round %s); a revised total is released when none or at least %d have", len(changed), last.Round, k)
	}
	for _, p := range changed {
		if seen := h.State.seen(set[p]); seen != nil && seen.Released {
			return fmt.Sprintf("practice %s's report %s was counted in an earlier total and then replaced; a replaced report never comes back", p, set[p])
		}
	}
	return ""
}

// recordRelease records in the state that a month's totals of the released measures were
// released over units, in round.
func (h *Holder) recordRelease(round, month string, units map[string]unit, released []string) error {
	return h.State.record(func(d *stateData) {
		for _, measure := range released {
			r := &Release{Round: round, Units: map[string]string{}}
			for p, u := range units {
				if slices.Contains(u.supplied, measure) {
					r.Units[p] = u.nonce
					if s := d.Reports[u.nonce]; s != nil {
						s.Released = true
					}
				}
			}
			d.Released[releaseKey(month, measure)] = r
		}
	})
}

// recordPrepared records the reports a round prepared (the replay ledger) and the round.
func (h *Holder) recordPrepared(round, planSum string, reps []*prepared) error {
	return h.State.record(func(d *stateData) {
		for _, r := range reps {
			if r.rej != nil && r.rej.kind != secure.KindInvalid && r.rej.kind != secure.KindUndecryptable {
				continue // never opened: not seen
			}
			if d.Reports[r.ref.Nonce] == nil {
				d.Reports[r.ref.Nonce] = &ReportSeen{Practice: r.ref.Practice, RunID: r.ref.RunID, Month: r.ref.Month, Round: round}
			}
		}
		d.Rounds[round] = &RoundSeen{Plan: planSum, Status: StatusPrepared, Updated: h.Now().UTC()}
	})
}

func (h *Holder) recordRound(round, planSum, status string) error {
	return h.State.record(func(d *stateData) {
		d.Rounds[round] = &RoundSeen{Plan: planSum, Status: status, Updated: h.Now().UTC()}
	})
}

// monthAgg is one month's aggregate share at this holder.
type monthAgg struct {
	agg   sumvec.AggShare
	units map[string]unit // practice -> report
	count int
}

// nonces lists the month's reports, sorted.
func (m *monthAgg) nonces() []string {
	var out []string
	for _, u := range m.units {
		out = append(out, u.nonce)
	}
	slices.Sort(out)
	return out
}

// combine joins this holder's and the other's prep results for the plan: a report both
// prepared, whose public parts agree and whose joint verification passes, is added to its
// month's aggregate share; every other is rejected with the reason.
func (h *Holder) combine(plan *Plan, mine []*prepared, theirs *Prep) (map[string]*monthAgg, []secure.Rejection) {
	aggs := map[string]*monthAgg{}
	var rejected []secure.Rejection
	for i, ref := range plan.Reports {
		me, them := mine[i], theirs.Results[i]
		rj := func(holder string, r *rejection) {
			rejected = append(rejected, secure.Rejection{Practice: ref.Practice, RunID: ref.RunID, Month: ref.Month, Nonce: ref.Nonce, Holder: holder, Kind: r.kind, Reason: r.reason})
		}
		switch {
		case me.rej != nil:
			rj(h.Key.ID, me.rej)
			continue
		case them.Kind != "":
			rj(h.Peer.ID, &rejection{kind: them.Kind, reason: them.Reason})
			continue
		case them.Nonce != ref.Nonce:
			rj(h.Peer.ID, reject(secure.KindDisagree, "the other holder's verdict is for another report"))
			continue
		case them.Digest != me.digest || !slices.Equal(them.Supplied, me.supplied):
			rj("both", reject(secure.KindDisagree, "the two holders' copies of the report's public part differ (month, nonce, measures or public share): the two shares files do not belong together"))
			continue
		}
		theirShare, err := h.vdaf.PrepShareOf(them.PrepShare)
		if err != nil {
			rj(h.Peer.ID, reject(secure.KindMalformed, "the other holder's prep share does not decode: %v", err))
			continue
		}
		myShare, err := h.vdaf.PrepShareOf(me.share)
		if err != nil {
			rj(h.Key.ID, reject(secure.KindMalformed, "%v", err))
			continue
		}
		shares := []sumvec.PrepShare{myShare, theirShare}
		if h.aggregator() == secagg.Helper {
			shares[0], shares[1] = theirShare, myShare
		}
		msg, err := h.vdaf.SV.PrepSharesToPrep(shares)
		if err != nil {
			rj("both", invalid(ref.Month, err))
			continue
		}
		out, err := h.vdaf.SV.PrepNext(me.state, msg)
		if err != nil {
			rj("both", invalid(ref.Month, err))
			continue
		}
		ma := aggs[ref.Month]
		if ma == nil {
			ma = &monthAgg{agg: h.vdaf.SV.AggregateInit(), units: map[string]unit{}}
			aggs[ref.Month] = ma
		}
		h.vdaf.SV.AggregateUpdate(&ma.agg, out)
		ma.units[ref.Practice] = unit{nonce: ref.Nonce, run: ref.RunID, supplied: me.supplied}
		ma.count++
		me.state = nil
	}
	return aggs, rejected
}

// validatePlan checks a plan against this holder's own rules before it prepares anything:
// its parameters, and that it names no practice-month or report twice and reuses no round.
func (h *Holder) validatePlan(p *Plan, sum string) string {
	switch {
	case p.FormatVersion != messageVersion:
		return fmt.Sprintf("plan version %d, this holder reads %d", p.FormatVersion, messageVersion)
	case formats.ValidateRunID(p.Round) != nil:
		return fmt.Sprintf("round id %q is not of the form 20060102T150405Z-0123abcd", p.Round)
	case p.Leader != h.leaderID() || p.Helper != h.helperID():
		return fmt.Sprintf("the plan is for leader %s and helper %s, not %s and %s", p.Leader, p.Helper, h.leaderID(), h.helperID())
	case p.Policy != h.Policy.Name:
		return fmt.Sprintf("the plan applies policy %s; this holder's federation policy is %s", p.Policy, h.Policy.Name)
	case !p.VDAF.Equal(h.vdaf.Params):
		return "the plan's VDAF is not this holder's; upgrade so both holders agree"
	case p.Created.After(h.Now().Add(time.Hour)):
		return "the plan is dated in the future"
	}
	if r := h.State.round(p.Round); r != nil && r.Plan != sum {
		return fmt.Sprintf("round %s was already %s with another plan; each practice-month is aggregated into at most one total per round, so a round is never planned twice", p.Round, r.Status)
	}
	pm, nonces := map[string]bool{}, map[string]bool{}
	for _, r := range p.Reports {
		if _, err := formats.ParseMonth(r.Month); err != nil || formats.ValidatePracticeID(r.Practice) != nil || formats.ValidateRunID(r.RunID) != nil {
			return "the plan names a report with an invalid practice, run or month"
		}
		if r.Manifest != formats.ManifestKey(r.Practice, r.RunID) {
			return fmt.Sprintf("the plan names manifest %s for practice %s run %s", r.Manifest, r.Practice, r.RunID)
		}
		key := r.Practice + " " + r.Month
		if pm[key] {
			return fmt.Sprintf("the plan names practice %s's month %s twice; a practice-month goes into at most one total per round", r.Practice, r.Month)
		}
		pm[key] = true
		if nonces[r.Nonce] {
			return fmt.Sprintf("the plan names report %s twice", r.Nonce)
		}
		nonces[r.Nonce] = true
	}
	return ""
}

// sortedKeys returns a map's keys, sorted.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
