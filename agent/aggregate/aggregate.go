// Package aggregate turns a practice's canonical rows into monthly counts per measure, age
// band and sex, and releases them as one format 2 submission: every month, quarter and year
// of the run, every shape, through the disclosure policy and the disclosure audit
// (agent/disclosure). Its input is patient-level; its output is what may leave the practice.
package aggregate

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/tributary-health/tributary/agent/disclosure"
	"github.com/tributary-health/tributary/formats"
)

// Supplies says what the sources of a run can supply. A measure nobody supplies is absent
// from the output, never zero.
type Supplies struct {
	Registrations bool            // list size
	EventKinds    map[string]bool // formats.Kind* values some source emits
	Methods       bool            // a source tells emergency from elective admissions
	Diagnoses     map[string]bool // code systems (formats.Diagnosis*) of the primary diagnoses some source sends
	Discharges    bool            // a source sends admissions' discharge dates
}

// Absent is a measure a practice's sources cannot supply, and why.
type Absent struct {
	Measure string
	Reason  string
}

// Check says whether these supplies can feed definition d, and if not why.
func (s Supplies) Check(d *formats.Definition) (bool, string) {
	if d.Count == formats.CountRegistered {
		if !s.Registrations {
			return false, "no source supplies registrations"
		}
		return true, ""
	}
	if !s.EventKinds[d.Kind] {
		return false, fmt.Sprintf("no source supplies %s events", d.Kind)
	}
	if d.Method != "" && !s.Methods {
		return false, "no source tells emergency from elective admissions"
	}
	if len(d.Codes) > 0 && !slices.ContainsFunc(d.Systems(), func(sys string) bool { return s.Diagnoses[sys] }) {
		return false, fmt.Sprintf("no source sends primary diagnoses in %s (the definition's code systems)", strings.Join(d.Systems(), " or "))
	}
	if d.NeedsDischarges() && !s.Discharges {
		return false, "no source sends admissions' discharge dates"
	}
	return true, ""
}

// Measures lists the measures of defs these supplies allow, in the definitions' order, and
// the others with the reason each is absent.
func (s Supplies) Measures(defs []formats.Definition) ([]string, []Absent) {
	var out []string
	var absent []Absent
	for i := range defs {
		if ok, why := s.Check(&defs[i]); ok {
			out = append(out, defs[i].Name)
		} else {
			absent = append(absent, Absent{defs[i].Name, why})
		}
	}
	return out, absent
}

// Reasons an event is not counted. They are counts only; no value is kept.
const (
	DropUnknownPatient     = "event for a patient with no registration"
	DropOutsideRegistered  = "event outside the patient's registration"
	DropBeforeBirth        = "event before the patient's birth month"
	DropOutsideMonths      = "event outside the requested months"
	DropDuplicateRegistrar = "registration duplicated with a different sex or birth month"
)

type patient struct {
	sex    uint8 // index into formats.Sexes
	birth  formats.Month
	spells []spell
}

type spell struct {
	from, to formats.Date
	src      uint8
}

func (p *patient) registeredOn(d formats.Date) bool {
	for _, s := range p.spells {
		if s.from <= d && d < s.to {
			return true
		}
	}
	return false
}

// pending is an event that arrived before its patient's registration: kept compactly until
// Finish, so sources may send rows in any order (sending registrations first keeps memory flat).
type pending struct {
	patient    int32
	src        uint8
	kind       uint8 // index into formats.EventKinds
	method     uint8 // index into methods
	start, end formats.Date
	diag       string // system + "\x00" + code, "" for none
}

// methods are the admission methods by their index in pending; 0 is "no method".
var methods = []string{"", formats.MethodEmergency, formats.MethodElective, formats.MethodOther, formats.MethodUnknown}

func newPending(id int32, src uint8, e formats.Event) pending {
	pe := pending{patient: id, src: src, kind: uint8(slices.Index(formats.EventKinds, e.Kind)),
		method: uint8(max(0, slices.Index(methods, e.Method))), start: e.Start, end: e.End}
	if e.DiagnosisCode != "" {
		pe.diag = e.DiagnosisSystem + "\x00" + e.DiagnosisCode
	}
	return pe
}

