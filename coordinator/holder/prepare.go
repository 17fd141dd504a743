package holder

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/cloudflare/circl/vdaf/prio3/sumvec"

	"github.com/tributary-health/tributary/coordinator/internal/ordered"
	"github.com/tributary-health/tributary/coordinator/registry"
	"github.com/tributary-health/tributary/coordinator/secure"
	"github.com/tributary-health/tributary/formats"
)

// preparePlan prepares this holder's share of every report a plan names (the helper's side):
// each run's manifest is verified against the registry and must be the one the plan names,
// its shares file must be for this holder's key, and each report must be new or where it was
// first seen. The result is in the plan's order.
func (h *Holder) preparePlan(ctx context.Context, reg *registry.Loaded, plan *Plan, vk *sumvec.VerifyKey) ([]*prepared, error) {
	out := make([]*prepared, len(plan.Reports))
	byRun := map[string][]int{}
	var runs []string
	for i, r := range plan.Reports {
		out[i] = &prepared{ref: r}
		if byRun[r.Manifest] == nil {
			runs = append(runs, r.Manifest)
		}
		byRun[r.Manifest] = append(byRun[r.Manifest], i)
	}
	err := ordered.Run(ctx, len(runs), h.Workers,
		func(ctx context.Context, ri int) (struct{}, error) {
			idx := byRun[runs[ri]]
			all := func(rj *rejection) {
				for _, i := range idx {
					out[i].rej = rj
				}
			}
			vr, rj, err := h.readManifest(ctx, reg, runs[ri])
			if err != nil {
				return struct{}{}, err
			}
			if rj != nil {
				all(rj)
				return struct{}{}, nil
			}
			if vr.sha != plan.Reports[idx[0]].ManifestSHA256 {
				all(reject(secure.KindManifestChanged, "the run's manifest is not the one the leader planned with (SHA-256 differs): the store changed between the two holders' reading"))
				return struct{}{}, nil
			}
			s, rj, err := h.readShares(ctx, vr)
			if err != nil {
				return struct{}{}, err
			}
			if rj != nil {
				all(rj)
				return struct{}{}, nil
			}
			for _, i := range idx {
				p := out[i]
				ri := reportIndex(s, p.ref.Month)
				if ri < 0 {
					p.rej = reject(secure.KindMissing, "the run has no report of %s for holder %s", p.ref.Month, h.Key.ID)
					continue
				}
				rep := &s.Header.Reports[ri]
				if rep.Nonce != p.ref.Nonce {
					p.rej = reject(secure.KindDisagree, "the run's report of %s is %s, the plan names %s", p.ref.Month, rep.Nonce, p.ref.Nonce)
					continue
				}
				if p.rej = h.checkReplay(p.ref); p.rej != nil {
					continue
				}
				p.created = vr.m.Created
				p.digest = formats.ReportDigest(vr.m.Practice, vr.m.RunID, s.Header.VDAF, rep)
				p.supplied = rep.Supplied
				p.state, p.share, p.rej = h.prepare(s, ri, vk)
			}
			return struct{}{}, nil
		},
		func(int, struct{}) error { return nil })
	return out, err
}

// prepResults turns prepared reports into this holder's prep message results.
func prepResults(reps []*prepared) []PrepResult {
	out := make([]PrepResult, len(reps))
	for i, p := range reps {
		out[i] = PrepResult{Nonce: p.ref.Nonce}
		if p.rej != nil {
			out[i].Kind, out[i].Reason = p.rej.kind, p.rej.reason
			continue
		}
		out[i].Digest, out[i].Supplied, out[i].PrepShare = p.digest, p.supplied, p.share
	}
	return out
}

// candidate is a practice-month the leader may plan: its newest valid report, and, when the
// holder's last total counted an older report of it, that one (to hold a revision back).
type candidate struct {
	newest, last *prepared
}

// practicePlan is what the leader found of one practice.
type practicePlan struct {
	practice string
	months   map[string]*candidate
	rejected []secure.Rejection
}

