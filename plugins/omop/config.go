package main

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/tributary-health/tributary/plugins/sdk"
)

// Configuration keys. Their help text is the user's reference (shown by Describe and in the
// README).
const (
	keyDir              = "dir"
	keyDatabaseURL      = "database_url"
	keyPasswordFile     = "password_file"
	keySchema           = "schema"
	keyVocabularySchema = "vocabulary_schema"
	keyCDMVersion       = "cdm_version"
	keyKeySalt          = "key_salt"
	keyConsultation     = "consultation_concepts"
	keyMethods          = "admission_methods"
)

// Values of cdm_version.
const (
	versionAuto = "auto"
	methodsAuto = "auto"
	version53   = "5.3"
	version54   = "5.4"
)

var configKeys = []sdk.ConfigKey{
	{Name: keyDir, Type: sdk.TypePath,
		Help: "folder of OMOP CDM CSV files (person.csv, observation_period.csv, visit_occurrence.csv, in lower or upper case); set this or database_url"},
	{Name: keyDatabaseURL,
		Help: "PostgreSQL connection URL of the CDM database, e.g. postgres://tributary_reader@db.example:5432/omop?sslmode=require; a role with SELECT only is enough; set this or dir"},
	{Name: keyPasswordFile, Type: sdk.TypePath,
		Help: "file holding the database role's password (one line), so the password stays out of the configuration; empty: the URL's own, or none"},
	{Name: keySchema, Default: "public",
		Help: "PostgreSQL schema holding the CDM tables"},
	{Name: keyVocabularySchema, Default: "",
		Help: "PostgreSQL schema holding concept_ancestor, when it is not the CDM schema; empty: the CDM schema"},
	{Name: keyCDMVersion, Default: versionAuto, Allowed: []string{versionAuto, version53, version54},
		Help: "OMOP CDM version: auto (told from visit_occurrence's columns), 5.3 or 5.4"},
	{Name: keyKeySalt, Default: "",
		Help: "secret of this practice mixed into the pseudonymous patient keys (HMAC-SHA256); set it so keys cannot be recomputed from person_id"},
	{Name: keyConsultation, Default: "581477",
		Help: "visit concept ids (comma-separated) counted as GP consultations, with their descendants; 581477 is Office Visit; add 9202 where the ETL gives GP visits Outpatient Visit"},
	{Name: keyMethods, Default: methodsAuto, Allowed: []string{methodsAuto, "true", "false"},
		Help: "supply admission methods (emergency: visit 262, or admitted from an emergency room): auto when the source records either, true, or false to leave the admission-method measures out"},
}

// config is a checked configuration.
type config struct {
	dir          string // CSV folder, or ""
	url          string // PostgreSQL URL, or ""
	passwordFile string
	schema       string
	vocabSchema  string
	version      string
	salt         []byte
	consultation []int64
	methods      string // auto, true or false
}

// identRE is a PostgreSQL identifier written without quotes, the only schema names accepted:
// a schema name is put into SQL text (quoted), so anything unusual is refused outright.
var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_$]{0,62}$`)

// parseConfig reads a configuration the SDK has checked against configKeys and checks what
// the schema cannot: one source, a readable folder or file, schema names, concept ids. It
// does not connect to the database; ValidateConfig does.
func parseConfig(m map[string]string) (config, error) {
	c := config{
		dir:          strings.TrimSpace(m[keyDir]),
		url:          strings.TrimSpace(m[keyDatabaseURL]),
		passwordFile: strings.TrimSpace(m[keyPasswordFile]),
		schema:       strings.TrimSpace(m[keySchema]),
		vocabSchema:  strings.TrimSpace(m[keyVocabularySchema]),
		version:      m[keyCDMVersion],
		salt:         []byte(m[keyKeySalt]),
		methods:      m[keyMethods],
	}
	switch {
	case c.dir == "" && c.url == "":
		return config{}, errors.New("set dir (a folder of OMOP CDM CSV files) or database_url (a PostgreSQL CDM database); neither is set")
	case c.dir != "" && c.url != "":
		return config{}, errors.New("set dir or database_url, not both: one configuration reads one source (add a second [[plugins]] entry for a second source)")
	}
	if c.dir != "" {
		if fi, err := os.Stat(c.dir); err != nil || !fi.IsDir() {
			return config{}, fmt.Errorf("dir %q is not a folder this plugin can read; check the path and its permissions", c.dir)
		}
		if c.passwordFile != "" {
			return config{}, errors.New("password_file is for database_url; a CSV folder (dir) has no password")
		}
	}
	if c.url != "" {
		if !strings.HasPrefix(c.url, "postgres://") && !strings.HasPrefix(c.url, "postgresql://") {
			return config{}, errors.New("database_url must be a PostgreSQL URL starting postgres:// (e.g. postgres://reader@db.example:5432/omop?sslmode=require)")
		}
		if c.passwordFile != "" {
			if _, err := os.Stat(c.passwordFile); err != nil {
				return config{}, fmt.Errorf("password_file %q cannot be read; check the path and that the agent's user may read it", c.passwordFile)
			}
		}
	}
	if c.vocabSchema == "" {
		c.vocabSchema = c.schema
	}
	for _, s := range []struct{ key, v string }{{keySchema, c.schema}, {keyVocabularySchema, c.vocabSchema}} {
		if !identRE.MatchString(s.v) {
			return config{}, fmt.Errorf("%s must be a schema name of letters, digits and _ (such as cdm or public)", s.key)
		}
	}
	for _, f := range strings.Split(m[keyConsultation], ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		id, err := strconv.ParseInt(f, 10, 64)
		if err != nil || id <= 0 {
			return config{}, fmt.Errorf("%s must be concept ids separated by commas, such as 581477,9202; %q is not one", keyConsultation, f)
		}
		if !slices.Contains(c.consultation, id) {
			c.consultation = append(c.consultation, id)
		}
	}
	return c, nil
}

// readPassword reads password_file: its first line, without the line end.
func readPassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("cannot read password_file: %w", errors.Unwrap(err))
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimRight(line, "\r"), nil
}
