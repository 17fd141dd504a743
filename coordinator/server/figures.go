package server

import (
	"github.com/tributary-health/tributary/coordinator/figures"
)

// Figure is one answer row of /api/figures: see figures.Figure and the OpenAPI document.
type Figure = figures.Figure

// figures answers a selection from a snapshot.
func (s *snapshot) figures(q *figures.Query) []Figure { return s.engine.Figures(q) }

// compare computes the comparison of the given practices (nil: all) for one measure.
func (s *snapshot) compare(q *figures.Query, practices []string) *figures.Comparison {
	c := s.engine.Compare(q, q.Measures[0], s.names, practices)
	c.Combined = s.ptr.ID
	return c
}
