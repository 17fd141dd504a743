package holder

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cloudflare/circl/vdaf/prio3/sumvec"

	"github.com/tributary-health/tributary/coordinator/registry"
	"github.com/tributary-health/tributary/coordinator/secure"
	"github.com/tributary-health/tributary/secagg"
)

// HelpOptions shape the helper's part in a round.
type HelpOptions struct {
	// Round is the round to answer; empty waits for the leader's newest plan this holder has
	// not answered.
	Round string
}

// Help answers one round as the helper: it checks the leader's plan against its own rules,
// prepares its share of every planned report, combines its verdicts with the leader's, and
// releases, month by month, its aggregate share of the totals its guard allows, encrypted
// to the leader. It never learns a total: it holds only shares.
func (h *Holder) Help(ctx context.Context, o HelpOptions) (*Result, error) {
	if err := h.init(); err != nil {
		return nil, err
	}
	if h.Key.Role != secagg.RoleHelper {
		return nil, fmt.Errorf("holder %s is the %s; 'Help' is the helper's part", h.Key.ID, h.Key.Role)
	}
	round := o.Round
	if round == "" {
		var err error
		if round, err = h.nextRound(ctx); err != nil {
			return nil, err
		}
	}
	log := h.Log.With("round", round, "holder", h.Key.ID)
	res := &Result{Round: round}
	var plan Plan
	var planSum string
	err := h.waitFor(ctx, "plan", func() (bool, error) {
		sum, ok, err := h.getMessage(ctx, round, planName, kindPlan, &plan)
		planSum = sum
		return ok, err
	})
	if err != nil {
		return nil, err
	}
	if r := h.State.round(round); r != nil && r.Plan == planSum && r.Status == StatusReleased {
		return res, fmt.Errorf("round %s was already answered; nothing more to do", round)
	}
	if why := h.validatePlan(&plan, planSum); why != "" {
		return res, h.refusePlan(ctx, res, round, planSum, why)
	}
	reg, err := registry.Load(ctx, h.Store, h.Coordinator)
	if err != nil {
		return nil, err
	}
	raw, err := secagg.Open(h.Key.HPKE, secagg.InfoVerifyKey, plan.VerifyKey.Enc, verifyKeyAAD(&plan), plan.VerifyKey.CT)
	if err != nil || len(raw) != len(sumvec.VerifyKey{}) {
		return res, h.refusePlan(ctx, res, round, planSum, "the plan's verify key does not decrypt with this holder's key")
	}
	var vk sumvec.VerifyKey
	copy(vk[:], raw)
	clear(raw)
	defer clear(vk[:])
	k := max(h.MinPractices, plan.MinPractices)

	start := time.Now()
	mine, err := h.preparePlan(ctx, reg, &plan, &vk)
	if err != nil {
		return nil, err
	}
	if err := h.recordPrepared(round, planSum, mine); err != nil {
		return nil, err
	}
	if _, err := h.putMessage(ctx, round, prepName, kindPrep, &Prep{FormatVersion: messageVersion, Round: round, Holder: h.Key.ID, Plan: planSum, Results: prepResults(mine)}); err != nil {
		return nil, fmt.Errorf("write the prep shares: %w", err)
	}
	res.Prepare, res.Reports = time.Since(start), len(mine)
	log.Info("plan checked and reports prepared", "reports", len(mine), "took", res.Prepare.Round(time.Millisecond))

	var theirs Prep
	err = h.waitFor(ctx, "prep shares", func() (bool, error) {
		_, ok, err := h.getMessage(ctx, round, prepName, kindPrep, &theirs)
		return ok, err
	})
	if err != nil {
		_ = h.recordRound(round, planSum, StatusAbandoned)
		return res, err
	}
	if theirs.Plan != planSum || len(theirs.Results) != len(plan.Reports) {
		return res, h.refusePlan(ctx, res, round, planSum, "the leader's prep shares are not for its own plan")
	}
	start = time.Now()
	aggs, rejected := h.combine(&plan, mine, &theirs)
	answer := &Aggregate{FormatVersion: messageVersion, Round: round, Holder: h.Key.ID, Plan: planSum}
	for _, ms := range sortedKeys(aggs) {
		ma := aggs[ms]
		am := AggregateMonth{Month: ms, Reports: ma.nonces()}
		am.Released, am.Withheld = h.guard(ms, ma.units, k)
		rec := secure.MonthRecord{Month: ms, Practices: sortedKeys(ma.units), Withheld: am.Withheld}
		if len(am.Released) > 0 {
			b, err := ma.agg.MarshalBinary()
			if err != nil {
				return nil, err
			}
			pt := zeroExcept(h.vdaf.Params, b, am.Released)
			clear(b)
			enc, ct, err := secagg.Seal(h.Peer.HPKE, secagg.InfoAggShare, aggShareAAD(round, planSum, &am), pt)
			clear(pt)
			if err != nil {
				return nil, err
			}
			am.Share = &Sealed{Enc: enc, CT: ct}
			for _, m := range am.Released {
				rec.Measures = append(rec.Measures, secure.MeasureRecord{Measure: m})
			}
			// The guard's history first: the share leaves this holder below.
			if err := h.recordRelease(round, ms, ma.units, am.Released); err != nil {
				return nil, err
			}
		}
		answer.Months = append(answer.Months, am)
		res.Months = append(res.Months, rec)
	}
	if _, err := h.putMessage(ctx, round, aggregateName, kindAggregate, answer); err != nil {
		return nil, fmt.Errorf("write the aggregate shares: %w", err)
	}
	if err := h.recordRound(round, planSum, StatusReleased); err != nil {
		return nil, err
	}
	res.Aggregate, res.Rejected = time.Since(start), rejected
	log.Info("aggregate shares released to the leader", "months", len(answer.Months), "rejected", len(rejected), "took", res.Aggregate.Round(time.Millisecond))
	return res, nil
}

// refusePlan answers a plan with a refusal, so the leader stops at once, and records it.
func (h *Holder) refusePlan(ctx context.Context, res *Result, round, planSum, why string) error {
	h.Log.Warn("plan refused; nothing of this round is aggregated", "round", round, "reason", why)
	res.Refused = why
	if _, err := h.putMessage(ctx, round, aggregateName, kindAggregate, &Aggregate{FormatVersion: messageVersion, Round: round, Holder: h.Key.ID, Plan: planSum, Refused: why}); err != nil {
		return err
	}
	if h.State.round(round) == nil {
		if err := h.recordRound(round, planSum, StatusRefused); err != nil {
			return err
		}
	}
	return fmt.Errorf("%w %s: %s", ErrRefused, round, why)
}

// nextRound waits for the leader's newest plan that this holder has not answered.
func (h *Holder) nextRound(ctx context.Context) (string, error) {
	prefix := secure.HoldersPrefix + h.Peer.ID + "/rounds/"
	var round string
	err := h.waitFor(ctx, "plan", func() (bool, error) {
		infos, err := h.Store.List(ctx, prefix)
		if err != nil {
			return false, err
		}
		var rounds []string
		for _, in := range infos {
			rest := strings.TrimPrefix(in.Key, prefix)
			id, name, ok := strings.Cut(rest, "/")
			if ok && name == planName+secure.SigSuffix && h.State.round(id) == nil {
				rounds = append(rounds, id)
			}
		}
		if len(rounds) == 0 {
			return false, nil
		}
		round = slices.Max(rounds)
		return true, nil
	})
	return round, err
}
