package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"strings"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/sdk"
	"github.com/tributary-health/tributary/plugins/sdk/csvread"
)

// Version is the extractor's version; a change to the mapping is a new minor version (1.1.0:
// typed configuration, and stays are sent when they start or end in the months; 1.2.0: the
// encounter's REASONCODE is sent as its primary diagnosis, in SNOMED CT).
const Version = "1.2.0"

// Extractor reads a Synthea CSV export (patients.csv, encounters.csv).
type Extractor struct{}

// Describe says what the extractor supplies.
func (Extractor) Describe() sdk.Description {
	return sdk.Description{
		Name:       "synthea",
		Version:    Version,
		RowKinds:   []string{formats.RowRegistrations, formats.RowEvents},
		EventKinds: []string{formats.KindConsultation, formats.KindOutpatient, formats.KindAE, formats.KindAdmission},
		Methods:    true,
		Diagnoses:  []string{formats.DiagnosisSNOMED}, // REASONCODE
		Discharges: true,                              // STOP
		Config:     configKeys,
	}
}

// ValidateConfig checks the configuration before any extraction.
func (Extractor) ValidateConfig(m map[string]string) error {
	_, err := parseConfig(m)
	return err
}

// Skip reasons. They are fixed phrases: never a value from a row.
const (
	skipPatientRow      = "patients.csv: malformed row"
	skipPatientID       = "patients.csv: Id is empty"
	skipPatientDup      = "patients.csv: Id appears twice (second row skipped)"
	skipBirth           = "patients.csv: BIRTHDATE is not a date"
	skipDeath           = "patients.csv: DEATHDATE is not a date"
	skipDeathBeforeBorn = "patients.csv: DEATHDATE is before BIRTHDATE"
	skipNoEncounter     = "patients.csv: no encounter to register from"

	skipEncounterRow   = "encounters.csv: malformed row"
	skipStart          = "encounters.csv: START is not a date-time"
	skipStop           = "encounters.csv: STOP is not a date-time"
	skipStopBefore     = "encounters.csv: STOP is before START"
	skipClass          = "encounters.csv: unknown ENCOUNTERCLASS"
	skipNoPatient      = "encounters.csv: PATIENT is not in patients.csv"
	skipBadPatient     = "encounters.csv: PATIENT's patients.csv row was skipped"
	skipAfterDeath     = "encounters.csv: dated after the patient's death"
	skipBeforeBirth    = "encounters.csv: dated before the patient's birth"
	emergencyWindowSec = 24 * 3600
)

// patient is what the extractor keeps of one row of patients.csv: small, so that a practice
// of a million patients fits in memory while encounters stream past.
type patient struct {
	key           string // pseudonymous key
	sex           string
	birth, death  formats.Date // death is formats.NoEnd while alive
	first         formats.Date // first usable encounter day, formats.NoEnd if none
	lastEmergency int64        // START of the latest emergency encounter seen, Unix seconds
	seen          bool         // lastEmergency is set
	bad           bool         // the row was skipped; its encounters are skipped too
}

// run is the state of one extraction.
type run struct {
	cfg      config
	clock    *clock
	w        *sdk.Writer
	from, to formats.Date     // requested days, to exclusive
	index    index            // Synthea patient Id → position in patients
	patients []patient        // in file order, so output is deterministic
	unmapped map[string]int64 // in-range rows no measure counts, by what they are
	notCodes int64            // emitted events whose REASONCODE is not a SNOMED CT concept id
}

// Extract streams the export's rows that touch the requested months.
func (Extractor) Extract(ctx context.Context, req sdk.Request, w *sdk.Writer) error {
	cfg, err := parseConfig(req.Config)
	if err != nil {
		return err
	}
	r := &run{
		cfg: cfg, clock: newClock(cfg.loc), w: w,
		from:     formats.DateOf(req.From.Start()),
		to:       formats.DateOf((req.To + 1).Start()),
		unmapped: map[string]int64{},
	}
	if err := r.readPatients(ctx); err != nil {
		return err
	}
	// Registrations go first whenever they can: the agent then counts each event as it
	// arrives instead of holding it until its patient's registration comes. Only
	// registered_from=first_encounter needs every encounter read first.
	early := cfg.registeredFrom == fromBirth
	if early {
		if err := r.registrations(); err != nil {
			return err
		}
	}
	if err := r.readEncounters(ctx); err != nil {
		return err
	}
	if !early {
		if err := r.registrations(); err != nil {
			return err
		}
	}
	if len(r.unmapped) > 0 && req.Log != nil {
		args := make([]any, 0, 2*len(r.unmapped))
		for _, what := range []string{unmappedCertification, unmappedHospice, unmappedSNF} {
			if n := r.unmapped[what]; n > 0 {
				args = append(args, what, n)
			}
		}
		req.Log.Info("encounters in the requested months that no measure counts", args...)
	}
	if r.notCodes > 0 && req.Log != nil {
		req.Log.Info("events sent without a diagnosis: REASONCODE is not a SNOMED CT concept id", "count", r.notCodes)
	}
	return nil
}

