package formats

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"time"
)

// Registry is the federation's list of practices and their signing keys, signed by the
// coordinator's key and stored at RegistryKey. A practice may have had several keys; only
// keys not revoked verify anything.
type Registry struct {
	FormatVersion int             `json:"format_version"`
	Updated       time.Time       `json:"updated"`
	Practices     []RegistryEntry `json:"practices"`
}

// RegistryEntry is one key of one practice.
type RegistryEntry struct {
	Practice  string     `json:"practice"`
	Name      string     `json:"name"`       // display name
	PublicKey string     `json:"public_key"` // base64 of the 32-byte Ed25519 key
	KeyID     string     `json:"key_id"`
	Added     time.Time  `json:"added"`
	Revoked   *time.Time `json:"revoked,omitempty"`
}

// Validate checks ids and keys.
func (r *Registry) Validate() error {
	const op = "validate registry"
	if r.FormatVersion != RegistryVersion {
		return errorf(op, ErrFormatVersion, "registry format version %d, this build reads %d", r.FormatVersion, RegistryVersion)
	}
	seen := map[string]bool{}
	for _, e := range r.Practices {
		if err := ValidatePracticeID(e.Practice); err != nil {
			return err
		}
		pub, err := e.Key()
		if err != nil {
			return err
		}
		if e.KeyID != KeyID(pub) {
			return errorf(op, ErrValue, "practice %s: key id %s does not match its key", e.Practice, e.KeyID)
		}
		if seen[e.KeyID] {
			return errorf(op, ErrValue, "key %s is listed twice", e.KeyID)
		}
		seen[e.KeyID] = true
	}
	return nil
}

// Key decodes the entry's public key.
func (e RegistryEntry) Key() (ed25519.PublicKey, error) {
	raw, err := base64.StdEncoding.DecodeString(e.PublicKey)
	if err != nil || len(raw) != ed25519.PublicKeySize {
		return nil, errorf("read registry", ErrValue, "practice %s: public key is not base64 of 32 bytes", e.Practice)
	}
	return ed25519.PublicKey(raw), nil
}

// KeyFor returns the key that signed a manifest of practice with key id keyID: ErrUnknownKey
// if the practice has no such key, ErrRevoked if it was revoked.
func (r *Registry) KeyFor(practice, keyID string) (ed25519.PublicKey, error) {
	known := false
	for _, e := range r.Practices {
		if e.Practice != practice {
			continue
		}
		known = true
		if e.KeyID != keyID {
			continue
		}
		if e.Revoked != nil {
			return nil, errorf("look up key", ErrRevoked, "practice %s key %s was revoked on %s; the practice must sign again with its new key", practice, keyID, e.Revoked.Format(time.DateOnly))
		}
		return e.Key()
	}
	if !known {
		return nil, errorf("look up key", ErrUnknownKey, "practice %s is not in the federation registry; add it with 'tributary-coordinator registry add'", practice)
	}
	return nil, errorf("look up key", ErrUnknownKey, "practice %s has no registered key %s; register the practice's current public key", practice, keyID)
}

// Names maps practice ids to display names.
func (r *Registry) Names() map[string]string {
	out := map[string]string{}
	for _, e := range r.Practices {
		out[e.Practice] = e.Name
	}
	return out
}

// SignRegistry validates r and returns its signed envelope.
func SignRegistry(r *Registry, priv ed25519.PrivateKey) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	payload, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return Seal(PayloadRegistry, payload, priv)
}

// VerifyRegistry checks the registry's signature with the coordinator's public key.
func VerifyRegistry(data []byte, pub ed25519.PublicKey) (*Registry, error) {
	env, err := ParseEnvelope(data)
	if err != nil {
		return nil, WithObject(err, RegistryKey)
	}
	payload, err := env.Open(PayloadRegistry, pub)
	if err != nil {
		return nil, WithObject(err, RegistryKey)
	}
	var r Registry
	if err := strictJSON(payload, &r); err != nil {
		return nil, &Error{Op: "read registry", Subject: RegistryKey, Kind: ErrCorrupt, Detail: "not valid registry JSON", Err: err}
	}
	if err := r.Validate(); err != nil {
		return nil, WithObject(err, RegistryKey)
	}
	return &r, nil
}

// NewRegistryEntry makes an entry for a practice's public key.
func NewRegistryEntry(practice, name string, pub ed25519.PublicKey, now time.Time) (RegistryEntry, error) {
	if err := ValidatePracticeID(practice); err != nil {
		return RegistryEntry{}, err
	}
	if len(pub) != ed25519.PublicKeySize {
		return RegistryEntry{}, errorf("add registry entry", ErrValue, "practice %s: not an Ed25519 public key; give the practice's public key file (PEM) from 'tributary-agent keys init'", practice)
	}
	return RegistryEntry{
		Practice:  practice,
		Name:      name,
		PublicKey: base64.StdEncoding.EncodeToString(pub),
		KeyID:     KeyID(pub),
		Added:     now.UTC(),
	}, nil
}
