package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"path/filepath"
	"strings"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/sdk"
	"github.com/tributary-health/tributary/plugins/sdk/csvread"
)

// Version is the extractor's version; a change to the mapping is a new minor version.
const Version = "0.1.0"

// Extractor reads a practice's own CSV exports, as its configuration describes them.
type Extractor struct{}

var (
	_ sdk.Extractor       = Extractor{}
	_ sdk.ConfigValidator = Extractor{}
	_ sdk.Supplier        = Extractor{}
)

// Describe says what the extractor can supply with some configuration.
func (Extractor) Describe() sdk.Description {
	return sdk.Description{
		Name:       "csv",
		Version:    Version,
		RowKinds:   []string{formats.RowRegistrations, formats.RowEvents},
		EventKinds: formats.EventKinds,
		Methods:    true,
		Diagnoses:  formats.DiagnosisSystems,
		Discharges: true,
		Config:     configKeys,
	}
}

// ValidateConfig checks the configuration, and that the files have the columns it names.
func (Extractor) ValidateConfig(m map[string]string) error {
	c, err := parseConfig(m)
	if err != nil {
		return err
	}
	for _, f := range c.files() {
		t, err := c.open(f.name, f.columns...)
		if err != nil {
			return err
		}
		t.Close()
	}
	return nil
}

// Supplies: registrations; with an events file, the kinds its configuration maps values to,
// admission methods when it names a method column, discharge dates when it names an end
// column, and diagnoses in the configured system when it names a diagnosis column.
func (Extractor) Supplies(m map[string]string) (sdk.Supplies, error) {
	c, err := parseConfig(m)
	if err != nil {
		return sdk.Supplies{}, err
	}
	s := sdk.Supplies{RowKinds: []string{formats.RowRegistrations}}
	if c.events != "" {
		s.RowKinds = append(s.RowKinds, formats.RowEvents)
		s.EventKinds = c.kindsSupplied
		admissions := strings.Contains(strings.Join(c.kindsSupplied, " "), formats.KindAdmission)
		s.Methods = c.methodCol != "" && admissions
		s.Discharges = c.evEndCol != "" && admissions
		if c.diagnosisCol != "" {
			s.Diagnoses = []string{c.dxSys}
		}
	}
	return s, nil
}

type fileColumns struct {
	name    string
	columns []string // headers the configuration names, all required
}

func (c config) files() []fileColumns {
	out := []fileColumns{{c.patients, nonEmpty(c.patientCol, c.sexCol, c.birthCol, c.fromCol, c.toCol)}}
	if c.events != "" {
		out = append(out, fileColumns{c.events, nonEmpty(c.evPatientCol, c.evDateCol, c.evEndCol, c.evTypeCol, c.methodCol, c.diagnosisCol)})
	}
	return out
}

func nonEmpty(s ...string) []string {
	var out []string
	for _, x := range s {
		if x != "" {
			out = append(out, x)
		}
	}
	return out
}

// open opens a file of the export, failing when it lacks a configured column: the error names
// the file, the column and the key to fix.
func (c config) open(name string, columns ...string) (*csvread.File, error) {
	t, err := csvread.Open(filepath.Join(c.dir, name), csvread.Options{Required: columns, Comma: c.comma, TrimSpace: true})
	var mc *csvread.MissingColumnError
	switch {
	case err == nil:
		return t, nil
	case errors.Is(err, csvread.ErrEmpty):
		return nil, fmt.Errorf("%s is empty; export it again with its header row", name)
	case errors.As(err, &mc):
		return nil, fmt.Errorf("%s has no column headed %q; set the %s key to a header of the file's first line (check the spelling and the delimiter)", name, mc.Column, c.keyOf(name, mc.Column))
	}
	return nil, err
}

// keyOf names the configuration key that gave a file's column.
func (c config) keyOf(file, column string) string {
	type kc struct{ key, col string }
	var keys []kc
	if file == c.patients {
		keys = []kc{{keyPatientColumn, c.patientCol}, {keySexColumn, c.sexCol}, {keyBirthColumn, c.birthCol}, {keyRegFromColumn, c.fromCol}, {keyRegToColumn, c.toCol}}
	} else {
		keys = []kc{{keyEventPatient, c.evPatientCol}, {keyEventDate, c.evDateCol}, {keyEventEnd, c.evEndCol}, {keyEventType, c.evTypeCol}, {keyMethodColumn, c.methodCol}, {keyDiagnosis, c.diagnosisCol}}
	}
	for _, k := range keys {
		if strings.EqualFold(strings.TrimSpace(k.col), strings.TrimSpace(column)) {
			return k.key
		}
	}
	return "column"
}

