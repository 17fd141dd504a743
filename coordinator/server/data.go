package server

import (
	"context"
	"time"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/figures"
	"github.com/tributary-health/tributary/coordinator/query"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// snapshot is one combined output held in memory; it is never changed once published.
type snapshot struct {
	c       *query.Combined
	ptr     combine.Pointer
	report  *combine.Report
	engine  *figures.Engine
	loaded  time.Time
	months  []formats.Month
	ids     []string          // practices with figures, sorted
	names   map[string]string // display names from the registry
	byMonth map[string]map[string]combine.Contributor
}

// load builds a snapshot of the combined output ptr names, reusing the practices of prev
// whose tables have not changed: only practices whose figures changed are read again.
func load(ctx context.Context, st objstore.Store, ptr combine.Pointer, prev *snapshot, names map[string]string) (*snapshot, error) {
	var prevC *query.Combined
	if prev != nil {
		prevC = prev.c
	}
	c, err := query.Load(ctx, st, ptr, prevC)
	if err != nil {
		return nil, err
	}
	s := &snapshot{c: c, ptr: c.Pointer, report: c.Report, engine: c.Engine, loaded: time.Now().UTC(), names: names,
		months: c.Engine.Months(), ids: c.Engine.IDs()}
	s.byMonth = map[string]map[string]combine.Contributor{}
	for _, comp := range s.report.Completeness {
		mm := map[string]combine.Contributor{}
		for _, x := range comp.Contributors {
			mm[x.Practice] = x
		}
		s.byMonth[comp.Month] = mm
	}
	return s, nil
}
