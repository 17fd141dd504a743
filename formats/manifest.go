package formats

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Manifest lists every file of one run. It is written after all of them and signed with the
// practice's key: it is the commit marker, so a run without one does not exist for the
// coordinator.
type Manifest struct {
	FormatVersion int         `json:"format_version"`
	Practice      string      `json:"practice"`
	RunID         string      `json:"run_id"`
	Created       time.Time   `json:"created"`
	Extractors    []string    `json:"extractors"` // name@version of each contributing extractor
	Policy        string      `json:"policy"`
	From          string      `json:"from"` // the run's first month, YYYY-MM
	To            string      `json:"to"`   // its last month
	Files         []FileEntry `json:"files"`
	// Definitions is the digest (Definition.Digest) of the definition of every measure the
	// run's figures carry. Optional: a manifest without it (an agent from before measures
	// were data) is read as having used the built-in definitions of the first catalogue.
	Definitions map[string]string `json:"definitions,omitempty"`
	// Absent names the measures of the agent's definitions its sources could not supply, each
	// with the agent's reason (a fixed phrase such as "no source sends admissions' discharge
	// dates"): they are not in the figures, never as zero. Optional, like Definitions.
	Absent map[string]string `json:"absent,omitempty"`
}

// FileEntry is one file of a run.
type FileEntry struct {
	Key    string `json:"key"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"` // lower-case hex
}

var sha256Pattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// DefinitionDigest is the digest of the definition the run used for measure: the manifest's,
// or for a manifest without digests the built-in one of a first-catalogue measure; "" when
// neither says.
func (m *Manifest) DefinitionDigest(measure string) string {
	if m.Definitions != nil {
		return m.Definitions[measure]
	}
	if slices.Contains(Measures, measure) {
		if d, ok := BuiltinDefinition(measure); ok {
			return d.Digest()
		}
	}
	return ""
}

// Entry describes data as the run's submission file.
func Entry(practice, runID string, data []byte) FileEntry {
	h := sha256.Sum256(data)
	return FileEntry{
		Key:    SubmissionKey(practice, runID),
		Size:   int64(len(data)),
		SHA256: hex.EncodeToString(h[:]),
	}
}

// Months returns the run's first and last month.
func (m *Manifest) Months() (from, to Month, err error) {
	from, err1 := ParseMonth(m.From)
	to, err2 := ParseMonth(m.To)
	if err1 != nil || err2 != nil {
		return 0, 0, errorf("validate manifest", ErrValue, "from and to must be months (YYYY-MM)")
	}
	return from, to, ValidateRunMonths(from, to)
}

// SharesFor returns the entry of the run's shares file for holder, if it has one.
func (m *Manifest) SharesFor(holder string) (FileEntry, bool) {
	for _, f := range m.Files {
		if strings.HasSuffix(f.Key, "/"+SharesName(holder)) {
			return f, true
		}
	}
	return FileEntry{}, false
}

// SharesEntry describes data as the run's shares file for holder.
func SharesEntry(practice, runID, holder string, data []byte) FileEntry {
	return FileEntry{Key: SharesKey(practice, runID, holder), Size: int64(len(data)), SHA256: sha256Hex(data)}
}

func sha256Hex(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// Submission returns the entry of the run's submission file.
func (m *Manifest) Submission() (FileEntry, bool) {
	for _, f := range m.Files {
		if strings.HasSuffix(f.Key, "/"+FiguresName) {
			return f, true
		}
	}
	return FileEntry{}, false
}

// Validate checks the manifest's own consistency: version, ids, policy, months, and that it
// lists the run's submission file, inside this run's prefix, once, and beside it at most one
// shares file per holder (secure aggregation; optional).
func (m *Manifest) Validate() error {
	const op = "validate manifest"
	if m.FormatVersion != FormatVersion {
		return errorf(op, ErrFormatVersion, "manifest format version %d, this build reads version %d; upgrade so agent and coordinator agree", m.FormatVersion, FormatVersion)
	}
	if err := ValidatePracticeID(m.Practice); err != nil {
		return err
	}
	if err := ValidateRunID(m.RunID); err != nil {
		return err
	}
	if _, err := PolicyByName(m.Policy); err != nil {
		return err
	}
	if m.Created.IsZero() {
		return errorf(op, ErrValue, "manifest has no creation time")
	}
	for _, x := range m.Extractors {
		if !extractorPattern.MatchString(x) {
			return errorf(op, ErrValue, "extractor %s must be name@version", shown(x))
		}
	}
	if _, _, err := m.Months(); err != nil {
		return err
	}
	if len(m.Files) == 0 {
		return errorf(op, ErrValue, "manifest lists no files")
	}
	for name, why := range m.Absent {
		if !MeasureNamePattern.MatchString(name) || len(why) > 300 {
			return errorf(op, ErrValue, "absent measure %s: a measure name with a reason of at most 300 bytes", shown(name))
		}
	}
	for name, digest := range m.Definitions {
		if !MeasureNamePattern.MatchString(name) || !sha256Pattern.MatchString(digest) {
			return errorf(op, ErrValue, "definition digest of measure %s must be 64 lower-case hex digits", shown(name))
		}
	}
	seen := map[string]bool{}
	for _, f := range m.Files {
		k, err := ParseKey(f.Key)
		if err != nil || k.Manifest() {
			return errorf(op, ErrKey, "file %s is not a submission key (nor a holder's shares key)", shown(f.Key))
		}
		if k.Practice != m.Practice || k.RunID != m.RunID {
			return errorf(op, ErrPracticeMismatch, "file %s is outside this run's prefix %s; a manifest may only name its own practice's files", shown(f.Key), RunPrefix(m.Practice, m.RunID))
		}
		if seen[k.Name] {
			return errorf(op, ErrValue, "file %s is listed twice", shown(f.Key))
		}
		seen[k.Name] = true
		if f.Size < 0 || !sha256Pattern.MatchString(f.SHA256) {
			return errorf(op, ErrValue, "file %s has an invalid size or SHA-256", shown(f.Key))
		}
	}
	if !seen[FiguresName] {
		return errorf(op, ErrValue, "manifest lists no %s; every run has one submission file", FiguresName)
	}
	return nil
}

// Key is where this manifest is stored.
func (m *Manifest) Key() string { return ManifestKey(m.Practice, m.RunID) }

// SignManifest validates m and returns its signed envelope.
func SignManifest(m *Manifest, priv ed25519.PrivateKey) ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	payload, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return Seal(PayloadManifest, payload, priv)
}

