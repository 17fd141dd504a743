package holder

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cloudflare/circl/vdaf/prio3/sumvec"

	"github.com/tributary-health/tributary/coordinator/registry"
	"github.com/tributary-health/tributary/coordinator/secure"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/secagg"
)

// LeadOptions shape a round the leader runs.
type LeadOptions struct {
	// Round is the round's id; empty makes a new one. A round is run once.
	Round string
	// From and To bound the months planned; zero means no bound.
	From, To formats.Month
	// Exact, when set (tests of exactness only), is called with each month's exact federation
	// cells (the layout's measures × 57, zero for measures not published) in memory, after the
	// aggregate shares are combined and before disclosure control. Nothing else sees them.
	Exact func(month formats.Month, published []string, cells []uint64)

	// For tests that play a dishonest leader: plan other reports than the honest choice, and
	// skip the leader's own guard.
	editPlan     func(honest []PlannedReport) []PlannedReport
	skipOwnGuard bool
	// ownAggregate, for tests, sees the leader's own aggregate share of each month released.
	ownAggregate func(month string, share []byte)
}

// ErrRefused: the helper refused the round's plan; nothing was aggregated or published.
var ErrRefused = errors.New("the other holder refused the round")

// Lead runs one publication round as the leader: plan, prepare, wait for the helper, combine,
// apply the federation's disclosure policy and publish. It returns when the round is
// published, refused or abandoned (the helper did not answer within Wait).
func (h *Holder) Lead(ctx context.Context, o LeadOptions) (*Result, error) {
	if err := h.init(); err != nil {
		return nil, err
	}
	if h.Key.Role != secagg.RoleLeader {
		return nil, fmt.Errorf("holder %s is the %s; only the leader plans rounds (run 'holder run' on the leader, and on this holder it answers the leader's plan)", h.Key.ID, h.Key.Role)
	}
	round := o.Round
	if round == "" {
		round = formats.NewRunID(h.Now())
	}
	if err := formats.ValidateRunID(round); err != nil {
		return nil, err
	}
	if r := h.State.round(round); r != nil {
		return nil, fmt.Errorf("round %s was already %s by this holder; start a new round (a round aggregates each practice-month at most once)", round, r.Status)
	}
	reg, err := registry.Load(ctx, h.Store, h.Coordinator)
	if err != nil {
		return nil, err
	}
	log := h.Log.With("round", round, "holder", h.Key.ID)
	res := &Result{Round: round}
	start := time.Now()
	var vk sumvec.VerifyKey
	if _, err := rand.Read(vk[:]); err != nil {
		return nil, err
	}
	defer clear(vk[:])
	from, to := o.From, o.To
	if to == 0 {
		to = formats.Month(1 << 30)
	}
	pps, rejected, err := h.gather(ctx, reg, &vk, from, to)
	if err != nil {
		return nil, err
	}
	for _, pp := range pps {
		rejected = append(rejected, pp.rejected...)
	}
	rejected = append(rejected, h.dropSharedNonces(pps)...)
	chosen, skipped := h.choose(pps, h.MinPractices)
	plan := &Plan{FormatVersion: messageVersion, Round: round, Created: h.Now().UTC(), Leader: h.Key.ID, Helper: h.Peer.ID,
		Policy: h.Policy.Name, MinPractices: h.MinPractices, VDAF: h.vdaf.Params}
	for _, p := range chosen {
		plan.Reports = append(plan.Reports, p.ref)
	}
	if o.editPlan != nil {
		refs := make([]PlannedReport, len(chosen))
		for i, p := range chosen {
			refs[i] = p.ref
		}
		plan.Reports = o.editPlan(refs)
		if chosen, err = h.preparePlan(ctx, reg, plan, &vk); err != nil {
			return nil, err
		}
	}
	enc, ct, err := secagg.Seal(h.Peer.HPKE, secagg.InfoVerifyKey, verifyKeyAAD(plan), vk[:])
	if err != nil {
		return nil, err
	}
	plan.VerifyKey = Sealed{Enc: enc, CT: ct}
	planSum, err := h.putMessage(ctx, round, planName, kindPlan, plan)
	if err != nil {
		return nil, fmt.Errorf("write the plan: %w", err)
	}
	if err := h.recordPrepared(round, planSum, chosen); err != nil {
		return nil, err
	}
	if _, err := h.putMessage(ctx, round, prepName, kindPrep, &Prep{FormatVersion: messageVersion, Round: round, Holder: h.Key.ID, Plan: planSum, Results: prepResults(chosen)}); err != nil {
		return nil, fmt.Errorf("write the prep shares: %w", err)
	}
	res.Prepare, res.Reports = time.Since(start), len(chosen)
	log.Info("round planned and prepared", "reports", len(chosen), "months_left_out", len(skipped), "rejected", len(rejected), "took", res.Prepare.Round(time.Millisecond))

	// The helper's verdicts, or its refusal of the whole plan.
	var theirs Prep
	var answer Aggregate
	refused := false
	err = h.waitFor(ctx, "prep shares", func() (bool, error) {
		if _, ok, err := h.getMessage(ctx, round, aggregateName, kindAggregate, &answer); err != nil || (ok && answer.Refused != "") {
			refused = ok
			return ok, err
		}
		_, ok, err := h.getMessage(ctx, round, prepName, kindPrep, &theirs)
		return ok, err
	})
	if err != nil {
		_ = h.recordRound(round, planSum, StatusAbandoned)
		return res, err
	}
	if refused || theirs.Plan != planSum || len(theirs.Results) != len(plan.Reports) {
		why := answer.Refused
		if !refused {
			why = "its prep shares are not for this plan"
		}
		_ = h.recordRound(round, planSum, StatusRefused)
		res.Refused = why
		log.Warn("the helper refused the round; nothing is published", "reason", why)
		return res, fmt.Errorf("%w %s: %s", ErrRefused, round, why)
	}
	start = time.Now()
	aggs, rej := h.combine(plan, chosen, &theirs)
	rejected = append(rejected, rej...)
	res.Aggregate = time.Since(start)

	err = h.waitFor(ctx, "aggregate shares", func() (bool, error) {
		_, ok, err := h.getMessage(ctx, round, aggregateName, kindAggregate, &answer)
		return ok, err
	})
	if err != nil {
		_ = h.recordRound(round, planSum, StatusAbandoned)
		return res, err
	}
	if answer.Refused != "" || answer.Plan != planSum {
		_ = h.recordRound(round, planSum, StatusRefused)
		res.Refused = answer.Refused
		return res, fmt.Errorf("%w %s: %s", ErrRefused, round, answer.Refused)
	}
	start = time.Now()
	records, exact, err := h.combineAggregates(plan, planSum, aggs, &answer, o)
	if err != nil {
		return res, err
	}
	defer func() {
		for _, v := range exact {
			clear(v.cells)
		}
	}()
	records = append(records, skipped...)
	slices.SortFunc(records, func(a, b secure.MonthRecord) int {
		switch {
		case a.Month < b.Month:
			return -1
		case a.Month > b.Month:
			return 1
		}
		return 0
	})
	// The guard's history first: whatever is published below was released.
	for ms, v := range exact {
		if err := h.recordRelease(round, ms, aggs[ms].units, v.measures); err != nil {
			return res, err
		}
	}
	segments, auditRefused, err := h.publishFigures(ctx, round, exact)
	if err != nil {
		return res, err
	}
	for i := range records {
		if why, ok := auditRefused[records[i].Month]; ok {
			records[i].Measures = nil
			records[i].Withheld = append(records[i].Withheld, secure.Withheld{Measure: "*", Reason: why})
		}
	}
	rec := &secure.Round{FormatVersion: secure.FormatVersion, Round: round, Created: plan.Created, Leader: h.Key.ID, Helper: h.Peer.ID,
		Policy: h.Policy.Name, MinPractices: h.MinPractices, VDAF: h.vdaf.Params, HelperAggregate: "",
		Segments: segments, Months: records, Rejected: rejected}
	if rec.Rejected == nil {
		rec.Rejected = []secure.Rejection{}
	}
	if rec.Segments == nil {
		rec.Segments = []secure.Segment{}
	}
	rec.HelperAggregate, _, _ = h.getMessage(ctx, round, aggregateName, kindAggregate, &Aggregate{})
	signed, err := secure.SignRound(rec, h.Key.Sign)
	if err != nil {
		return res, err
	}
	if _, err := h.Store.Put(ctx, secure.RoundKey(round), signed); err != nil {
		return res, fmt.Errorf("publish %s: %w", secure.RoundKey(round), err)
	}
	if err := h.recordRound(round, planSum, StatusReleased); err != nil {
		return res, err
	}
	res.Publish = time.Since(start)
	res.Months, res.Rejected = records, rejected
	for _, s := range segments {
		res.Published = append(res.Published, s.Key)
	}
	res.Published = append(res.Published, secure.RoundKey(round))
	log.Info("round published", "months", len(exact), "segments", len(segments), "rejected", len(rejected), "took", res.Publish.Round(time.Millisecond))
	return res, nil
}

