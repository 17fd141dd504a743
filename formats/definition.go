package formats

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// DefinitionVersion is the version of the definition file format (the TOML files in
// measures/ and the signed federation file): a reader refuses any other.
const DefinitionVersion = 1

// What a definition counts (Definition.Count).
const (
	CountEvents     = "events"     // matching events starting in the month
	CountPatients   = "patients"   // distinct patients with a matching event in the month
	CountBedDays    = "bed_days"   // nights of matching stays discharged in the month
	CountRegistered = "registered" // patients registered on the month's first day
)

// Rules a definition may apply (Rule.Type).
const (
	RuleNone             = ""
	RuleFirstPerPatient  = "first_per_patient" // only each patient's first matching event
	RuleDistinctPatients = "distinct_patients" // with Count patients: each patient once a month
	RuleReadmission      = "readmission"       // starts within WithinDays of a previous admission's discharge
	RuleFrequent         = "frequent"          // a patient with ≥ MinEvents matching events in the WindowMonths months ending this one
)

// Code-list match modes (CodeList.Match).
const (
	MatchPrefix = "prefix"
	MatchExact  = "exact"
)

// CodeList is the codes of one code system a definition matches on an event's primary
// diagnosis.
type CodeList struct {
	System string   `toml:"system" json:"system"` // DiagnosisICD10 or DiagnosisSNOMED
	Match  string   `toml:"match" json:"match"`   // MatchPrefix or MatchExact
	Codes  []string `toml:"codes" json:"codes"`   // canonical codes (NormalizeDiagnosis)
}

// Rule is a definition's optional counting rule.
type Rule struct {
	Type         string `toml:"type" json:"type,omitempty"`
	WithinDays   int    `toml:"within_days" json:"within_days,omitempty"`     // readmission
	MinEvents    int    `toml:"min_events" json:"min_events,omitempty"`       // frequent
	WindowMonths int    `toml:"window_months" json:"window_months,omitempty"` // frequent, first_per_patient
}

// Definition is one measure as data: which events it counts, how, and where that comes from.
// The built-in ones are the TOML files in formats/measures/; a federation adds its own with
// `tributary-coordinator measures add`, distributed signed at FederationMeasuresKey.
type Definition struct {
	Name        string     `toml:"name" json:"name"`
	Version     int        `toml:"version" json:"version"`
	Title       string     `toml:"title" json:"title"`
	Description string     `toml:"description" json:"description"`
	Source      string     `toml:"source" json:"source"`
	Notes       string     `toml:"notes" json:"notes,omitempty"`
	Count       string     `toml:"count" json:"count"`
	Kind        string     `toml:"kind" json:"kind,omitempty"`
	Method      string     `toml:"method" json:"method,omitempty"`
	Codes       []CodeList `toml:"codes" json:"codes,omitempty"`
	Rule        Rule       `toml:"rule" json:"rule"`
}

