package main

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// Version is the extractor's version; a change to the mapping is a new minor version.
const Version = "0.1.0"

// Extractor reads a FHIR R4 export: bulk NDJSON and/or Bundles.
type Extractor struct{}

var (
	_ sdk.Extractor       = Extractor{}
	_ sdk.ConfigValidator = Extractor{}
	_ sdk.Supplier        = Extractor{}
)

// Describe says the most the extractor supplies with any configuration.
func (Extractor) Describe() sdk.Description {
	return sdk.Description{
		Name:       "fhir",
		Version:    Version,
		RowKinds:   []string{formats.RowRegistrations, formats.RowEvents},
		EventKinds: []string{formats.KindConsultation, formats.KindOutpatient, formats.KindAE, formats.KindAdmission},
		Methods:    true,
		Diagnoses:  []string{formats.DiagnosisICD10, formats.DiagnosisSNOMED}, // coded in SNOMED CT or ICD-10 (diagnosisSystems)
		Discharges: true,                                                      // Encounter.period.end
		Config:     configKeys,
	}
}

// ValidateConfig checks the configuration, and that dir holds something to read.
func (Extractor) ValidateConfig(m map[string]string) error {
	c, err := parseConfig(m)
	if err != nil {
		return err
	}
	files, err := listFiles(c.dir)
	if err != nil {
		return fmt.Errorf("dir %q: %v", c.dir, err)
	}
	for _, f := range files {
		if f.bundle || f.typ == typePatient {
			return nil
		}
	}
	return fmt.Errorf("dir %q holds no Patient NDJSON file (Patient.ndjson, Patient.000.ndjson.gz, ...) and no Bundle (.json); set dir to the folder of the FHIR export", c.dir)
}

// Supplies narrows Describe to the configuration: outpatient attendances only when
// outpatient_types says which encounters they are.
func (x Extractor) Supplies(m map[string]string) (sdk.Supplies, error) {
	c, err := parseConfig(m)
	if err != nil {
		return sdk.Supplies{}, err
	}
	s := x.Describe().Supplies()
	if len(c.outpatient) == 0 {
		s.EventKinds = slices.DeleteFunc(slices.Clone(s.EventKinds), func(k string) bool { return k == formats.KindOutpatient })
	}
	return s, nil
}

// Skip reasons: fixed phrases, never a value from the export.
const (
	skipNotJSON       = "line or entry is not valid JSON"
	skipTooLong       = "line longer than 16 MiB"
	skipOtherType     = "resource of another type than its file's first line"
	skipPatientID     = "Patient: id is empty"
	skipPatientDup    = "Patient: id appears twice (second skipped)"
	skipBirth         = "Patient: birthDate is not a date with a month"
	skipDeath         = "Patient: deceasedDateTime is not a date"
	skipDeathBefore   = "Patient: death is before birth"
	skipEpisodeRef    = "EpisodeOfCare: patient is not a Patient reference"
	skipEpisodeStart  = "EpisodeOfCare: period.start is not a date"
	skipEpisodeEnd    = "EpisodeOfCare: period.end is not a date"
	skipEpisodeBefore = "EpisodeOfCare: period.end is before period.start"
	skipEpisodeNoPat  = "EpisodeOfCare: patient is not in the export"
	skipEpisodeBadPat = "EpisodeOfCare: patient's Patient was skipped"
	skipStart         = "Encounter: period.start is not a date-time"
	skipClass         = "Encounter: class is not one the extractor maps"
	skipStop          = "Encounter: period.end is not a date-time"
	skipStopBefore    = "Encounter: period.end is before period.start"
	skipNoPatient     = "Encounter: subject is not a Patient in the export"
	skipBadPatient    = "Encounter: subject's Patient was skipped"
	skipAfterDeath    = "Encounter: dated after the patient's death"
	skipBeforeBirth   = "Encounter: dated before the patient's birth"
)

// Encounters that are well-formed but that no measure counts: logged, not skipped.
const (
	unmappedCertification = "death_certification"
	unmappedSNF           = "snf"
	unmappedHospice       = "hospice"
	unmappedHome          = "home"
	unmappedOtherClass    = "other_class"  // PRENC, FLD, OBSENC
	unmappedNotHappened   = "not_happened" // planned, cancelled, entered-in-error
)