// monthExact is a month's exact federation cells, in memory only, and the measures whose
// totals may be published.
type monthExact struct {
	measures []string
	cells    []uint64
}

// combineAggregates checks the helper's answer month by month against the leader's own
// aggregate and guard, and combines the two aggregate shares of every measure both released
// into the exact federation cells.
func (h *Holder) combineAggregates(plan *Plan, planSum string, aggs map[string]*monthAgg, answer *Aggregate, o LeadOptions) ([]secure.MonthRecord, map[string]*monthExact, error) {
	exact := map[string]*monthExact{}
	var records []secure.MonthRecord
	theirs := map[string]*AggregateMonth{}
	for i := range answer.Months {
		theirs[answer.Months[i].Month] = &answer.Months[i]
	}
	planned := map[string]bool{}
	for _, r := range plan.Reports {
		planned[r.Month] = true
	}
	for _, ms := range sortedKeys(planned) {
		rec := secure.MonthRecord{Month: ms}
		ma, hm := aggs[ms], theirs[ms]
		if ma == nil {
			rec.Withheld = append(rec.Withheld, secure.Withheld{Measure: "*", Reason: "no report of the month passed verification"})
			records = append(records, rec)
			continue
		}
		rec.Practices = sortedKeys(ma.units)
		rec.Runs = map[string]string{}
		for p, u := range ma.units {
			rec.Runs[p] = u.run
		}
		if hm == nil || !slices.Equal(hm.Reports, ma.nonces()) {
			rec.Withheld = append(rec.Withheld, secure.Withheld{Measure: "*", Reason: "the two holders counted different reports; nothing of the month is published"})
			records = append(records, rec)
			continue
		}
		rec.Withheld = append(rec.Withheld, hm.Withheld...)
		released, withheld := hm.Released, []secure.Withheld(nil)
		if !o.skipOwnGuard {
			var own []string
			own, withheld = h.guard(ms, ma.units, h.MinPractices)
			released = slices.DeleteFunc(slices.Clone(released), func(m string) bool { return !slices.Contains(own, m) })
		}
		for _, w := range withheld {
			if !slices.ContainsFunc(rec.Withheld, func(x secure.Withheld) bool { return x.Measure == w.Measure }) {
				rec.Withheld = append(rec.Withheld, w)
			}
		}
		if len(released) == 0 || hm.Share == nil {
			records = append(records, rec)
			continue
		}
		pt, err := secagg.Open(h.Key.HPKE, secagg.InfoAggShare, hm.Share.Enc, aggShareAAD(plan.Round, planSum, hm), hm.Share.CT)
		if err != nil {
			rec.Withheld = append(rec.Withheld, secure.Withheld{Measure: "*", Reason: "the helper's aggregate share does not decrypt with the leader's key"})
			records = append(records, rec)
			continue
		}
		theirAgg, err := h.vdaf.AggShareOf(zeroExcept(h.vdaf.Params, pt, released))
		clear(pt)
		if err != nil {
			return nil, nil, fmt.Errorf("the helper's aggregate share of %s: %w", ms, err)
		}
		ownBytes, err := ma.agg.MarshalBinary()
		if err != nil {
			return nil, nil, err
		}
		if o.ownAggregate != nil {
			o.ownAggregate(ms, zeroExcept(h.vdaf.Params, ownBytes, released))
		}
		ownAgg, err := h.vdaf.AggShareOf(zeroExcept(h.vdaf.Params, ownBytes, released))
		clear(ownBytes)
		if err != nil {
			return nil, nil, err
		}
		cells, err := h.vdaf.SV.Unshard([]sumvec.AggShare{ownAgg, theirAgg}, uint(ma.count))
		if err != nil {
			rec.Withheld = append(rec.Withheld, secure.Withheld{Measure: "*", Reason: fmt.Sprintf("the aggregate shares do not combine (%v)", err)})
			records = append(records, rec)
			continue
		}
		month, _ := formats.ParseMonth(ms)
		if o.Exact != nil {
			o.Exact(month, slices.Clone(released), slices.Clone(*cells))
		}
		exact[ms] = &monthExact{measures: released, cells: *cells}
		for _, m := range released {
			mr := secure.MeasureRecord{Measure: m}
			for _, p := range rec.Practices {
				if slices.Contains(ma.units[p].supplied, m) {
					mr.Practices++
				} else {
					mr.Without = append(mr.Without, p)
				}
			}
			rec.Measures = append(rec.Measures, mr)
		}
		records = append(records, rec)
	}
	return records, exact, nil
}

// zeroExcept returns an aggregate share's bytes with every cell of measures not in keep set
// to zero (field elements are 16 bytes each, in layout order): those totals are not released,
// and their cells then combine to zero rather than to a value.
func zeroExcept(p formats.VDAFParams, share []byte, keep []string) []byte {
	out := slices.Clone(share)
	const elem = 16
	for li, m := range p.Measures {
		if !slices.Contains(keep, m) {
			clear(out[li*formats.NumFine*elem : (li+1)*formats.NumFine*elem])
		}
	}
	return out
}