// gather reads every practice's runs, newest first, and prepares the leader's share of each
// practice-month's newest report that passes its checks (falling back to older runs when the
// newest fails, as combine does for figures), and of the report its last total counted.
func (h *Holder) gather(ctx context.Context, reg *registry.Loaded, vk *sumvec.VerifyKey, from, to formats.Month) ([]*practicePlan, []secure.Rejection, error) {
	keys, err := h.listManifests(ctx)
	if err != nil {
		return nil, nil, err
	}
	type manifestResult struct {
		vr  *verifiedRun
		rej *rejection
	}
	results := make([]manifestResult, len(keys))
	err = ordered.Run(ctx, len(keys), 2*h.Workers,
		func(ctx context.Context, i int) (manifestResult, error) {
			vr, rj, err := h.readManifest(ctx, reg, keys[i])
			return manifestResult{vr, rj}, err
		},
		func(i int, r manifestResult) error { results[i] = r; return nil })
	if err != nil {
		return nil, nil, err
	}
	var rejected []secure.Rejection
	byPractice := map[string][]*verifiedRun{}
	for i, r := range results {
		k, _ := formats.ParseKey(keys[i])
		if r.rej != nil {
			rejected = append(rejected, secure.Rejection{Practice: k.Practice, RunID: k.RunID, Holder: h.Key.ID, Kind: r.rej.kind, Reason: r.rej.reason})
			continue
		}
		byPractice[k.Practice] = append(byPractice[k.Practice], r.vr)
	}
	practices := sortedKeys(byPractice)
	out := make([]*practicePlan, len(practices))
	err = ordered.Run(ctx, len(practices), h.Workers,
		func(ctx context.Context, i int) (*practicePlan, error) {
			return h.gatherPractice(ctx, practices[i], byPractice[practices[i]], vk, from, to)
		},
		func(i int, pp *practicePlan) error { out[i] = pp; return nil })
	return out, rejected, err
}

// lastUnit returns the report of practice that the holder's last total of a month (of any
// measure) counted, or "".
func (h *Holder) lastUnit(practice, month string) string {
	for _, m := range h.vdaf.Params.Measures {
		if r := h.State.lastRelease(month, m); r != nil && r.Units[practice] != "" {
			return r.Units[practice]
		}
	}
	return ""
}

func (h *Holder) gatherPractice(ctx context.Context, practice string, runs []*verifiedRun, vk *sumvec.VerifyKey, from, to formats.Month) (*practicePlan, error) {
	pp := &practicePlan{practice: practice, months: map[string]*candidate{}}
	slices.SortFunc(runs, func(a, b *verifiedRun) int {
		if c := b.m.Created.Compare(a.m.Created); c != 0 {
			return c
		}
		return strings.Compare(b.m.RunID, a.m.RunID)
	})
	settled := map[string]bool{} // months whose newest report is decided
	last := map[string]string{}  // month -> the nonce the last total counted
	rj := func(r *verifiedRun, month, nonce string, x *rejection) {
		pp.rejected = append(pp.rejected, secure.Rejection{Practice: practice, RunID: r.m.RunID, Month: month, Nonce: nonce, Holder: h.Key.ID, Kind: x.kind, Reason: x.reason})
	}
	for _, r := range runs {
		rf, rt, _ := r.m.Months()
		var need []string
		for m := max(rf, from); m <= min(rt, to); m++ {
			ms := m.String()
			if _, ok := last[ms]; !ok {
				last[ms] = h.lastUnit(practice, ms)
			}
			c := pp.months[ms]
			needLast := last[ms] != "" && c != nil && c.newest != nil && c.last == nil
			if !settled[ms] || needLast {
				need = append(need, ms)
			}
		}
		if len(need) == 0 {
			continue
		}
		_, mine := r.m.SharesFor(h.Key.ID)
		_, theirs := r.m.SharesFor(h.Peer.ID)
		if !mine && !theirs {
			// A run without secure aggregation: its months have no report from this practice.
			for _, ms := range need {
				settled[ms] = true
			}
			continue
		}
		if !mine || !theirs {
			x := reject(secure.KindMissing, "the run sends shares to only one of the two holders")
			for _, ms := range need {
				if !settled[ms] {
					rj(r, ms, "", x)
				}
			}
			continue
		}
		s, x, err := h.readShares(ctx, r)
		if err != nil {
			return nil, err
		}
		if x != nil {
			for _, ms := range need {
				if !settled[ms] {
					rj(r, ms, "", x)
				}
			}
			continue
		}
		for _, ms := range need {
			ri := reportIndex(s, ms)
			if ri < 0 {
				if !settled[ms] {
					settled[ms] = true // the practice's newest run left this month out
					rj(r, ms, "", reject(secure.KindMissing, "the practice's newest run left %s out of secure aggregation (a count wider than a report holds)", ms))
				}
				continue
			}
			rep := &s.Header.Reports[ri]
			p := &prepared{ref: PlannedReport{Practice: practice, RunID: r.m.RunID, Month: ms, Nonce: rep.Nonce, Manifest: r.key, ManifestSHA256: r.sha},
				created: r.m.Created, digest: formats.ReportDigest(practice, r.m.RunID, s.Header.VDAF, rep), supplied: rep.Supplied}
			c := pp.months[ms]
			if c == nil {
				c = &candidate{}
				pp.months[ms] = c
			}
			if !settled[ms] {
				if x := h.checkReplay(p.ref); x != nil {
					rj(r, ms, rep.Nonce, x)
					continue
				}
				if p.state, p.share, p.rej = h.prepare(s, ri, vk); p.rej != nil {
					rj(r, ms, rep.Nonce, p.rej)
					continue
				}
				c.newest = p
				settled[ms] = true
				if rep.Nonce == last[ms] {
					c.last = p
				}
				continue
			}
			if rep.Nonce == last[ms] && c.last == nil {
				if x := h.checkReplay(p.ref); x != nil {
					continue
				}
				if p.state, p.share, p.rej = h.prepare(s, ri, vk); p.rej == nil {
					c.last = p
				}
			}
		}
	}
	for ms, c := range pp.months {
		if c.newest == nil {
			delete(pp.months, ms)
		}
	}
	return pp, nil
}

