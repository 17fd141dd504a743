package holder

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/tributary-health/tributary/agent/disclosure"
	"github.com/tributary-health/tributary/coordinator/secure"
	"github.com/tributary-health/tributary/formats"
)

// publishFigures applies the federation's disclosure policy to the exact cells, in memory,
// and writes only the protected values: one figures file (a submission of practice
// "federation", run = the round) per run of consecutive months published with the same
// measures, so that its quarter and year values are sums of its months. Every value goes
// through the policy on its own, and the agents' disclosure audit withholds margins that
// would pin a small federation cell down, exactly as a practice's own release does.
//
// The audit refuses cells that break the relations between admission measures, which an
// agent's counts never do but a dishonest practice's report could (Prio3 proves each count's
// range, not the relations). Such a segment is published month by month instead, and a month
// the audit still refuses is withheld, with the reason, rather than stopping the round.
func (h *Holder) publishFigures(ctx context.Context, round string, exact map[string]*monthExact) ([]secure.Segment, map[string]string, error) {
	months := sortedKeys(exact)
	var segments []secure.Segment
	withheld := map[string]string{}
	for i := 0; i < len(months); {
		from, _ := formats.ParseMonth(months[i])
		j := i
		for j+1 < len(months) {
			next, _ := formats.ParseMonth(months[j+1])
			cur, _ := formats.ParseMonth(months[j])
			if next != cur+1 || !slices.Equal(exact[months[j+1]].measures, exact[months[i]].measures) {
				break
			}
			j++
		}
		to, _ := formats.ParseMonth(months[j])
		seg, err := h.publishSegment(ctx, round, from, to, exact)
		var refused *auditError
		switch {
		case errors.As(err, &refused):
			for m := from; m <= to; m++ {
				if from == to {
					withheld[m.String()] = refused.Error()
					h.Log.Warn("a month's secure totals are withheld: the disclosure audit refused them", "month", m.String(), "reason", refused.Error())
					continue
				}
				one, err := h.publishSegment(ctx, round, m, m, exact)
				if errors.As(err, &refused) {
					withheld[m.String()] = refused.Error()
					h.Log.Warn("a month's secure totals are withheld: the disclosure audit refused them", "month", m.String(), "reason", refused.Error())
					continue
				}
				if err != nil {
					return nil, nil, err
				}
				segments = append(segments, one)
			}
		case err != nil:
			return nil, nil, err
		default:
			segments = append(segments, seg)
		}
		i = j + 1
	}
	return segments, withheld, nil
}

// auditError: the disclosure audit refused a segment's cells.
type auditError struct{ err error }

func (e *auditError) Error() string { return e.err.Error() }

func (h *Holder) publishSegment(ctx context.Context, round string, from, to formats.Month, exact map[string]*monthExact) (secure.Segment, error) {
	measures := exact[from.String()].measures
	t := disclosure.NewTable(from, to, measures)
	defer clear(t.Counts)
	for m := from; m <= to; m++ {
		cells := exact[m.String()].cells
		for mi, measure := range measures {
			li := slices.Index(h.vdaf.Params.Measures, measure)
			for fine := range formats.NumFine {
				t.Set(mi, m, fine, int64(cells[li*formats.NumFine+fine]))
			}
		}
	}
	pub, err := disclosure.Audit(t, h.Policy)
	if err != nil {
		return secure.Segment{}, &auditError{fmt.Errorf("disclosure control of %s..%s: %w", from, to, err)}
	}
	sub := &formats.Submission{Practice: secure.Practice, RunID: round, From: from, To: to, Extractors: []string{secure.Extractor}, Policy: h.Policy.Name,
		Cells: make([]formats.Cell, 0, len(pub.Values))}
	for pi, p := range pub.Periods {
		for mi, measure := range measures {
			for shape := range formats.NumShapes {
				band, sex := formats.ShapeLabels(shape)
				sub.Cells = append(sub.Cells, formats.Cell{Period: p, Measure: measure, AgeBand: band, Sex: sex, Protected: pub.Value(mi, pi, shape)})
			}
		}
	}
	data, err := formats.MarshalSubmission(sub)
	if err != nil {
		return secure.Segment{}, err
	}
	key := secure.FiguresKey(round, from, to)
	if _, err := h.Store.Put(ctx, key, data); err != nil {
		return secure.Segment{}, fmt.Errorf("publish %s: %w", key, err)
	}
	return secure.Segment{Key: key, Size: int64(len(data)), SHA256: secure.SHA256(data), From: from.String(), To: to.String(), Measures: measures}, nil
}
