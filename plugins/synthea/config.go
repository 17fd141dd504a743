package main

import (
	"errors"
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

var configKeys = []sdk.ConfigKey{
	{Name: keyDir, Required: true,
		Help: "folder of the Synthea CSV export: the one holding patients.csv and encounters.csv"},
	{Name: keyTimezone, Default: "Europe/London",
		Help: "IANA time zone in which Synthea's UTC timestamps are turned into calendar days"},
	{Name: keyRegisteredFrom, Default: fromBirth,
		Help: "when a patient's registration starts: birth (Synthea follows a person from birth) or first_encounter"},
	{Name: keyKeySalt, Default: "",
		Help: "secret of this practice mixed into the pseudonymous patient keys (HMAC-SHA256); set it so keys cannot be recomputed from Synthea ids"},
	{Name: keyUrgentCare, Default: formats.KindConsultation,
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

func parseConfig(m map[string]string) (config, error) {
	get := func(k string) string {
		if v, ok := m[k]; ok {
			return strings.TrimSpace(v)
		}
		for _, ck := range configKeys {
			if ck.Name == k {
				return ck.Default
			}
		}
		return ""
	}
	for k := range m {
		if !knownKey(k) {
			return config{}, fmt.Errorf("unknown configuration key %q; the synthea extractor knows %s", k, keyNames())
		}
	}
	c := config{dir: get(keyDir), registeredFrom: get(keyRegisteredFrom), salt: []byte(m[keyKeySalt]), urgentCare: get(keyUrgentCare)}
	if c.dir == "" {
		return config{}, errors.New("dir is empty; set it to the csv folder of the Synthea export")
	}
	if fi, err := os.Stat(c.dir); err != nil || !fi.IsDir() {
		return config{}, fmt.Errorf("dir %q is not a folder this plugin can read; check the path and its permissions", c.dir)
	}
	tz := get(keyTimezone)
	loc, err := time.LoadLocation(tz)
	if err != nil || tz == "" || tz == "Local" {
		return config{}, fmt.Errorf("timezone %q is not an IANA time zone name such as Europe/London", tz)
	}
	c.loc = loc
	if c.registeredFrom != fromBirth && c.registeredFrom != fromFirstEncounter {
		return config{}, fmt.Errorf("registered_from must be %s or %s", fromBirth, fromFirstEncounter)
	}
	if c.urgentCare != formats.KindConsultation && c.urgentCare != formats.KindAE {
		return config{}, fmt.Errorf("urgentcare_kind must be %s or %s", formats.KindConsultation, formats.KindAE)
	}
	return c, nil
}

func knownKey(k string) bool {
	for _, ck := range configKeys {
		if ck.Name == k {
			return true
		}
	}
	return false
}

func keyNames() string {
	names := make([]string, len(configKeys))
	for i, ck := range configKeys {
		names[i] = ck.Name
	}
	return strings.Join(names, ", ")
}
