// Package query loads the newest combined output of a store into a figures.Engine and
// answers federation leads' questions from it: counts with honest bounds, rates per 1,000
// registered patients, age-standardised rates and the practices behind each figure, by
// month or for a whole period, by age band, sex and practice. The CLI and the HTTP server
// both answer through it, so they say the same thing about the same figure.
//
// # Disclosure control in queries
//
// A query never sees a true count. Every figure is computed by coordinator/figures from the
// values the practices published, each already through the federation's policy, so no row,
// and no difference between rows, narrows a small count beyond what the practices published
// themselves; that is why a breakdown by practice is offered at every level.
package query

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/figures"
	"github.com/tributary-health/tributary/coordinator/internal/ordered"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// Breakdowns a query can ask for.
const (
	ByMonth    = "month"
	ByAgeBand  = "age_band"
	BySex      = "sex"
	ByPractice = "practice"
)

// Breakdowns lists the valid values of Request.By.
var Breakdowns = []string{ByMonth, ByAgeBand, BySex, ByPractice}

// Request is one question. By keeps exactly the dimensions asked for: without "month" a row
// covers the whole of From..To. Its zero value asks for every measure of the whole
// federation over all its months, in one row per measure.
type Request struct {
	Measures []string      // catalogue measures; empty means all
	From, To formats.Month // inclusive; zero means open
	By       []string      // breakdowns
}

// Result is the answer to a Request.
type Result struct {
	Combined string           `json:"combined"` // id of the combined output it was read from
	Policy   string           `json:"policy"`
	By       []string         `json:"by"` // breakdowns, in column order
	Rows     []figures.Figure `json:"rows"`
}

// ErrNotCombined is returned by Open for a store without combined figures.
var ErrNotCombined = errors.New("the store has no combined figures yet; run 'tributary-coordinator combine' first")

// Pointer reads federation/current.json.
func Pointer(ctx context.Context, st objstore.Store) (*combine.Pointer, error) {
	data, _, err := st.Get(ctx, combine.CurrentKey, 1<<20)
	if errors.Is(err, objstore.ErrNotFound) {
		return nil, ErrNotCombined
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", combine.CurrentKey, err)
	}
	return combine.ParsePointer(data)
}

// Combined is one combined output held in memory: its pointer, report and every practice's
// values in an engine. It is never changed once loaded.
type Combined struct {
	Pointer combine.Pointer
	Report  *combine.Report
	Engine  *figures.Engine
	tables  map[string]tableRef // practice -> the table its values were read from
}

type tableRef struct {
	sha      string
	practice *figures.Practice
}

// Open reads the newest combined output of st.
func Open(ctx context.Context, st objstore.Store) (*Combined, error) {
	ptr, err := Pointer(ctx, st)
	if err != nil {
		return nil, err
	}
	return Load(ctx, st, *ptr, nil)
}

