package server

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// maxHistory bounds how many combined outputs a revision history reads.
const maxHistory = 50

// FigureRevision is a federation figure (one month and measure, all ages and sexes) as one
// combined output gave it.
type FigureRevision struct {
	Combined       string   `json:"combined"`
	CombinedAt     string   `json:"combined_at"` // when the output was written
	Month          string   `json:"month"`
	Measure        string   `json:"measure"`
	Status         string   `json:"status"`
	Count          *int64   `json:"count"`
	Lower          int64    `json:"lower"`
	Upper          int64    `json:"upper"`
	Estimate       *float64 `json:"estimate"`
	EstimateMethod string   `json:"estimate_method"`
	Practices      int64    `json:"practices"`
	Current        bool     `json:"current"` // the output the server answers from
}

// history reads the combined outputs kept in the store, each once (they never change).
type history struct {
	st objstore.Store
	mu sync.Mutex
	by map[string]*histOutput // combined id -> totals
}

type histOutput struct {
	totals map[fedKey]*histTotal
	sm     int64
}

type fedKey struct {
	month   formats.Month
	measure int
}

type histTotal struct {
	acc
	practices int64
}

func newHistory(st objstore.Store) *history { return &history{st: st, by: map[string]*histOutput{}} }

// observe is called with every snapshot served; its totals are taken from memory.
func (h *history) observe(s *snapshot) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.by[s.ptr.ID]; ok {
		return
	}
	out := &histOutput{totals: map[fedKey]*histTotal{}, sm: s.ptr.SuppressMax}
	for m, md := range s.fed.months {
		for mi, cells := range md.cells {
			if cells == nil {
				continue
			}
			t := &histTotal{practices: int64(md.practices[mi])}
			for ci, c := range cells {
				t.add(c, md.lists[mi][ci])
			}
			out.totals[fedKey{m, mi}] = t
		}
	}
	h.by[s.ptr.ID] = out
}

// figure returns the revisions of one federation figure, newest first.
func (h *history) figure(ctx context.Context, current string, month formats.Month, measure int) ([]FigureRevision, error) {
	infos, err := h.st.List(ctx, combine.CombinedPrefix)
	if err != nil {
		return nil, fmt.Errorf("list combined outputs: %w", err)
	}
	var outs []objstore.Info
	for _, in := range infos {
		if strings.HasSuffix(in.Key, "/"+combine.FederationArrow) {
			outs = append(outs, in)
		}
	}
	slices.SortFunc(outs, func(a, b objstore.Info) int { return b.Modified.Compare(a.Modified) })
	if len(outs) > maxHistory {
		outs = outs[:maxHistory]
	}
	res := []FigureRevision{}
	for _, in := range outs {
		id := strings.TrimSuffix(strings.TrimPrefix(in.Key, combine.CombinedPrefix), "/"+combine.FederationArrow)
		o, err := h.output(ctx, id, in)
		if err != nil {
			return nil, err
		}
		t := o.totals[fedKey{month, measure}]
		if t == nil {
			continue
		}
		r := FigureRevision{Combined: id, CombinedAt: in.Modified.UTC().Format(time.RFC3339), Month: month.String(), Measure: formats.Measures[measure],
			Lower: t.lower, Upper: t.upper, Practices: t.practices, Current: id == current}
		st, est, ok := t.estimate(o.sm)
		r.Status = st
		if ok {
			r.Estimate, r.EstimateMethod = ptr(est), EstimateMidpoint
			if st == formats.StatusRounded {
				r.Count, r.EstimateMethod = ptr(t.count), EstimatePublished
			}
		}
		res = append(res, r)
	}
	return res, nil
}

func (h *history) output(ctx context.Context, id string, in objstore.Info) (*histOutput, error) {
	h.mu.Lock()
	o := h.by[id]
	h.mu.Unlock()
	if o != nil {
		return o, nil
	}
	data, _, err := h.st.Get(ctx, in.Key, max(in.Size, 1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", in.Key, err)
	}
	o = &histOutput{totals: map[fedKey]*histTotal{}}
	md, err := combine.ReadTable(data, func(r *combine.Row) error {
		mi, ok := measureIndex[r.Measure]
		if !ok {
			return nil
		}
		k := fedKey{r.Month, mi}
		t := o.totals[k]
		if t == nil {
			t = new(histTotal)
			o.totals[k] = t
		}
		st, err := statusCode(r.Status)
		if err != nil {
			return err
		}
		t.add(cell{count: int32(r.Count), lower: int32(r.Lower), upper: int32(r.Upper), status: st}, r.ListSize)
		t.practices = max(t.practices, r.Practices)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", in.Key, err)
	}
	fmt.Sscan(md[combine.MetaSuppressMax], &o.sm)
	h.mu.Lock()
	h.by[id] = o
	h.mu.Unlock()
	return o, nil
}
