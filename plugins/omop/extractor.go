package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"slices"
	"sort"
	"strconv"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// Version is the extractor's version; a change to the mapping is a new minor version.
const Version = "0.1.0"

// Extractor reads an OMOP CDM 5.3 or 5.4 database (PostgreSQL) or folder of CDM CSV files.
type Extractor struct{}

var (
	_ sdk.Extractor       = Extractor{}
	_ sdk.ConfigValidator = Extractor{}
	_ sdk.Supplier        = Extractor{}
)

// Describe says what the extractor can supply with some configuration.
func (Extractor) Describe() sdk.Description {
	return sdk.Description{
		Name:       "omop",
		Version:    Version,
		RowKinds:   []string{formats.RowRegistrations, formats.RowEvents},
		EventKinds: []string{formats.KindConsultation, formats.KindOutpatient, formats.KindAE, formats.KindAdmission},
		Methods:    true,
		Diagnoses:  []string{formats.DiagnosisSNOMED},
		Discharges: true,
		Config:     configKeys,
	}
}

// ValidateConfig checks the configuration and that the source can be read: the folder holds
// the CDM files, or the database answers and the role may read the tables.
func (Extractor) ValidateConfig(m map[string]string) error {
	cfg, err := parseConfig(m)
	if err != nil {
		return err
	}
	src, err := openSource(context.Background(), cfg)
	if err != nil {
		return err
	}
	return src.Close()
}

// Supplies says what the source supplies with this configuration: registrations when it has
// observation_period, events when it has visit_occurrence; of the event kinds, those its visit
// concepts map to; admission methods when the source records them (admission_methods).
func (x Extractor) Supplies(m map[string]string) (sdk.Supplies, error) {
	cfg, err := parseConfig(m)
	if err != nil {
		return sdk.Supplies{}, err
	}
	ctx := context.Background()
	src, err := openSource(ctx, cfg)
	if err != nil {
		return sdk.Supplies{}, err
	}
	defer src.Close()
	var s sdk.Supplies
	t := src.Tables()
	if t.periods {
		s.RowKinds = append(s.RowKinds, formats.RowRegistrations)
	}
	if !t.visits {
		return s, nil
	}
	s.RowKinds = append(s.RowKinds, formats.RowEvents)
	km, err := loadKinds(ctx, src, cfg)
	if err != nil {
		return sdk.Supplies{}, err
	}
	kinds := map[string]bool{}
	recorded := false // some admission records where it came from, or is a 262
	err = src.VisitConcepts(ctx, func(concept int64, admittedFrom bool) {
		f := km.flags(concept)
		for _, k := range f.kinds() {
			kinds[k] = true
		}
		if f.isEmergencyAdmission() || (admittedFrom && slices.Contains(f.kinds(), formats.KindAdmission)) {
			recorded = true
		}
	})
	if err != nil {
		return sdk.Supplies{}, err
	}
	for _, k := range x.Describe().EventKinds {
		if kinds[k] {
			s.EventKinds = append(s.EventKinds, k)
		}
	}
	s.Methods = kinds[formats.KindAdmission] && (cfg.methods == "true" || (cfg.methods == methodsAuto && recorded))
	// visit_end_date is required by the CDM; the primary diagnosis is a standard SNOMED CT
	// concept from condition_occurrence.
	s.Discharges = kinds[formats.KindAdmission]
	s.Diagnoses = []string{formats.DiagnosisSNOMED}
	return s, nil
}

// Skip reasons: fixed phrases naming the table and column, never a value.
const (
	skipPersonRow      = "person: malformed row"
	skipPersonID       = "person: person_id is empty"
	skipPersonDup      = "person: person_id appears twice (second row skipped)"
	skipPeriodRow      = "observation_period: malformed row"
	skipPeriodPerson   = "observation_period: person_id is empty"
	skipPeriodStart    = "observation_period: start date is not a date"
	skipPeriodEnd      = "observation_period: end date is not a date"
	skipPeriodBefore   = "observation_period: end date is before start date"
	skipPeriodYear     = "observation_period: the person has no year_of_birth"
	skipPeriodBirth    = "observation_period: starts over a month before the birth"
	skipPeriodContract = "observation_period: dates outside the years 1800-9999"
	skipVisitRow       = "visit_occurrence: malformed row"
	skipVisitPerson    = "visit_occurrence: person_id is empty"
	skipVisitStart     = "visit_occurrence: visit_start_date is not a date"
	skipVisitEnd       = "visit_occurrence: visit_end_date is not a date"
	skipVisitConcept   = "visit_occurrence: visit_concept_id is not a concept id"
	skipVisitBefore    = "visit_occurrence: visit_end_date is before visit_start_date"
	skipVisitContract  = "visit_occurrence: dates outside the years 1800-9999"
)