// Encounters that are well-formed but that no measure counts; they are reported in the log,
// not skipped, so they do not spend the error budget.
const (
	unmappedCertification = "death_certification"
	unmappedHospice       = "hospice"
	unmappedSNF           = "snf"
)

func (r *run) readPatients(ctx context.Context) error {
	t, err := openTable(r.cfg.dir, "patients.csv", "Id", "BIRTHDATE", "GENDER")
	if err != nil {
		return err
	}
	defer t.Close()
	cID, cBirth, cDeath, cSex := t.Col("Id"), t.Col("BIRTHDATE"), t.Col("DEATHDATE"), t.Col("GENDER")
	r.index = newIndex()
	mac := hmac.New(sha256.New, r.cfg.salt)
	return t.Each(ctx, func(rec []string) error {
		id := rec[cID]
		if id == "" {
			r.w.Skip(skipPatientID)
			return nil
		}
		if _, dup := r.index.lookup(id); dup {
			r.w.Skip(skipPatientDup)
			return nil
		}
		p := patient{sex: sexOf(rec[cSex]), death: formats.NoEnd, first: formats.NoEnd}
		birth, ok := parseDay(rec[cBirth])
		death := csvread.Field(rec, cDeath)
		var d int64
		switch {
		case !ok:
			r.w.Skip(skipBirth)
			p.bad = true
		case death != "":
			if d, ok = parseDay(death); !ok {
				r.w.Skip(skipDeath)
				p.bad = true
			} else if d < birth {
				r.w.Skip(skipDeathBeforeBorn)
				p.bad = true
			}
		}
		if !p.bad {
			p.birth = formats.Date(birth)
			if death != "" {
				p.death = formats.Date(d)
			}
			p.key = patientKey(mac, id)
		}
		if len(r.patients) == maxPatients {
			return fmt.Errorf("patients.csv has more than %d rows; split the export into practices", maxPatients)
		}
		r.index.add(id, int32(len(r.patients)))
		r.patients = append(r.patients, p)
		return nil
	}, func() { r.w.Skip(skipPatientRow) })
}

// patientKey is the pseudonymous key of a Synthea patient id: HMAC-SHA256 keyed with the
// practice's salt, cut to 128 bits and base64url-encoded (22 characters).
func patientKey(mac hash.Hash, id string) string {
	mac.Reset()
	mac.Write([]byte("synthea patient\x00"))
	mac.Write([]byte(id))
	var sum [sha256.Size]byte
	return base64.RawURLEncoding.EncodeToString(mac.Sum(sum[:0])[:16])
}

func sexOf(g string) string {
	switch strings.ToUpper(strings.TrimSpace(g)) {
	case "F":
		return "female"
	case "M":
		return "male"
	}
	return "unknown"
}

// kindOf maps ENCOUNTERCLASS to an event kind; ok is false for a class Synthea does not write.
// hospice and snf map to "" (known, but no measure counts them).
func (r *run) kindOf(class string) (kind string, ok bool) {
	switch class {
	case "ambulatory", "wellness", "virtual":
		return formats.KindConsultation, true
	case "urgentcare":
		return r.cfg.urgentCare, true
	case "outpatient":
		return formats.KindOutpatient, true
	case "emergency":
		return formats.KindAE, true
	case "inpatient":
		return formats.KindAdmission, true
	case "hospice", "snf":
		return "", true
	}
	return "", false
}

func (r *run) readEncounters(ctx context.Context) error {
	t, err := openTable(r.cfg.dir, "encounters.csv", "START", "STOP", "PATIENT", "ENCOUNTERCLASS")
	if err != nil {
		return err
	}
	defer t.Close()
	cStart, cStop, cPatient, cClass := t.Col("START"), t.Col("STOP"), t.Col("PATIENT"), t.Col("ENCOUNTERCLASS")
	cCode, cDesc, cReason := t.Col("CODE"), t.Col("DESCRIPTION"), t.Col("REASONCODE")
	return t.Each(ctx, func(rec []string) error {
		return r.encounter(rec[cStart], rec[cStop], rec[cPatient], strings.ToLower(strings.TrimSpace(rec[cClass])), csvread.Field(rec, cCode), csvread.Field(rec, cDesc), csvread.Field(rec, cReason))
	}, func() { r.w.Skip(skipEncounterRow) })
}

