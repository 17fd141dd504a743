package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// Configuration keys: the whole description of an export, written by a practice manager.
const (
	keyDir            = "dir"
	keyPatientsFile   = "patients_file"
	keyEventsFile     = "events_file"
	keyDelimiter      = "delimiter"
	keyDateFormat     = "date_format"
	keyBirthFormat    = "birth_date_format"
	keyPatientColumn  = "patient_column"
	keySexColumn      = "sex_column"
	keySexValues      = "sex_values"
	keyBirthColumn    = "birth_date_column"
	keyRegFromColumn  = "registered_from_column"
	keyRegToColumn    = "registered_to_column"
	keyEventPatient   = "event_patient_column"
	keyEventDate      = "event_date_column"
	keyEventEnd       = "event_end_column"
	keyEventType      = "event_type_column"
	keyKinds          = "kinds"
	keyUnmapped       = "unmapped_types"
	keyMethodColumn   = "method_column"
	keyMethods        = "methods"
	keyDiagnosis      = "diagnosis_column"
	keyDiagnosisSys   = "diagnosis_system"
	keyKeySalt        = "key_salt"
	unmappedSkip      = "skip"
	unmappedIgnore    = "ignore"
	methodsNHS        = "nhs"
	defaultDateFormat = "DD/MM/YYYY"
)

var configKeys = []sdk.ConfigKey{
	{Name: keyDir, Type: sdk.TypePath, Required: true,
		Help: "folder holding the exported CSV files"},
	// File names in dir, not paths: typed strings, so the agent does not resolve them as paths
	// by their _file names.
	{Name: keyPatientsFile, Type: sdk.TypeString, Default: "patients.csv",
		Help: "the file with one row per registered patient, in dir"},
	{Name: keyEventsFile, Type: sdk.TypeString, Default: "",
		Help: "the file with one row per consultation, attendance or admission, in dir; empty: registrations only"},
	{Name: keyDelimiter, Default: ",", Allowed: []string{",", ";", "tab", "|"},
		Help: "the character between columns: , ; tab or |"},
	{Name: keyDateFormat, Default: defaultDateFormat,
		Help: "how the export writes dates, with DD (day), MM (month number), MMM (Jan, Feb ...) and YYYY: DD/MM/YYYY, DD-MMM-YYYY, YYYY-MM-DD; a time after the date is ignored"},
	{Name: keyBirthFormat, Default: "",
		Help: "how the export writes dates of birth when not as date_format, e.g. MM/YYYY or YYYY (the day, or day and month, then count as the first)"},
	{Name: keyPatientColumn, Required: true,
		Help: "header of the patients file's column that identifies the patient (a practice-internal id, never shown)"},
	{Name: keySexColumn, Required: true,
		Help: "header of the patients file's column holding sex or gender"},
	{Name: keySexValues, Default: "F=female; M=male; Female=female; Male=male",
		Help: "how the sex column's values read, as value=female or value=male separated by ; (anything else is unknown)"},
	{Name: keyBirthColumn, Required: true,
		Help: "header of the patients file's column holding the date of birth"},
	{Name: keyRegFromColumn, Required: true,
		Help: "header of the patients file's column holding the date of registration"},
	{Name: keyRegToColumn, Default: "",
		Help: "header of the patients file's column holding the date the patient left (deregistration or death); empty in a row means still registered"},
	{Name: keyEventPatient, Default: "",
		Help: "header of the events file's patient column; empty: the same header as patient_column"},
	{Name: keyEventDate, Default: "",
		Help: "header of the events file's column holding the date of the contact, or of admission (required with events_file)"},
	{Name: keyEventEnd, Default: "",
		Help: "header of the events file's column holding the discharge date of an admission, if it has one"},
	{Name: keyEventType, Default: "",
		Help: "header of the events file's column whose value says what the event was (required with events_file)"},
	{Name: keyKinds, Default: "",
		Help: "how the event type column's values count, as value=kind separated by ; where kind is consultation, outpatient_attendance, ae_attendance or admission (required with events_file)"},
	{Name: keyUnmapped, Default: unmappedSkip, Allowed: []string{unmappedSkip, unmappedIgnore},
		Help: "an event type not listed in kinds: skip (counted as a skipped row, so a mistake shows) or ignore (logged as a count only)"},
	{Name: keyMethodColumn, Default: "",
		Help: "header of the events file's column holding an admission's method, if it has one"},
	{Name: keyMethods, Default: methodsNHS,
		Help: "how the method column's values read: nhs (NHS admission method codes: 11-13 elective, 21-28 emergency) or value=emergency, elective or other separated by ;"},
	{Name: keyDiagnosis, Default: "",
		Help: "header of the events file's column holding the primary diagnosis code, if it has one"},
	{Name: keyDiagnosisSys, Default: formats.DiagnosisSNOMED, Allowed: formats.DiagnosisSystems,
		Help: "the diagnosis column's code system: snomedct (SNOMED CT concept ids) or icd10"},
	{Name: keyKeySalt, Default: "",
		Help: "secret of this practice mixed into the pseudonymous patient keys (HMAC-SHA256); set it so keys cannot be recomputed from the export's ids"},
}

