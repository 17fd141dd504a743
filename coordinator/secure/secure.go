// Package secure is what the holders of secure aggregation publish and how the coordinator
// reads it (coordinator/README.md, "Secure aggregation"): the federation's holders file, each
// publication round's signed record and its disclosure-controlled figures, and the signed
// messages the two holders exchange through the store.
//
// Store layout:
//
//	federation/holders.json                        the two holders' public keys, signed by the coordinator
//	federation/holders/<holder>/rounds/<round>/... each holder's messages of a round (package holder)
//	federation/secure/<round>/round.json           a round's record, signed by the leader holder
//	federation/secure/<round>/figures-<from>-<to>.arrow  its protected figures (a submission file)
//
// Nothing here holds an exact count: the figures files carry only values through the
// federation's disclosure policy, and the record names practice sets, never values.
package secure

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/secagg"
)

// Keys and names.
const (
	HoldersKey      = formats.FederationPrefix + "holders.json"
	HoldersPrefix   = formats.FederationPrefix + "holders/"
	Prefix          = formats.FederationPrefix + "secure/"
	RoundName       = "round.json"
	FiguresPrefix   = "figures-"
	PayloadHolders  = "application/vnd.tributary.holders+json; version=1"
	PayloadRound    = "application/vnd.tributary.secure-round+json; version=1"
	PayloadMessage  = "application/vnd.tributary.holder-message+json; version=1"
	FormatVersion   = 1
	Practice        = "federation" // the practice id inside a round's figures files
	Extractor       = "secure-aggregation@1"
	MaxMessageBytes = 1 << 30
	// MethodSecure marks a figure answered from securely aggregated federation totals.
	MethodSecure = "secure"
)

// RoundPrefix is where a round's publication lives.
func RoundPrefix(round string) string { return Prefix + round + "/" }

// RoundKey is the key of a round's signed record.
func RoundKey(round string) string { return RoundPrefix(round) + RoundName }

// FiguresKey is the key of a round's figures for months from..to.
func FiguresKey(round string, from, to formats.Month) string {
	return RoundPrefix(round) + FiguresPrefix + from.String() + "-" + to.String() + ".arrow"
}

// MessagePrefix is where holder's messages of a round live.
func MessagePrefix(holder, round string) string {
	return HoldersPrefix + holder + "/rounds/" + round + "/"
}

// HoldersFile is federation/holders.json: the federation's two holders, signed by the
// coordinator, so that the combine knows whose signature a round's record must carry.
type HoldersFile struct {
	FormatVersion int                 `json:"format_version"`
	Updated       time.Time           `json:"updated"`
	Holders       []secagg.PublicFile `json:"holders"`
}

// ErrNoHolders: the store has no holders file, so there is no secure aggregation.
var ErrNoHolders = errors.New("the federation has no holders of secure aggregation (no federation/holders.json)")

// SignHolders makes the signed holders file for a leader and a helper.
func SignHolders(leader, helper secagg.Holder, coordinator ed25519.PrivateKey, now time.Time) ([]byte, error) {
	if leader.Role != secagg.RoleLeader || helper.Role != secagg.RoleHelper || leader.ID == helper.ID {
		return nil, errors.New("give one leader and one helper, with different ids")
	}
	payload, err := json.MarshalIndent(HoldersFile{FormatVersion: FormatVersion, Updated: now.UTC(), Holders: []secagg.PublicFile{leader.File(), helper.File()}}, "", "  ")
	if err != nil {
		return nil, err
	}
	return formats.Seal(PayloadHolders, payload, coordinator)
}

