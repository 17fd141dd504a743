package combine

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

var (
	idPattern  = regexp.MustCompile(`^[0-9a-f]{32}$`)
	hexPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ParsePointer reads federation/current.json as stored, refusing one that names objects
// outside federation/, negative sizes or malformed digests, so a reader never follows a
// pointer it did not check.
func ParsePointer(data []byte) (*Pointer, error) {
	var p Pointer
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("%s is not a combine pointer (%v); run 'tributary-coordinator combine' again", CurrentKey, err)
	}
	if p.FormatVersion != Version {
		return nil, fmt.Errorf("%s is format version %d, this build reads %d; run 'tributary-coordinator combine' with this version", CurrentKey, p.FormatVersion, Version)
	}
	if !idPattern.MatchString(p.ID) || p.Prefix != CombinedPrefix+p.ID+"/" {
		return nil, fmt.Errorf("%s names no valid combined output id or prefix; run 'tributary-coordinator combine' again", CurrentKey)
	}
	for _, name := range []string{FederationArrow, FederationParquet, ReportJSON} {
		ref, ok := p.Objects[name]
		if !ok {
			return nil, fmt.Errorf("%s names no %s; run 'tributary-coordinator combine' again", CurrentKey, name)
		}
		if err := checkRef(ref, p.Prefix+name); err != nil {
			return nil, err
		}
	}
	// Every other object of the output (the month-partitioned dataset, the secure totals)
	// lives under the same prefix, under its own name, with a size and a SHA-256.
	for name, ref := range p.Objects {
		if name == "" {
			return nil, fmt.Errorf("%s names an object with no name; run 'tributary-coordinator combine' again", CurrentKey)
		}
		if err := checkRef(ref, p.Prefix+name); err != nil {
			return nil, err
		}
	}
	for practice, ref := range p.PracticeTables {
		if err := checkRef(ref, ""); err != nil {
			return nil, err
		}
		if !strings.HasPrefix(ref.Key, PracticeTablesPrefix+practice+"/") {
			return nil, fmt.Errorf("%s names a table of practice %q outside %s", CurrentKey, practice, PracticeTablesPrefix)
		}
	}
	return &p, nil
}

func checkRef(ref ObjectRef, wantKey string) error {
	switch {
	case wantKey != "" && ref.Key != wantKey:
		return fmt.Errorf("%s names %s where %s belongs; run 'tributary-coordinator combine' again", CurrentKey, ref.Key, wantKey)
	case ref.Size < 0:
		return fmt.Errorf("%s gives %s a negative size", CurrentKey, ref.Key)
	case !hexPattern.MatchString(ref.SHA256):
		return fmt.Errorf("%s gives %s no valid SHA-256", CurrentKey, ref.Key)
	}
	return nil
}

// ParseReport reads a combined output's report.json as stored.
func ParseReport(data []byte) (*Report, error) {
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("the combine report is not valid JSON (%v); run 'tributary-coordinator combine' again", err)
	}
	if r.FormatVersion != Version {
		return nil, fmt.Errorf("the combine report is format version %d, this build reads %d", r.FormatVersion, Version)
	}
	if !idPattern.MatchString(r.ID) {
		return nil, fmt.Errorf("the combine report names no valid combined output id")
	}
	return &r, nil
}