// config is a checked configuration.
type config struct {
	dir                 string
	patients, events    string // file names in dir ("" events: none)
	comma               rune
	date, birth         dateFormat
	patientCol, sexCol  string
	sexValues           map[string]string // lower-cased value → female or male
	birthCol            string
	fromCol, toCol      string
	evPatientCol        string
	evDateCol, evEndCol string
	evTypeCol           string
	kinds               map[string]string // lower-cased value → event kind
	ignoreUnmapped      bool
	methodCol           string
	nhsMethods          bool
	methods             map[string]string // lower-cased value → method
	diagnosisCol, dxSys string
	salt                []byte
	kindsSupplied       []string
}

// parsePairs reads "value=target; value=target", checking each target against allowed.
func parsePairs(key, s string, allowed []string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		v, target, ok := strings.Cut(part, "=")
		v, target = strings.ToLower(strings.TrimSpace(v)), strings.TrimSpace(target)
		if !ok || v == "" {
			return nil, fmt.Errorf("%s: each entry is value=%s, separated by ; (entry %d is not)", key, strings.Join(allowed, "|"), len(out)+1)
		}
		if !slices.Contains(allowed, target) {
			return nil, fmt.Errorf("%s: %q is not one of %s", key, target, strings.Join(allowed, ", "))
		}
		if prev, dup := out[v]; dup && prev != target {
			return nil, fmt.Errorf("%s: one value is given two meanings (%s and %s)", key, prev, target)
		}
		out[v] = target
	}
	return out, nil
}