func (pe pending) event() formats.Event {
	e := formats.Event{Kind: formats.EventKinds[pe.kind], Method: methods[pe.method], Start: pe.start, End: pe.end}
	if sys, code, ok := strings.Cut(pe.diag, "\x00"); ok {
		e.DiagnosisSystem, e.DiagnosisCode = sys, code
	}
	return e
}

// Aggregator counts rows for the months From..To by a list of measure definitions. Use New,
// then for each source Begin, its rows through Registration and Event, and Discard if the
// source failed; then Finish. What a failed source contributed is taken out again, so a run
// never publishes half a source. It is not safe for concurrent use.
//
// Sources are asked for events from First(), which is From less the longest look-back any
// definition's rule needs (12 months of A&E attendances for frequent attenders, the previous
// discharge of a readmission); events before From only feed those rules and are counted in no
// month.
type Aggregator struct {
	from, to formats.Month
	first    formats.Month
	defs     []formats.Definition
	index    map[string]uint16
	src      uint8
	ids      map[string]int32
	patients []patient
	pending  []pending
	counts   map[cellKey]int64
	hist     map[histKey][]histEvent // events of the rule-based definitions, per patient
	dropped  map[uint8]map[string]int64
}

type cellKey struct {
	month   formats.Month
	measure uint16 // index into the aggregator's definitions
	band    uint8
	sex     uint8
	src     uint8
}

type histKey struct {
	def     uint16
	patient int32
}

// histEvent is one event a rule-based definition looks at: for a readmission rule every
// admission of the patient (match says whether it is one the definition counts), for the
// others only matching events.
type histEvent struct {
	start, end formats.Date
	src        uint8
	match      bool
}

// New returns an aggregator for the months from..to inclusive, counting defs (none: the
// built-in definitions, formats.BuiltinDefinitions). The definitions must be valid.
func New(from, to formats.Month, defs ...formats.Definition) *Aggregator {
	if len(defs) == 0 {
		defs = formats.BuiltinDefinitions()
	}
	a := &Aggregator{
		from: from, to: to, first: from,
		defs:    defs,
		index:   map[string]uint16{},
		ids:     map[string]int32{},
		counts:  map[cellKey]int64{},
		hist:    map[histKey][]histEvent{},
		dropped: map[uint8]map[string]int64{},
	}
	for i := range defs {
		a.index[defs[i].Name] = uint16(i)
		if f := from - formats.Month(defs[i].Lookback()); f < a.first {
			a.first = f
		}
	}
	return a
}

// First is the first month sources must send events from: From less the look-back.
func (a *Aggregator) First() formats.Month { return a.first }

// LookbackFor returns the months before from that defs' rules need.
func LookbackFor(defs []formats.Definition) int {
	n := 0
	for i := range defs {
		n = max(n, defs[i].Lookback())
	}
	return n
}

// Begin starts the rows of source number src (0-255, one per plugin of the run).
func (a *Aggregator) Begin(src uint8) { a.src = src }

// Discard removes everything source src contributed: its counts, its registrations, its
// waiting events and its dropped-row tallies.
func (a *Aggregator) Discard(src uint8) {
	for k := range a.counts {
		if k.src == src {
			delete(a.counts, k)
		}
	}
	for k, h := range a.hist {
		a.hist[k] = slices.DeleteFunc(h, func(e histEvent) bool { return e.src == src })
	}
	for i := range a.patients {
		p := &a.patients[i]
		p.spells = slices.DeleteFunc(p.spells, func(s spell) bool { return s.src == src })
	}
	a.pending = slices.DeleteFunc(a.pending, func(pe pending) bool { return pe.src == src })
	delete(a.dropped, src)
}

func (a *Aggregator) drop(src uint8, reason string) {
	if a.dropped[src] == nil {
		a.dropped[src] = map[string]int64{}
	}
	a.dropped[src][reason]++
}

func sexIndex(s string) uint8 {
	switch s {
	case "female":
		return 0
	case "male":
		return 1
	}
	return 2
}

func (a *Aggregator) patientID(key string) (int32, bool) {
	id, ok := a.ids[key]
	return id, ok
}

