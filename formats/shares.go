package formats

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Secure aggregation (README.md, "Secure aggregation shares"): beside its figures.arrow a run
// may carry one shares file per holder, practices/<id>/runs/<run>/shares-<holder>.bin, holding
// for every month of the run a Prio3 report's public part in the clear and the holder's input
// share encrypted to the holder's HPKE key. This file defines the layout and its checks; the
// cryptography is in package secagg, which both the agent and the holders use.

// Names of a shares file.
const (
	SharesPrefix = "shares-"
	SharesSuffix = ".bin"
	// KindShares is the kind of a shares file's header.
	KindShares = "shares"
	// SharesMagic opens every shares file: the layout's name and version, 8 bytes.
	SharesMagic = "TRIBSHR2"
	// MaxSharesBytes bounds a shares file read from the store: a year of months is about
	// 1.7 MB for the holder with the larger share.
	MaxSharesBytes = 64 << 20
	// MaxSharesHeaderBytes bounds the JSON header inside it.
	MaxSharesHeaderBytes = 4 << 20
	// NonceBytes is the length of a report's nonce (its id), Prio3's nonce size.
	NonceBytes = 16
)

var holderIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// ValidateHolderID accepts 1-32 lower-case letters, digits and '-', starting with a letter or
// digit (e.g. "federation", "icb-analytics").
func ValidateHolderID(id string) error {
	if !holderIDPattern.MatchString(id) {
		return errorf("check holder id", ErrValue, "holder id %s must be 1-32 lower-case letters, digits or '-', starting with a letter or digit", shown(id))
	}
	return nil
}

// SharesName is the file name of a run's shares for holder.
func SharesName(holder string) string { return SharesPrefix + holder + SharesSuffix }

// SharesKey is the key of a run's shares file for holder.
func SharesKey(practice, runID, holder string) string {
	return RunPrefix(practice, runID) + SharesName(holder)
}

// holderOfName returns the holder a file name of a run's shares names, or false.
func holderOfName(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, SharesPrefix)
	if !ok {
		return "", false
	}
	holder, ok := strings.CutSuffix(rest, SharesSuffix)
	if !ok || ValidateHolderID(holder) != nil {
		return "", false
	}
	return holder, true
}

// VDAFParams name the Prio3 instance the reports of a shares file were made with: the
// variant, each count's bit width, the proof's chunk length, and the layout of the measured
// vector: for each of Measures in order, its NumFine fine cells in FineShape order.
type VDAFParams struct {
	Name        string   `json:"name"`
	Bits        int      `json:"bits"`
	ChunkLength int      `json:"chunk_length"`
	Measures    []string `json:"measures"`
}

// Length is the number of counts a report's vector holds.
func (p VDAFParams) Length() int { return len(p.Measures) * NumFine }

// Equal reports whether p and q name the same instance.
func (p VDAFParams) Equal(q VDAFParams) bool {
	return p.Name == q.Name && p.Bits == q.Bits && p.ChunkLength == q.ChunkLength && strings.Join(p.Measures, ",") == strings.Join(q.Measures, ",")
}

// SharesHeader is the public part of a shares file: whose run, for which holder, and each
// month's report. Nothing in it depends on a count.
type SharesHeader struct {
	FormatVersion int    `json:"format_version"`
	Kind          string `json:"kind"`
	Practice      string `json:"practice"`
	RunID         string `json:"run_id"`
	Holder        string `json:"holder"`
	// HolderKeyID names the HPKE public key the shares are encrypted to (secagg.KeyID), so a
	// holder can tell a file made for another key from a damaged one.
	HolderKeyID string `json:"holder_key_id"`
	// Aggregator is the holder's Prio3 aggregator id: 0 for the leader, 1 for the helper.
	Aggregator int        `json:"aggregator"`
	VDAF       VDAFParams `json:"vdaf"`
	// HPKE names the suite each share is encrypted with.
	HPKE    string        `json:"hpke"`
	Reports []ShareReport `json:"reports"`
}

// ShareReport is one month's report as one holder receives it. Month, Nonce, Supplied and
// PublicShare are the same in every holder's file; Enc and the ciphertext are the holder's.
type ShareReport struct {
	Month string `json:"month"`
	// Nonce is the report's id (hex of NonceBytes random bytes): unique, never reused.
	Nonce string `json:"nonce"`
	// Supplied are the measures of the layout that the run supplied; the others' cells are
	// zero in the vector and are not counted as zeros.
	Supplied    []string `json:"supplied"`
	PublicShare []byte   `json:"public_share"` // base64 in JSON
	Enc         []byte   `json:"enc"`          // the HPKE encapsulated key
	Size        int64    `json:"size"`         // bytes of its ciphertext in the body
}

// Shares is a parsed shares file: its header and each report's ciphertext, in order.
type Shares struct {
	Header      SharesHeader
	Ciphertexts [][]byte
}

var nonceHex = regexp.MustCompile(`^[0-9a-f]{32}$`)