// LoadHolders reads and verifies federation/holders.json: ErrNoHolders when there is none.
func LoadHolders(ctx context.Context, st objstore.Store, coordinator ed25519.PublicKey) (leader, helper secagg.Holder, sum string, err error) {
	data, _, err := st.Get(ctx, HoldersKey, formats.MaxEnvelopeBytes)
	if errors.Is(err, objstore.ErrNotFound) {
		return leader, helper, "", ErrNoHolders
	}
	if err != nil {
		return leader, helper, "", fmt.Errorf("read %s: %w", HoldersKey, err)
	}
	env, err := formats.ParseEnvelope(data)
	if err != nil {
		return leader, helper, "", formats.WithObject(err, HoldersKey)
	}
	payload, err := env.Open(PayloadHolders, coordinator)
	if err != nil {
		return leader, helper, "", fmt.Errorf("%s does not verify with the coordinator's key: %w", HoldersKey, err)
	}
	var f HoldersFile
	if err := Strict(payload, &f); err != nil || f.FormatVersion != FormatVersion || len(f.Holders) != 2 {
		return leader, helper, "", fmt.Errorf("%s is not a holders file of version %d naming two holders", HoldersKey, FormatVersion)
	}
	for _, pf := range f.Holders {
		h, err := pf.Decode()
		if err != nil {
			return leader, helper, "", fmt.Errorf("%s: %w", HoldersKey, err)
		}
		if h.Role == secagg.RoleLeader {
			leader = h
		} else {
			helper = h
		}
	}
	if leader.ID == "" || helper.ID == "" {
		return leader, helper, "", fmt.Errorf("%s does not name a leader and a helper", HoldersKey)
	}
	return leader, helper, SHA256(data), nil
}

// Round is a publication round's record, signed by the leader holder: which months it
// published, from which practices' reports, which it refused and why.
type Round struct {
	FormatVersion int       `json:"format_version"`
	Round         string    `json:"round"` // an id of the run-id form: sorts by time
	Created       time.Time `json:"created"`
	Leader        string    `json:"leader"`
	Helper        string    `json:"helper"`
	Policy        string    `json:"policy"`
	MinPractices  int       `json:"min_practices"`
	// VDAF is the Prio3 instance of the reports.
	VDAF formats.VDAFParams `json:"vdaf"`
	// HelperAggregate is the SHA-256 of the helper's signed aggregate message that was
	// combined: the helper's part in every total.
	HelperAggregate string        `json:"helper_aggregate_sha256"`
	Segments        []Segment     `json:"segments"`
	Months          []MonthRecord `json:"months"`
	Rejected        []Rejection   `json:"rejected"`
}

// Segment is one figures file of the round: consecutive months published with the same
// measures, so that its quarters and years are sums of its months.
type Segment struct {
	Key      string   `json:"key"`
	Size     int64    `json:"size"`
	SHA256   string   `json:"sha256"`
	From     string   `json:"from"`
	To       string   `json:"to"`
	Measures []string `json:"measures"`
}

// MonthRecord is what a round did with one month.
type MonthRecord struct {
	Month string `json:"month"`
	// Practices whose report of the month was aggregated, sorted.
	Practices []string `json:"practices"`
	// Runs names each practice's run whose report was aggregated (practice -> run id), so
	// that the combine uses a total only where it combines the same runs.
	Runs map[string]string `json:"runs,omitempty"`
	// Measures published, each with the practices of Practices that did not supply it.
	Measures []MeasureRecord `json:"measures"`
	// Withheld are measures (or "*", the whole month) the differencing guard refused.
	Withheld []Withheld `json:"withheld,omitempty"`
}

// MeasureRecord is one published measure of a month.
type MeasureRecord struct {
	Measure   string   `json:"measure"`
	Practices int      `json:"practices"`         // practices whose report supplied it
	Without   []string `json:"without,omitempty"` // practices aggregated that did not supply it
}

// Withheld is a total the guard refused, with its reason.
type Withheld struct {
	Measure string `json:"measure"` // "*" for every measure of the month
	Reason  string `json:"reason"`
}

// Rejection is a report that was not aggregated, and why.
type Rejection struct {
	Practice string `json:"practice"`
	RunID    string `json:"run_id,omitempty"`
	Month    string `json:"month,omitempty"`
	Nonce    string `json:"nonce,omitempty"`
	Holder   string `json:"holder"` // which holder refused it
	Kind     string `json:"kind"`
	Reason   string `json:"reason"`
}

