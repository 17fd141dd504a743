package agent

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/tributary-health/tributary/agent/aggregate"
	"github.com/tributary-health/tributary/agent/spool"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/secagg"
)

// SecureReport says what a run sent for secure aggregation: never a count.
type SecureReport struct {
	Holders []string // the holders' ids, leader first
	Months  int      // months reported
	// Skipped names the months left out of secure aggregation, with the reason (a count
	// wider than a report holds); their published figures are sent as always.
	Skipped map[string]string
	Bytes   int64 // bytes of shares files, both holders
	Err     error // no shares were sent this run; the published figures were
}

// secureShares makes the run's shares files, one per holder, from the run's exact counts
// (res, in memory). The counts go into secagg, which returns only ciphertext and public
// shares; nothing here writes or logs a count. A month with a count too wide for a report is
// left out and named.
func (a *Agent) secureShares(res *aggregate.Result, runID string, log *slog.Logger) ([]spool.File, []formats.FileEntry, *SecureReport) {
	sa := a.Config.SecureAggregation
	if !sa.Enabled() {
		return nil, nil, nil
	}
	rep := &SecureReport{Skipped: map[string]string{}}
	to, err := sa.Recipients()
	if err != nil {
		rep.Err = err
		return nil, nil, rep
	}
	rep.Holders = []string{to[0].ID, to[1].ID}
	months, err := monthVectors(res)
	if err != nil {
		rep.Err = err
		return nil, nil, rep
	}
	defer func() {
		for _, m := range months {
			clear(m.Counts) // the exact counts are dropped as soon as they are shared
		}
	}()
	p := secagg.Params()
	var keep []secagg.Month
	for _, m := range months {
		if err := secagg.CheckWidth(p, m); err != nil {
			rep.Skipped[m.Month.String()] = err.Error()
			log.Warn("a month is left out of secure aggregation: one of its counts is wider than a report holds; its published figures are sent as always", "month", m.Month.String(), "reason", err)
			continue
		}
		keep = append(keep, m)
	}
	if len(keep) == 0 {
		rep.Err = errors.New("no month of the run fits in a report")
		return nil, nil, rep
	}
	files, err := secagg.MakeShares(a.Config.Practice, runID, to, keep)
	if err != nil {
		rep.Err = fmt.Errorf("make secure-aggregation shares: %w", err)
		return nil, nil, rep
	}
	var out []spool.File
	var entries []formats.FileEntry
	for _, r := range to {
		data := files[r.ID]
		out = append(out, spool.File{Name: formats.SharesName(r.ID), Data: data})
		entries = append(entries, formats.SharesEntry(a.Config.Practice, runID, r.ID, data))
		rep.Bytes += int64(len(data))
	}
	rep.Months = len(keep)
	return out, entries, rep
}

// monthVectors lays out the run's exact counts as secure aggregation reports them: for each
// month, every catalogue measure's fine cells in canonical order, zero for a measure the run
// does not supply (which the report names as not supplied).
func monthVectors(res *aggregate.Result) ([]secagg.Month, error) {
	p := secagg.Params()
	t := res.Table()
	var supplied []string
	at := make([]int, len(p.Measures)) // layout index -> index in res.Measures, or -1
	for li, m := range p.Measures {
		at[li] = slices.Index(t.Measures, m)
		if at[li] >= 0 {
			supplied = append(supplied, m)
		}
	}
	var out []secagg.Month
	for month := res.From; month <= res.To; month++ {
		v := secagg.Month{Month: month, Counts: make([]uint64, p.Length()), Supplied: supplied}
		for li := range p.Measures {
			if at[li] < 0 {
				continue
			}
			for fine := range formats.NumFine {
				n := t.Counts[t.Index(at[li], int(month-res.From), fine)]
				if n < 0 {
					return nil, fmt.Errorf("a negative count in %s", month)
				}
				v.Counts[li*formats.NumFine+fine] = uint64(n)
			}
		}
		out = append(out, v)
	}
	clear(t.Counts)
	return out, nil
}