// patient is what the extractor keeps of a patients file row.
type patient struct {
	key string
	bad bool // the row was skipped; its events are skipped too
}

// run is the state of one extraction.
type run struct {
	cfg      config
	w        *sdk.Writer
	log      interface{ Warn(string, ...any) }
	from, to formats.Date // to exclusive
	mac      hash.Hash
	patients map[string]patient
	badLines int // rows reported in the log, at most maxBadLines

	unmapped     int64 // in-range events whose type the configuration does not map (ignore)
	badDiagnoses int64
}

// maxBadLines bounds how many skipped rows are named (file, line, column) in the log.
const maxBadLines = 20

// Extract reads the patients file, then streams the events file.
func (Extractor) Extract(ctx context.Context, req sdk.Request, w *sdk.Writer) error {
	c, err := parseConfig(req.Config)
	if err != nil {
		return err
	}
	r := &run{cfg: c, w: w, log: req.Log, mac: hmac.New(sha256.New, c.salt), patients: map[string]patient{},
		from: formats.DateOf(req.From.Start()), to: formats.DateOf((req.To + 1).Start())}
	if err := r.readPatients(ctx); err != nil {
		return err
	}
	if c.events != "" {
		if err := r.readEvents(ctx); err != nil {
			return err
		}
	}
	if r.unmapped > 0 {
		req.Log.Info("events in the requested months whose type kinds does not list (unmapped_types = ignore)", "file", c.events, "count", r.unmapped)
	}
	if r.badDiagnoses > 0 {
		req.Log.Warn("events sent without their diagnosis: not a code of diagnosis_system", "file", c.events, "column", c.diagnosisCol, "count", r.badDiagnoses)
	}
	return nil
}

// skip skips a row, with a reason naming the file and column, and names the line in the log
// for the first few: never the value.
func (r *run) skip(t *csvread.File, column, what string) {
	// The SDK keeps 64 bytes of a reason: the longest of these forms that fits.
	reason := what
	for _, r := range []string{t.Name() + ": " + column + " " + what, column + " " + what, t.Name() + ": " + what} {
		if len(r) <= 64 {
			reason = r
			break
		}
	}
	r.w.Skip(reason)
	if r.badLines < maxBadLines {
		r.badLines++
		r.log.Warn("row skipped", "file", t.Name(), "line", t.Line(), "column", column, "problem", what)
	}
}

func (r *run) key(id string) string {
	r.mac.Reset()
	r.mac.Write([]byte("csv patient\x00"))
	r.mac.Write([]byte(id))
	var sum [sha256.Size]byte
	return base64.RawURLEncoding.EncodeToString(r.mac.Sum(sum[:0])[:16])
}

func (r *run) readPatients(ctx context.Context) error {
	c := r.cfg
	f, err := c.open(c.patients, c.files()[0].columns...)
	if err != nil {
		return err
	}
	defer f.Close()
	cID, cSex, cBirth, cFrom, cTo := f.Col(c.patientCol), f.Col(c.sexCol), f.Col(c.birthCol), f.Col(c.fromCol), f.Col(c.toCol)
	return f.Each(ctx, func(rec []string) error {
		id := rec[cID]
		if id == "" {
			r.skip(f, c.patientCol, "is empty")
			return nil
		}
		if _, dup := r.patients[id]; dup {
			r.skip(f, c.patientCol, "appears twice")
			return nil
		}
		id = strings.Clone(id)
		birth, ok := c.birth.parse(rec[cBirth])
		if !ok {
			r.patients[id] = patient{bad: true}
			r.skip(f, c.birthCol, "is not a date in birth_date_format")
			return nil
		}
		from, ok := c.date.parse(rec[cFrom])
		if !ok {
			r.patients[id] = patient{bad: true}
			r.skip(f, c.fromCol, "is not a date in date_format")
			return nil
		}
		to := formats.NoEnd
		if v := csvread.Field(rec, cTo); v != "" {
			d, ok := c.date.parse(v)
			if !ok {
				r.patients[id] = patient{bad: true}
				r.skip(f, c.toCol, "is not a date in date_format")
				return nil
			}
			to = d
		}
		reg := formats.Registration{Sex: "unknown", BirthMonth: birth.Month(), From: from, To: to}
		if s, ok := c.sexValues[strings.ToLower(rec[cSex])]; ok {
			reg.Sex = s
		}
		switch {
		case to != formats.NoEnd && to < from:
			r.patients[id] = patient{bad: true}
			r.skip(f, c.toCol, "is before the registration date")
			return nil
		case reg.BirthMonth.Start().After(from.Time().AddDate(0, 1, 0)):
			r.patients[id] = patient{bad: true}
			r.skip(f, c.birthCol, "is after the registration date")
			return nil
		}
		p := patient{key: r.key(id)}
		r.patients[id] = p
		if from >= r.to || (to != formats.NoEnd && to <= r.from) {
			return nil
		}
		reg.PatientKey = p.key
		if formats.ValidateRegistration(reg) != nil {
			r.skip(f, c.fromCol, "is outside the years 1800-9999")
			return nil
		}
		return r.w.Registration(reg)
	}, func() { r.w.Skip(c.patients + ": malformed row") })
}