// SNOMED CT codes of Encounter.type with a meaning of their own (see the README).
const (
	typeDeathCertification = "308646001" // Synthea's Death Certification: paperwork after a death
	typeHospice            = "305336008" // admission to hospice: not a hospital, not a GP visit
)

// typesSNF are admissions to a skilled nursing facility or a nursing home (Synthea writes them
// as IMP): not hospital admissions.
var typesSNF = []string{"449411000124106", "449214001"}

// patient is what the extractor keeps of one Patient: small, so a practice of a million
// patients fits in memory while encounters stream past.
type patient struct {
	key          string
	sex          string
	birth, death formats.Date // death is formats.NoEnd while alive (or when the date is not known)
	birthMonth   formats.Month
	bad          bool // the Patient was skipped; its encounters are skipped too
}

// spell is one EpisodeOfCare's period, to exclusive.
type spell struct{ from, to formats.Date }

// admission is a stay held back until every Encounter has been read, since an emergency
// attendance that led to it may come later in the files.
type admission struct {
	ev      formats.Event
	patient int32
	sec     int64 // the start instant, for the A&E rule
	method  string
	words   string // what the type's words say ("" when nothing)
}

// emergency is an A&E attendance's start, for the A&E rule.
type emergency struct {
	patient int32
	sec     int64
}

// run is the state of one extraction.
type run struct {
	cfg      config
	clock    *clock
	w        *sdk.Writer
	req      sdk.Request
	from, to formats.Date // requested days, to exclusive
	keys     keyer

	patients    []patient
	byID        index
	episodes    map[string][]spell // by patient id, before patients are matched
	sawEpisodes bool
	episodeNote map[string]int64 // episodes that are not registrations here, by why
	conditions  index            // Condition id → position in codes
	codes       []diagnosis
	codeIndex   map[diagnosis]int32

	admissions  []admission
	emergencies []emergency
	unmapped    map[string]int64
	notCodes    int64

	s   scanner
	res resource
}

// diagnosis is a code in its system, canonical.
type diagnosis struct{ system, code string }

// Extract streams the rows of the export that touch the requested months.
func (Extractor) Extract(ctx context.Context, req sdk.Request, w *sdk.Writer) error {
	cfg, err := parseConfig(req.Config)
	if err != nil {
		return err
	}
	files, err := listFiles(cfg.dir)
	if err != nil {
		return err
	}
	r := &run{
		cfg: cfg, clock: newClock(cfg.loc), w: w, req: req,
		from: formats.DateOf(req.From.Start()), to: formats.DateOf((req.To + 1).Start()),
		keys: newKeyer(cfg.salt), byID: newIndex(), episodes: map[string][]spell{},
		episodeNote: map[string]int64{}, conditions: newIndex(), codeIndex: map[diagnosis]int32{},
		unmapped: map[string]int64{},
	}
	// Pass 1: patients, episodes of care and conditions; pass 2: encounters.
	for _, pass := range []int{1, 2} {
		for _, f := range files {
			if err := r.read(ctx, f, pass); err != nil {
				return err
			}
		}
		if pass == 1 {
			if err := r.registrations(); err != nil {
				return err
			}
		}
	}
	if err := r.flushAdmissions(); err != nil {
		return err
	}
	r.log()
	return nil
}

// wanted reports which resource types pass reads.
func wanted(pass int, typ string) bool {
	if pass == 1 {
		return typ == typePatient || typ == typeEpisode || typ == typeCondition
	}
	return typ == typeEncounter
}

// read passes over one file for pass.
func (r *run) read(ctx context.Context, f file, pass int) error {
	if f.bundle {
		return f.entries(ctx, func(entry []byte, _ int) error { return r.entry(entry, pass) })
	}
	if !wanted(pass, f.typ) {
		return nil
	}
	return f.lines(ctx, func(line []byte, _ int) error {
		r.s.reset(line)
		r.res.reset()
		parseResource(&r.s, &r.res)
		r.s.end()
		if r.s.err != nil {
			r.w.Skip(skipNotJSON)
			return nil
		}
		if string(r.res.resourceType) != f.typ {
			r.w.Skip(skipOtherType)
			return nil
		}
		return r.resource(pass)
	}, func(int) { r.w.Skip(skipTooLong) })
}