// person is what the extractor needs of a PERSON row.
type person struct {
	known  bool         // person_id is in PERSON
	gender int64        // gender_concept_id, 0 when null
	year   int          // year_of_birth, 0 when null or not a year
	month  int          // month_of_birth 1-12, 0 when null
	birth  formats.Date // birth_datetime's day, formats.NoEnd when null
}

// period is one OBSERVATION_PERIOD row with its person.
type period struct {
	personID   string
	start, end formats.Date // end is formats.NoEnd when null
	person     person
}

// visit is one VISIT_OCCURRENCE row.
type visit struct {
	personID     string
	personKnown  bool
	concept      int64
	start, end   formats.Date // end is formats.NoEnd when null
	admittedFrom int64        // admitted_from_concept_id (5.4) or admitting_source_concept_id (5.3), 0 when null
	diagnosis    string       // concept_code of the primary diagnosis (a SNOMED CT concept id), or ""
}

// run is the state of one extraction.
type run struct {
	cfg      config
	w        *sdk.Writer
	kinds    *kindMap
	methods  bool         // admission methods are supplied
	from, to formats.Date // requested days, to exclusive
	mac      hash.Hash

	orphanPeriods int64           // observation periods of persons not in PERSON
	orphanVisits  int64           // visits of persons not in PERSON
	badDiagnoses  int64           // primary diagnoses whose concept_code is not a SNOMED CT id
	unmapped      map[int64]int64 // in-range visits no measure counts, by visit_concept_id
}

