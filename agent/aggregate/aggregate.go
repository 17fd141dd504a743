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

// Supplies says which measures the sources of a run can supply. A measure nobody supplies is
// absent from the output, never zero.
type Supplies struct {
	Registrations bool            // list size
	EventKinds    map[string]bool // formats.Kind* values some source emits
	Methods       bool            // a source tells emergency from elective admissions
}

// Measures lists the catalogue measures these supplies allow, in catalogue order.
func (s Supplies) Measures() []string {
	var out []string
	add := func(ok bool, m ...string) {
		if ok {
			out = append(out, m...)
		}
	}
	add(s.Registrations, formats.RegisteredPatients)
	add(s.EventKinds[formats.KindConsultation], formats.Consultations)
	add(s.EventKinds[formats.KindOutpatient], formats.OutpatientAttendances)
	add(s.EventKinds[formats.KindAE], formats.AEAttendances)
	add(s.EventKinds[formats.KindAdmission], formats.Admissions)
	add(s.EventKinds[formats.KindAdmission] && s.Methods, formats.AdmissionsEmergency, formats.AdmissionsElective)
	add(s.EventKinds[formats.KindAdmission], formats.BedDays)
	add(s.EventKinds[formats.KindAdmission] && s.Methods, formats.PatientsAdmittedEmergency)
	// Catalogue order, whatever the order above.
	slices.SortFunc(out, func(a, b string) int { return slices.Index(formats.Measures, a) - slices.Index(formats.Measures, b) })
	return out
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
}

// methods are the admission methods by their index in pending; 0 is "no method".
var methods = []string{"", formats.MethodEmergency, formats.MethodElective, formats.MethodOther, formats.MethodUnknown}

func newPending(id int32, src uint8, e formats.Event) pending {
	return pending{patient: id, src: src, kind: uint8(slices.Index(formats.EventKinds, e.Kind)),
		method: uint8(max(0, slices.Index(methods, e.Method))), start: e.Start, end: e.End}
}

func (pe pending) event() formats.Event {
	return formats.Event{Kind: formats.EventKinds[pe.kind], Method: methods[pe.method], Start: pe.start, End: pe.end}
}

// Aggregator counts rows for the months From..To. Use New, then for each source Begin, its
// rows through Registration and Event, and Discard if the source failed; then Finish. What a
// failed source contributed is taken out again, so a run never publishes half a source. It
// is not safe for concurrent use.
type Aggregator struct {
	from, to  formats.Month
	src       uint8
	ids       map[string]int32
	patients  []patient
	pending   []pending
	counts    map[cellKey]int64
	emergency map[emergencyKey]emergencyAdmission // first emergency admission per month, patient and source
	dropped   map[uint8]map[string]int64
}

type cellKey struct {
	month   formats.Month
	measure uint8 // index into formats.Measures
	band    uint8
	sex     uint8
	src     uint8
}

type emergencyKey struct {
	month   formats.Month
	patient int32
	src     uint8
}

type emergencyAdmission struct {
	day  formats.Date
	band uint8
}

var measureIndex = func() map[string]uint8 {
	m := map[string]uint8{}
	for i, name := range formats.Measures {
		m[name] = uint8(i)
	}
	return m
}()