// Validate checks a definition and puts it in canonical form: code lists normalised
// (NormalizeDiagnosis), sorted and without duplicates, lists sorted by system, a frequent
// rule's window defaulted to 12 months.
func (d *Definition) Validate() error {
	const op = "read measure definition"
	bad := func(format string, a ...any) error {
		return errorf(op, ErrValue, "measure %s: %s", shown(d.Name), fmt.Sprintf(format, a...))
	}
	if !MeasureNamePattern.MatchString(d.Name) {
		return errorf(op, ErrValue, "measure name %s must match %s", shown(d.Name), MeasureNamePattern)
	}
	if d.Version < 1 {
		return bad("version must be 1 or more")
	}
	if strings.TrimSpace(d.Title) == "" || strings.TrimSpace(d.Description) == "" || strings.TrimSpace(d.Source) == "" {
		return bad("title, description and source are required: a lead must be able to say what it counts and where it comes from")
	}
	switch d.Count {
	case CountRegistered:
		if d.Kind != "" || d.Method != "" || len(d.Codes) > 0 || d.Rule != (Rule{}) {
			return bad("count = \"registered\" takes no kind, method, codes or rule")
		}
		return nil
	case CountEvents, CountPatients, CountBedDays:
	default:
		return bad("count must be events, patients, bed_days or registered")
	}
	if !ValidEventKind(d.Kind) {
		return bad("kind must be one of %s", strings.Join(EventKinds, ", "))
	}
	switch d.Method {
	case "":
	case MethodEmergency, MethodElective, MethodOther, MethodUnknown:
		if d.Kind != KindAdmission {
			return bad("an admission method needs kind = \"admission\"")
		}
	default:
		return bad("method must be emergency, elective, other or unknown (or left out)")
	}
	seen := map[string]bool{}
	for i := range d.Codes {
		c := &d.Codes[i]
		if !ValidDiagnosisSystem(c.System) {
			return bad("code list %d: system must be icd10 or snomedct", i+1)
		}
		if seen[c.System] {
			return bad("two code lists of system %s; join them", c.System)
		}
		seen[c.System] = true
		if c.Match != MatchPrefix && c.Match != MatchExact {
			return bad("code list %s: match must be prefix or exact", c.System)
		}
		if c.Match == MatchPrefix && c.System == DiagnosisSNOMED {
			return bad("SNOMED CT codes are concept ids: match them exactly (a prefix of a concept id means nothing)")
		}
		if len(c.Codes) == 0 {
			return bad("code list %s is empty", c.System)
		}
		out := make([]string, 0, len(c.Codes))
		for _, code := range c.Codes {
			n, ok := normalizeListCode(c.System, code)
			if !ok {
				return bad("code list %s: %s is not a %s code in canonical form", c.System, shown(code), c.System)
			}
			out = append(out, n)
		}
		slices.Sort(out)
		c.Codes = slices.Compact(out)
	}
	slices.SortFunc(d.Codes, func(a, b CodeList) int { return strings.Compare(a.System, b.System) })
	r := &d.Rule
	switch r.Type {
	case RuleNone, RuleFirstPerPatient:
		if r.WithinDays != 0 || r.MinEvents != 0 {
			return bad("rule %s takes no within_days or min_events", shown(r.Type))
		}
		if r.Type == RuleFirstPerPatient && r.WindowMonths == 0 {
			r.WindowMonths = 12
		}
		if r.Type == RuleNone && r.WindowMonths != 0 {
			return bad("window_months needs a rule")
		}
	case RuleDistinctPatients:
		if *r != (Rule{Type: RuleDistinctPatients}) {
			return bad("rule distinct_patients takes no parameters")
		}
	case RuleReadmission:
		if r.WithinDays < 1 || r.WithinDays > 366 || r.MinEvents != 0 || r.WindowMonths != 0 {
			return bad("rule readmission takes within_days, 1 to 366, and nothing else")
		}
		if d.Kind != KindAdmission {
			return bad("rule readmission needs kind = \"admission\"")
		}
	case RuleFrequent:
		if r.WindowMonths == 0 {
			r.WindowMonths = 12
		}
		if r.MinEvents < 2 || r.MinEvents > 1000 || r.WindowMonths < 1 || r.WindowMonths > 60 || r.WithinDays != 0 {
			return bad("rule frequent takes min_events (2 to 1000) and window_months (1 to 60)")
		}
	default:
		return bad("rule type must be first_per_patient, distinct_patients, readmission or frequent")
	}
	switch d.Count {
	case CountPatients:
		if r.Type != RuleDistinctPatients && r.Type != RuleFrequent {
			return bad("count = \"patients\" needs rule distinct_patients or frequent")
		}
	case CountEvents:
		if r.Type == RuleDistinctPatients || r.Type == RuleFrequent {
			return bad("rule %s counts patients: set count = \"patients\"", r.Type)
		}
	case CountBedDays:
		if r.Type != RuleNone || d.Kind != KindAdmission {
			return bad("count = \"bed_days\" needs kind = \"admission\" and no rule")
		}
	}
	return nil
}

// normalizeListCode is NormalizeDiagnosis for a code-list entry. An ICD-10 prefix may be a
// bare three-character category ("I10") or longer; a shorter prefix ("I2") is also allowed,
// since chapters and blocks are written that way.
func normalizeListCode(system, code string) (string, bool) {
	if system == DiagnosisICD10 {
		c := strings.ToUpper(strings.TrimSpace(strings.ReplaceAll(code, ".", "")))
		if len(c) >= 1 && len(c) <= 7 && c[0] >= 'A' && c[0] <= 'Z' {
			for i := 1; i < len(c); i++ {
				if !(c[i] >= '0' && c[i] <= '9' || c[i] >= 'A' && c[i] <= 'Z') {
					return "", false
				}
			}
			return c, true
		}
		return "", false
	}
	return NormalizeDiagnosis(system, code)
}

// Lookback is how many months before a run's first month the rule needs events from: the
// window of a frequent (or first-per-patient) rule less the month itself, and the months a
// readmission's previous discharge may lie back (WithinDays rounded up, plus one, since a
// discharge late in a month may be followed by a readmission early in the month after next).
func (d *Definition) Lookback() int {
	switch d.Rule.Type {
	case RuleFrequent, RuleFirstPerPatient:
		return d.Rule.WindowMonths - 1
	case RuleReadmission:
		return (d.Rule.WithinDays+30)/31 + 1
	}
	return 0
}

// NeedsDischarges reports whether the definition needs discharge dates (a readmission rule).
func (d *Definition) NeedsDischarges() bool { return d.Rule.Type == RuleReadmission }

