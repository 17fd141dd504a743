package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/sdk"
	"github.com/tributary-health/tributary/plugins/sdk/csvread"
)

// Version is the extractor's version; a change to the mapping is a new minor version.
const Version = "0.1.0"

// Extractor reads UK GP tables in ehrQL's shapes from CSV files.
type Extractor struct{}

var (
	_ sdk.Extractor       = Extractor{}
	_ sdk.ConfigValidator = Extractor{}
	_ sdk.Supplier        = Extractor{}
)

// The files of an export.
const (
	filePatients      = "patients.csv"
	fileRegistrations = "practice_registrations.csv"
	fileAPCS          = "apcs.csv"
	fileEmergency     = "emergency_care_attendances.csv"
	fileOPA           = "opa.csv"
	fileClinical      = "clinical_events.csv"
)

// Describe says what the extractor can supply with some configuration.
func (Extractor) Describe() sdk.Description {
	return sdk.Description{
		Name:       "ukgp",
		Version:    Version,
		RowKinds:   []string{formats.RowRegistrations, formats.RowEvents},
		EventKinds: formats.EventKinds,
		Methods:    true,
		Diagnoses:  []string{formats.DiagnosisICD10, formats.DiagnosisSNOMED},
		Discharges: true,
		Config:     configKeys,
	}
}

// table is one events table: the file, the event kind its rows are, and its columns.
type table struct {
	file     string
	kind     string
	patient  string // column names; "" when the layout has none
	start    string
	end      string
	method   string
	dx       string
	dxSystem string
	// counts says whether a row is an event at all (HES: the first episode of a spell; opa: an
	// attended appointment); nil: every row. cols are the columns it reads.
	counts func(f *csvread.File, rec []string) bool
	hes    bool
}

// The layouts of the events tables. apcs.csv may be ehrQL's (one row per spell) or an NHS
// Digital HES APC extract (one row per episode), told by its header.
var (
	apcsEhrQL = table{file: fileAPCS, kind: formats.KindAdmission, patient: "patient_id", start: "admission_date",
		end: "discharge_date", method: "admission_method", dx: "primary_diagnosis", dxSystem: formats.DiagnosisICD10}
	apcsHES = table{file: fileAPCS, kind: formats.KindAdmission, patient: "PSEUDO_HESID", start: "ADMIDATE",
		end: "DISDATE", method: "ADMIMETH", dx: "DIAG_4_01", dxSystem: formats.DiagnosisICD10, counts: firstEpisode, hes: true}
	emergency = table{file: fileEmergency, kind: formats.KindAE, patient: "patient_id", start: "arrival_date",
		dx: "diagnosis_01", dxSystem: formats.DiagnosisSNOMED}
	opa = table{file: fileOPA, kind: formats.KindOutpatient, patient: "patient_id", start: "appointment_date", counts: attended}
	// clinical is read only with clinical_events = patient_days, and by its own reader.
	clinical = table{file: fileClinical, kind: formats.KindConsultation, patient: "patient_id", start: "date"}
)

// firstEpisode: a HES episode starts an admission when it is the first of its spell, FAE = 1
// (NHS Digital's finished admission episode), or, without an FAE column, EPIORDER = 1.
func firstEpisode(f *csvread.File, rec []string) bool {
	if c := f.Col("FAE"); c >= 0 {
		return rec[c] == "1"
	}
	return csvread.Field(rec, f.Col("EPIORDER")) == "1"
}

// attended: an outpatient appointment counts when attendance_status says the patient was
// seen (5 on time, 6 late but seen) or the column is absent or empty.
func attended(f *csvread.File, rec []string) bool {
	switch csvread.Field(rec, f.Col("attendance_status")) {
	case "", "5", "6":
		return true
	}
	return false
}

