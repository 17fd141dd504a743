// Package query answers federation leads' questions from the newest combined output: counts
// with honest bounds, crude rates per 1,000 registered patients and the number of practices
// behind each figure, by month, measure, age band, sex and practice.
//
// # Disclosure control in queries
//
// A query never sees a true count. Every figure it shows is a sum of cells that already went
// through the federation's policy (each practice's published cells, or the federation cells
// made from them), summed the way combine sums them: count = sum of published values, lower
// and upper = sums of the bounds, and a figure whose bounds lie wholly within the suppressed
// range is shown as suppressed, count withheld. Since nothing is derived from a true count,
// no row, and no difference between rows, narrows a suppressed cell beyond its own published
// bounds; that is why a breakdown by practice is offered at every level, built from the
// practices' published cells, with practice figures that the rule withholds shown suppressed.
package query

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strings"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/internal/ordered"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// Breakdowns a query can ask for.
const (
	ByMonth    = "month" // every query is by month; accepted for clarity
	ByAgeBand  = "age_band"
	BySex      = "sex"
	ByPractice = "practice"
)

// Breakdowns lists the valid values of Request.By.
var Breakdowns = []string{ByMonth, ByAgeBand, BySex, ByPractice}

// Request is one question. Its zero value asks for every measure and month of the whole
// federation.
type Request struct {
	Measures []string      // catalogue measures; empty means all
	From, To formats.Month // inclusive; zero means open
	By       []string      // breakdowns beside month and measure
}

// Row is one answer line.
type Row struct {
	Month    string `json:"month"`
	Measure  string `json:"measure"`
	AgeBand  string `json:"age_band,omitempty"`
	Sex      string `json:"sex,omitempty"`
	Practice string `json:"practice,omitempty"`
	Count    *int64 `json:"count"` // nil when suppressed
	Lower    int64  `json:"lower"`
	Upper    int64  `json:"upper"`
	// Estimate is the figure to read: the count when every contribution was published, the
	// midpoint of the bounds when some were suppressed (a partial count leaves them out, so it
	// can lie below its own lower bound; the estimate never does), nil when suppressed.
	Estimate  *float64 `json:"estimate"`
	Status    string   `json:"status"`
	ListSize  int64    `json:"list_size"`
	Rate      *float64 `json:"rate_per_1000"` // crude rate of Estimate; nil when suppressed or no list size
	RateLower *float64 `json:"rate_lower"`
	RateUpper *float64 `json:"rate_upper"`
	Practices int64    `json:"practices"`
}

// Result is the answer to a Request.
type Result struct {
	Combined string   `json:"combined"` // id of the combined output it was read from
	Policy   string   `json:"policy"`
	By       []string `json:"by"` // breakdowns beside month and measure, in column order
	Rows     []Row    `json:"rows"`
}

// Combined is the newest combined output of a store.
type Combined struct {
	st      objstore.Store
	Pointer combine.Pointer
}

// ErrNotCombined is returned by Open for a store without combined figures.
var ErrNotCombined = errors.New("the store has no combined figures yet; run 'tributary-coordinator combine' first")

// Open reads federation/current.json.
func Open(ctx context.Context, st objstore.Store) (*Combined, error) {
	data, _, err := st.Get(ctx, combine.CurrentKey, 1<<20)
	if errors.Is(err, objstore.ErrNotFound) {
		return nil, ErrNotCombined
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", combine.CurrentKey, err)
	}
	ptr, err := combine.ParsePointer(data)
	if err != nil {
		return nil, err
	}
	return &Combined{st: st, Pointer: *ptr}, nil
}

// aggregate reads one table named by the pointer, checks it is the one the pointer names,
// and sums the rows req asks for into groups.
func (c *Combined) aggregate(ctx context.Context, ref combine.ObjectRef, req *Request) (map[groupKey]*group, error) {
	if ref.Key == "" {
		return nil, fmt.Errorf("the combined output %s names no table; run 'tributary-coordinator combine' again", c.Pointer.ID)
	}
	data, _, err := c.st.Get(ctx, ref.Key, ref.Size)
	if err != nil {
		return nil, fmt.Errorf("read combined figures: %w", err)
	}
	if h := sha256.Sum256(data); hex.EncodeToString(h[:]) != ref.SHA256 {
		return nil, fmt.Errorf("%s does not match the SHA-256 in %s; it was changed after the combine: run 'tributary-coordinator combine' again", ref.Key, combine.CurrentKey)
	}
	has := func(b string) bool { return slices.Contains(req.By, b) }
	groups := map[groupKey]*group{}
	_, err = combine.ReadTableMonths(data, req.From, req.To, func(r *combine.Row) error {
		if (req.From != 0 && r.Month < req.From) || (req.To != 0 && r.Month > req.To) ||
			(len(req.Measures) > 0 && !slices.Contains(req.Measures, r.Measure)) {
			return nil
		}
		k := groupKey{month: r.Month, measure: r.Measure}
		if has(ByAgeBand) {
			k.band = r.AgeBand
		}
		if has(BySex) {
			k.sex = r.Sex
		}
		if has(ByPractice) {
			k.practice = r.Practice
		}
		g := groups[k]
		if g == nil {
			g = new(group)
			groups[k] = g
		}
		if r.Status != formats.StatusSuppressed {
			g.count += r.Count
		}
		if r.Status != formats.StatusRounded {
			g.notRounded++
		}
		g.lower += r.Lower
		g.upper += r.Upper
		g.list += r.ListSize
		g.practices = max(g.practices, r.Practices)
		return nil
	})
	return groups, err
}