// Validate checks the header's own consistency.
func (h *SharesHeader) Validate() error {
	const op = "validate shares"
	if h.FormatVersion != FormatVersion {
		return errorf(op, ErrFormatVersion, "shares format version %d, this build reads version %d; upgrade so agent and holders agree", h.FormatVersion, FormatVersion)
	}
	if h.Kind != KindShares {
		return errorf(op, ErrSchema, "file kind %s, expected %s", shown(h.Kind), KindShares)
	}
	if err := ValidatePracticeID(h.Practice); err != nil {
		return err
	}
	if err := ValidateRunID(h.RunID); err != nil {
		return err
	}
	if err := ValidateHolderID(h.Holder); err != nil {
		return err
	}
	if !keyIDPattern.MatchString(h.HolderKeyID) {
		return errorf(op, ErrValue, "holder key id %s is not 16 lower-case hex digits", shown(h.HolderKeyID))
	}
	if h.Aggregator != 0 && h.Aggregator != 1 {
		return errorf(op, ErrValue, "aggregator %d; a report has two holders, 0 and 1", h.Aggregator)
	}
	v := h.VDAF
	if v.Name == "" || v.Bits < 1 || v.Bits > 64 || v.ChunkLength < 1 || v.ChunkLength > 1<<16 || len(v.Measures) == 0 || len(v.Measures) > 64 {
		return errorf(op, ErrValue, "the VDAF parameters are out of range (name %s, %d bits, chunk length %d, %d measures)", shown(v.Name), v.Bits, v.ChunkLength, len(v.Measures))
	}
	layout := map[string]bool{}
	for _, m := range v.Measures {
		if !MeasureNamePattern.MatchString(m) || layout[m] {
			return errorf(op, ErrValue, "layout measure %s is not a measure name, or is listed twice", shown(m))
		}
		layout[m] = true
	}
	if h.HPKE == "" || len(h.HPKE) > 200 {
		return errorf(op, ErrValue, "no HPKE suite named")
	}
	if len(h.Reports) == 0 || len(h.Reports) > MaxRunMonths {
		return errorf(op, ErrValue, "%d reports; a run has 1 to %d months", len(h.Reports), MaxRunMonths)
	}
	months, nonces := map[Month]bool{}, map[string]bool{}
	for i, r := range h.Reports {
		m, err := ParseMonth(r.Month)
		if err != nil {
			return errorf(op, ErrValue, "report %d: month %s is not YYYY-MM", i, shown(r.Month))
		}
		if months[m] {
			return errorf(op, ErrValue, "report %d: month %s has two reports", i, r.Month)
		}
		months[m] = true
		if !nonceHex.MatchString(r.Nonce) {
			return errorf(op, ErrValue, "report %d: nonce %s is not %d lower-case hex digits", i, shown(r.Nonce), 2*NonceBytes)
		}
		if nonces[r.Nonce] {
			return errorf(op, ErrValue, "report %d: nonce %s is used twice; every report has its own", i, r.Nonce)
		}
		nonces[r.Nonce] = true
		seen := map[string]bool{}
		for _, s := range r.Supplied {
			if !layout[s] || seen[s] {
				return errorf(op, ErrValue, "report %d: supplied measure %s is not in the layout, or is listed twice", i, shown(s))
			}
			seen[s] = true
		}
		if len(r.PublicShare) > 1<<10 || len(r.Enc) == 0 || len(r.Enc) > 1<<10 || r.Size <= 0 || r.Size > MaxSharesBytes {
			return errorf(op, ErrValue, "report %d: public share, encapsulated key or ciphertext size out of range", i)
		}
	}
	return nil
}

var keyIDPattern = regexp.MustCompile(`^[0-9a-f]{16}$`)

// MarshalShares writes a shares file: SharesMagic, the header's length (4 bytes, big-endian),
// the header as JSON, then every report's ciphertext in order.
func MarshalShares(s *Shares) ([]byte, error) {
	if len(s.Ciphertexts) != len(s.Header.Reports) {
		return nil, errorf("write shares", ErrValue, "%d ciphertexts for %d reports", len(s.Ciphertexts), len(s.Header.Reports))
	}
	for i, ct := range s.Ciphertexts {
		s.Header.Reports[i].Size = int64(len(ct))
	}
	if err := s.Header.Validate(); err != nil {
		return nil, err
	}
	head, err := json.Marshal(&s.Header)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(SharesMagic)
	_ = binary.Write(&b, binary.BigEndian, uint32(len(head)))
	b.Write(head)
	for _, ct := range s.Ciphertexts {
		b.Write(ct)
	}
	return b.Bytes(), nil
}

