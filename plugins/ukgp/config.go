package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/tributary-health/tributary/plugins/sdk"
)

// Configuration keys; their help is the user's reference (Describe, README, sample.toml).
const (
	keyDir            = "dir"
	keyPracticeCode   = "practice_code"
	keyKeySalt        = "key_salt"
	keyClinicalEvents = "clinical_events"

	clinicalIgnore      = "ignore"
	clinicalPatientDays = "patient_days"
)

var configKeys = []sdk.ConfigKey{
	{Name: keyDir, Type: sdk.TypePath, Required: true,
		Help: "folder holding the tables as CSV files: patients.csv and practice_registrations.csv, and where exported apcs.csv, emergency_care_attendances.csv, opa.csv, clinical_events.csv"},
	{Name: keyPracticeCode, Default: "",
		Help: "this practice's code in practice_registrations.csv (practice_pseudo_id); spells at other practices are ignored; empty: every spell in the file counts (the export holds one practice)"},
	{Name: keyKeySalt, Default: "",
		Help: "secret of this practice mixed into the pseudonymous patient keys (HMAC-SHA256); set it so keys cannot be recomputed from patient_id"},
	{Name: keyClinicalEvents, Default: clinicalIgnore, Allowed: []string{clinicalIgnore, clinicalPatientDays},
		Help: "consultations from clinical_events.csv: ignore (none are supplied), or patient_days (each day with one or more coded events of a patient counts as one consultation)"},
}

// config is a checked configuration.
type config struct {
	dir         string
	practice    string
	salt        []byte
	patientDays bool
}

func parseConfig(m map[string]string) (config, error) {
	c := config{
		dir:         strings.TrimSpace(m[keyDir]),
		practice:    strings.TrimSpace(m[keyPracticeCode]),
		salt:        []byte(m[keyKeySalt]),
		patientDays: m[keyClinicalEvents] == clinicalPatientDays,
	}
	st, err := os.Stat(c.dir)
	switch {
	case err != nil:
		return c, fmt.Errorf("cannot read the folder %s (%v); set dir to the folder holding patients.csv and practice_registrations.csv", c.dir, pathReason(err))
	case !st.IsDir():
		return c, fmt.Errorf("%s is not a folder; set dir to the folder holding patients.csv and practice_registrations.csv", c.dir)
	}
	return c, nil
}

// pathReason is an os error's reason without the path it repeats.
func pathReason(err error) string {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err.Error()
	}
	return err.Error()
}