// Extract streams the rows of the requested months: registrations from observation_period,
// then events from visit_occurrence.
func (Extractor) Extract(ctx context.Context, req sdk.Request, w *sdk.Writer) error {
	cfg, err := parseConfig(req.Config)
	if err != nil {
		return err
	}
	src, err := openSource(ctx, cfg)
	if err != nil {
		return err
	}
	defer src.Close()
	km, err := loadKinds(ctx, src, cfg)
	if err != nil {
		return err
	}
	r := &run{
		// With admission_methods = auto, Supplies gives methods when some admission has an
		// emergency signal; when none has, the rule below finds none either.
		cfg: cfg, w: w, kinds: km, methods: cfg.methods != "false",
		from:     formats.DateOf(req.From.Start()),
		to:       formats.DateOf((req.To + 1).Start()),
		mac:      hmac.New(sha256.New, cfg.salt),
		unmapped: map[int64]int64{},
	}
	t := src.Tables()
	if t.periods {
		if err := src.Periods(ctx, r.from, r.to, w, r.period); err != nil {
			return err
		}
	}
	if t.visits {
		if err := src.Visits(ctx, r.from, r.to, w, r.visit); err != nil {
			return err
		}
	}
	req.Log.Info("read the OMOP CDM", "source", src.Kind(), "cdm_version", src.Version(),
		"vocabulary", km.vocabulary, "visit_concepts_mapped", len(km.byConcept), "admission_methods", cfg.methods,
		"diagnoses", t.diagnoses)
	if r.orphanPeriods > 0 {
		req.Log.Warn("observation periods of persons not in person were not sent (no sex or birth date to count them by)", "count", r.orphanPeriods)
	}
	if r.badDiagnoses > 0 {
		req.Log.Warn("visits sent without their primary diagnosis: its SNOMED concept_code is not a SNOMED CT concept id", "count", r.badDiagnoses)
	}
	if r.orphanVisits > 0 {
		req.Log.Warn("visits of persons not in person were not sent", "count", r.orphanVisits)
	}
	if len(r.unmapped) > 0 {
		ids := make([]int64, 0, len(r.unmapped))
		for id := range r.unmapped {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
		args := make([]any, 0, 2*len(ids))
		for _, id := range ids {
			args = append(args, "visit_concept_id_"+strconv.FormatInt(id, 10), r.unmapped[id])
		}
		req.Log.Info("visits in the requested months that no measure counts", args...)
	}
	return nil
}

// key is the pseudonymous key of a person_id: HMAC-SHA256 keyed with the practice's salt, cut
// to 128 bits and base64url-encoded (22 characters).
func (r *run) key(personID string) string {
	r.mac.Reset()
	r.mac.Write([]byte("omop person\x00"))
	r.mac.Write([]byte(personID))
	var sum [sha256.Size]byte
	return base64.RawURLEncoding.EncodeToString(r.mac.Sum(sum[:0])[:16])
}

func sexOf(gender int64) string {
	switch gender {
	case 8532:
		return "female"
	case 8507:
		return "male"
	}
	return "unknown"
}

// birthMonth is the person's birth month (see the README): month_of_birth, else the month of
// birth_datetime, else July of year_of_birth, but never later than the month the period
// starts.
func birthMonth(p person, start formats.Date) formats.Month {
	switch {
	case p.month >= 1 && p.month <= 12:
		return formats.MonthFor(p.year, timeMonth(p.month))
	case p.birth != formats.NoEnd && p.birth.Time().Year() == p.year:
		return p.birth.Month()
	}
	return min(formats.MonthFor(p.year, 7), start.Month())
}

// period maps one observation period (the README's order of checks).
func (r *run) period(p period) error {
	// The database's WHERE clause, for the CSV files: a period overlapping the months.
	if p.start >= r.to || (p.end != formats.NoEnd && p.end < r.from) {
		return nil
	}
	to := formats.NoEnd
	if p.end != formats.NoEnd {
		to = p.end + 1
	}
	switch {
	case p.end != formats.NoEnd && p.end < p.start:
		r.w.Skip(skipPeriodBefore)
		return nil
	case !p.person.known:
		r.orphanPeriods++
		return nil
	case p.person.year < 1800 || p.person.year > 9999:
		r.w.Skip(skipPeriodYear)
		return nil
	}
	reg := formats.Registration{
		PatientKey: r.key(p.personID), Sex: sexOf(p.person.gender),
		BirthMonth: birthMonth(p.person, p.start), From: p.start, To: to,
	}
	if reg.BirthMonth.Start().After(reg.From.Time().AddDate(0, 1, 0)) {
		r.w.Skip(skipPeriodBirth)
		return nil
	}
	if formats.ValidateRegistration(reg) != nil {
		r.w.Skip(skipPeriodContract)
		return nil
	}
	return r.w.Registration(reg)
}

// visit maps one visit (the README's order of checks).
func (r *run) visit(v visit) error {
	f := r.kinds.flags(v.concept)
	kinds := f.kinds()
	admission := slices.Contains(kinds, formats.KindAdmission)
	in := func(d formats.Date) bool { return d >= r.from && d < r.to }
	startsIn := in(v.start)
	endsIn := admission && v.end != formats.NoEnd && in(v.end)
	if !startsIn && !endsIn {
		return nil
	}
	switch {
	case admission && v.end != formats.NoEnd && v.end < v.start:
		r.w.Skip(skipVisitBefore)
		return nil
	case len(kinds) == 0:
		if startsIn {
			r.unmapped[v.concept]++
		}
		return nil
	case !v.personKnown:
		r.orphanVisits++
		return nil
	}
	key := r.key(v.personID)
	var code, system string
	if v.diagnosis != "" {
		if c, ok := formats.NormalizeDiagnosis(formats.DiagnosisSNOMED, v.diagnosis); ok {
			code, system = c, formats.DiagnosisSNOMED
		} else {
			r.badDiagnoses++
		}
	}
	for _, kind := range kinds {
		ev := formats.Event{PatientKey: key, Kind: kind, Start: v.start, End: formats.NoEnd, DiagnosisCode: code, DiagnosisSystem: system}
		if kind == formats.KindAdmission {
			ev.End = v.end
			ev.Method = formats.MethodUnknown
			if r.methods && (f.isEmergencyAdmission() || r.kinds.emergencyRoom(v.admittedFrom)) {
				ev.Method = formats.MethodEmergency
			}
		} else if !startsIn {
			continue // the A&E part of a 262 stay begun before the months
		}
		if formats.ValidateEvent(ev) != nil {
			r.w.Skip(skipVisitContract)
			return nil
		}
		if err := r.w.Event(ev); err != nil {
			return fmt.Errorf("event of visit_occurrence row: %w", err)
		}
	}
	return nil
}