// Systems lists the code systems of the definition's code lists.
func (d *Definition) Systems() []string {
	var out []string
	for _, c := range d.Codes {
		out = append(out, c.System)
	}
	return out
}

// Matches reports whether an event of the definition's kind and method has a matching
// primary diagnosis (always, when the definition has no code lists). It does not look at kind
// or method.
func (d *Definition) MatchesDiagnosis(system, code string) bool {
	if len(d.Codes) == 0 {
		return true
	}
	if code == "" {
		return false
	}
	for _, c := range d.Codes {
		if c.System != system {
			continue
		}
		return matchCode(c, code)
	}
	return false
}

// MatchCode reports which code of the list matches code ("" for none).
func MatchCode(c CodeList, code string) string {
	if c.Match == MatchExact {
		if _, ok := slices.BinarySearch(c.Codes, code); ok {
			return code
		}
		return ""
	}
	for _, p := range c.Codes {
		if strings.HasPrefix(code, p) {
			return p
		}
	}
	return ""
}

func matchCode(c CodeList, code string) bool { return MatchCode(c, code) != "" }

// Matches reports whether e is an event the definition looks at: its kind, its method (when
// the definition names one) and its diagnosis (when it has code lists).
func (d *Definition) Matches(e Event) bool {
	return d.Count != CountRegistered && e.Kind == d.Kind && (d.Method == "" || e.Method == d.Method) &&
		d.MatchesDiagnosis(e.DiagnosisSystem, e.DiagnosisCode)
}

// digestFields are what decides a definition's counts; the digest covers exactly them.
type digestFields struct {
	Name   string     `json:"name"`
	Count  string     `json:"count"`
	Kind   string     `json:"kind"`
	Method string     `json:"method"`
	Codes  []CodeList `json:"codes"`
	Rule   Rule       `json:"rule"`
}