// ReadShares parses a shares file, checking its size, framing and header before it slices
// the ciphertexts (which it does not decrypt).
func ReadShares(data []byte) (*Shares, error) {
	const op = "read shares"
	if len(data) > MaxSharesBytes {
		return nil, errorf(op, ErrTooLarge, "%d bytes, the limit is %d", len(data), MaxSharesBytes)
	}
	if len(data) < len(SharesMagic)+4 || string(data[:len(SharesMagic)]) != SharesMagic {
		if len(data) >= 7 && string(data[:7]) == SharesMagic[:7] {
			return nil, errorf(op, ErrFormatVersion, "a shares file of another layout version (%s); this build reads %s: upgrade so agent and holders agree", shown(string(data[:8])), SharesMagic)
		}
		return nil, errorf(op, ErrCorrupt, "not a shares file (it does not begin with %s)", SharesMagic)
	}
	rest := data[len(SharesMagic):]
	n := binary.BigEndian.Uint32(rest)
	rest = rest[4:]
	if n > MaxSharesHeaderBytes || int64(n) > int64(len(rest)) {
		return nil, errorf(op, ErrCorrupt, "the header claims %d bytes; the file holds %d after it and headers are at most %d", n, len(rest), MaxSharesHeaderBytes)
	}
	s := &Shares{}
	if err := strictJSON(rest[:n], &s.Header); err != nil {
		return nil, &Error{Op: op, Kind: ErrCorrupt, Detail: "the header is not valid JSON of the contract", Err: err}
	}
	if err := s.Header.Validate(); err != nil {
		return nil, err
	}
	body := rest[n:]
	var total int64
	for _, r := range s.Header.Reports {
		total += r.Size
	}
	if total != int64(len(body)) {
		return nil, errorf(op, ErrCorrupt, "the reports' ciphertexts add up to %d bytes, the file holds %d after the header", total, len(body))
	}
	for _, r := range s.Header.Reports {
		s.Ciphertexts = append(s.Ciphertexts, body[:r.Size:r.Size])
		body = body[r.Size:]
	}
	return s, nil
}

// VerifyShares checks a shares file against its signed manifest entry (size, SHA-256) and
// only then parses it; the file must name the practice, run and holder of its key, and
// months of the run only.
func VerifyShares(m *Manifest, f FileEntry, data []byte) (*Shares, error) {
	if err := VerifyFile(f, data); err != nil {
		return nil, err
	}
	s, err := ReadShares(data)
	if err != nil {
		return nil, WithObject(err, f.Key)
	}
	k, err := ParseKey(f.Key)
	if err != nil {
		return nil, err
	}
	h := &s.Header
	mismatch := func(what, got, want string) (*Shares, error) {
		return nil, &Error{Op: "verify shares", Subject: f.Key, Kind: ErrPracticeMismatch,
			Detail: fmt.Sprintf("the file says its %s is %s, but its key and signed manifest say %s; a shares file copied from another practice's, run's or holder's place is refused", what, shown(got), shown(want))}
	}
	switch {
	case h.Practice != m.Practice || k.Practice != m.Practice:
		return mismatch("practice", h.Practice, m.Practice)
	case h.RunID != m.RunID || k.RunID != m.RunID:
		return mismatch("run", h.RunID, m.RunID)
	case h.Holder != k.Holder:
		return mismatch("holder", h.Holder, k.Holder)
	}
	from, to, err := m.Months()
	if err != nil {
		return nil, err
	}
	for _, r := range h.Reports {
		if mo, _ := ParseMonth(r.Month); mo < from || mo > to {
			return nil, &Error{Op: "verify shares", Subject: f.Key, Kind: ErrValue,
				Detail: fmt.Sprintf("a report for %s, outside the run's months %s..%s", r.Month, m.From, m.To)}
		}
	}
	return s, nil
}

// ReportAAD is what each report's ciphertext is bound to (HPKE's associated data): the
// practice, run, holder and its key, the VDAF instance, the month, the nonce, the supplied
// measures and the public share. A share moved to another practice, run, month, holder or
// report does not decrypt.
func ReportAAD(h *SharesHeader, r *ShareReport) []byte {
	var b bytes.Buffer
	field := func(s string) {
		_ = binary.Write(&b, binary.BigEndian, uint32(len(s)))
		b.WriteString(s)
	}
	field("tributary shares v2")
	field(h.Practice)
	field(h.RunID)
	field(h.Holder)
	field(h.HolderKeyID)
	field(strconv.Itoa(h.Aggregator))
	field(h.VDAF.Name)
	field(strconv.Itoa(h.VDAF.Bits))
	field(strconv.Itoa(h.VDAF.ChunkLength))
	field(strings.Join(h.VDAF.Measures, ","))
	field(h.HPKE)
	field(r.Month)
	field(r.Nonce)
	field(strings.Join(r.Supplied, ","))
	field(hex.EncodeToString(r.PublicShare))
	return b.Bytes()
}

// ReportDigest names a report's public part, the same in both holders' files: what the two
// holders compare before they combine their halves of its verification.
func ReportDigest(practice, runID string, v VDAFParams, r *ShareReport) string {
	var b bytes.Buffer
	for _, s := range []string{"tributary report v2", practice, runID, v.Name, strconv.Itoa(v.Bits), strconv.Itoa(v.ChunkLength),
		strings.Join(v.Measures, ","), r.Month, r.Nonce, strings.Join(r.Supplied, ","), hex.EncodeToString(r.PublicShare)} {
		_ = binary.Write(&b, binary.BigEndian, uint32(len(s)))
		b.WriteString(s)
	}
	return sha256Hex(b.Bytes())
}
