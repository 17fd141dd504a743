package combine

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/tributary-health/tributary/coordinator/figures"
	"github.com/tributary-health/tributary/coordinator/secure"
	"github.com/tributary-health/tributary/formats"
)

// SecureJSON is the combined output's copy of the holders' secure totals it offered to the
// figures engine (secure aggregation, issue 11): present only when the holders published
// totals. query, the API and the dashboard read it with the practice tables, so that their
// federation figures are the combine's.
const SecureJSON = "secure.json"

// SecureReport is what the combine did with the holders' secure totals: the rounds it read
// (verified against the leader named in the coordinator-signed federation/holders.json),
// and for every month and measure the holders published whether its total replaced the sum
// of the practices' published values, or why not.
type SecureReport struct {
	HoldersSHA256 string `json:"holders_sha256,omitempty"`
	Leader        string `json:"leader,omitempty"`
	Helper        string `json:"helper,omitempty"`
	// Rounds are the rounds some used total came from: the inputs of the figures.
	Rounds []secure.UsedRound `json:"rounds"`
	// Uses says, by month and measure, whether each secure total was used.
	Uses []figures.SecureUse `json:"uses"`
	// Problems are secure objects that did not verify (not used), or why none could be read.
	Problems []SecureProblem `json:"problems,omitempty"`
}

// SecureProblem is a secure-aggregation object the combine did not use.
type SecureProblem struct {
	Key    string `json:"key,omitempty"`
	Kind   string `json:"kind"`
	Reason string `json:"reason"`
}

// SecureFile is secure.json: every total offered, and the month totals refused before.
type SecureFile struct {
	FormatVersion int                 `json:"format_version"`
	Totals        []SecureTotal       `json:"totals"`
	Refused       []figures.SecureUse `json:"refused,omitempty"`
}

// SecureTotal is one period's and measure's secure values, every shape in the contract's
// order (formats.ShapeLabels).
type SecureTotal struct {
	Period    string        `json:"period"`
	Measure   string        `json:"measure"`
	Round     string        `json:"round"`
	Practices []string      `json:"practices,omitempty"`
	Values    []SecureValue `json:"values"`
}

// SecureValue is one protected value.
type SecureValue struct {
	Count  int64  `json:"count"`
	Status string `json:"status"`
	Lower  int64  `json:"lower"`
	Upper  int64  `json:"upper"`
}

// secureState is what the combine read of the holders' publication.
type secureState struct {
	figs *secure.Figures
	err  error
	file *SecureFile
}

// loadSecure reads the holders' secure totals. It never fails the combine: a store without
// holders has none, and one whose secure objects cannot be read or verified is reported.
func (c *combiner) loadSecure(ctx context.Context, coordinator ed25519.PublicKey) {
	figs, err := secure.Load(ctx, c.st, coordinator, c.opts.Policy, c.opts.Limits)
	c.sec = &secureState{figs: figs, err: err}
	switch {
	case err != nil:
		c.digest = append(c.digest, "secure-error "+err.Error())
	case figs != nil:
		c.digest = append(c.digest, figs.Digest...)
	}
}

// offerSecure gives the engine every secure total whose practices' runs are the runs this
// combine uses for that month; a month total counting another revision of some practice's
// month is refused with the reason. The engine then uses a month total only where its
// practices are exactly those behind the federation figure (figures.SetSecure).
func (c *combiner) offerSecure() {
	if c.sec == nil || c.sec.figs.Empty() {
		return
	}
	f := &SecureFile{FormatVersion: 1, Totals: []SecureTotal{}}
	runs := map[formats.Month]map[string]string{}
	for m, cs := range c.completeness {
		runs[m] = map[string]string{}
		for _, x := range cs {
			runs[m][x.Practice] = x.RunID
		}
	}
	periods := make([]formats.Period, 0, len(c.sec.figs.Values))
	for per := range c.sec.figs.Values {
		periods = append(periods, per)
	}
	slices.SortFunc(periods, formats.ComparePeriods)
	var totals []figures.SecureTotal
	for _, per := range periods {
		names := make([]string, 0, len(c.sec.figs.Values[per]))
		for name := range c.sec.figs.Values[per] {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			src := c.sec.figs.Sources[per][name]
			if src == nil {
				continue
			}
			vals := c.sec.figs.Values[per][name]
			if per.Kind == formats.KindMonth {
				if why := staleRuns(src, runs[per.Start]); why != "" {
					f.Refused = append(f.Refused, figures.SecureUse{Month: per.Start.String(), Measure: name, Round: src.Round, Practices: len(src.Practices), Reason: why})
					continue
				}
			}
			totals = append(totals, figures.SecureTotal{Period: per, Measure: name, Round: src.Round, Practices: src.Practices, Values: vals})
			st := SecureTotal{Period: per.String(), Measure: name, Round: src.Round, Practices: src.Practices, Values: make([]SecureValue, len(vals))}
			for i, v := range vals {
				st.Values[i] = SecureValue{Count: v.Count, Status: v.Status, Lower: v.Lower, Upper: v.Upper}
			}
			f.Totals = append(f.Totals, st)
		}
	}
	c.sec.file = f
	c.engine.SetSecure(totals, f.Refused)
}