// Validate checks a request, with errors that say what to write instead.
func (r *Request) Validate() error {
	for _, m := range r.Measures {
		if !formats.IsKnownMeasure(m) {
			return fmt.Errorf("unknown measure %q; choose one of: %s", m, strings.Join(formats.Measures, ", "))
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

type groupKey struct {
	month               formats.Month
	measure             string
	band, sex, practice string
}

type group struct {
	count, lower, upper, list, practices int64
	notRounded                           int
}

// Run answers req from the combined figures: the federation table, or every practice's table
// when req breaks down by practice.
func (c *Combined) Run(ctx context.Context, req Request) (*Result, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	var groups map[groupKey]*group
	if slices.Contains(req.By, ByPractice) {
		// Each practice's table makes its own groups (they never share a key); read and
		// sum them on a few goroutines, merged in practice order.
		practices := make([]string, 0, len(c.Pointer.PracticeTables))
		for p := range c.Pointer.PracticeTables {
			practices = append(practices, p)
		}
		slices.Sort(practices)
		groups = map[groupKey]*group{}
		err := ordered.Run(ctx, len(practices), 2*runtime.GOMAXPROCS(0),
			func(ctx context.Context, i int) (map[groupKey]*group, error) {
				return c.aggregate(ctx, c.Pointer.PracticeTables[practices[i]], &req)
			},
			func(_ int, g map[groupKey]*group) error {
				maps.Copy(groups, g)
				return nil
			})
		if err != nil {
			return nil, err
		}
	} else {
		var err error
		if groups, err = c.aggregate(ctx, c.Pointer.Objects[combine.FederationArrow], &req); err != nil {
			return nil, err
		}
	}
	res := &Result{Combined: c.Pointer.ID, Policy: c.Pointer.Policy, Rows: []Row{}}
	for _, b := range req.By {
		if b != ByMonth && !slices.Contains(res.By, b) {
			res.By = append(res.By, b)
		}
	}
	keys := make([]groupKey, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, compareKeys)
	for _, k := range keys {
		g := groups[k]
		row := Row{Month: k.month.String(), Measure: k.measure, AgeBand: k.band, Sex: k.sex, Practice: k.practice,
			Lower: g.lower, Upper: g.upper, ListSize: g.list, Practices: g.practices,
			Status: combine.Status(g.lower, g.upper, g.notRounded, c.Pointer.SuppressMax)}
		if row.Status != formats.StatusSuppressed {
			n := g.count
			row.Count = &n
			est := float64(g.lower+g.upper) / 2
			if row.Status == formats.StatusRounded {
				est = float64(n)
			}
			row.Estimate = &est
		}
		if g.list > 0 {
			per := func(n float64) *float64 { v := n / float64(g.list) * 1000; return &v }
			if row.Estimate != nil {
				row.Rate = per(*row.Estimate)
			}
			row.RateLower, row.RateUpper = per(float64(g.lower)), per(float64(g.upper))
		}
		res.Rows = append(res.Rows, row)
	}
	return res, nil
}

func compareKeys(a, b groupKey) int {
	if a.month != b.month {
		return int(a.month - b.month)
	}
	if c := slices.Index(formats.Measures, a.measure) - slices.Index(formats.Measures, b.measure); c != 0 {
		return c
	}
	if c := formats.AgeBandIndex(a.band) - formats.AgeBandIndex(b.band); c != 0 {
		return c
	}
	if c := slices.Index(formats.Sexes, a.sex) - slices.Index(formats.Sexes, b.sex); c != 0 {
		return c
	}
	return strings.Compare(a.practice, b.practice)
}