// entry reads one Bundle entry: its fullUrl and resource.
func (r *run) entry(b []byte, pass int) error {
	r.s.reset(b)
	r.res.reset()
	var fullURL []byte
	seen := false
	if r.s.open('{') {
		for first := true; ; first = false {
			k, ok := r.s.key(first)
			if !ok {
				break
			}
			switch string(k) {
			case "fullUrl":
				fullURL, _ = r.s.str()
			case "resource":
				parseResource(&r.s, &r.res)
				seen = true
			default:
				r.s.skip()
			}
		}
	} else {
		r.s.fail()
	}
	r.s.end()
	if r.s.err != nil {
		if pass == 1 {
			r.w.Skip(skipNotJSON)
		}
		return nil
	}
	if !seen || !wanted(pass, string(r.res.resourceType)) {
		return nil
	}
	r.res.fullURL = fullURL
	return r.resource(pass)
}

func (r *run) resource(pass int) error {
	switch string(r.res.resourceType) {
	case typePatient:
		return r.patient()
	case typeEpisode:
		r.episode()
	case typeCondition:
		r.condition()
	case typeEncounter:
		return r.encounter()
	}
	return nil
}

func (r *run) patient() error {
	res := &r.res
	if len(res.id) == 0 {
		r.w.Skip(skipPatientID)
		return nil
	}
	if _, dup := r.byID.lookup(res.id); dup {
		r.w.Skip(skipPatientDup)
		return nil
	}
	p := patient{sex: sexOf(res.gender), death: formats.NoEnd}
	month, birth, ok := birthMonth(res.birthDate)
	switch {
	case !ok:
		r.w.Skip(skipBirth)
		p.bad = true
	case len(res.deceasedDateTime) > 0:
		d, ok := civilDay(res.deceasedDateTime)
		switch {
		case !ok:
			r.w.Skip(skipDeath)
			p.bad = true
		case d < birth:
			r.w.Skip(skipDeathBefore)
			p.bad = true
		default:
			p.death = d
		}
	case res.deceasedTrue:
		r.unmapped["deceased_without_date"]++
	}
	if !p.bad {
		p.birth, p.birthMonth = birth, month
		p.key = r.keys.key(res.id)
	}
	if len(r.patients) == 1<<31-1 {
		return fmt.Errorf("the export has more than %d patients; split it into practices", 1<<31-1)
	}
	i := int32(len(r.patients))
	r.byID.add(res.id, i)
	// In a Bundle, references name the entry's fullUrl, which may differ from the id.
	if id, ok := refID(res.fullURL, typePatient); ok && !bytes.Equal(id, res.id) {
		if _, dup := r.byID.lookup(id); !dup {
			r.byID.add(id, i)
		}
	}
	r.patients = append(r.patients, p)
	return nil
}

func sexOf(g []byte) string {
	switch string(g) {
	case "female":
		return "female"
	case "male":
		return "male"
	}
	return "unknown"
}

// episode keeps one EpisodeOfCare's period for its patient, if it is a registration here.
func (r *run) episode() {
	res := &r.res
	r.sawEpisodes = true
	switch string(res.status) {
	case "planned", "waitlist", "cancelled", "entered-in-error":
		r.episodeNote["status_"+strings.ReplaceAll(string(res.status), "-", "_")]++
		return
	}
	if r.cfg.practiceCode != "" && !r.atPractice(res.managing) {
		r.episodeNote["other_practice"]++
		return
	}
	id, ok := refID(res.subject, typePatient)
	if !ok {
		r.w.Skip(skipEpisodeRef)
		return
	}
	_, from, ok := r.clock.instant(res.start)
	if !ok {
		r.w.Skip(skipEpisodeStart)
		return
	}
	to := formats.NoEnd
	if len(res.end) > 0 {
		_, end, ok := r.clock.instant(res.end)
		switch {
		case !ok:
			r.w.Skip(skipEpisodeEnd)
			return
		case end < from:
			r.w.Skip(skipEpisodeBefore)
			return
		}
		to = end + 1 // FHIR's period.end is the last day of the episode
	}
	r.episodes[string(id)] = append(r.episodes[string(id)], spell{from, to})
}

// atPractice reports whether a managingOrganization names the configured practice: its
// identifier value or display is the code, or its reference ends in /code.
func (r *run) atPractice(names [][]byte) bool {
	code := r.cfg.practiceCode
	for _, n := range names {
		n = bytes.TrimSpace(n)
		if strings.EqualFold(string(n), code) || bytes.HasSuffix(n, []byte("/"+code)) {
			return true
		}
	}
	return false
}