// Registration adds one registration spell. Several spells of one patient are joined; a
// patient is counted once per month however many spells cover its first day.
func (a *Aggregator) Registration(r formats.Registration) {
	id, ok := a.patientID(r.PatientKey)
	if !ok {
		id = int32(len(a.patients))
		a.ids[strings.Clone(r.PatientKey)] = id // the row's string may alias a batch's buffer
		a.patients = append(a.patients, patient{sex: sexIndex(r.Sex), birth: r.BirthMonth})
	}
	p := &a.patients[id]
	if len(p.spells) == 0 {
		// First registration (the patient may have been seen first through an early event).
		p.sex, p.birth = sexIndex(r.Sex), r.BirthMonth
	} else if p.sex != sexIndex(r.Sex) || p.birth != r.BirthMonth {
		// The first registration's demographics stand; the conflict is counted, not hidden.
		a.drop(a.src, DropDuplicateRegistrar)
	}
	p.spells = append(p.spells, spell{r.From, r.To, a.src})
}

// Event adds one event.
func (a *Aggregator) Event(e formats.Event) {
	id, ok := a.patientID(e.PatientKey)
	if !ok {
		// Registration may still come; remember the event by a provisional id.
		id = int32(len(a.patients))
		a.ids[strings.Clone(e.PatientKey)] = id
		a.patients = append(a.patients, patient{})
	}
	if len(a.patients[id].spells) == 0 {
		a.pending = append(a.pending, newPending(id, a.src, e))
		return
	}
	a.count(id, a.src, e)
}

func (a *Aggregator) in(m formats.Month) bool { return m >= a.from && m <= a.to }

func (a *Aggregator) add(src uint8, m formats.Month, def uint16, p *patient, at formats.Date, n int64) {
	band := formats.AgeBandOf(formats.AgeInYears(p.birth, at.Time()))
	if band < 0 {
		a.drop(src, DropBeforeBirth)
		return
	}
	a.counts[cellKey{m, def, uint8(band), p.sex, src}] += n
}

func (a *Aggregator) count(id int32, src uint8, e formats.Event) {
	p := &a.patients[id]
	startMonth := e.Start.Month()
	endMonth := formats.Month(-1)
	if e.Kind == formats.KindAdmission && e.End != formats.NoEnd {
		endMonth = e.End.Month()
	}
	if !formats.EventInMonths(e, a.first, a.to) {
		a.drop(src, DropOutsideMonths)
		return
	}
	// An event of the look-back counts in no month (and is tallied as outside the months),
	// but may feed a rule: a frequent attender's earlier attendances, a previous discharge.
	inRun := formats.EventInMonths(e, a.from, a.to)
	if !inRun {
		a.drop(src, DropOutsideMonths)
	}
	if !p.registeredOn(e.Start) {
		if inRun {
			a.drop(src, DropOutsideRegistered)
		}
		return
	}
	if e.Start.Month() < p.birth {
		if inRun {
			a.drop(src, DropBeforeBirth)
		}
		return
	}
	for i := range a.defs {
		d := &a.defs[i]
		if d.Count == formats.CountRegistered || d.Kind != e.Kind {
			continue
		}
		match := d.Matches(e)
		if d.Rule.Type == formats.RuleReadmission {
			// Every admission may be the previous one; only matching ones are counted.
			k := histKey{uint16(i), id}
			a.hist[k] = append(a.hist[k], histEvent{e.Start, e.End, src, match})
			continue
		}
		if !match {
			continue
		}
		switch {
		case d.Count == formats.CountBedDays:
			// Nights in hospital, counted in the month the stay ends, at the age on
			// discharge. A same-day admission has none.
			if days := int64(e.End - e.Start); a.in(endMonth) && days > 0 {
				a.add(src, endMonth, uint16(i), p, e.End, days)
			}
		case d.Rule.Type != formats.RuleNone:
			k := histKey{uint16(i), id}
			a.hist[k] = append(a.hist[k], histEvent{e.Start, e.End, src, true})
		case a.in(startMonth):
			a.add(src, startMonth, uint16(i), p, e.Start, 1)
		}
	}
}

