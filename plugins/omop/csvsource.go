package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/sdk"
	"github.com/tributary-health/tributary/plugins/sdk/csvread"
)

// csvSource reads a folder of CDM CSV files, one per table, named after the table in lower or
// upper case (person.csv, PERSON.csv), with a header row whose names may be in either case.
// PERSON is held in memory (a small struct per person); every other table is streamed.
type csvSource struct {
	dir     string
	files   map[string]string // table → file name in dir
	version string
	persons map[string]person // person_id → person, loaded on first use
}

func openCSV(cfg config) (*csvSource, error) {
	entries, err := os.ReadDir(cfg.dir)
	if err != nil {
		return nil, fmt.Errorf("cannot list the folder set as dir: %w", errors.Unwrap(err))
	}
	s := &csvSource{dir: cfg.dir, files: map[string]string{}}
	for _, e := range entries {
		name := e.Name()
		table, ok := strings.CutSuffix(strings.ToLower(name), ".csv")
		if !ok || e.IsDir() {
			continue
		}
		if prev, dup := s.files[table]; dup {
			return nil, fmt.Errorf("the folder set as dir holds both %s and %s; keep one", prev, name)
		}
		s.files[table] = name
	}
	if _, ok := s.files[tablePerson]; !ok {
		return nil, errors.New("person.csv (or PERSON.csv) is not in the folder set as dir; point dir at the folder of the OMOP CDM CSV files")
	}
	t := s.Tables()
	if !t.periods && !t.visits {
		return nil, errors.New("neither observation_period.csv nor visit_occurrence.csv is in the folder set as dir, so there is nothing to read; point dir at the folder of the OMOP CDM CSV files")
	}
	s.version = "unknown"
	if t.visits {
		f, err := s.open(tableVisit, "person_id", "visit_concept_id", "visit_start_date")
		if err != nil {
			return nil, err
		}
		s.version, err = versionOf(cfg.version, func(c string) bool { return f.Col(c) >= 0 }, f.Name())
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (s *csvSource) Kind() string    { return "csv" }
func (s *csvSource) Version() string { return s.version }
func (s *csvSource) Close() error    { return nil }

func (s *csvSource) Tables() tables {
	_, p := s.files[tablePeriod]
	_, v := s.files[tableVisit]
	_, c := s.files[tableCondition]
	_, k := s.files[tableConcept]
	return tables{periods: p, visits: v, diagnoses: c && k}
}

// open opens a table's file, failing when it lacks a required column.
func (s *csvSource) open(table string, required ...string) (*csvread.File, error) {
	name, ok := s.files[table]
	if !ok {
		return nil, fmt.Errorf("%s.csv is not in the folder set as dir", table)
	}
	f, err := csvread.Open(filepath.Join(s.dir, name), csvread.Options{Required: required, TrimSpace: true})
	var mc *csvread.MissingColumnError
	switch {
	case err == nil:
		return f, nil
	case errors.Is(err, csvread.ErrEmpty):
		return nil, fmt.Errorf("%s is empty; it should start with the CDM table's header row", name)
	case errors.As(err, &mc):
		return nil, fmt.Errorf("%w; is this an OMOP CDM %s table?", err, table)
	}
	return nil, err
}

func (s *csvSource) Ancestors(ctx context.Context, ids []int64, fn func(ancestor, descendant int64)) error {
	if _, ok := s.files[tableAncestor]; !ok {
		return nil
	}
	f, err := s.open(tableAncestor, "ancestor_concept_id", "descendant_concept_id")
	if err != nil {
		return err
	}
	defer f.Close()
	want := map[int64]bool{}
	for _, id := range ids {
		want[id] = true
	}
	ca, cd := f.Col("ancestor_concept_id"), f.Col("descendant_concept_id")
	return f.Each(ctx, func(rec []string) error {
		a, err1 := strconv.ParseInt(rec[ca], 10, 64)
		d, err2 := strconv.ParseInt(rec[cd], 10, 64)
		if err1 == nil && err2 == nil && want[a] {
			fn(a, d)
		}
		return nil
	}, func() {})
}

func (s *csvSource) VisitConcepts(ctx context.Context, fn func(concept int64, admittedFrom bool)) error {
	f, err := s.open(tableVisit, "visit_concept_id")
	if err != nil {
		return err
	}
	defer f.Close()
	cc, cf := f.Col("visit_concept_id"), f.Col(admittedFromColumn(s.version))
	seen := map[int64]bool{}
	err = f.Each(ctx, func(rec []string) error {
		c, err := strconv.ParseInt(rec[cc], 10, 64)
		if err != nil {
			return nil
		}
		from := conceptOrZero(csvread.Field(rec, cf)) != 0
		if had, ok := seen[c]; !ok || (from && !had) {
			seen[c] = had || from
		}
		return nil
	}, func() {})
	if err != nil {
		return err
	}
	ids := make([]int64, 0, len(seen))
	for c := range seen {
		ids = append(ids, c)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, c := range ids {
		fn(c, seen[c])
	}
	return nil
}

// loadPersons reads PERSON into memory once: what a registration needs of each person.
func (s *csvSource) loadPersons(ctx context.Context, w *sdk.Writer) error {
	if s.persons != nil {
		return nil
	}
	f, err := s.open(tablePerson, "person_id", "gender_concept_id", "year_of_birth")
	if err != nil {
		return err
	}
	defer f.Close()
	cID, cGender, cYear := f.Col("person_id"), f.Col("gender_concept_id"), f.Col("year_of_birth")
	cMonth, cBirth := f.Col("month_of_birth"), f.Col("birth_datetime")
	s.persons = map[string]person{}
	return f.Each(ctx, func(rec []string) error {
		id := personID(rec[cID])
		switch {
		case id == "":
			w.Skip(skipPersonID)
			return nil
		case s.persons[id].known:
			w.Skip(skipPersonDup)
			return nil
		}
		p := person{known: true, gender: conceptOrZero(rec[cGender]), birth: formats.NoEnd}
		if y, err := strconv.Atoi(rec[cYear]); err == nil {
			p.year = y
		}
		if m, err := strconv.Atoi(csvread.Field(rec, cMonth)); err == nil && m >= 1 && m <= 12 {
			p.month = m
		}
		if d, ok := parseDate(csvread.Field(rec, cBirth)); ok {
			p.birth = d
		}
		s.persons[strings.Clone(id)] = p
		return nil
	}, func() { w.Skip(skipPersonRow) })
}

func (s *csvSource) Periods(ctx context.Context, from, to formats.Date, w *sdk.Writer, fn func(period) error) error {
	if err := s.loadPersons(ctx, w); err != nil {
		return err
	}
	f, err := s.open(tablePeriod, "person_id", "observation_period_start_date", "observation_period_end_date")
	if err != nil {
		return err
	}
	defer f.Close()
	cID, cStart, cEnd := f.Col("person_id"), f.Col("observation_period_start_date"), f.Col("observation_period_end_date")
	return f.Each(ctx, func(rec []string) error {
		p := period{personID: personID(rec[cID]), end: formats.NoEnd}
		var ok bool
		switch {
		case p.personID == "":
			w.Skip(skipPeriodPerson)
			return nil
		default:
			if p.start, ok = parseDate(rec[cStart]); !ok {
				w.Skip(skipPeriodStart)
				return nil
			}
		}
		if e := rec[cEnd]; e != "" {
			if p.end, ok = parseDate(e); !ok {
				w.Skip(skipPeriodEnd)
				return nil
			}
		}
		p.person = s.persons[p.personID]
		return fn(p)
	}, func() { w.Skip(skipPeriodRow) })
}

func (s *csvSource) Visits(ctx context.Context, from, to formats.Date, w *sdk.Writer, fn func(visit) error) error {
	if err := s.loadPersons(ctx, w); err != nil {
		return err
	}
	f, err := s.open(tableVisit, "person_id", "visit_concept_id", "visit_start_date", "visit_end_date")
	if err != nil {
		return err
	}
	defer f.Close()
	dx, err := s.diagnoses(ctx, from, to)
	if err != nil {
		return err
	}
	cID, cConcept, cStart, cEnd := f.Col("person_id"), f.Col("visit_concept_id"), f.Col("visit_start_date"), f.Col("visit_end_date")
	cFrom, cVisit := f.Col(admittedFromColumn(s.version)), f.Col("visit_occurrence_id")
	return f.Each(ctx, func(rec []string) error {
		v := visit{personID: personID(rec[cID]), end: formats.NoEnd}
		var ok bool
		if v.start, ok = parseDate(rec[cStart]); !ok {
			w.Skip(skipVisitStart)
			return nil
		}
		if e := rec[cEnd]; e != "" {
			if v.end, ok = parseDate(e); !ok {
				w.Skip(skipVisitEnd)
				return nil
			}
		}
		c, err := strconv.ParseInt(rec[cConcept], 10, 64)
		if err != nil {
			w.Skip(skipVisitConcept)
			return nil
		}
		v.concept = c
		v.admittedFrom = conceptOrZero(csvread.Field(rec, cFrom))
		// Rows outside the months are left out before the person is looked at, as the
		// database's WHERE clause does.
		if !(v.start >= from && v.start < to) && !(v.end != formats.NoEnd && v.end >= from && v.end < to) {
			return nil
		}
		if v.personID == "" {
			w.Skip(skipVisitPerson)
			return nil
		}
		v.personKnown = s.persons[v.personID].known
		if dx != nil {
			if id, err := strconv.ParseInt(csvread.Field(rec, cVisit), 10, 64); err == nil {
				v.diagnosis = dx[id]
			}
		}
		return fn(v)
	}, func() { w.Skip(skipVisitRow) })
}

// personID is person_id in the form the database gives it as text: a whole number without
// leading zeros or sign, so both sources give a person the same key.
func personID(s string) string {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if strconv.FormatInt(n, 10) == s {
			return s
		}
		return strconv.FormatInt(n, 10)
	}
	return s
}

// conceptOrZero reads a concept id; empty or not a number is 0 (no concept).
func conceptOrZero(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// parseDate reads a CDM date: YYYY-MM-DD, optionally followed by a time ("2000-12-27
// 00:00:00", "1996-08-21T00:00:00Z", as Eunomia's files hold), or YYYYMMDD.
func parseDate(s string) (formats.Date, bool) {
	switch {
	case len(s) == 8:
		s = s[:4] + "-" + s[4:6] + "-" + s[6:]
	case len(s) > 10 && (s[10] == ' ' || s[10] == 'T'):
		s = s[:10]
	}
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	y, err1 := strconv.Atoi(s[:4])
	m, err2 := strconv.Atoi(s[5:7])
	d, err3 := strconv.Atoi(s[8:])
	if err1 != nil || err2 != nil || err3 != nil || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return 0, false
	}
	return formats.DateOf(dateUTC(y, m, d)), true
}

func daysIn(y, m int) int { return time.Date(y, time.Month(m)+1, 0, 0, 0, 0, 0, time.UTC).Day() }

func dateUTC(y, m, d int) time.Time { return time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC) }

// candidate is one condition_occurrence row of a visit, for choosing its primary diagnosis.
type candidate struct {
	concept int64
	rank    int
	start   formats.Date // formats.NoEnd when missing: ranked last, as NULLS LAST
	id      int64
}

// diagnoses returns the primary diagnosis (a SNOMED CT concept_code) of every visit that may
// start or end in the days from..to, by visit_occurrence_id, as the database's query chooses
// it (source.go's rule): the visits of the months are read first, then their conditions, then
// the concepts of those conditions, so memory grows with the months' visits (8 bytes each, and
// the conditions of those that have any), not the tables.
// Nil when the folder has no condition_occurrence or concept.
func (s *csvSource) diagnoses(ctx context.Context, from, to formats.Date) (map[int64]string, error) {
	if !s.Tables().diagnoses {
		return nil, nil
	}
	in := func(d formats.Date) bool { return d >= from && d < to }
	// The months' visit ids, sorted: 8 bytes a visit. Candidates are kept only for the visits
	// that have conditions.
	var ids []int64
	f, err := s.open(tableVisit, "visit_occurrence_id", "visit_start_date", "visit_end_date")
	if err != nil {
		return nil, err
	}
	cVisit, cStart, cEnd := f.Col("visit_occurrence_id"), f.Col("visit_start_date"), f.Col("visit_end_date")
	err = f.Each(ctx, func(rec []string) error {
		st, ok1 := parseDate(rec[cStart])
		en, ok2 := parseDate(rec[cEnd])
		id, err := strconv.ParseInt(rec[cVisit], 10, 64)
		if err == nil && ((ok1 && in(st)) || (ok2 && in(en))) {
			ids = append(ids, id)
		}
		return nil
	}, func() {})
	f.Close()
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	ids = slices.Clip(ids)
	visits := map[int64][]candidate{}

	f, err = s.open(tableCondition, "visit_occurrence_id", "condition_concept_id")
	if err != nil {
		return nil, err
	}
	cVisit, cConcept, cType := f.Col("visit_occurrence_id"), f.Col("condition_concept_id"), f.Col("condition_type_concept_id")
	cStatus, cStart, cID := f.Col("condition_status_concept_id"), f.Col("condition_start_date"), f.Col("condition_occurrence_id")
	concepts := map[int64]string{}
	err = f.Each(ctx, func(rec []string) error {
		v, err := strconv.ParseInt(rec[cVisit], 10, 64)
		if err != nil {
			return nil
		}
		if _, ok := slices.BinarySearch(ids, v); !ok {
			return nil
		}
		c := candidate{concept: conceptOrZero(rec[cConcept]), start: formats.NoEnd, id: conceptOrZero(csvread.Field(rec, cID)),
			rank: primaryRank(conceptOrZero(csvread.Field(rec, cStatus)), conceptOrZero(csvread.Field(rec, cType)))}
		if d, ok := parseDate(csvread.Field(rec, cStart)); ok {
			c.start = d
		}
		visits[v] = append(visits[v], c)
		concepts[c.concept] = ""
		return nil
	}, func() {})
	f.Close()
	ids = nil
	if err != nil {
		return nil, err
	}

	f, err = s.open(tableConcept, "concept_id", "vocabulary_id", "standard_concept", "concept_code")
	if err != nil {
		return nil, err
	}
	cConcept, cVocab, cStd, cCode := f.Col("concept_id"), f.Col("vocabulary_id"), f.Col("standard_concept"), f.Col("concept_code")
	err = f.Each(ctx, func(rec []string) error {
		id, err := strconv.ParseInt(rec[cConcept], 10, 64)
		if _, want := concepts[id]; err == nil && want && rec[cVocab] == "SNOMED" && rec[cStd] == "S" {
			concepts[id] = strings.Clone(rec[cCode])
		}
		return nil
	}, func() {})
	f.Close()
	if err != nil {
		return nil, err
	}

	out := make(map[int64]string, len(visits))
	for v, list := range visits {
		var best *candidate
		for i := range list {
			c := &list[i]
			if concepts[c.concept] == "" {
				continue
			}
			if best == nil || c.rank < best.rank || (c.rank == best.rank && (c.start < best.start || (c.start == best.start && c.id < best.id))) {
				best = c
			}
		}
		if best != nil {
			out[v] = concepts[best.concept]
		}
	}
	return out, nil
}