func (r *run) readEvents(ctx context.Context) error {
	c := r.cfg
	f, err := c.open(c.events, c.files()[1].columns...)
	if err != nil {
		return err
	}
	defer f.Close()
	cID, cDate, cEnd, cType := f.Col(c.evPatientCol), f.Col(c.evDateCol), f.Col(c.evEndCol), f.Col(c.evTypeCol)
	cMethod, cDx := f.Col(c.methodCol), f.Col(c.diagnosisCol)
	in := func(d formats.Date) bool { return d >= r.from && d < r.to }
	return f.Each(ctx, func(rec []string) error {
		start, ok := c.date.parse(rec[cDate])
		if !ok {
			r.skip(f, c.evDateCol, "is not a date in date_format")
			return nil
		}
		kind, mapped := c.kinds[strings.ToLower(rec[cType])]
		end := formats.NoEnd
		if kind == formats.KindAdmission && csvread.Field(rec, cEnd) != "" {
			if end, ok = c.date.parse(rec[cEnd]); !ok {
				r.skip(f, c.evEndCol, "is not a date in date_format")
				return nil
			}
			if end < start {
				r.skip(f, c.evEndCol, "is before the admission date")
				return nil
			}
		}
		if !in(start) && !(kind == formats.KindAdmission && end != formats.NoEnd && in(end)) {
			return nil
		}
		if !mapped {
			if c.ignoreUnmapped {
				r.unmapped++
			} else {
				r.skip(f, c.evTypeCol, "has a value kinds does not list")
			}
			return nil
		}
		p, known := r.patients[rec[cID]]
		switch {
		case rec[cID] == "":
			r.skip(f, c.evPatientCol, "is empty")
			return nil
		case !known:
			r.skip(f, c.evPatientCol, "is not in the patients file")
			return nil
		case p.bad:
			r.skip(f, c.evPatientCol, "names a patient whose row was skipped")
			return nil
		}
		ev := formats.Event{PatientKey: p.key, Kind: kind, Start: start, End: end}
		if kind == formats.KindAdmission {
			ev.Method = r.method(csvread.Field(rec, cMethod))
		}
		if v := csvread.Field(rec, cDx); v != "" {
			if code, ok := formats.NormalizeDiagnosis(c.dxSys, v); ok {
				ev.DiagnosisCode, ev.DiagnosisSystem = code, c.dxSys
			} else {
				r.badDiagnoses++
			}
		}
		if formats.ValidateEvent(ev) != nil {
			r.skip(f, c.evDateCol, "is outside the years 1800-9999")
			return nil
		}
		return r.w.Event(ev)
	}, func() { r.w.Skip(c.events + ": malformed row") })
}

// method reads an admission's method column: NHS admission method codes, or the
// configuration's own values; anything else, or no column, is unknown.
func (r *run) method(v string) string {
	c := r.cfg
	if c.methodCol == "" {
		return formats.MethodUnknown
	}
	if c.nhsMethods {
		return formats.AdmissionMethodFromNHS(v)
	}
	if m, ok := c.methods[strings.ToLower(v)]; ok {
		return m
	}
	return formats.MethodUnknown
}
