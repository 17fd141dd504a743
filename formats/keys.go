package formats

import (
	"crypto/rand"
	"encoding/hex"
	"regexp"
	"strings"
	"time"
)

// Object key layout. Every key a practice writes is under PracticePrefix(id); everything the
// coordinator writes is under FederationPrefix.
//
//	practices/<practice>/runs/<run-id>/figures.arrow     the run's submission: every period it covers
//	practices/<practice>/runs/<run-id>/shares-<holder>.bin  optional: the run's secure-aggregation reports for one holder
//	practices/<practice>/runs/<run-id>/manifest.json     the signed manifest, written last
//	federation/registry.json                            the signed federation registry
//	federation/...                                      combined outputs
const (
	PracticesPrefix  = "practices/"
	FederationPrefix = "federation/"
	RegistryKey      = FederationPrefix + "registry.json"
	ManifestName     = "manifest.json"
	FiguresName      = "figures.arrow"
)

var (
	practiceIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$`)
	runIDPattern      = regexp.MustCompile(`^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$`)
	extractorPattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}@[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$`)
)

// ValidatePracticeID accepts 1-32 letters, digits, '-' and '_', starting with a letter or
// digit (an ODS code such as A81001 fits). Nothing else can appear in a key, so no id can
// reach outside its own prefix.
func ValidatePracticeID(id string) error {
	if !practiceIDPattern.MatchString(id) {
		return errorf("check practice id", ErrValue, "practice id %s must be 1-32 letters, digits, '-' or '_', starting with a letter or digit (an ODS code such as A81001)", shown(id))
	}
	return nil
}

// ValidateRunID accepts ids made by NewRunID.
func ValidateRunID(id string) error {
	if !runIDPattern.MatchString(id) {
		return errorf("check run id", ErrValue, "run id %s is not of the form 20060102T150405Z-0123abcd", shown(id))
	}
	return nil
}

// NewRunID returns a run id that sorts by creation time: UTC second, then 32 random bits.
func NewRunID(now time.Time) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on supported platforms
	}
	return now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// PracticePrefix is the prefix under which practice id writes, with its trailing slash.
func PracticePrefix(id string) string { return PracticesPrefix + id + "/" }

// RunPrefix is the prefix of one run's objects.
func RunPrefix(practice, runID string) string {
	return PracticePrefix(practice) + "runs/" + runID + "/"
}

// SubmissionKey is the key of a run's submission file.
func SubmissionKey(practice, runID string) string {
	return RunPrefix(practice, runID) + FiguresName
}

// ManifestKey is the key of a run's manifest.
func ManifestKey(practice, runID string) string {
	return RunPrefix(practice, runID) + ManifestName
}

// ObjectKey is a parsed key under practices/.
type ObjectKey struct {
	Practice string
	RunID    string
	Name     string // ManifestName, FiguresName or SharesName(Holder)
	Holder   string // for a shares file, the holder it is for
}

// Manifest reports whether the key is a run's manifest.
func (k ObjectKey) Manifest() bool { return k.Name == ManifestName }

// Shares reports whether the key is a run's shares file for a holder.
func (k ObjectKey) Shares() bool { return k.Holder != "" }

// ParseKey reads a key written by a practice. Anything that is not exactly a manifest, a
// submission or a shares key of the layout gives ErrKey; the monthly files of format 1
// (<run-id>/YYYY-MM.arrow) give ErrFormatVersion, so a store written by an old agent says so.
func ParseKey(key string) (ObjectKey, error) {
	bad := func(why string) (ObjectKey, error) {
		return ObjectKey{}, errorf("parse key", ErrKey, "%s %s; expected practices/<practice>/runs/<run-id>/(manifest.json|figures.arrow|shares-<holder>.bin)", shown(key), why)
	}
	rest, ok := strings.CutPrefix(key, PracticesPrefix)
	if !ok {
		return bad("is not under practices/")
	}
	parts := strings.Split(rest, "/")
	if len(parts) != 4 || parts[1] != "runs" {
		return bad("does not follow the layout")
	}
	k := ObjectKey{Practice: parts[0], RunID: parts[2], Name: parts[3]}
	if ValidatePracticeID(k.Practice) != nil {
		return bad("has an invalid practice id")
	}
	if ValidateRunID(k.RunID) != nil {
		return bad("has an invalid run id")
	}
	switch k.Name {
	case ManifestName, FiguresName:
		return k, nil
	}
	if holder, ok := holderOfName(k.Name); ok {
		k.Holder = holder
		return k, nil
	}
	if name, ok := strings.CutSuffix(k.Name, ".arrow"); ok {
		if _, err := ParseMonth(name); err == nil {
			return ObjectKey{}, errorf("parse key", ErrFormatVersion, "%s is a monthly file of format 1; this build reads format %d: upgrade the practice's agent", shown(key), FormatVersion)
		}
	}
	return bad("is neither a manifest, a submission nor a holder's shares")
}