// Digest is the SHA-256, in lower-case hex, of the canonical JSON of what decides the
// definition's counts: name, count, kind, method, code lists (normalised, sorted) and rule.
// Title, description, source, notes and version are left out, so mending a description does
// not split a federation; any change to what is counted gives a new digest. Call it on a
// validated definition.
func (d *Definition) Digest() string {
	f := digestFields{Name: d.Name, Count: d.Count, Kind: d.Kind, Method: d.Method, Codes: d.Codes, Rule: d.Rule}
	if f.Codes == nil {
		f.Codes = []CodeList{}
	}
	b, err := json.Marshal(f)
	if err != nil {
		panic(err) // plain strings and ints
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ShortDigest is the first 12 hex digits of the digest, for people.
func ShortDigest(digest string) string {
	if len(digest) > 12 {
		return digest[:12]
	}
	return digest
}

// definitionFile is one TOML file of definitions.
type definitionFile struct {
	Version  int          `toml:"version"`
	Measures []Definition `toml:"measure"`
}

// ParseDefinitions reads a TOML file of definitions:
//
//	version = 1
//	[[measure]]
//	name = "..."
//
// Unknown keys are refused, every definition is validated and put in canonical form.
func ParseDefinitions(data []byte) ([]Definition, error) {
	const op = "read measure definitions"
	var f definitionFile
	md, err := toml.NewDecoder(bytes.NewReader(data)).Decode(&f)
	if err != nil {
		return nil, errorf(op, ErrCorrupt, "not valid TOML: %v", err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, errorf(op, ErrSchema, "unknown key %s", shown(und[0].String()))
	}
	if f.Version != DefinitionVersion {
		return nil, errorf(op, ErrFormatVersion, "definition file version %d, this build reads %d", f.Version, DefinitionVersion)
	}
	seen := map[string]bool{}
	for i := range f.Measures {
		if err := f.Measures[i].Validate(); err != nil {
			return nil, err
		}
		if seen[f.Measures[i].Name] {
			return nil, errorf(op, ErrValue, "measure %s is defined twice", f.Measures[i].Name)
		}
		seen[f.Measures[i].Name] = true
	}
	return f.Measures, nil
}

//go:embed measures/*.toml
var builtinFS embed.FS

// builtins are the definitions shipped with this build, in catalogue order: the first
// catalogue (Measures), then the files of measures/ in name order.
var builtins = func() []Definition {
	names, err := fs.Glob(builtinFS, "measures/*.toml")
	if err != nil {
		panic(err)
	}
	sort.Strings(names)
	var out []Definition
	seen := map[string]bool{}
	for _, n := range names {
		data, err := builtinFS.ReadFile(n)
		if err != nil {
			panic(err)
		}
		defs, err := ParseDefinitions(data)
		if err != nil {
			panic(fmt.Sprintf("built-in measures %s: %v", path.Base(n), err))
		}
		for _, d := range defs {
			if seen[d.Name] {
				panic("built-in measure defined twice: " + d.Name)
			}
			seen[d.Name] = true
			out = append(out, d)
		}
	}
	// The first catalogue keeps its display order at the front.
	slices.SortStableFunc(out, func(a, b Definition) int {
		ia, ib := slices.Index(Measures, a.Name), slices.Index(Measures, b.Name)
		if ia < 0 {
			ia = len(Measures)
		}
		if ib < 0 {
			ib = len(Measures)
		}
		return ia - ib
	})
	return out
}()

// BuiltinDefinitions returns a copy of the definitions shipped with this build, the first
// catalogue first.
func BuiltinDefinitions() []Definition {
	out := make([]Definition, len(builtins))
	for i, d := range builtins {
		out[i] = d.clone()
	}
	return out
}

// BuiltinDefinition returns the built-in definition of a name.
func BuiltinDefinition(name string) (Definition, bool) {
	for _, d := range builtins {
		if d.Name == name {
			return d.clone(), true
		}
	}
	return Definition{}, false
}

func (d Definition) clone() Definition {
	c := d
	c.Codes = make([]CodeList, len(d.Codes))
	for i, l := range d.Codes {
		l.Codes = slices.Clone(l.Codes)
		c.Codes[i] = l
	}
	if len(d.Codes) == 0 {
		c.Codes = nil
	}
	return c
}

// MergeDefinitions is the built-in definitions with a federation's on top: a federation
// definition of a built-in name replaces it (in place), a new name comes after the built-ins.
func MergeDefinitions(builtin, federation []Definition) []Definition {
	out := slices.Clone(builtin)
	for _, f := range federation {
		if i := slices.IndexFunc(out, func(d Definition) bool { return d.Name == f.Name }); i >= 0 {
			out[i] = f
		} else {
			out = append(out, f)
		}
	}
	return out
}

// MeasureNames lists the definitions' names in order.
func MeasureNames(defs []Definition) []string {
	out := make([]string, len(defs))
	for i, d := range defs {
		out[i] = d.Name
	}
	return out
}

// FederationMeasuresKey is where the coordinator stores the federation's own definitions,
// signed with its key like the registry.
const FederationMeasuresKey = FederationPrefix + "measures.json"

// PayloadMeasures is the payload type of the signed federation definitions.
const PayloadMeasures = "application/vnd.tributary.measures+json; version=1"

// FederationMeasures is the federation's own definitions, as signed.
type FederationMeasures struct {
	FormatVersion int          `json:"format_version"` // DefinitionVersion
	Updated       time.Time    `json:"updated"`
	Measures      []Definition `json:"measures"`
}

// Validate checks every definition (and puts it in canonical form), that names are unique and
// that none redefines a first-catalogue measure (Measures: older agents, the disclosure
// audit's relations and every practice's history rely on what those count).
func (f *FederationMeasures) Validate() error {
	if f.FormatVersion != DefinitionVersion {
		return errorf("read federation measures", ErrFormatVersion, "federation measures version %d, this build reads %d", f.FormatVersion, DefinitionVersion)
	}
	seen := map[string]bool{}
	for i := range f.Measures {
		if err := f.Measures[i].Validate(); err != nil {
			return err
		}
		if seen[f.Measures[i].Name] {
			return errorf("read federation measures", ErrValue, "measure %s is defined twice", f.Measures[i].Name)
		}
		if slices.Contains(Measures, f.Measures[i].Name) {
			return errorf("read federation measures", ErrValue, "measure %s is of the first catalogue and cannot be redefined; give the federation's measure a name of its own", f.Measures[i].Name)
		}
		seen[f.Measures[i].Name] = true
	}
	return nil
}

// SignFederationMeasures validates f and returns its signed envelope.
func SignFederationMeasures(f *FederationMeasures, priv ed25519.PrivateKey) ([]byte, error) {
	if err := f.Validate(); err != nil {
		return nil, err
	}
	payload, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	return Seal(PayloadMeasures, payload, priv)
}

// VerifyFederationMeasures checks the signature with the coordinator's public key and the
// definitions.
func VerifyFederationMeasures(data []byte, pub ed25519.PublicKey) (*FederationMeasures, error) {
	env, err := ParseEnvelope(data)
	if err != nil {
		return nil, WithObject(err, FederationMeasuresKey)
	}
	payload, err := env.Open(PayloadMeasures, pub)
	if err != nil {
		return nil, WithObject(err, FederationMeasuresKey)
	}
	var f FederationMeasures
	if err := strictJSON(payload, &f); err != nil {
		return nil, &Error{Op: "read federation measures", Subject: FederationMeasuresKey, Kind: ErrCorrupt, Detail: "not valid measures JSON", Err: err}
	}
	if err := f.Validate(); err != nil {
		return nil, WithObject(err, FederationMeasuresKey)
	}
	return &f, nil
}