// Load reads the combined output ptr names, reusing the practices of prev whose tables have
// not changed: only practices whose figures changed are read again.
func Load(ctx context.Context, st objstore.Store, ptr combine.Pointer, prev *Combined) (*Combined, error) {
	repRef := ptr.Objects[combine.ReportJSON]
	data, err := getChecked(ctx, st, repRef)
	if err != nil {
		return nil, fmt.Errorf("read the combine report: %w", err)
	}
	c := &Combined{Pointer: ptr, tables: map[string]tableRef{}}
	if c.Report, err = combine.ParseReport(data); err != nil {
		return nil, err
	}
	pol, err := formats.PolicyByName(ptr.Policy)
	if err != nil {
		return nil, fmt.Errorf("%s names %w", combine.CurrentKey, err)
	}
	c.Engine = figures.New(pol, ptr.SuppressMax, c.Report.MeasureNames())
	ids := make([]string, 0, len(ptr.PracticeTables))
	for id := range ptr.PracticeTables {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	loaded := make([]*figures.Practice, len(ids))
	err = ordered.Run(ctx, len(ids), 2*runtime.GOMAXPROCS(0),
		func(ctx context.Context, i int) (*figures.Practice, error) {
			ref := ptr.PracticeTables[ids[i]]
			if prev != nil {
				if t, ok := prev.tables[ids[i]]; ok && t.sha == ref.SHA256 {
					return t.practice, nil
				}
			}
			return readPractice(ctx, st, c.Engine, ids[i], ref)
		},
		func(i int, p *figures.Practice) error { loaded[i] = p; return nil })
	if err != nil {
		return nil, err
	}
	for i, id := range ids {
		c.Engine.Add(loaded[i])
		c.tables[id] = tableRef{sha: ptr.PracticeTables[id].SHA256, practice: loaded[i]}
	}
	if ref, ok := ptr.Objects[combine.SecureJSON]; ok {
		data, err := getChecked(ctx, st, ref)
		if err != nil {
			return nil, fmt.Errorf("read the secure totals: %w", err)
		}
		totals, refused, err := combine.ParseSecure(data)
		if err != nil {
			return nil, err
		}
		c.Engine.SetSecure(totals, refused)
	}
	c.Engine.Finish()
	return c, nil
}

// getChecked reads an object the pointer names and checks it is the one the combine wrote.
func getChecked(ctx context.Context, st objstore.Store, ref combine.ObjectRef) ([]byte, error) {
	if ref.Key == "" {
		return nil, fmt.Errorf("the combined output names no object; run 'tributary-coordinator combine' again")
	}
	data, _, err := st.Get(ctx, ref.Key, max(ref.Size, 1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ref.Key, err)
	}
	if h := sha256.Sum256(data); hex.EncodeToString(h[:]) != ref.SHA256 {
		return nil, fmt.Errorf("%s does not match the SHA-256 in %s; it was changed after the combine: run 'tributary-coordinator combine' again", ref.Key, combine.CurrentKey)
	}
	return data, nil
}

// readPractice reads one practice's table into the engine's form.
func readPractice(ctx context.Context, st objstore.Store, e *figures.Engine, id string, ref combine.ObjectRef) (*figures.Practice, error) {
	data, err := getChecked(ctx, st, ref)
	if err != nil {
		return nil, err
	}
	p := e.NewPractice(id)
	_, err = combine.ReadPracticeBlocks(data, func(b *combine.PracticeBlock) error {
		if b.Practice != id {
			return fmt.Errorf("%s is the table of practice %q, not %s; run 'tributary-coordinator combine' again", ref.Key, b.Practice, id)
		}
		mi, ok := e.MeasureIndex(b.Measure)
		if !ok {
			return nil
		}
		vals := p.Values(b.Period, mi)
		for shape, pv := range b.Values {
			v, ok := figures.ValueOf(pv)
			if !ok {
				return fmt.Errorf("%s: a value is too large to hold or has an unknown status", ref.Key)
			}
			vals[shape] = v
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Validate checks a request, with errors that say what to write instead.
func (r *Request) Validate() error {
	for _, m := range r.Measures {
		if !formats.MeasureNamePattern.MatchString(m) {
			return fmt.Errorf("%q is not a measure name; names are lower-case letters, digits and _ (e.g. %s)", m, strings.Join(formats.Measures[:3], ", "))
		}
	}
	for _, b := range r.By {
		if !slices.Contains(Breakdowns, b) {
			return fmt.Errorf("cannot break down by %q; choose from: %s", b, strings.Join(Breakdowns, ", "))
		}
	}
	if r.From != 0 && r.To != 0 && r.From > r.To {
		return fmt.Errorf("--from %s is after --to %s; give the earlier month first", r.From, r.To)
	}
	return nil
}

// Query turns the request into the engine's question.
func (c *Combined) Query(r Request) figures.Query {
	q := figures.Query{From: r.From, To: r.To, Federation: true,
		ByMonth: slices.Contains(r.By, ByMonth), ByBand: slices.Contains(r.By, ByAgeBand), BySex: slices.Contains(r.By, BySex)}
	for _, m := range r.Measures {
		if mi, ok := c.Engine.MeasureIndex(m); ok {
			q.Measures = append(q.Measures, mi)
		}
	}
	if slices.Contains(r.By, ByPractice) {
		q.ByPractice, q.Federation = true, false
	}
	return q
}

// Run answers req.
func (c *Combined) Run(req Request) (*Result, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	for _, m := range req.Measures {
		if _, ok := c.Engine.MeasureIndex(m); !ok {
			return nil, fmt.Errorf("unknown measure %q; choose one of: %s", m, strings.Join(c.Engine.Measures, ", "))
		}
	}
	q := c.Query(req)
	res := &Result{Combined: c.Pointer.ID, Policy: c.Pointer.Policy, By: []string{}, Rows: c.Engine.Figures(&q)}
	for _, b := range Breakdowns {
		if slices.Contains(req.By, b) && b != ByMonth {
			res.By = append(res.By, b)
		}
	}
	return res, nil
}