// dropSharedNonces refuses every report whose nonce another practice-month of the round also
// carries: a report is counted once, where it was made, and within one round neither holder
// can tell the original from the copy, so neither is planned (the helper would refuse a plan
// naming a report twice). The ledger catches copies of reports seen in earlier rounds.
func (h *Holder) dropSharedNonces(pps []*practicePlan) []secure.Rejection {
	type where struct{ practice, month string }
	at := map[string][]where{}
	for _, pp := range pps {
		for ms, c := range pp.months {
			at[c.newest.ref.Nonce] = append(at[c.newest.ref.Nonce], where{pp.practice, ms})
		}
	}
	var out []secure.Rejection
	for _, pp := range pps {
		for _, ms := range sortedKeys(pp.months) {
			c := pp.months[ms]
			ws := at[c.newest.ref.Nonce]
			if len(ws) < 2 {
				continue
			}
			var others []string
			for _, w := range ws {
				if w.practice != pp.practice || w.month != ms {
					others = append(others, w.practice+" "+w.month)
				}
			}
			slices.Sort(others)
			out = append(out, secure.Rejection{Practice: pp.practice, RunID: c.newest.ref.RunID, Month: ms, Nonce: c.newest.ref.Nonce, Holder: h.Key.ID, Kind: secure.KindReplay,
				Reason: fmt.Sprintf("report %s is also the report of %s in this round; a report is counted only where it was made, and a copy cannot be told from it, so neither is counted", c.newest.ref.Nonce, strings.Join(others, ", "))})
			delete(pp.months, ms)
		}
	}
	return out
}

// choose decides, month by month, which reports the leader plans: each practice's newest,
// except that while fewer than k practices have changed since the month's last total, their
// last counted reports stand in (a revision is held back until k have revised, rather than
// refused by the guard). A month that cannot be planned under the guard is left out, and why
// is returned.
func (h *Holder) choose(pps []*practicePlan, k int) (plan []*prepared, skipped []secure.MonthRecord) {
	months := map[string]bool{}
	for _, pp := range pps {
		for ms := range pp.months {
			months[ms] = true
		}
	}
	for _, ms := range sortedKeys(months) {
		var newest, held []*prepared
		changed := 0
		for _, pp := range pps {
			c := pp.months[ms]
			last := h.lastUnit(pp.practice, ms)
			if c == nil {
				continue
			}
			if c.newest.ref.Nonce != last {
				changed++
			}
			newest = append(newest, c.newest)
			switch {
			case c.newest.ref.Nonce == last:
				held = append(held, c.newest)
			case c.last != nil:
				held = append(held, c.last)
			}
		}
		pick := newest
		if changed > 0 && changed < k && h.hasHistory(ms) {
			pick = held
			h.Log.Info("a revision is held back: fewer practices than the minimum changed since the month's last total", "month", ms, "changed", changed, "min_practices", k)
		}
		if len(pick) < k {
			skipped = append(skipped, secure.MonthRecord{Month: ms, Withheld: []secure.Withheld{{Measure: "*",
				Reason: fmt.Sprintf("only %d practice(s) have a valid report; a total needs at least %d", len(pick), k)}}})
			continue
		}
		plan = append(plan, pick...)
	}
	return plan, skipped
}

func (h *Holder) hasHistory(month string) bool {
	for _, m := range h.vdaf.Params.Measures {
		if h.State.lastRelease(month, m) != nil {
			return true
		}
	}
	return false
}
