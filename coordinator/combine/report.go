package combine

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// Report says what a combine read, what it used, what it refused and why. It holds no
// wall-clock time of its own: the same inputs give the same report, byte for byte.
type Report struct {
	FormatVersion int    `json:"format_version"`
	ID            string `json:"id"` // the combined output's name, a digest of every object read
	// InputsSHA256 digests only what the figures were made from (each combined file and its
	// manifest, the policy); federation.arrow records it too. See provenance.
	InputsSHA256    string   `json:"inputs_sha256"`
	Policy          string   `json:"policy"` // the federation's disclosure policy
	SuppressMax     int64    `json:"suppress_max"`
	RegistrySHA256  string   `json:"registry_sha256"`
	Practices       int      `json:"practices"`                  // practices with at least one combined file
	FilesCombined   int      `json:"files_combined"`             // practice run files combined
	MonthsCombined  int      `json:"months_combined"`            // practice-months combined
	FederationRows  int64    `json:"federation_rows"`            // rows of the federation table
	PracticeRows    int64    `json:"practice_rows"`              // values in the practice tables (a row of 80 per period and measure)
	IgnoredMeasures []string `json:"ignored_measures,omitempty"` // measures the federation does not define, not combined
	// Measures are the federation's definitions this combine used (the built-ins with the
	// federation's own on top), in display order: what query, API and dashboard offer. A
	// report without them (from before measures were data) means the first catalogue.
	Measures []MeasureDef `json:"measures,omitempty"`

	Inputs       []Input        `json:"inputs"`
	Quarantined  []Quarantined  `json:"quarantined"`
	Completeness []Completeness `json:"completeness"`
	// Secure is what became of the holders' secure totals (secure aggregation); absent when
	// the federation has no holders.
	Secure *SecureReport `json:"secure,omitempty"`
}

// Input is one verified run manifest and what became of each of its files.
type Input struct {
	Practice       string      `json:"practice"`
	Manifest       string      `json:"manifest"`
	RunID          string      `json:"run_id"`
	Created        time.Time   `json:"created"`
	Policy         string      `json:"policy"`
	From           string      `json:"from"` // the run's months
	To             string      `json:"to"`
	ManifestSHA256 string      `json:"manifest_sha256"`
	KeyID          string      `json:"key_id"` // the registered key the manifest verified with
	Files          []InputFile `json:"files"`
}

// File uses.
const (
	UseCombined    = "combined"    // the newest verified file for some of its practice's months
	UseRevision    = "revision"    // every month superseded by newer runs; kept for audit, not read
	UseQuarantined = "quarantined" // failed verification; see Quarantined
)

