package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tributary-health/tributary/plugins/sdk"
)

// Configuration keys. Their help text is the user's reference (shown by Describe and in the
// README).
const (
	keyDir          = "dir"
	keyTimezone     = "timezone"
	keyRegistration = "registration"
	keyPracticeCode = "practice_code"
	keyKeySalt      = "key_salt"
	keyOutpatient   = "outpatient_types"
	keyHomeVisits   = "home_visits"
	keyAEHours      = "emergency_after_ae_hours"
)

// Values of registration.
const (
	regAuto     = "auto"
	regEpisodes = "episode_of_care"
	regLifeSpan = "life_span"
)

// Values of home_visits.
const (
	homeConsultation = "consultation"
	homeNone         = "none"
)

// configKeys is the extractor's configuration schema, which the SDK applies before any of the
// extractor's code runs.
var configKeys = []sdk.ConfigKey{
	{Name: keyDir, Type: sdk.TypePath, Required: true,
		Help: "folder of the FHIR R4 export: bulk NDJSON files (Patient, Encounter, EpisodeOfCare, Condition; .ndjson or .ndjson.gz) and/or Bundles (.json)"},
	{Name: keyTimezone, Default: "Europe/London",
		Help: "IANA time zone of the practice: FHIR times with an offset are placed in its calendar"},
	{Name: keyRegistration, Default: regAuto, Allowed: []string{regAuto, regEpisodes, regLifeSpan},
		Help: "where registrations come from: episode_of_care (EpisodeOfCare resources), life_span (birth to death), or auto (EpisodeOfCare where the export has any, else life span)"},
	{Name: keyPracticeCode, Default: "",
		Help: "the practice's code (e.g. its ODS code); when set, only EpisodeOfCare whose managingOrganization names it are registrations here"},
	{Name: keyKeySalt, Default: "",
		Help: "secret of this practice mixed into the pseudonymous patient keys (HMAC-SHA256); set it so keys cannot be recomputed from FHIR ids"},
	{Name: keyOutpatient, Default: "",
		Help: "comma-separated Encounter.type codes (e.g. SNOMED CT) that make an ambulatory (AMB) encounter a hospital outpatient attendance; empty: no outpatient attendances are supplied"},
	{Name: keyHomeVisits, Default: homeConsultation, Allowed: []string{homeConsultation, homeNone},
		Help: "what home encounters (class HH) count as: consultation (a GP home visit) or none (Synthea writes hospice and home health as HH)"},
	{Name: keyAEHours, Type: sdk.TypeInt, Default: "24",
		Help: "an admission that starts within this many hours after an A&E attendance (EMER) of the same patient began is an emergency admission; 0 turns the rule off"},
}

// config is a checked configuration.
type config struct {
	dir          string
	loc          *time.Location
	registration string
	practiceCode string
	salt         []byte
	outpatient   map[string]bool
	homeVisits   string
	aeSeconds    int64
}

// parseConfig reads a configuration the SDK has checked against configKeys and checks what the
// schema cannot: that dir is a folder and timezone a time zone.
func parseConfig(m map[string]string) (config, error) {
	c := config{
		dir:          m[keyDir],
		registration: m[keyRegistration],
		practiceCode: strings.TrimSpace(m[keyPracticeCode]),
		salt:         []byte(m[keyKeySalt]),
		outpatient:   map[string]bool{},
		homeVisits:   m[keyHomeVisits],
	}
	if fi, err := os.Stat(c.dir); err != nil || !fi.IsDir() {
		return config{}, fmt.Errorf("dir %q is not a folder this plugin can read; set dir to the folder holding the FHIR export's files", c.dir)
	}
	tz := strings.TrimSpace(m[keyTimezone])
	loc, err := time.LoadLocation(tz)
	if err != nil || tz == "" || tz == "Local" {
		return config{}, fmt.Errorf("timezone %q is not an IANA time zone name such as Europe/London", tz)
	}
	c.loc = loc
	for _, t := range strings.Split(m[keyOutpatient], ",") {
		if t = strings.TrimSpace(t); t != "" {
			if strings.ContainsAny(t, " \t") {
				return config{}, fmt.Errorf("outpatient_types: %q is not a code; list codes separated by commas, e.g. 185389009,270427003", t)
			}
			c.outpatient[t] = true
		}
	}
	var hours int64
	if _, err := fmt.Sscan(m[keyAEHours], &hours); err != nil || hours < 0 || hours > 24*14 {
		return config{}, fmt.Errorf("emergency_after_ae_hours must be a whole number of hours from 0 to 336")
	}
	c.aeSeconds = hours * 3600
	return c, nil
}