// Rejection kinds.
const (
	KindNotRegistered   = "not_registered"
	KindRevoked         = "revoked_key"
	KindBadSignature    = "bad_signature"
	KindWrongHolder     = "wrong_holder"
	KindReplay          = "replay"
	KindInvalid         = "invalid"
	KindUndecryptable   = "undecryptable"
	KindMalformed       = "malformed"
	KindMissing         = "missing"
	KindDisagree        = "holders_disagree"
	KindManifestChanged = "manifest_changed"
	KindLayout          = "layout"
)

// SHA256 is the lower-case hex SHA-256 of data.
func SHA256(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}

// Strict decodes JSON refusing unknown fields and trailing data.
func Strict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.Decode(new(json.RawMessage)) != io.EOF {
		return errors.New("trailing data after the JSON document")
	}
	return nil
}

// commit is the signed part of a message: it names the message's body by size and digest.
type commit struct {
	Key    string `json:"key"`
	Kind   string `json:"kind"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// SigSuffix is added to a message's key for its signature (written after the body).
const SigSuffix = ".sig"

// PutSigned stores v as JSON at key, then the signature over its digest at key+SigSuffix;
// the signature is written last, so a message exists once it is signed. kind binds the
// message's purpose. It returns the body's SHA-256.
func PutSigned(ctx context.Context, st objstore.Store, key, kind string, v any, priv ed25519.PrivateKey) (string, error) {
	body, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	sum := SHA256(body)
	if _, err := st.Put(ctx, key, body); err != nil {
		return "", err
	}
	c, err := json.Marshal(commit{Key: key, Kind: kind, Size: int64(len(body)), SHA256: sum})
	if err != nil {
		return "", err
	}
	sig, err := formats.Seal(PayloadMessage, c, priv)
	if err != nil {
		return "", err
	}
	if _, err := st.Put(ctx, key+SigSuffix, sig); err != nil {
		return "", err
	}
	return sum, nil
}

// ErrNotYet: the message is not (yet) in the store.
var ErrNotYet = errors.New("not in the store yet")

// GetSigned reads the message at key signed by pub for kind into v (strict JSON) and
// returns its body's SHA-256. A message whose signature is absent gives ErrNotYet.
func GetSigned(ctx context.Context, st objstore.Store, key, kind string, pub ed25519.PublicKey, v any) (string, error) {
	sig, _, err := st.Get(ctx, key+SigSuffix, formats.MaxEnvelopeBytes)
	if errors.Is(err, objstore.ErrNotFound) {
		return "", ErrNotYet
	}
	if err != nil {
		return "", err
	}
	env, err := formats.ParseEnvelope(sig)
	if err != nil {
		return "", formats.WithObject(err, key+SigSuffix)
	}
	payload, err := env.Open(PayloadMessage, pub)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	var c commit
	if err := Strict(payload, &c); err != nil {
		return "", fmt.Errorf("%s: the signed commit is not valid: %w", key, err)
	}
	if c.Key != key || c.Kind != kind {
		return "", fmt.Errorf("%s: the signature is for %s (%s), not this %s; a message moved or of another kind is refused", key, c.Key, c.Kind, kind)
	}
	if c.Size < 0 || c.Size > MaxMessageBytes {
		return "", fmt.Errorf("%s: %d bytes, more than a message may hold", key, c.Size)
	}
	body, _, err := st.Get(ctx, key, max(c.Size, 1))
	if err != nil {
		return "", err
	}
	if int64(len(body)) != c.Size || SHA256(body) != c.SHA256 {
		return "", fmt.Errorf("%s: the body does not match its signature (size or SHA-256); it was changed after signing", key)
	}
	if err := Strict(body, v); err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	return c.SHA256, nil
}

func jsonIndent(v any) ([]byte, error) { return json.MarshalIndent(v, "", "  ") }