// InputFile is one file listed by a verified manifest.
type InputFile struct {
	Key    string `json:"key"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Use    string `json:"use"`
	// Months are the months combined from this file: those for which its run is the newest
	// that verified. The others were superseded by newer runs.
	Months []string `json:"months,omitempty"`
	// SupersededBy is, for a revision, the newest run that took its months.
	SupersededBy string `json:"superseded_by,omitempty"`
}

// Quarantined is an object that failed verification: never combined, reported here.
type Quarantined struct {
	Practice string `json:"practice,omitempty"` // empty when the key names none
	Key      string `json:"key"`
	Kind     string `json:"kind"`   // a short name of the failure, for filtering
	Reason   string `json:"reason"` // what went wrong and what to do
}

// Completeness lists who contributed to one month.
type Completeness struct {
	Month        string        `json:"month"`
	Contributors []Contributor `json:"contributors"`
	// Missing are registered practices with a key in force that contributed nothing.
	Missing []string `json:"missing"`
}

// Contributor is one practice's contribution to a month.
type Contributor struct {
	Practice string    `json:"practice"`
	RunID    string    `json:"run_id"`
	Created  time.Time `json:"created"`
	Measures int       `json:"measures"` // measures of the federation's definitions its file supplied
	// Excluded are measures its file supplied by another definition than the federation's,
	// left out of the federation's figures for this month.
	Excluded []ExcludedMeasure `json:"excluded,omitempty"`
	// Absent are the federation's measures its run did not carry because the practice's
	// sources cannot supply them, with the agent's reason (never counted as zero).
	Absent []AbsentMeasure `json:"absent,omitempty"`
}

// AbsentMeasure is a measure a practice's sources cannot supply, with the agent's reason.
type AbsentMeasure struct {
	Measure string `json:"measure"`
	Reason  string `json:"reason"`
}

// ExcludedMeasure is a measure a practice's run counted by another definition than the
// federation's: not combined with the others.
type ExcludedMeasure struct {
	Measure    string `json:"measure"`
	Used       string `json:"used"`       // the digest the run's manifest records ("" for none)
	Federation string `json:"federation"` // the federation's definition's digest
	Reason     string `json:"reason"`     // "used definition digest X, federation's is Y"
}

// MeasureDef is one of the federation's definitions with its digest.
type MeasureDef struct {
	formats.Definition
	Digest string `json:"digest"`
}

// MeasureNames lists the report's measures: its definitions, or for a report from before
// measures were data, the first catalogue.
func (r *Report) MeasureNames() []string {
	if len(r.Measures) == 0 {
		return slices.Clone(formats.Measures)
	}
	out := make([]string, len(r.Measures))
	for i, m := range r.Measures {
		out[i] = m.Name
	}
	return out
}

// quarantineKinds names each failure kind in reports.
var quarantineKinds = []struct {
	err  error
	name string
}{
	{formats.ErrSignature, "bad_signature"},
	{formats.ErrUnknownKey, "unknown_key"},
	{formats.ErrRevoked, "revoked_key"},
	{formats.ErrChecksum, "checksum_mismatch"},
	{objstore.ErrChecksum, "checksum_mismatch"},
	{formats.ErrSize, "size_mismatch"},
	{formats.ErrPracticeMismatch, "practice_mismatch"},
	{formats.ErrKey, "bad_key"},
	{formats.ErrTooLarge, "too_large"},
	{objstore.ErrTooLarge, "too_large"},
	{formats.ErrFormatVersion, "format_version"},
	{formats.ErrSchema, "schema"},
	{formats.ErrCorrupt, "corrupt"},
	{ErrPolicy, "policy"},
	{ErrFuture, "future"},
	{formats.ErrValue, "invalid_value"},
	{objstore.ErrNotFound, "missing"},
	{objstore.ErrBadKey, "bad_key"},
	{objstore.ErrNotRegular, "not_a_file"},
}

// ErrPolicy: a run made under a disclosure policy other than the federation's. Its figures
// are not comparable with the others' and may be weaker, so it is never combined.
var ErrPolicy = errors.New("made under another disclosure policy")

func kindOf(err error) string {
	for _, k := range quarantineKinds {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return "invalid"
}

// fatal reports whether a store error must stop the combine rather than quarantine one object:
// a store that is down or refuses us would otherwise make a partial combine look complete.
// An object whose content disagrees with the checksum stored beside it (objstore.ErrChecksum)
// is quarantined instead: a practice can write such an object through the raw S3 API, and
// must not be able to stop every later combine by doing so.
func fatal(err error) bool {
	return errors.Is(err, objstore.ErrUnavailable) || errors.Is(err, objstore.ErrAccessDenied)
}

// UsedDigest is the SHA-256 of exactly what the figures were made from: each combined practice
// file and the manifest that signed it, with the policy and suppressed range, and each secure
// round whose totals replaced federation figures. Run records it as
// InputsSHA256 and in federation.arrow's metadata in place of the combine id, so objects read
// and quarantined (an attack, a broken upload) change the report and the combine id but not the
// figures' bytes; provenance recomputes it from the report's inputs.
func (r *Report) UsedDigest() string {
	var lines []string
	for _, in := range r.Inputs {
		for _, f := range in.Files {
			if f.Use == UseCombined {
				lines = append(lines, "manifest "+in.Manifest+" "+in.ManifestSHA256, "file "+f.Key+" "+f.SHA256)
			}
		}
	}
	if r.Secure != nil {
		for _, sr := range r.Secure.Rounds {
			lines = append(lines, "secure "+sr.Key+" "+sr.SHA256)
		}
	}
	slices.Sort(lines)
	lines = slices.Compact(lines)
	h := sha256.New()
	fmt.Fprintf(h, "tributary combined inputs v%d\npolicy %s\nsuppress_max %d\n", Version, r.Policy, r.SuppressMax)
	for _, line := range lines {
		fmt.Fprintln(h, line)
	}
	return hex.EncodeToString(h.Sum(nil))
}