// rules counts the rule-based definitions from the events kept for them, across sources.
func (a *Aggregator) rules() {
	for k, h := range a.hist {
		if len(h) == 0 {
			continue
		}
		d := &a.defs[k.def]
		p := &a.patients[k.patient]
		slices.SortFunc(h, func(x, y histEvent) int { return int(x.start) - int(y.start) })
		switch d.Rule.Type {
		case formats.RuleFirstPerPatient:
			// The patient's first matching event in the look-back and the months.
			if m := h[0].start.Month(); a.in(m) {
				a.add(0, m, k.def, p, h[0].start, 1)
			}
		case formats.RuleDistinctPatients:
			// Once a month, in the age band of the month's first event.
			seen := map[formats.Month]bool{}
			for _, e := range h {
				if m := e.start.Month(); a.in(m) && !seen[m] {
					seen[m] = true
					a.add(0, m, k.def, p, e.start, 1)
				}
			}
		case formats.RuleFrequent:
			// A patient with an event in the month and at least MinEvents in the
			// WindowMonths months ending with it, in the age band of the month's first.
			seen := map[formats.Month]bool{}
			for _, e := range h {
				m := e.start.Month()
				if !a.in(m) || seen[m] {
					continue
				}
				seen[m] = true
				n := 0
				lo := m - formats.Month(d.Rule.WindowMonths-1)
				for _, o := range h {
					if om := o.start.Month(); om >= lo && om <= m {
						n++
					}
				}
				if n >= d.Rule.MinEvents {
					a.add(0, m, k.def, p, e.start, 1)
				}
			}
		case formats.RuleReadmission:
			// A matching admission starting within WithinDays of the discharge of an
			// admission of the patient that started before it (on an earlier day) and was
			// discharged on or before its start.
			for _, e := range h {
				if !e.match || !a.in(e.start.Month()) {
					continue
				}
				for _, o := range h {
					if o.end == formats.NoEnd || o.start >= e.start {
						continue
					}
					if o.end <= e.start && int(e.start-o.end) <= d.Rule.WithinDays {
						a.add(0, e.start.Month(), k.def, p, e.start, 1)
						break
					}
				}
			}
		}
	}
}

// Result is the aggregate of a run: true counts, before disclosure control. It never leaves
// the agent's memory; Release turns it into the run's submission.
type Result struct {
	From, To formats.Month
	Measures []string
	Absent   []Absent                      // measures of the definitions the sources cannot supply, with why
	Digests  map[string]string             // measure -> definition digest, for every measure of Measures
	index    map[string]uint16             // measure -> index of its definition
	counts   map[cellKey]int64             // src always 0
	Dropped  map[string]int64              // events not counted, by reason
	Patients int                           // patients with at least one registration
	defs     map[string]formats.Definition // by name
}

// Count returns the true count of a cell (for tests and the agent's own checks).
func (r *Result) Count(m formats.Month, measure, band, sex string) int64 {
	i, ok := r.index[measure]
	if !ok {
		return 0
	}
	return r.counts[cellKey{m, i, uint8(formats.AgeBandIndex(band)), sexIndex(sex), 0}]
}

// Total returns the true count of a measure in a month over all bands and sexes.
func (r *Result) Total(m formats.Month, measure string) int64 {
	i, ok := r.index[measure]
	if !ok {
		return 0
	}
	var n int64
	for k, v := range r.counts {
		if k.month == m && k.measure == i {
			n += v
		}
	}
	return n
}