// staleRuns says why a month total does not count the runs combined for its practices, or "".
func staleRuns(src *secure.Source, combined map[string]string) string {
	if src.Runs == nil {
		return "its round record does not name the practices' runs, so it cannot be matched to the runs combined"
	}
	var revised []string
	for _, p := range src.Practices {
		if run, ok := combined[p]; ok && run != src.Runs[p] {
			revised = append(revised, fmt.Sprintf("%s (run %s, the total counts run %s)", p, run, src.Runs[p]))
		}
	}
	if len(revised) == 0 {
		return ""
	}
	return "it counts an earlier revision of " + strings.Join(revised, ", ") + "; the next round will count the revision"
}

// secureReport is the report's account of the secure totals (nil when there are none).
func (c *combiner) secureReport() *SecureReport {
	if c.sec == nil || (c.sec.err == nil && c.sec.figs == nil) {
		return nil
	}
	r := &SecureReport{Rounds: []secure.UsedRound{}, Uses: []figures.SecureUse{}}
	if c.sec.err != nil {
		r.Problems = append(r.Problems, SecureProblem{Kind: "secure_unreadable", Reason: c.sec.err.Error()})
		return r
	}
	figs := c.sec.figs
	r.HoldersSHA256, r.Leader, r.Helper = figs.HoldersSHA256, figs.Leader, figs.Helper
	for _, p := range figs.Problems {
		r.Problems = append(r.Problems, SecureProblem{Key: p.Key, Kind: p.Kind, Reason: p.Reason})
	}
	if uses := c.engine.SecureUses(); uses != nil {
		r.Uses = uses
	}
	used := map[string]bool{}
	for _, u := range r.Uses {
		if u.Used {
			used[u.Round] = true
		}
	}
	for _, ur := range figs.Rounds {
		if used[ur.Round] {
			r.Rounds = append(r.Rounds, ur)
		}
	}
	return r
}

// secureData is secure.json's content, or nil when no total was offered.
func (c *combiner) secureData() ([]byte, error) {
	if c.sec == nil || c.sec.file == nil {
		return nil, nil
	}
	return json.Marshal(c.sec.file)
}

// ParseSecure reads a combined output's secure.json into the engine's form.
func ParseSecure(data []byte) ([]figures.SecureTotal, []figures.SecureUse, error) {
	var f SecureFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, nil, fmt.Errorf("%s is not valid JSON (%v); run 'tributary-coordinator combine' again", SecureJSON, err)
	}
	if f.FormatVersion != 1 {
		return nil, nil, fmt.Errorf("%s is format version %d, this build reads 1", SecureJSON, f.FormatVersion)
	}
	out := make([]figures.SecureTotal, 0, len(f.Totals))
	for _, t := range f.Totals {
		per, err := formats.ParsePeriod(t.Period)
		if err != nil || len(t.Values) != formats.NumShapes {
			return nil, nil, fmt.Errorf("%s: a total of %q for %s is not a period's every shape", SecureJSON, t.Period, t.Measure)
		}
		vals := new([formats.NumShapes]formats.Protected)
		for i, v := range t.Values {
			vals[i] = formats.Protected{Count: v.Count, Status: v.Status, Lower: v.Lower, Upper: v.Upper}
		}
		out = append(out, figures.SecureTotal{Period: per, Measure: t.Measure, Round: t.Round, Practices: t.Practices, Values: vals})
	}
	return out, f.Refused, nil
}
