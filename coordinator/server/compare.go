package server

import (
	"slices"
	"strings"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/figures"
	"github.com/tributary-health/tributary/formats"
)

// CompletenessRow says whether one practice submitted one month.
type CompletenessRow struct {
	Practice  string `json:"practice"`
	Month     string `json:"month"`
	Submitted bool   `json:"submitted"`
	RunID     string `json:"run_id,omitempty"`
	Created   string `json:"created,omitempty"`
	Measures  int64  `json:"measures"`
	// Revisions counts the runs for this practice-month that a newer run superseded.
	Revisions int64 `json:"revisions"`
	// Quarantined counts files for this practice-month that failed verification.
	Quarantined int64 `json:"quarantined"`
	// Excluded names the measures the practice's run counted by another definition than the
	// federation's, left out of the federation's figures, each with why ("measure: used
	// definition digest X, federation's is Y", joined by "; "). Empty when none.
	Excluded string `json:"excluded"`
	// Absent names the measures the practice's sources cannot supply, with the agent's
	// reason ("measure: reason", joined by "; "): absent from its figures, never zero.
	Absent string `json:"absent"`
}

// completeness lists practices × months; practices nil means every registered or
// contributing practice.
func (s *snapshot) completeness(practices []string, from, to formats.Month) []CompletenessRow {
	if practices == nil {
		set := map[string]bool{}
		for _, id := range s.ids {
			set[id] = true
		}
		for _, c := range s.report.Completeness {
			for _, p := range c.Missing {
				set[p] = true
			}
		}
		for p := range set {
			practices = append(practices, p)
		}
		slices.Sort(practices)
	}
	type pm struct{ practice, month string }
	// A run's file is a revision of each month it covers that a newer run took, and a
	// quarantined one counts against each month it covers.
	revisions, quarantined := map[pm]int64{}, map[pm]int64{}
	for _, in := range s.report.Inputs {
		from, err1 := formats.ParseMonth(in.From)
		to, err2 := formats.ParseMonth(in.To)
		if err1 != nil || err2 != nil {
			continue
		}
		for _, f := range in.Files {
			for m := from; m <= to; m++ {
				k := pm{in.Practice, m.String()}
				switch {
				case f.Use == combine.UseQuarantined:
					quarantined[k]++
				case !slices.Contains(f.Months, m.String()):
					revisions[k]++
				}
			}
		}
	}
	var out []CompletenessRow
	for _, p := range practices {
		for _, m := range s.months {
			if (from != 0 && m < from) || (to != 0 && m > to) {
				continue
			}
			ms := m.String()
			row := CompletenessRow{Practice: p, Month: ms, Revisions: revisions[pm{p, ms}], Quarantined: quarantined[pm{p, ms}]}
			if c, ok := s.byMonth[ms][p]; ok {
				row.Submitted, row.RunID, row.Created, row.Measures = true, c.RunID, c.Created.UTC().Format("2006-01-02T15:04:05Z"), int64(c.Measures)
				var ex []string
				for _, x := range c.Excluded {
					ex = append(ex, x.Measure+": "+x.Reason)
				}
				row.Excluded = strings.Join(ex, "; ")
				var ab []string
				for _, x := range c.Absent {
					ab = append(ab, x.Measure+": "+x.Reason)
				}
				row.Absent = strings.Join(ab, "; ")
			}
			out = append(out, row)
		}
	}
	if out == nil {
		out = []CompletenessRow{}
	}
	return out
}

// FileRevision is one run's file for a practice and what the combine did with it.
type FileRevision struct {
	Practice     string `json:"practice"`
	From         string `json:"from"` // the run's months
	To           string `json:"to"`
	Combined     string `json:"combined_months"` // months combined from it: "2024-Q1", "2024-01, 2024-03..2024-04" (see monthRanges) or ""
	RunID        string `json:"run_id"`
	Created      string `json:"created"`
	Key          string `json:"key"`
	SHA256       string `json:"sha256"`
	Use          string `json:"use"`
	SupersededBy string `json:"superseded_by,omitempty"`
}

// practiceRevisions lists every run's file for one practice (those covering month, if
// given), newest first.
func (s *snapshot) practiceRevisions(practice string, month formats.Month) []FileRevision {
	out := []FileRevision{}
	for _, in := range s.report.Inputs {
		if in.Practice != practice {
			continue
		}
		if month != 0 && (month.String() < in.From || month.String() > in.To) {
			continue
		}
		for _, f := range in.Files {
			r := FileRevision{Practice: practice, From: in.From, To: in.To, RunID: in.RunID, Created: in.Created.UTC().Format("2006-01-02T15:04:05Z"),
				Key: f.Key, SHA256: f.SHA256, Use: f.Use, SupersededBy: f.SupersededBy}
			r.Combined = monthRanges(f.Months)
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b FileRevision) int {
		if a.Created != b.Created {
			if a.Created > b.Created {
				return -1
			}
			return 1
		}
		if a.RunID > b.RunID {
			return -1
		}
		return 1
	})
	return out
}

// monthRanges names sorted months as their runs of consecutive months, each as
// figures.PeriodLabel does, separated by commas: a newer run may have taken months in the
// middle of an older run's, which a single first..last label would claim.
func monthRanges(months []string) string {
	var parts []string
	for i := 0; i < len(months); {
		from := mustMonth(months[i])
		j := i + 1
		for j < len(months) && mustMonth(months[j]) == from+formats.Month(j-i) {
			j++
		}
		parts = append(parts, figures.PeriodLabel(from, mustMonth(months[j-1])))
		i = j
	}
	return strings.Join(parts, ", ")
}

func mustMonth(s string) formats.Month {
	m, _ := formats.ParseMonth(s)
	return m
}