// New returns an aggregator for the months from..to inclusive.
func New(from, to formats.Month) *Aggregator {
	return &Aggregator{
		from: from, to: to,
		ids:       map[string]int32{},
		counts:    map[cellKey]int64{},
		emergency: map[emergencyKey]emergencyAdmission{},
		dropped:   map[uint8]map[string]int64{},
	}
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
	for k := range a.emergency {
		if k.src == src {
			delete(a.emergency, k)
		}
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

func (a *Aggregator) add(src uint8, m formats.Month, measure string, p *patient, at formats.Date, n int64) {
	band := formats.AgeBandOf(formats.AgeInYears(p.birth, at.Time()))
	if band < 0 {
		a.drop(src, DropBeforeBirth)
		return
	}
	a.counts[cellKey{m, measureIndex[measure], uint8(band), p.sex, src}] += n
}

func (a *Aggregator) count(id int32, src uint8, e formats.Event) {
	p := &a.patients[id]
	startMonth := e.Start.Month()
	endMonth := formats.Month(-1)
	if e.Kind == formats.KindAdmission && e.End != formats.NoEnd {
		endMonth = e.End.Month()
	}
	if !formats.EventInMonths(e, a.from, a.to) {
		a.drop(src, DropOutsideMonths)
		return
	}
	if !p.registeredOn(e.Start) {
		a.drop(src, DropOutsideRegistered)
		return
	}
	if e.Start.Month() < p.birth {
		a.drop(src, DropBeforeBirth)
		return
	}
	if a.in(startMonth) {
		switch e.Kind {
		case formats.KindConsultation:
			a.add(src, startMonth, formats.Consultations, p, e.Start, 1)
		case formats.KindOutpatient:
			a.add(src, startMonth, formats.OutpatientAttendances, p, e.Start, 1)
		case formats.KindAE:
			a.add(src, startMonth, formats.AEAttendances, p, e.Start, 1)
		case formats.KindAdmission:
			a.add(src, startMonth, formats.Admissions, p, e.Start, 1)
			switch e.Method {
			case formats.MethodEmergency:
				a.add(src, startMonth, formats.AdmissionsEmergency, p, e.Start, 1)
				// Distinct patients are counted at Finish, in the age band of the month's
				// first emergency admission, across sources.
				k := emergencyKey{startMonth, id, src}
				if first, ok := a.emergency[k]; !ok || e.Start < first.day {
					if band := formats.AgeBandOf(formats.AgeInYears(p.birth, e.Start.Time())); band >= 0 {
						a.emergency[k] = emergencyAdmission{e.Start, uint8(band)}
					}
				}
			case formats.MethodElective:
				a.add(src, startMonth, formats.AdmissionsElective, p, e.Start, 1)
			}
		}
	}
	if a.in(endMonth) {
		// Bed days: nights in hospital, counted in the month the stay ends, at the age on
		// discharge. A same-day admission has none.
		if days := int64(e.End - e.Start); days > 0 {
			a.add(src, endMonth, formats.BedDays, p, e.End, days)
		}
	}
}

// Result is the aggregate of a run: true counts, before disclosure control. It never leaves
// the agent's memory; Release turns it into the run's submission.
type Result struct {
	From, To formats.Month
	Measures []string
	counts   map[cellKey]int64 // src always 0
	Dropped  map[string]int64  // events not counted, by reason
	Patients int               // patients with at least one registration
}

// Count returns the true count of a cell (for tests and the agent's own checks).
func (r *Result) Count(m formats.Month, measure, band, sex string) int64 {
	return r.counts[cellKey{m, measureIndex[measure], uint8(formats.AgeBandIndex(band)), sexIndex(sex), 0}]
}

// Total returns the true count of a measure in a month over all bands and sexes.
func (r *Result) Total(m formats.Month, measure string) int64 {
	var n int64
	for k, v := range r.counts {
		if k.month == m && k.measure == measureIndex[measure] {
			n += v
		}
	}
	return n
}

// Finish resolves events that came before their registrations, counts list sizes and
// returns the result for the measures s allows.
func (a *Aggregator) Finish(s Supplies) *Result {
	for _, pe := range a.pending {
		if len(a.patients[pe.patient].spells) == 0 {
			a.drop(pe.src, DropUnknownPatient)
			continue
		}
		a.count(pe.patient, pe.src, pe.event())
	}
	a.pending = nil
	type monthPatient struct {
		month   formats.Month
		patient int32
	}
	first := map[monthPatient]emergencyAdmission{}
	for k, v := range a.emergency {
		mp := monthPatient{k.month, k.patient}
		if f, ok := first[mp]; !ok || v.day < f.day {
			first[mp] = v
		}
	}
	for mp, v := range first {
		a.counts[cellKey{mp.month, measureIndex[formats.PatientsAdmittedEmergency], v.band, a.patients[mp.patient].sex, 0}]++
	}
	n := 0
	for i := range a.patients {
		p := &a.patients[i]
		if len(p.spells) == 0 {
			continue
		}
		n++
		for m := a.from; m <= a.to; m++ {
			day := formats.DateOf(m.Start())
			if m >= p.birth && p.registeredOn(day) {
				a.add(0, m, formats.RegisteredPatients, p, day, 1)
			}
		}
	}
	res := &Result{From: a.from, To: a.to, Measures: s.Measures(), counts: map[cellKey]int64{}, Dropped: map[string]int64{}, Patients: n}
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
	at := make([]int, len(formats.Measures)) // catalogue index -> position in r.Measures, +1
	for mi, measure := range r.Measures {
		if idx, ok := measureIndex[measure]; ok {
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