func (t table) columns() []string {
	var out []string
	for _, c := range []string{t.patient, t.start} {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

// open opens a file of the export with the columns it needs: the error names the file and
// the column, never a value.
func open(dir, name string, required ...string) (*csvread.File, error) {
	f, err := csvread.Open(filepath.Join(dir, name), csvread.Options{Required: required, TrimSpace: true})
	var mc *csvread.MissingColumnError
	switch {
	case err == nil:
		return f, nil
	case errors.Is(err, csvread.ErrEmpty):
		return nil, fmt.Errorf("%s is empty; export it again with its header row", name)
	case errors.As(err, &mc):
		return nil, fmt.Errorf("%s has no %s column; export the table with ehrQL's column names", name, mc.Column)
	}
	return nil, err
}

func exists(dir, name string) bool {
	st, err := os.Stat(filepath.Join(dir, name))
	return err == nil && st.Mode().IsRegular()
}

// eventTables lists the events tables the folder holds, with their layouts, checking their
// headers.
func (c config) eventTables() ([]table, error) {
	var out []table
	for _, t := range []table{apcsEhrQL, emergency, opa} {
		if !exists(c.dir, t.file) {
			continue
		}
		if t.file == fileAPCS {
			f, err := open(c.dir, t.file)
			if err != nil {
				return nil, err
			}
			if f.Col(apcsEhrQL.start) < 0 && f.Col(apcsHES.start) >= 0 {
				t = apcsHES
			}
			f.Close()
		}
		f, err := open(c.dir, t.file, t.columns()...)
		if err != nil {
			return nil, err
		}
		f.Close()
		out = append(out, t)
	}
	if c.patientDays {
		if !exists(c.dir, fileClinical) {
			return nil, fmt.Errorf("clinical_events = %q but %s has no %s; export the table, or set clinical_events = %q", clinicalPatientDays, c.dir, fileClinical, clinicalIgnore)
		}
		f, err := open(c.dir, fileClinical, clinical.columns()...)
		if err != nil {
			return nil, err
		}
		f.Close()
		out = append(out, clinical)
	}
	return out, nil
}

// ValidateConfig checks the folder and the headers of its tables.
func (x Extractor) ValidateConfig(m map[string]string) error {
	c, err := parseConfig(m)
	if err != nil {
		return err
	}
	for _, name := range []string{filePatients, fileRegistrations} {
		if !exists(c.dir, name) {
			return fmt.Errorf("%s has no %s; set dir to the folder holding the export's tables as CSV files", c.dir, name)
		}
	}
	f, err := open(c.dir, filePatients, "patient_id", "date_of_birth", "sex")
	if err != nil {
		return err
	}
	f.Close()
	if f, err = open(c.dir, fileRegistrations, "patient_id", "start_date"); err != nil {
		return err
	}
	hasPractice := practiceColumn(f) >= 0
	f.Close()
	if c.practice != "" && !hasPractice {
		return fmt.Errorf("%s has no practice_pseudo_id column, so practice_code cannot pick this practice's spells; leave practice_code empty when the export holds one practice", fileRegistrations)
	}
	_, err = c.eventTables()
	return err
}

// practiceColumn is the registrations' practice column: ehrQL's practice_pseudo_id, or
// practice_code.
func practiceColumn(f *csvread.File) int {
	if c := f.Col("practice_pseudo_id"); c >= 0 {
		return c
	}
	return f.Col("practice_code")
}

// Supplies: registrations, and the kinds of the events tables the folder holds; admission
// methods and discharge dates when apcs has those columns; the diagnoses' code systems of the
// tables with a diagnosis column.
func (Extractor) Supplies(m map[string]string) (sdk.Supplies, error) {
	c, err := parseConfig(m)
	if err != nil {
		return sdk.Supplies{}, err
	}
	tables, err := c.eventTables()
	if err != nil {
		return sdk.Supplies{}, err
	}
	s := sdk.Supplies{RowKinds: []string{formats.RowRegistrations}}
	for _, t := range tables {
		f, err := open(c.dir, t.file)
		if err != nil {
			return s, err
		}
		if t.kind == formats.KindAdmission {
			s.Methods = f.Col(t.method) >= 0
			s.Discharges = f.Col(t.end) >= 0
		}
		if t.dx != "" && f.Col(t.dx) >= 0 && !slices.Contains(s.Diagnoses, t.dxSystem) {
			s.Diagnoses = append(s.Diagnoses, t.dxSystem)
		}
		f.Close()
		s.EventKinds = append(s.EventKinds, t.kind)
	}
	if len(s.EventKinds) > 0 {
		s.RowKinds = append(s.RowKinds, formats.RowEvents)
		slices.Sort(s.EventKinds)
	}
	return s, nil
}

// patient is what the extractor keeps of a patients.csv row.
type patient struct {
	idx          int32
	key          string
	sex          string
	birth, death formats.Date // death NoEnd when alive
	bad          bool         // the row is unusable; its spells and events in the months are skipped
	problem      problem      // why, for the first of them
	reported     bool         // the problem was reported as a skip
	spells       []spell      // at the practice, merged after reading the registrations
}

// problem is what makes a source row unusable: file, line and column, never a value.
type problem struct {
	file   string
	line   int
	column string
	what   string
}

// skipBad skips a row of a patient whose patients.csv row is unusable: the first with that
// row's own reason, the others as naming it.
func (r *run) skipBad(f *csvread.File, column string, p *patient) {
	if p.reported {
		r.skip(f, column, "names a patient whose row was skipped")
		return
	}
	p.reported = true
	q := p.problem
	r.w.Skip(q.file + ": " + q.column + " " + q.what)
	if r.badLines < maxBadLines {
		r.badLines++
		r.log.Warn("row skipped", "file", q.file, "line", q.line, "column", q.column, "problem", q.what)
	}
}

// spell is a registration, from its first day to the day after its last (NoEnd: open).
type spell struct{ from, to formats.Date }

// tally counts rows not sent, by file, for the log.
type tally map[string]int64

// run is the state of one extraction.
type run struct {
	cfg      config
	w        *sdk.Writer
	log      hclog.Logger
	from, to formats.Date // the months' first day and the day after their last
	mac      hash.Hash
	patients map[string]*patient
	order    []*patient // in patients.csv order
	badLines int

	otherPractice, startsAfterDeath, startsBeforeBirth    int64
	beforeBirth, afterDeath, unregistered, unknown, badDx tally
	notAdmissions, notAttended                            int64
}

// maxBadLines bounds how many skipped rows are named (file, line, column) in the log.
const maxBadLines = 20

// Extract reads patients.csv, then practice_registrations.csv, sends the registrations, then
// streams each events table.
func (Extractor) Extract(ctx context.Context, req sdk.Request, w *sdk.Writer) error {
	c, err := parseConfig(req.Config)
	if err != nil {
		return err
	}
	tables, err := c.eventTables()
	if err != nil {
		return err
	}
	r := &run{cfg: c, w: w, log: req.Log, mac: hmac.New(sha256.New, c.salt), patients: map[string]*patient{},
		from: formats.DateOf(req.From.Start()), to: formats.DateOf((req.To + 1).Start()),
		beforeBirth: tally{}, afterDeath: tally{}, unregistered: tally{}, unknown: tally{}, badDx: tally{}}
	if err := r.readPatients(ctx); err != nil {
		return err
	}
	if err := r.readRegistrations(ctx); err != nil {
		return err
	}
	if err := r.sendRegistrations(); err != nil {
		return err
	}
	for _, t := range tables {
		if t.kind == formats.KindConsultation {
			err = r.readClinical(ctx)
		} else {
			err = r.readEvents(ctx, t)
		}
		if err != nil {
			return err
		}
	}
	r.report()
	return nil
}

// report logs the counts of rows not sent for a reason that is not a fault of the row.
func (r *run) report() {
	if r.otherPractice > 0 {
		r.log.Info("registration spells at other practices were ignored", "file", fileRegistrations, "count", r.otherPractice)
	}
	if r.startsAfterDeath > 0 {
		r.log.Warn("registration spells starting after the patient's death were not sent", "file", fileRegistrations, "count", r.startsAfterDeath)
	}
	if r.startsBeforeBirth > 0 {
		r.log.Warn("registration spells starting before the patient's birth were sent from the birth", "file", fileRegistrations, "count", r.startsBeforeBirth)
	}
	for _, f := range []string{fileRegistrations, fileAPCS, fileEmergency, fileOPA, fileClinical} {
		if n := r.unknown[f]; n > 0 {
			r.log.Warn("rows of patients not in patients.csv were not sent", "file", f, "count", n)
		}
		if n := r.beforeBirth[f]; n > 0 {
			r.log.Warn("events before the patient's birth were not sent", "file", f, "count", n)
		}
		if n := r.afterDeath[f]; n > 0 {
			r.log.Warn("events after the patient's death were not sent", "file", f, "count", n)
		}
		if n := r.unregistered[f]; n > 0 {
			r.log.Info("events outside the patient's registration at the practice were not sent", "file", f, "count", n)
		}
		if n := r.badDx[f]; n > 0 {
			r.log.Warn("events sent without their diagnosis: not a code of the table's code system", "file", f, "count", n)
		}
	}
	if r.notAdmissions > 0 {
		r.log.Info("HES episodes that do not start a spell (FAE is not 1) are not admissions", "file", fileAPCS, "count", r.notAdmissions)
	}
	if r.notAttended > 0 {
		r.log.Info("outpatient appointments not attended (attendance_status not 5 or 6) were not sent", "file", fileOPA, "count", r.notAttended)
	}
}

// skip skips a row with a reason naming the file and column (never a value), and names the
// line in the log for the first few.
func (r *run) skip(f *csvread.File, column, what string) {
	reason := what
	for _, s := range []string{f.Name() + ": " + column + " " + what, column + " " + what, f.Name() + ": " + what} {
		if len(s) <= 64 {
			reason = s
			break
		}
	}
	r.w.Skip(reason)
	if r.badLines < maxBadLines {
		r.badLines++
		r.log.Warn("row skipped", "file", f.Name(), "line", f.Line(), "column", column, "problem", what)
	}
}

// key is the patient's pseudonymous key: HMAC-SHA256 of "ukgp patient", a zero byte and the
// patient_id, keyed with key_salt, cut to 128 bits, base64url.
func (r *run) key(id string) string {
	r.mac.Reset()
	r.mac.Write([]byte("ukgp patient\x00"))
	r.mac.Write([]byte(id))
	var sum [sha256.Size]byte
	return base64.RawURLEncoding.EncodeToString(r.mac.Sum(sum[:0])[:16])
}

// sexOf maps ehrQL's sex values; intersex and anything else is unknown to the contract.
func sexOf(v string) string {
	switch strings.ToLower(v) {
	case "female", "f", "2":
		return "female"
	case "male", "m", "1":
		return "male"
	}
	return "unknown"
}

func (r *run) readPatients(ctx context.Context) error {
	f, err := open(r.cfg.dir, filePatients, "patient_id", "date_of_birth", "sex")
	if err != nil {
		return err
	}
	defer f.Close()
	cID, cBirth, cSex, cDeath := f.Col("patient_id"), f.Col("date_of_birth"), f.Col("sex"), f.Col("date_of_death")
	return f.Each(ctx, func(rec []string) error {
		id := rec[cID]
		if id == "" {
			r.skip(f, "patient_id", "is empty")
			return nil
		}
		if _, dup := r.patients[id]; dup {
			r.skip(f, "patient_id", "appears twice")
			return nil
		}
		p := &patient{idx: int32(len(r.order)), sex: sexOf(rec[cSex]), death: formats.NoEnd}
		r.patients[strings.Clone(id)] = p
		// A bad row is skipped when a spell or event of the patient falls in the months
		// (rows outside them are not skipped rows): note the line and the reason.
		bad := func(column, what string) error {
			p.bad, p.problem = true, problem{file: filePatients, line: f.Line(), column: column, what: what}
			return nil
		}
		birth, ok := parseDate(rec[cBirth])
		if !ok {
			return bad("date_of_birth", "is not a date")
		}
		p.birth = birth
		if v := csvread.Field(rec, cDeath); v != "" {
			d, ok := parseDate(v)
			if !ok {
				return bad("date_of_death", "is not a date")
			}
			if d < birth {
				return bad("date_of_death", "is before date_of_birth")
			}
			p.death = d
		}
		p.key = r.key(id)
		r.order = append(r.order, p)
		return nil
	}, func() { r.w.Skip(filePatients + ": malformed row") })
}

func (r *run) readRegistrations(ctx context.Context) error {
	f, err := open(r.cfg.dir, fileRegistrations, "patient_id", "start_date")
	if err != nil {
		return err
	}
	defer f.Close()
	cID, cFrom, cTo, cPractice := f.Col("patient_id"), f.Col("start_date"), f.Col("end_date"), practiceColumn(f)
	return f.Each(ctx, func(rec []string) error {
		if r.cfg.practice != "" && csvread.Field(rec, cPractice) != r.cfg.practice {
			r.otherPractice++
			return nil
		}
		p := r.patients[rec[cID]]
		switch {
		case rec[cID] == "":
			r.skip(f, "patient_id", "is empty")
			return nil
		case p == nil:
			r.unknown[fileRegistrations]++
			return nil
		}
		from, ok := parseDate(rec[cFrom])
		if !ok {
			r.skip(f, "start_date", "is not a date")
			return nil
		}
		to := formats.NoEnd
		if v := csvread.Field(rec, cTo); v != "" {
			end, ok := parseDate(v)
			if !ok {
				r.skip(f, "end_date", "is not a date")
				return nil
			}
			to = end + 1 // ehrQL's end_date is the last day registered
		}
		in := func(d formats.Date) bool { return d >= r.from && d < r.to }
		inMonths := from < r.to && (to == formats.NoEnd || to > r.from)
		switch {
		case to <= from && (in(from) || in(to-1)): // end_date before start_date
			r.skip(f, "end_date", "is before start_date")
			return nil
		case to <= from:
			return nil
		case p.bad && inMonths:
			r.skipBad(f, "patient_id", p)
			return nil
		case p.bad:
			return nil
		}
		p.spells = append(p.spells, spell{from, to})
		return nil
	}, func() { r.w.Skip(fileRegistrations + ": malformed row") })
}

// mergeSpells sorts spells and merges those that overlap or meet.
func mergeSpells(s []spell) []spell {
	slices.SortFunc(s, func(a, b spell) int { return int(a.from) - int(b.from) })
	out := s[:0]
	for _, x := range s {
		if n := len(out); n > 0 && x.from <= out[n-1].to {
			out[n-1].to = max(out[n-1].to, x.to)
			continue
		}
		out = append(out, x)
	}
	return out
}

// sendRegistrations merges each patient's spells, ends them at death (the day of death is the
// last registered), starts them no earlier than birth, and sends those overlapping the months.
func (r *run) sendRegistrations() error {
	for _, p := range r.order {
		merged := mergeSpells(p.spells)
		kept := merged[:0]
		for _, s := range merged {
			if p.death != formats.NoEnd {
				if s.from > p.death {
					r.startsAfterDeath++
					continue
				}
				s.to = min(s.to, p.death+1)
			}
			if s.from < p.birth {
				r.startsBeforeBirth++
				s.from = p.birth
				if s.to <= s.from {
					continue
				}
			}
			kept = append(kept, s)
		}
		p.spells = kept
		for _, s := range kept {
			if s.from >= r.to || s.to <= r.from {
				continue
			}
			reg := formats.Registration{PatientKey: p.key, Sex: p.sex, BirthMonth: p.birth.Month(), From: s.from, To: s.to}
			if formats.ValidateRegistration(reg) != nil {
				r.w.Skip(fileRegistrations + ": dates outside the years 1800-9999")
				continue
			}
			if err := r.w.Registration(reg); err != nil {
				return err
			}
		}
	}
	return nil
}

// registered says whether d is a day of one of p's spells at the practice.
func (p *patient) registered(d formats.Date) bool {
	for _, s := range p.spells {
		if s.from <= d && d < s.to {
			return true
		}
	}
	return false
}

// admit checks an in-range event's patient and day: the patient is known and whole, born,
// alive and registered at the practice. The reason an event is not sent is counted.
func (r *run) admit(f *csvread.File, t table, id string, start formats.Date) *patient {
	p := r.patients[id]
	switch {
	case id == "":
		r.skip(f, t.patient, "is empty")
	case p == nil:
		r.unknown[t.file]++
	case p.bad:
		r.skipBad(f, t.patient, p)
	case start < p.birth:
		r.beforeBirth[t.file]++
	case p.death != formats.NoEnd && start > p.death:
		r.afterDeath[t.file]++
	case !p.registered(start):
		r.unregistered[t.file]++
	default:
		return p
	}
	return nil
}

func (r *run) readEvents(ctx context.Context, t table) error {
	f, err := open(r.cfg.dir, t.file, t.columns()...)
	if err != nil {
		return err
	}
	defer f.Close()
	cID, cStart, cEnd, cMethod, cDx := f.Col(t.patient), f.Col(t.start), f.Col(t.end), f.Col(t.method), f.Col(t.dx)
	stay := t.kind == formats.KindAdmission
	return f.Each(ctx, func(rec []string) error {
		if t.counts != nil && !t.counts(f, rec) {
			if t.hes {
				r.notAdmissions++
			} else {
				r.notAttended++
			}
			return nil
		}
		start, ok := parseDate(rec[cStart])
		if !ok {
			r.skip(f, t.start, "is not a date")
			return nil
		}
		end := formats.NoEnd
		if v := csvread.Field(rec, cEnd); stay && v != "" {
			if end, ok = parseDate(v); !ok {
				r.skip(f, t.end, "is not a date")
				return nil
			}
			if end < start {
				r.skip(f, t.end, "is before "+t.start)
				return nil
			}
		}
		in := func(d formats.Date) bool { return d >= r.from && d < r.to }
		if !in(start) && !(stay && end != formats.NoEnd && in(end)) {
			return nil
		}
		p := r.admit(f, t, rec[cID], start)
		if p == nil {
			return nil
		}
		ev := formats.Event{PatientKey: p.key, Kind: t.kind, Start: start, End: end}
		if stay {
			ev.Method = formats.AdmissionMethodFromNHS(csvread.Field(rec, cMethod))
		}
		if v := csvread.Field(rec, cDx); v != "" {
			if code, ok := formats.NormalizeDiagnosis(t.dxSystem, v); ok {
				ev.DiagnosisCode, ev.DiagnosisSystem = code, t.dxSystem
			} else {
				r.badDx[t.file]++
			}
		}
		if formats.ValidateEvent(ev) != nil {
			r.skip(f, t.start, "is outside the years 1800-9999")
			return nil
		}
		return r.w.Event(ev)
	}, func() { r.w.Skip(t.file + ": malformed row") })
}

// readClinical sends one consultation per patient and day with one or more clinical events in
// the months (clinical_events = patient_days). It keeps the days it has sent, for the months
// asked only.
func (r *run) readClinical(ctx context.Context) error {
	t := clinical
	f, err := open(r.cfg.dir, t.file, t.columns()...)
	if err != nil {
		return err
	}
	defer f.Close()
	type patientDay struct {
		idx int32
		day formats.Date
	}
	seen := map[patientDay]struct{}{}
	cID, cDate := f.Col(t.patient), f.Col(t.start)
	return f.Each(ctx, func(rec []string) error {
		d, ok := parseDate(rec[cDate])
		if !ok {
			r.skip(f, t.start, "is not a date")
			return nil
		}
		if d < r.from || d >= r.to {
			return nil
		}
		if p := r.patients[rec[cID]]; p != nil && !p.bad {
			if _, dup := seen[patientDay{p.idx, d}]; dup {
				return nil
			}
		}
		p := r.admit(f, t, rec[cID], d)
		if p == nil {
			return nil
		}
		seen[patientDay{p.idx, d}] = struct{}{}
		ev := formats.Event{PatientKey: p.key, Kind: formats.KindConsultation, Start: d, End: formats.NoEnd}
		if formats.ValidateEvent(ev) != nil {
			r.skip(f, t.start, "is outside the years 1800-9999")
			return nil
		}
		return r.w.Event(ev)
	}, func() { r.w.Skip(t.file + ": malformed row") })
}

// parseDate reads YYYY-MM-DD, alone or followed by a time (" 00:00:00", "T00:00:00Z").
func parseDate(s string) (formats.Date, bool) {
	if len(s) > 10 && (s[10] == ' ' || s[10] == 'T') {
		s = s[:10]
	}
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	num := func(b string) (int, bool) {
		n := 0
		for i := 0; i < len(b); i++ {
			if b[i] < '0' || b[i] > '9' {
				return 0, false
			}
			n = n*10 + int(b[i]-'0')
		}
		return n, true
	}
	y, ok1 := num(s[:4])
	m, ok2 := num(s[5:7])
	d, ok3 := num(s[8:])
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return 0, false
	}
	return formats.DateOf(time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)), true
}

func daysIn(y, m int) int {
	switch m {
	case 4, 6, 9, 11:
		return 30
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	}
	return 31
}
