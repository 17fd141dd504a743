package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// Configuration keys. Their help text is the user's reference (shown by Describe and in the
// README).
const (
	keyDir            = "dir"
	keyTimezone       = "timezone"
	keyRegisteredFrom = "registered_from"
	keyKeySalt        = "key_salt"
	keyUrgentCare     = "urgentcare_kind"
)

// Values of registered_from.
const (
	fromBirth          = "birth"
	fromFirstEncounter = "first_encounter"
)

// configKeys is the extractor's configuration schema. The SDK applies it before any of the
// extractor's code runs: it refuses unknown keys, fills in the defaults and checks the
// allowed values, so parseConfig checks only what a schema cannot say.
var configKeys = []sdk.ConfigKey{
	{Name: keyDir, Type: sdk.TypePath, Required: true,
		Help: "folder of the Synthea CSV export: the one holding patients.csv and encounters.csv"},
	{Name: keyTimezone, Default: "Europe/London",
		Help: "IANA time zone in which Synthea's UTC timestamps are turned into calendar days"},
	{Name: keyRegisteredFrom, Default: fromBirth, Allowed: []string{fromBirth, fromFirstEncounter},
		Help: "when a patient's registration starts: birth (Synthea follows a person from birth) or first_encounter"},
	{Name: keyKeySalt, Default: "",
		Help: "secret of this practice mixed into the pseudonymous patient keys (HMAC-SHA256); set it so keys cannot be recomputed from Synthea ids"},
	{Name: keyUrgentCare, Default: formats.KindConsultation, Allowed: []string{formats.KindConsultation, formats.KindAE},
		Help: "event kind of Synthea's urgentcare class: consultation (walk-in primary care) or ae_attendance (count urgent treatment centres as A&E type 3)"},
}

// config is a checked configuration.
type config struct {
	dir            string
	loc            *time.Location
	registeredFrom string
	salt           []byte
	urgentCare     string
}

// parseConfig reads a configuration the SDK has checked against configKeys (defaults filled,
// allowed values checked) and checks what the schema cannot: that dir is a folder and that
// timezone is a time zone.
func parseConfig(m map[string]string) (config, error) {
	c := config{
		dir:            m[keyDir],
		registeredFrom: m[keyRegisteredFrom],
		salt:           []byte(m[keyKeySalt]),
		urgentCare:     m[keyUrgentCare],
	}
	if fi, err := os.Stat(c.dir); err != nil || !fi.IsDir() {
		return config{}, fmt.Errorf("dir %q is not a folder this plugin can read; check the path and its permissions", c.dir)
	}
	tz := strings.TrimSpace(m[keyTimezone])
	loc, err := time.LoadLocation(tz)
	if err != nil || tz == "" || tz == "Local" {
		return config{}, fmt.Errorf("timezone %q is not an IANA time zone name such as Europe/London", tz)
	}
	c.loc = loc
	return c, nil
}