// condition keeps a Condition's code, for encounters whose diagnosis refers to it.
func (r *run) condition() {
	res := &r.res
	if len(res.id) == 0 {
		return
	}
	d, ok := r.codeOf(res.code)
	if !ok {
		return
	}
	i, ok := r.codeIndex[d]
	if !ok {
		i = int32(len(r.codes))
		r.codes = append(r.codes, d)
		r.codeIndex[d] = i
	}
	r.conditions.add(res.id, i)
	if id, ok := refID(res.fullURL, typeCondition); ok && !bytes.Equal(id, res.id) {
		r.conditions.add(id, i)
	}
}

// Code systems of diagnoses, by their FHIR system URI.
var systems = map[string]string{
	"http://snomed.info/sct":            formats.DiagnosisSNOMED,
	"http://hl7.org/fhir/sid/icd-10":    formats.DiagnosisICD10,
	"http://hl7.org/fhir/sid/icd-10-uk": formats.DiagnosisICD10,
	"http://hl7.org/fhir/sid/icd-10-cm": formats.DiagnosisICD10,
	"urn:oid:2.16.840.1.113883.6.3":     formats.DiagnosisICD10,
	"urn:oid:2.16.840.1.113883.6.90":    formats.DiagnosisICD10,
}

// codeOf is the first coding of a known system whose code is valid in it. A coding of a known
// system with a code that is not is counted (logged), and the next is tried.
func (r *run) codeOf(cs []coding) (diagnosis, bool) {
	for _, c := range cs {
		sys, ok := systems[string(c.system)]
		if !ok || len(c.code) == 0 {
			continue
		}
		code, ok := formats.NormalizeDiagnosis(sys, string(c.code))
		if !ok {
			r.notCodes++
			continue
		}
		return diagnosis{sys, code}, true
	}
	return diagnosis{}, false
}

