package server

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/figures"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// maxHistory bounds how many combined outputs a revision history reads.
const maxHistory = 50

// FigureRevision is a federation figure (one month and measure, all ages and sexes) as one
// combined output gave it.
type FigureRevision struct {
	Combined     string `json:"combined"`
	CombinedAt   string `json:"combined_at"` // when the output was written
	Month        string `json:"month"`
	Measure      string `json:"measure"`
	Status       string `json:"status"`
	Count        *int64 `json:"count"`
	Lower        int64  `json:"lower"`
	Upper        int64  `json:"upper"`
	PublishedSum int64  `json:"published_sum"`
	Method       string `json:"method"`
	Practices    int64  `json:"practices"`
	Current      bool   `json:"current"` // the output the server answers from
}

// history reads the combined outputs kept in the store, each once (they never change).
type history struct {
	st objstore.Store
	mu sync.Mutex
	by map[string]map[totalKey]figures.Figure // combined id -> its monthly federation totals
}

type totalKey struct{ month, measure string }

func newHistory(st objstore.Store) *history {
	return &history{st: st, by: map[string]map[totalKey]figures.Figure{}}
}

// observe is called with every snapshot served; its totals are taken from memory.
func (h *history) observe(s *snapshot) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.by[s.ptr.ID]; ok {
		return
	}
	totals := map[totalKey]figures.Figure{}
	for _, f := range s.engine.Figures(&figures.Query{ByMonth: true, Federation: true}) {
		totals[totalKey{f.Period, f.Measure}] = f
	}
	h.by[s.ptr.ID] = totals
}

// figure returns the revisions of one federation figure, newest first, from the combined
// outputs that were published (federation/history.json; an output a combine wrote but never
// published is not a revision). An output that cannot be read (pruned meanwhile, damaged) is
// skipped and named in skipped, never an error for the whole answer.
func (h *history) figure(ctx context.Context, current string, month formats.Month, measure string) (res []FigureRevision, skipped []string, err error) {
	hist, err := combine.ReadHistory(ctx, h.st)
	if err != nil {
		return nil, nil, err
	}
	outs := hist.Outputs
	if len(outs) > maxHistory {
		outs = outs[:maxHistory]
	}
	res = []FigureRevision{}
	for _, e := range outs {
		ref := e.Prefix() + combine.FederationArrow
		totals, err := h.output(ctx, e.ID, ref)
		if err != nil {
			skipped = append(skipped, e.ID)
			continue
		}
		f, ok := totals[totalKey{month.String(), measure}]
		if !ok {
			continue
		}
		res = append(res, FigureRevision{Combined: e.ID, CombinedAt: e.Published.UTC().Format(time.RFC3339), Month: f.Period,
			Measure: f.Measure, Status: f.Status, Count: f.Count, Lower: f.Lower, Upper: f.Upper, PublishedSum: f.PublishedSum,
			Method: f.Method, Practices: f.Practices, Current: e.ID == current})
	}
	return res, skipped, nil
}

func (h *history) output(ctx context.Context, id, key string) (map[totalKey]figures.Figure, error) {
	h.mu.Lock()
	o := h.by[id]
	h.mu.Unlock()
	if o != nil {
		return o, nil
	}
	data, _, err := h.st.Get(ctx, key, 256<<20)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	o = map[totalKey]figures.Figure{}
	_, err = combine.ReadFederationTable(data, func(f *figures.Figure) error {
		if len(f.Period) == 7 && f.Period[5] != 'Q' && f.AgeBand == "" && f.Sex == "" {
			o[totalKey{f.Period, f.Measure}] = *f
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	h.mu.Lock()
	h.by[id] = o
	h.mu.Unlock()
	return o, nil
}