// ReadManifestUnverified parses a manifest envelope without checking its signature, so a
// caller can find which practice's key to verify it with. Never trust what it returns.
func ReadManifestUnverified(data []byte) (*Manifest, *Envelope, error) {
	env, err := ParseEnvelope(data)
	if err != nil {
		return nil, nil, err
	}
	var m Manifest
	if err := strictJSON(env.Payload, &m); err != nil {
		return nil, nil, &Error{Op: "read manifest", Kind: ErrCorrupt, Detail: "the manifest payload is not valid JSON of the contract", Err: err}
	}
	return &m, env, nil
}

// VerifyManifest checks a manifest stored at key: the signature against pub, the content
// against the contract, and that it sits where its practice and run say it should.
func VerifyManifest(key string, data []byte, pub ed25519.PublicKey) (*Manifest, error) {
	env, err := ParseEnvelope(data)
	if err != nil {
		return nil, WithObject(err, key)
	}
	payload, err := env.Open(PayloadManifest, pub)
	if err != nil {
		return nil, WithObject(err, key)
	}
	var m Manifest
	if err := strictJSON(payload, &m); err != nil {
		return nil, &Error{Op: "read manifest", Subject: key, Kind: ErrCorrupt, Detail: "the manifest payload is not valid JSON of the contract", Err: err}
	}
	if err := m.Validate(); err != nil {
		return nil, WithObject(err, key)
	}
	if key != m.Key() {
		return nil, &Error{Op: "verify manifest", Subject: key, Kind: ErrPracticeMismatch,
			Detail: fmt.Sprintf("the signed manifest belongs at %s; a manifest copied to another practice or run is refused", m.Key())}
	}
	return &m, nil
}

// VerifyFile checks data against its manifest entry: size first, then SHA-256.
func VerifyFile(f FileEntry, data []byte) error {
	if int64(len(data)) != f.Size {
		return &Error{Op: "verify file", Subject: f.Key, Kind: ErrSize,
			Detail: fmt.Sprintf("%d bytes, the manifest says %d; the upload is incomplete or the file was changed", len(data), f.Size)}
	}
	h := sha256.Sum256(data)
	if hex.EncodeToString(h[:]) != f.SHA256 {
		return &Error{Op: "verify file", Subject: f.Key, Kind: ErrChecksum,
			Detail: "SHA-256 differs from the signed manifest; the file was changed after signing"}
	}
	return nil
}

// VerifySubmission checks a file against its signed manifest and only then parses it; the
// parsed submission must name the same practice, run, months and policy as the manifest.
func VerifySubmission(m *Manifest, f FileEntry, data []byte, lim Limits) (*Submission, error) {
	s, blocks, err := VerifyBlocks(m, f, data, lim)
	if err != nil {
		return nil, err
	}
	s.setCells(blocks)
	return s, nil
}

// VerifyBlocks is VerifySubmission giving the values by period and measure (see ReadBlocks).
func VerifyBlocks(m *Manifest, f FileEntry, data []byte, lim Limits) (*Submission, []Block, error) {
	if err := VerifyFile(f, data); err != nil {
		return nil, nil, err
	}
	s, blocks, err := ReadBlocks(data, lim)
	if err != nil {
		return nil, nil, WithObject(err, f.Key)
	}
	mismatch := func(what, got, want string) (*Submission, []Block, error) {
		return nil, nil, &Error{Op: "verify submission", Subject: f.Key, Kind: ErrPracticeMismatch,
			Detail: fmt.Sprintf("the file says its %s is %s, but the signed manifest says %s; a file copied from another practice's or run's folder is refused", what, shown(got), shown(want))}
	}
	switch {
	case s.Practice != m.Practice:
		return mismatch("practice", s.Practice, m.Practice)
	case s.RunID != m.RunID:
		return mismatch("run", s.RunID, m.RunID)
	case s.From.String() != m.From:
		return mismatch("first month", s.From.String(), m.From)
	case s.To.String() != m.To:
		return mismatch("last month", s.To.String(), m.To)
	case s.Policy != m.Policy:
		return mismatch("policy", s.Policy, m.Policy)
	}
	return s, blocks, nil
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func trimSpace(b []byte) []byte { return bytes.TrimSpace(b) }