// Finish resolves events that came before their registrations, counts list sizes and the
// rule-based measures, and returns the result for the measures s allows.
func (a *Aggregator) Finish(s Supplies) *Result {
	for _, pe := range a.pending {
		if len(a.patients[pe.patient].spells) == 0 {
			a.drop(pe.src, DropUnknownPatient)
			continue
		}
		a.count(pe.patient, pe.src, pe.event())
	}
	a.pending = nil
	a.rules()
	n := 0
	for i := range a.patients {
		p := &a.patients[i]
		if len(p.spells) == 0 {
			continue
		}
		n++
		for di := range a.defs {
			if a.defs[di].Count != formats.CountRegistered {
				continue
			}
			for m := a.from; m <= a.to; m++ {
				day := formats.DateOf(m.Start())
				if m >= p.birth && p.registeredOn(day) {
					a.add(0, m, uint16(di), p, day, 1)
				}
			}
		}
	}
	measures, absent := s.Measures(a.defs)
	res := &Result{From: a.from, To: a.to, Measures: measures, Absent: absent, Digests: map[string]string{},
		index: a.index, counts: map[cellKey]int64{}, Dropped: map[string]int64{}, Patients: n, defs: map[string]formats.Definition{}}
	for _, m := range measures {
		d := a.defs[a.index[m]]
		res.Digests[m] = d.Digest()
		res.defs[m] = d
	}
	for k, v := range a.counts {
		k.src = 0
		res.counts[k] += v
	}
	for _, d := range a.dropped {
		for reason, n := range d {
			res.Dropped[reason] += n
		}
	}
	return res
}

// Table returns the run's true counts as the disclosure audit reads them: every measure of
// r.Measures, month and fine cell.
func (r *Result) Table() *disclosure.Table {
	t := disclosure.NewTable(r.From, r.To, r.Measures)
	at := make([]int, len(r.index)) // definition index -> position in r.Measures, +1
	for mi, measure := range r.Measures {
		if idx, ok := r.index[measure]; ok {
			at[idx] = mi + 1
		}
	}
	// Only non-zero counts are stored; the order they come in does not matter here.
	for k, n := range r.counts {
		if n == 0 || at[k.measure] == 0 || k.month < r.From || k.month > r.To {
			continue
		}
		t.Set(at[k.measure]-1, k.month, formats.FineShape(int(k.band), int(k.sex)), n)
	}
	return t
}

// publish applies the policy to every value of the run, with the disclosure audit unless
// audit is false (tests only: it shows what the audit prevents).
func (r *Result) publish(pol formats.Policy, audit bool) (*disclosure.Published, error) {
	if !audit {
		return disclosure.Apply(r.Table(), pol), nil
	}
	return disclosure.Audit(r.Table(), pol)
}

// Release applies the disclosure policy and returns the run's submission: for every period
// of the run's months (formats.PeriodsOf), every measure supplied and every shape (fine
// cells, band and sex margins, total), the true sum through the policy on its own, zeros
// included so that a missing value never looks like a zero. The disclosure audit then
// withholds the margins and quarter or year values that would let the file pin a small
// count down (agent/disclosure). Only the returned values may leave the practice.
func (r *Result) Release(practice, runID string, extractors []string, pol formats.Policy) (*formats.Submission, error) {
	sub, _, err := r.release(practice, runID, extractors, pol, true)
	return sub, err
}

// ReleaseStats is Release that also says what the audit did, for the run's log.
func (r *Result) ReleaseStats(practice, runID string, extractors []string, pol formats.Policy) (*formats.Submission, disclosure.Stats, error) {
	return r.release(practice, runID, extractors, pol, true)
}

func (r *Result) release(practice, runID string, extractors []string, pol formats.Policy, audit bool) (*formats.Submission, disclosure.Stats, error) {
	ex := slices.Clone(extractors)
	sort.Strings(ex)
	pub, err := r.publish(pol, audit)
	if err != nil {
		return nil, disclosure.Stats{}, fmt.Errorf("release: %w", err)
	}
	s := &formats.Submission{Practice: practice, RunID: runID, From: r.From, To: r.To, Extractors: ex, Policy: pol.Name,
		Cells: make([]formats.Cell, 0, len(pub.Values))}
	for pi, p := range pub.Periods {
		for mi, measure := range r.Measures {
			for shape := range formats.NumShapes {
				band, sex := formats.ShapeLabels(shape)
				s.Cells = append(s.Cells, formats.Cell{Period: p, Measure: measure, AgeBand: band, Sex: sex, Protected: pub.Value(mi, pi, shape)})
			}
		}
	}
	if err := s.Validate(); err != nil {
		return nil, disclosure.Stats{}, fmt.Errorf("release: %w", err)
	}
	return s, pub.Stats, nil
}
