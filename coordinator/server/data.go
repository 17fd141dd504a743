package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"runtime"
	"slices"
	"sort"
	"time"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/internal/ordered"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

const (
	nBands    = 19
	nSexes    = 3
	nCells    = nBands * nSexes
	nMeasures = 9
)

// Cell statuses, packed.
const (
	stRounded uint8 = iota
	stPartial
	stSuppressed
)

// cell is one published figure, packed: 16 bytes, so 1,000 practices × 60 months × 9
// measures × 57 cells fit in about 0.5 GB.
type cell struct {
	count, lower, upper int32
	status              uint8
}

// monthData is one month of one table (the federation's or a practice's): each measure's
// cells (nil when the measure was not supplied) and list sizes.
type monthData struct {
	cells     [nMeasures]*[nCells]cell
	lists     [nMeasures]*[nCells]int64
	practices [nMeasures]int32 // federation only: practices that supplied the measure
}

// table is the cells of the federation or of one practice, by month.
type table struct {
	sha    string
	months map[formats.Month]*monthData
}

// snapshot is one combined output held in memory; it is never changed once published.
type snapshot struct {
	ptr       combine.Pointer
	report    *combine.Report
	loaded    time.Time
	months    []formats.Month
	fed       *table
	practices map[string]*table
	ids       []string          // practices with a table, sorted
	names     map[string]string // display names from the registry
	byMonth   map[string]map[string]combine.Contributor
}

var measureIndex = func() map[string]int {
	m := map[string]int{}
	for i, name := range formats.Measures {
		m[name] = i
	}
	return m
}()

func statusCode(s string) (uint8, error) {
	switch s {
	case formats.StatusRounded:
		return stRounded, nil
	case combine.StatusPartial:
		return stPartial, nil
	case formats.StatusSuppressed:
		return stSuppressed, nil
	}
	return 0, fmt.Errorf("unknown status %q", s)
}

func fits(n int64) bool { return n >= math.MinInt32 && n <= math.MaxInt32 }

// readTable reads a combined table named by ref into memory, checking its SHA-256.
func readTable(ctx context.Context, st objstore.Store, ref combine.ObjectRef) (*table, error) {
	data, _, err := st.Get(ctx, ref.Key, ref.Size)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ref.Key, err)
	}
	if h := sha256.Sum256(data); hex.EncodeToString(h[:]) != ref.SHA256 {
		return nil, fmt.Errorf("%s does not match the SHA-256 its combine recorded; it was changed after the combine", ref.Key)
	}
	t := &table{sha: ref.SHA256, months: map[formats.Month]*monthData{}}
	var practiceLists map[formats.Month]*[nCells]int64
	_, err = combine.ReadTable(data, func(r *combine.Row) error {
		mi, ok := measureIndex[r.Measure]
		if !ok {
			return nil
		}
		ci := formats.AgeBandIndex(r.AgeBand)*nSexes + slices.Index(formats.Sexes, r.Sex)
		if ci < 0 || ci >= nCells || formats.AgeBandIndex(r.AgeBand) < 0 {
			return fmt.Errorf("%s: a row names age band %q and sex %q, which are not in the catalogue", ref.Key, r.AgeBand, r.Sex)
		}
		st, err := statusCode(r.Status)
		if err != nil {
			return fmt.Errorf("%s: %w", ref.Key, err)
		}
		if !fits(r.Count) || !fits(r.Lower) || !fits(r.Upper) {
			return fmt.Errorf("%s: a count is too large to hold", ref.Key)
		}
		md := t.months[r.Month]
		if md == nil {
			md = new(monthData)
			t.months[r.Month] = md
		}
		if md.cells[mi] == nil {
			md.cells[mi] = new([nCells]cell)
			if r.Practice != "" {
				// A practice's list sizes are the same for every measure: share them.
				if practiceLists == nil {
					practiceLists = map[formats.Month]*[nCells]int64{}
				}
				l := practiceLists[r.Month]
				if l == nil {
					l = new([nCells]int64)
					practiceLists[r.Month] = l
				}
				md.lists[mi] = l
			} else {
				md.lists[mi] = new([nCells]int64)
			}
		}
		md.cells[mi][ci] = cell{count: int32(r.Count), lower: int32(r.Lower), upper: int32(r.Upper), status: st}
		md.lists[mi][ci] = r.ListSize
		if r.Practices > int64(md.practices[mi]) && fits(r.Practices) {
			md.practices[mi] = int32(r.Practices)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// load builds a snapshot of the combined output ptr names, reusing the tables of prev whose
// SHA-256 has not changed: only practices whose figures changed are read again.
func load(ctx context.Context, st objstore.Store, ptr combine.Pointer, prev *snapshot, names map[string]string) (*snapshot, error) {
	s := &snapshot{ptr: ptr, loaded: time.Now().UTC(), practices: map[string]*table{}, names: names}
	repRef := ptr.Objects[combine.ReportJSON]
	data, _, err := st.Get(ctx, repRef.Key, max(repRef.Size, 1))
	if err != nil {
		return nil, fmt.Errorf("read the combine report: %w", err)
	}
	if h := sha256.Sum256(data); hex.EncodeToString(h[:]) != repRef.SHA256 {
		return nil, fmt.Errorf("%s does not match the SHA-256 its combine recorded", repRef.Key)
	}
	if s.report, err = combine.ParseReport(data); err != nil {
		return nil, err
	}
	fedRef := ptr.Objects[combine.FederationArrow]
	if prev != nil && prev.fed.sha == fedRef.SHA256 {
		s.fed = prev.fed
	} else if s.fed, err = readTable(ctx, st, fedRef); err != nil {
		return nil, err
	}
	for id := range ptr.PracticeTables {
		s.ids = append(s.ids, id)
	}
	sort.Strings(s.ids)
	tables := make([]*table, len(s.ids))
	err = ordered.Run(ctx, len(s.ids), 2*runtime.GOMAXPROCS(0),
		func(ctx context.Context, i int) (*table, error) {
			ref := ptr.PracticeTables[s.ids[i]]
			if prev != nil {
				if t := prev.practices[s.ids[i]]; t != nil && t.sha == ref.SHA256 {
					return t, nil
				}
			}
			return readTable(ctx, st, ref)
		},
		func(i int, t *table) error { tables[i] = t; return nil })
	if err != nil {
		return nil, err
	}
	for i, id := range s.ids {
		s.practices[id] = tables[i]
	}
	for m := range s.fed.months {
		s.months = append(s.months, m)
	}
	slices.Sort(s.months)
	s.byMonth = map[string]map[string]combine.Contributor{}
	for _, c := range s.report.Completeness {
		mm := map[string]combine.Contributor{}
		for _, x := range c.Contributors {
			mm[x.Practice] = x
		}
		s.byMonth[c.Month] = mm
	}
	return s, nil
}