func parseConfig(m map[string]string) (config, error) {
	c := config{
		dir: m[keyDir], patients: strings.TrimSpace(m[keyPatientsFile]), events: strings.TrimSpace(m[keyEventsFile]),
		patientCol: m[keyPatientColumn], sexCol: m[keySexColumn], birthCol: m[keyBirthColumn],
		fromCol: m[keyRegFromColumn], toCol: m[keyRegToColumn],
		evPatientCol: m[keyEventPatient], evDateCol: m[keyEventDate], evEndCol: m[keyEventEnd], evTypeCol: m[keyEventType],
		ignoreUnmapped: m[keyUnmapped] == unmappedIgnore, methodCol: m[keyMethodColumn],
		diagnosisCol: m[keyDiagnosis], dxSys: m[keyDiagnosisSys], salt: []byte(m[keyKeySalt]),
	}
	if fi, err := os.Stat(c.dir); err != nil || !fi.IsDir() {
		return config{}, fmt.Errorf("dir %q is not a folder this plugin can read; check the path and its permissions", c.dir)
	}
	for _, f := range []struct{ key, name string }{{keyPatientsFile, c.patients}, {keyEventsFile, c.events}} {
		if f.name == "" {
			continue
		}
		if filepath.Base(f.name) != f.name {
			return config{}, fmt.Errorf("%s must be a file name in dir, without a folder", f.key)
		}
		if _, err := os.Stat(filepath.Join(c.dir, f.name)); err != nil {
			return config{}, fmt.Errorf("%s: %s is not in the folder set as dir; check the name and that the export was saved there", f.key, f.name)
		}
	}
	if c.patients == "" {
		return config{}, errors.New("patients_file is empty; name the file with one row per patient")
	}
	switch d := m[keyDelimiter]; d {
	case "tab":
		c.comma = '\t'
	default:
		c.comma, _ = utf8.DecodeRuneInString(d)
	}
	var err error
	if c.date, err = compileDateFormat(m[keyDateFormat], true); err != nil {
		return config{}, fmt.Errorf("date_format: %w", err)
	}
	c.birth = c.date
	if b := strings.TrimSpace(m[keyBirthFormat]); b != "" {
		if c.birth, err = compileDateFormat(b, false); err != nil {
			return config{}, fmt.Errorf("birth_date_format: %w", err)
		}
	}
	if c.sexValues, err = parsePairs(keySexValues, m[keySexValues], []string{"female", "male", "unknown"}); err != nil {
		return config{}, err
	}
	if c.evPatientCol == "" {
		c.evPatientCol = c.patientCol
	}
	if c.events == "" {
		for _, k := range []string{keyEventDate, keyEventType, keyKinds, keyEventEnd, keyMethodColumn, keyDiagnosis} {
			if strings.TrimSpace(m[k]) != "" {
				return config{}, fmt.Errorf("%s is set but events_file is not; name the events file, or leave %s out", k, k)
			}
		}
		return c, nil
	}
	for _, k := range []string{keyEventDate, keyEventType, keyKinds} {
		if strings.TrimSpace(m[k]) == "" {
			return config{}, fmt.Errorf("%s is required with events_file (%s)", k, helpOf(k))
		}
	}
	if c.kinds, err = parsePairs(keyKinds, m[keyKinds], formats.EventKinds); err != nil {
		return config{}, err
	}
	for _, k := range formats.EventKinds {
		for _, v := range c.kinds {
			if v == k {
				c.kindsSupplied = append(c.kindsSupplied, k)
				break
			}
		}
	}
	if strings.TrimSpace(m[keyMethods]) == methodsNHS {
		c.nhsMethods = true
	} else if c.methods, err = parsePairs(keyMethods, m[keyMethods], []string{formats.MethodEmergency, formats.MethodElective, formats.MethodOther, formats.MethodUnknown}); err != nil {
		return config{}, err
	}
	return c, nil
}

func helpOf(key string) string {
	for _, k := range configKeys {
		if k.Name == key {
			return k.Help
		}
	}
	return ""
}

// dateFormat is a date_format compiled to a Go layout.
type dateFormat struct {
	pattern, layout string
}

// compileDateFormat turns DD/MM/YYYY-style patterns into Go layouts. needDay: the pattern must
// have a day (event and registration dates do; a birth date may be a month or a year).
func compileDateFormat(p string, needDay bool) (dateFormat, error) {
	p = strings.TrimSpace(p)
	r := strings.NewReplacer("YYYY", "2006", "MMM", "Jan", "MM", "01", "DD", "02")
	layout := r.Replace(strings.ToUpper(p))
	if strings.ContainsAny(strings.NewReplacer("Jan", "").Replace(layout), "ABCDEFGHIJKLMNOPQRSTUVWXYZ") {
		return dateFormat{}, fmt.Errorf("%q is not a date pattern: use DD, MM or MMM, and YYYY, with the separators the export has, e.g. DD/MM/YYYY", p)
	}
	if !strings.Contains(layout, "2006") || (needDay && (!strings.Contains(layout, "02") || !(strings.Contains(layout, "01") || strings.Contains(layout, "Jan")))) {
		return dateFormat{}, fmt.Errorf("%q needs YYYY, a month (MM or MMM) and a day (DD), e.g. DD/MM/YYYY", p)
	}
	if _, err := time.Parse(layout, time.Date(2021, 3, 4, 0, 0, 0, 0, time.UTC).Format(layout)); err != nil {
		return dateFormat{}, fmt.Errorf("%q is not a date pattern this plugin can read, e.g. DD/MM/YYYY", p)
	}
	return dateFormat{pattern: p, layout: layout}, nil
}

// parse reads a date in the format; a time after it (after a space or T) is ignored.
func (f dateFormat) parse(s string) (formats.Date, bool) {
	s = strings.TrimSpace(s)
	if n := len(f.layout); len(s) > n && (s[n] == ' ' || s[n] == 'T') {
		s = s[:n]
	}
	t, err := time.Parse(f.layout, s)
	if err != nil || t.Year() < 1800 {
		return 0, false
	}
	return formats.DateOf(t), true
}