// registrations sends each patient's registration spells that overlap the months: from
// EpisodeOfCare, or from birth to death.
func (r *run) registrations() error {
	episodes := r.cfg.registration == regEpisodes || r.cfg.registration == regAuto && r.sawEpisodes
	if !episodes {
		for i := range r.patients {
			p := &r.patients[i]
			if p.bad {
				continue
			}
			to := formats.NoEnd
			if p.death != formats.NoEnd {
				to = p.death + 1
			}
			if err := r.register(p, p.birth, to); err != nil {
				return err
			}
		}
		return nil
	}
	ids := make([]string, 0, len(r.episodes))
	for id := range r.episodes {
		ids = append(ids, id)
	}
	sort.Strings(ids) // deterministic output
	for _, id := range ids {
		i, ok := r.byID.lookup([]byte(id))
		if !ok {
			for range r.episodes[id] {
				r.w.Skip(skipEpisodeNoPat)
			}
			continue
		}
		p := &r.patients[i]
		if p.bad {
			for range r.episodes[id] {
				r.w.Skip(skipEpisodeBadPat)
			}
			continue
		}
		for _, s := range merge(r.episodes[id]) {
			if s.from < p.birth {
				s.from = p.birth // registered before birth: from birth
			}
			if p.death != formats.NoEnd && (s.to == formats.NoEnd || s.to > p.death+1) {
				s.to = p.death + 1 // registered after death: to death
			}
			if s.to != formats.NoEnd && s.to <= s.from {
				continue
			}
			if err := r.register(p, s.from, s.to); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *run) register(p *patient, from, to formats.Date) error {
	if from >= r.to || (to != formats.NoEnd && to <= r.from) {
		return nil
	}
	err := r.w.Registration(formats.Registration{PatientKey: p.key, Sex: p.sex, BirthMonth: p.birthMonth, From: from, To: to})
	if err != nil {
		return fmt.Errorf("registration of a Patient: %w", err)
	}
	return nil
}

// merge joins overlapping and touching spells.
func merge(spells []spell) []spell {
	slices.SortFunc(spells, func(a, b spell) int { return int(a.from) - int(b.from) })
	var out []spell
	for _, s := range spells {
		if n := len(out); n > 0 && (out[n-1].to == formats.NoEnd || s.from <= out[n-1].to) {
			if out[n-1].to != formats.NoEnd && (s.to == formats.NoEnd || s.to > out[n-1].to) {
				out[n-1].to = s.to
			}
			continue
		}
		out = append(out, s)
	}
	return out
}

// kindOf maps Encounter.class (and, for ambulatory and inpatient encounters, type) to an
// event kind; "" with a reason for a known class no measure counts; ok is false for a class
// the extractor does not know.
func (r *run) kindOf(class []byte, types []coding) (kind, unmapped string, ok bool) {
	switch string(bytes.ToUpper(class)) {
	case "AMB", "VR":
		for _, t := range types {
			if r.cfg.outpatient[string(t.code)] && len(t.code) > 0 {
				return formats.KindOutpatient, "", true
			}
		}
		return formats.KindConsultation, "", true
	case "HH":
		if hasCode(types, typeHospice) {
			return "", unmappedHospice, true
		}
		if r.cfg.homeVisits == homeConsultation {
			return formats.KindConsultation, "", true
		}
		return "", unmappedHome, true
	case "EMER":
		return formats.KindAE, "", true
	case "IMP", "ACUTE", "NONAC", "SS":
		if hasCode(types, typeHospice) {
			return "", unmappedHospice, true
		}
		for _, c := range typesSNF {
			if hasCode(types, c) {
				return "", unmappedSNF, true
			}
		}
		return formats.KindAdmission, "", true
	case "PRENC", "FLD", "OBSENC":
		return "", unmappedOtherClass, true
	}
	return "", "", false
}

func hasCode(cs []coding, code string) bool {
	for _, c := range cs {
		if string(c.code) == code {
			return true
		}
	}
	return false
}

// encounter maps one Encounter. The order of the checks is the README's.
func (r *run) encounter() error {
	res := &r.res
	sec, start, ok := r.clock.instant(res.start)
	if !ok {
		r.w.Skip(skipStart)
		return nil
	}
	kind, unmapped, ok := r.kindOf(res.class, res.types)
	if !ok {
		r.w.Skip(skipClass)
		return nil
	}
	pi := int32(-1)
	if id, ok := refID(res.subject, typePatient); ok {
		if i, ok := r.byID.lookup(id); ok {
			pi = i
		}
	}
	happened := true
	switch string(res.status) {
	case "planned", "cancelled", "entered-in-error":
		happened = false
	}
	if happened && pi >= 0 && bytes.EqualFold(res.class, []byte("EMER")) {
		r.emergencies = append(r.emergencies, emergency{pi, sec})
	}
	end := formats.NoEnd
	if kind == formats.KindAdmission && len(res.end) > 0 {
		endSec, e, ok := r.clock.instant(res.end)
		switch {
		case !ok:
			r.w.Skip(skipStop)
			return nil
		case endSec < sec:
			r.w.Skip(skipStopBefore)
			return nil
		}
		end = e
	}
	// The plugin guide's rule: every event that starts in the months, and every admission
	// discharged in them.
	in := func(d formats.Date) bool { return d >= r.from && d < r.to }
	if !in(start) && !(kind == formats.KindAdmission && end != formats.NoEnd && in(end)) {
		return nil
	}
	if !happened {
		r.unmapped[unmappedNotHappened]++
		return nil
	}
	var p *patient
	if pi >= 0 {
		p = &r.patients[pi]
	}
	switch {
	case p == nil:
		r.w.Skip(skipNoPatient)
		return nil
	case p.bad:
		r.w.Skip(skipBadPatient)
		return nil
	case hasCode(res.types, typeDeathCertification):
		r.unmapped[unmappedCertification]++
		return nil
	case p.death != formats.NoEnd && start > p.death:
		r.w.Skip(skipAfterDeath)
		return nil
	case start < p.birth:
		r.w.Skip(skipBeforeBirth)
		return nil
	}
	if kind == "" {
		r.unmapped[unmapped]++
		return nil
	}
	ev := formats.Event{PatientKey: p.key, Kind: kind, Start: start, End: formats.NoEnd}
	if d, ok := r.diagnosisOf(res); ok {
		ev.DiagnosisCode, ev.DiagnosisSystem = d.code, d.system
	}
	if kind != formats.KindAdmission {
		return r.w.Event(ev)
	}
	ev.End = end
	r.admissions = append(r.admissions, admission{ev: ev, patient: pi, sec: sec, method: declaredMethod(res), words: typeWords(res.types)})
	return nil
}

// diagnosisOf is the encounter's primary diagnosis: from Encounter.diagnosis (the entry
// ranked 1, else the best ranked, else the first) when its Condition is in the export with a
// usable code, else from the first usable code of reasonCode.
func (r *run) diagnosisOf(res *resource) (diagnosis, bool) {
	if len(res.diagnoses) > 0 {
		best := -1
		for i, d := range res.diagnoses {
			if best < 0 || d.rank > 0 && (res.diagnoses[best].rank == 0 || d.rank < res.diagnoses[best].rank) {
				best = i
			}
		}
		if id, ok := refID(res.diagnoses[best].condition, typeCondition); ok {
			if i, ok := r.conditions.lookup(id); ok {
				return r.codes[i], true
			}
		}
	}
	return r.codeOf(res.reasons)
}

// declaredMethod is the admission method the Encounter states: an NHS admission method
// extension, then hospitalization.admitSource, then priority; "" when it states none.
func declaredMethod(res *resource) string {
	for _, c := range res.methods {
		if len(c.code) > 0 {
			return formats.AdmissionMethodFromNHS(string(c.code))
		}
	}
	for _, c := range res.admit {
		switch string(c.code) {
		case "emd":
			return formats.MethodEmergency
		case "born", "hosp-trans", "nursing", "psych", "rehab":
			return formats.MethodOther
		}
	}
	for _, c := range res.priority {
		switch string(c.code) {
		case "EM", "S":
			return formats.MethodEmergency
		case "EL", "R":
			return formats.MethodElective
		}
	}
	return ""
}

// typeWords is what Encounter.type's words say: "emergency" when a display or text contains
// it, "elective" when one contains elective or non-urgent.
func typeWords(types []coding) string {
	out := ""
	for _, t := range types {
		d := strings.ToLower(string(t.display))
		switch {
		case strings.Contains(d, "emergency"):
			return formats.MethodEmergency
		case strings.Contains(d, "non-urgent"), strings.Contains(d, "elective"):
			out = formats.MethodElective
		}
	}
	return out
}

// flushAdmissions decides the method of every held stay and sends them: the method the
// Encounter states; else emergency when an A&E attendance of the patient began at most
// emergency_after_ae_hours before it; else what its type's words say; else unknown.
func (r *run) flushAdmissions() error {
	sort.Slice(r.emergencies, func(i, j int) bool {
		a, b := r.emergencies[i], r.emergencies[j]
		return a.patient < b.patient || a.patient == b.patient && a.sec < b.sec
	})
	for _, a := range r.admissions {
		m := a.method
		if m == "" && r.cfg.aeSeconds > 0 && r.afterAE(a.patient, a.sec) {
			m = formats.MethodEmergency
		}
		if m == "" {
			m = a.words
		}
		if m == "" {
			m = formats.MethodUnknown
		}
		a.ev.Method = m
		if err := r.w.Event(a.ev); err != nil {
			return err
		}
	}
	return nil
}

// afterAE reports whether an A&E attendance of patient began in the window up to sec.
func (r *run) afterAE(patient int32, sec int64) bool {
	es := r.emergencies
	// The first attendance of patient at or after sec - window.
	i := sort.Search(len(es), func(i int) bool {
		return es[i].patient > patient || es[i].patient == patient && es[i].sec >= sec-r.cfg.aeSeconds
	})
	return i < len(es) && es[i].patient == patient && es[i].sec <= sec
}

// log reports, in one line each, what was read but not counted.
func (r *run) log() {
	if r.req.Log == nil {
		return
	}
	if len(r.unmapped) > 0 {
		var args []any
		for _, k := range sortedKeys(r.unmapped) {
			args = append(args, k, r.unmapped[k])
		}
		r.req.Log.Info("resources in the requested months that no measure counts", args...)
	}
	if len(r.episodeNote) > 0 {
		var args []any
		for _, k := range sortedKeys(r.episodeNote) {
			args = append(args, k, r.episodeNote[k])
		}
		r.req.Log.Info("EpisodeOfCare resources that are not registrations at this practice", args...)
	}
	if r.notCodes > 0 {
		r.req.Log.Info("diagnosis codings of a known system whose code is not valid in it, left out", "count", r.notCodes)
	}
}

func sortedKeys(m map[string]int64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
