package main

import (
	"context"
	"time"

	"github.com/tributary-health/tributary/formats"
)

// Standard visit concepts (OMOP's Visit vocabulary) the mapping starts from.
const (
	conceptInpatient     = 9201   // Inpatient Visit
	conceptOutpatient    = 9202   // Outpatient Visit
	conceptER            = 9203   // Emergency Room Visit
	conceptERInpatient   = 262    // Emergency Room and Inpatient Visit
	conceptOfficeVisit   = 581477 // Office Visit
	conceptERHospitalCMS = 8870   // Emergency Room - Hospital (CMS Place of Service 23), an admitted_from value
)

// conceptFlag marks which of the mapping's root concepts a visit concept is, or descends from.
type conceptFlag uint8

const (
	flagConsultation conceptFlag = 1 << iota // consultation_concepts
	flagERInpatient                          // 262
	flagER                                   // 9203
	flagInpatient                            // 9201
	flagOutpatient                           // 9202
)

// kinds are the event kinds of a visit with these flags, in the README's order of precedence:
// consultation_concepts first; then 262, or a concept under both 9203 and 9201, which is an
// A&E attendance followed by an emergency admission; then 9203, 9201, 9202.
func (f conceptFlag) kinds() []string {
	switch {
	case f&flagConsultation != 0:
		return kindsConsultation
	case f.isEmergencyAdmission():
		return kindsERInpatient
	case f&flagER != 0:
		return kindsAE
	case f&flagInpatient != 0:
		return kindsAdmission
	case f&flagOutpatient != 0:
		return kindsOutpatient
	}
	return nil
}

var (
	kindsConsultation = []string{formats.KindConsultation}
	kindsERInpatient  = []string{formats.KindAE, formats.KindAdmission}
	kindsAE           = []string{formats.KindAE}
	kindsAdmission    = []string{formats.KindAdmission}
	kindsOutpatient   = []string{formats.KindOutpatient}
)

// isEmergencyAdmission: 262 (or under it), or under both 9203 and 9201, and not a consultation.
func (f conceptFlag) isEmergencyAdmission() bool {
	return f&flagConsultation == 0 && (f&flagERInpatient != 0 || (f&flagER != 0 && f&flagInpatient != 0))
}

// kindMap maps visit concept ids to flags: the roots themselves and, where the vocabulary is
// loaded, their descendants through concept_ancestor.
type kindMap struct {
	byConcept  map[int64]conceptFlag
	vocabulary string // "loaded" or "not loaded", for the log
}

func (k *kindMap) flags(concept int64) conceptFlag { return k.byConcept[concept] }

// emergencyRoom reports whether an admitted_from (admitting_source) concept is an emergency
// room: 9203, 262 or their descendants, or 8870 (Emergency Room - Hospital).
func (k *kindMap) emergencyRoom(concept int64) bool {
	if concept == conceptERHospitalCMS {
		return true
	}
	f := k.byConcept[concept]
	return f&(flagER|flagERInpatient) != 0
}

// roots are the concepts the mapping starts from, with their flags.
func roots(cfg config) map[int64]conceptFlag {
	m := map[int64]conceptFlag{
		conceptERInpatient: flagERInpatient,
		conceptER:          flagER,
		conceptInpatient:   flagInpatient,
		conceptOutpatient:  flagOutpatient,
	}
	for _, c := range cfg.consultation {
		m[c] |= flagConsultation
	}
	return m
}

// loadKinds builds the kind map: the roots, and their descendants from the source's
// concept_ancestor when it has any rows under them.
func loadKinds(ctx context.Context, src source, cfg config) (*kindMap, error) {
	rs := roots(cfg)
	km := &kindMap{byConcept: map[int64]conceptFlag{}, vocabulary: "not loaded"}
	for c, f := range rs {
		km.byConcept[c] |= f
	}
	ids := make([]int64, 0, len(rs))
	for c := range rs {
		ids = append(ids, c)
	}
	n := 0
	err := src.Ancestors(ctx, ids, func(ancestor, descendant int64) {
		if f, ok := rs[ancestor]; ok && ancestor != descendant {
			km.byConcept[descendant] |= f
			n++
		}
	})
	if err != nil {
		return nil, err
	}
	if n > 0 {
		km.vocabulary = "loaded"
	}
	return km, nil
}

func timeMonth(m int) time.Month { return time.Month(m) }