// encounter maps one row of encounters.csv. The order of the checks is the README's.
func (r *run) encounter(startS, stopS, patientID, class, code, desc, reason string) error {
	sec, start, ok := r.clock.instant(startS)
	if !ok {
		r.w.Skip(skipStart)
		return nil
	}
	kind, ok := r.kindOf(class)
	if !ok {
		r.w.Skip(skipClass)
		return nil
	}
	var p *patient
	if i, ok := r.index.lookup(patientID); ok {
		p = &r.patients[i]
	}
	if class == "emergency" && p != nil {
		p.lastEmergency, p.seen = sec, true
	}
	end := formats.NoEnd
	if kind == formats.KindAdmission && stopS != "" {
		stopSec, stop, ok := r.clock.instant(stopS)
		switch {
		case !ok:
			r.w.Skip(skipStop)
			return nil
		case stopSec < sec:
			r.w.Skip(skipStopBefore)
			return nil
		}
		end = stop
	}
	// The plugin guide's rule: send every event that starts in the requested months, and
	// every admission discharged in them (the agent counts its bed days in the month of
	// discharge). A stay that neither starts nor ends in them counts in none of them.
	in := func(d formats.Date) bool { return d >= r.from && d < r.to }
	if !in(start) && !(kind == formats.KindAdmission && end != formats.NoEnd && in(end)) {
		if p != nil && !p.bad && usable(p, start, code, desc) && start < p.first {
			p.first = start
		}
		return nil
	}
	switch {
	case p == nil:
		r.w.Skip(skipNoPatient)
		return nil
	case p.bad:
		r.w.Skip(skipBadPatient)
		return nil
	case isDeathCertification(code, desc):
		r.unmapped[unmappedCertification]++
		return nil
	case p.death != formats.NoEnd && start > p.death:
		r.w.Skip(skipAfterDeath)
		return nil
	case start < p.birth:
		r.w.Skip(skipBeforeBirth)
		return nil
	}
	if start < p.first {
		p.first = start
	}
	if kind == "" {
		r.unmapped[class]++
		return nil
	}
	ev := formats.Event{PatientKey: p.key, Kind: kind, Start: start, End: formats.NoEnd}
	if kind == formats.KindAdmission {
		ev.End = end
		ev.Method = admissionMethod(p, sec, desc)
	}
	// REASONCODE is the SNOMED CT concept the encounter was for: the event's primary
	// diagnosis. A value that is not a concept id is left out; the event still counts.
	if reason != "" {
		if c, ok := formats.NormalizeDiagnosis(formats.DiagnosisSNOMED, reason); ok {
			ev.DiagnosisCode, ev.DiagnosisSystem = c, formats.DiagnosisSNOMED
		} else {
			r.notCodes++
		}
	}
	return r.w.Event(ev)
}

// usable reports whether an encounter outside the requested months would have been emitted,
// had it been inside them: registered_from=first_encounter counts only those.
func usable(p *patient, start formats.Date, code, desc string) bool {
	return !isDeathCertification(code, desc) && start >= p.birth && (p.death == formats.NoEnd || start <= p.death)
}

// isDeathCertification recognises Synthea's "Death Certification" encounter by its SNOMED CT
// code or its description: it is paperwork after a death, not a contact with the patient.
func isDeathCertification(code, desc string) bool {
	return code == "308646001" || strings.EqualFold(strings.TrimSpace(desc), "Death Certification")
}

// admissionMethod is what Synthea lets us tell (see the README): emergency when the stay began
// at most 24 hours after an emergency encounter of the same patient started, or its
// description says emergency; elective when its description says non-urgent or elective;
// otherwise unknown.
func admissionMethod(p *patient, start int64, desc string) string {
	if p.seen && p.lastEmergency <= start && start-p.lastEmergency <= emergencyWindowSec {
		return formats.MethodEmergency
	}
	d := strings.ToLower(desc)
	switch {
	case strings.Contains(d, "emergency"):
		return formats.MethodEmergency
	case strings.Contains(d, "non-urgent"), strings.Contains(d, "elective"):
		return formats.MethodElective
	}
	return formats.MethodUnknown
}

// registrations emits one registration per usable patient whose spell touches the requested
// months: from birth (or the first usable encounter) to the day after death, or open.
func (r *run) registrations() error {
	for i := range r.patients {
		p := &r.patients[i]
		if p.bad {
			continue
		}
		from := p.birth
		if r.cfg.registeredFrom == fromFirstEncounter {
			if p.first == formats.NoEnd {
				r.w.Skip(skipNoEncounter)
				continue
			}
			from = p.first
		}
		to := formats.NoEnd
		if p.death != formats.NoEnd {
			to = p.death + 1
		}
		if from >= r.to || (to != formats.NoEnd && to <= r.from) {
			continue
		}
		err := r.w.Registration(formats.Registration{
			PatientKey: p.key, Sex: p.sex, BirthMonth: p.birth.Month(), From: from, To: to,
		})
		if err != nil {
			return fmt.Errorf("registration of patients.csv row: %w", err)
		}
	}
	return nil
}

var _ sdk.ConfigValidator = Extractor{}
