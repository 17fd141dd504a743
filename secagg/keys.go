package secagg

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/cloudflare/circl/kem"

	"github.com/tributary-health/tributary/formats"
)

// A holder has two key pairs: an HPKE (X25519) pair, to which practices encrypt its input
// shares and the other holder its aggregate share, and an Ed25519 pair that signs every
// message it writes to the store.

// Holder is one holder's public identity: what practices, the other holder and the
// coordinator know of it.
type Holder struct {
	ID   string
	Role string
	HPKE kem.PublicKey
	Sign ed25519.PublicKey
}

// HolderKey is a holder's private keys.
type HolderKey struct {
	ID   string
	Role string
	HPKE kem.PrivateKey
	Sign ed25519.PrivateKey
}

// Public returns the holder's public identity.
func (k *HolderKey) Public() Holder {
	return Holder{ID: k.ID, Role: k.Role, HPKE: k.HPKE.Public(), Sign: k.Sign.Public().(ed25519.PublicKey)}
}

// Recipient is the holder as an agent addresses it.
func (h Holder) Recipient() Recipient { return Recipient{ID: h.ID, Role: h.Role, Key: h.HPKE} }

// GenerateHolder makes a holder's two key pairs.
func GenerateHolder(id, role string) (*HolderKey, error) {
	if err := formats.ValidateHolderID(id); err != nil {
		return nil, err
	}
	if _, err := AggregatorOf(role); err != nil {
		return nil, err
	}
	_, priv, err := hpkeScheme().GenerateKeyPair()
	if err != nil {
		return nil, err
	}
	_, sign, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return &HolderKey{ID: id, Role: role, HPKE: priv, Sign: sign}, nil
}

func hpkeScheme() kem.Scheme {
	k, _, _ := suite.Params()
	return k.Scheme()
}

// ParseHPKEPublic decodes a base64 HPKE public key.
func ParseHPKEPublic(b64 string) (kem.PublicKey, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("HPKE public key is not base64: %w", err)
	}
	pub, err := hpkeScheme().UnmarshalBinaryPublicKey(raw)
	if err != nil {
		return nil, fmt.Errorf("HPKE public key is not an X25519 key of 32 bytes: %w", err)
	}
	return pub, nil
}

// EncodeHPKEPublic encodes an HPKE public key as base64.
func EncodeHPKEPublic(pub kem.PublicKey) string {
	b, _ := pub.MarshalBinary()
	return base64.StdEncoding.EncodeToString(b)
}

// PublicFile is a holder's public identity as a file (JSON), made by 'tributary-coordinator
// holder keys init' and given to the other holder and the coordinator.
type PublicFile struct {
	FormatVersion    int    `json:"format_version"`
	Holder           string `json:"holder"`
	Role             string `json:"role"`
	HPKEPublicKey    string `json:"hpke_public_key"` // base64, 32 bytes
	HPKEKeyID        string `json:"hpke_key_id"`
	SigningPublicKey string `json:"signing_public_key"` // base64 Ed25519, 32 bytes
	SigningKeyID     string `json:"signing_key_id"`
}

// privateFile is a holder's private keys as a file (JSON, mode 0600).
type privateFile struct {
	FormatVersion     int    `json:"format_version"`
	Holder            string `json:"holder"`
	Role              string `json:"role"`
	HPKEPrivateKey    string `json:"hpke_private_key"`    // base64
	SigningPrivateKey string `json:"signing_private_key"` // base64 of the 32-byte Ed25519 seed
}

const keyFileVersion = 1

// File returns the holder's public file.
func (h Holder) File() PublicFile {
	return PublicFile{FormatVersion: keyFileVersion, Holder: h.ID, Role: h.Role, HPKEPublicKey: EncodeHPKEPublic(h.HPKE), HPKEKeyID: KeyID(h.HPKE),
		SigningPublicKey: base64.StdEncoding.EncodeToString(h.Sign), SigningKeyID: formats.KeyID(h.Sign)}
}

// Decode decodes and checks a public file.
func (f PublicFile) Decode() (Holder, error) {
	if f.FormatVersion != keyFileVersion {
		return Holder{}, fmt.Errorf("holder key file version %d, this build reads %d", f.FormatVersion, keyFileVersion)
	}
	if err := formats.ValidateHolderID(f.Holder); err != nil {
		return Holder{}, err
	}
	if _, err := AggregatorOf(f.Role); err != nil {
		return Holder{}, err
	}
	hp, err := ParseHPKEPublic(f.HPKEPublicKey)
	if err != nil {
		return Holder{}, err
	}
	sign, err := base64.StdEncoding.DecodeString(f.SigningPublicKey)
	if err != nil || len(sign) != ed25519.PublicKeySize {
		return Holder{}, errors.New("signing public key is not base64 of 32 bytes")
	}
	h := Holder{ID: f.Holder, Role: f.Role, HPKE: hp, Sign: ed25519.PublicKey(sign)}
	if f.HPKEKeyID != KeyID(hp) || f.SigningKeyID != formats.KeyID(h.Sign) {
		return Holder{}, errors.New("a key id does not match its key")
	}
	return h, nil
}

// MarshalPublic writes a holder's public file.
func MarshalPublic(h Holder) []byte {
	b, _ := json.MarshalIndent(h.File(), "", "  ")
	return append(b, '\n')
}

// ParsePublic reads a holder's public file.
func ParsePublic(data []byte) (Holder, error) {
	var f PublicFile
	if err := strict(data, &f); err != nil {
		return Holder{}, fmt.Errorf("not a holder's public key file: %w", err)
	}
	return f.Decode()
}

// MarshalPrivate writes a holder's private key file.
func MarshalPrivate(k *HolderKey) []byte {
	raw, _ := k.HPKE.MarshalBinary()
	b, _ := json.MarshalIndent(privateFile{FormatVersion: keyFileVersion, Holder: k.ID, Role: k.Role,
		HPKEPrivateKey: base64.StdEncoding.EncodeToString(raw), SigningPrivateKey: base64.StdEncoding.EncodeToString(k.Sign.Seed())}, "", "  ")
	clear(raw)
	return append(b, '\n')
}

// ParsePrivate reads a holder's private key file.
func ParsePrivate(data []byte) (*HolderKey, error) {
	var f privateFile
	if err := strict(data, &f); err != nil {
		return nil, fmt.Errorf("not a holder's private key file: %w", err)
	}
	if f.FormatVersion != keyFileVersion {
		return nil, fmt.Errorf("holder key file version %d, this build reads %d", f.FormatVersion, keyFileVersion)
	}
	if err := formats.ValidateHolderID(f.Holder); err != nil {
		return nil, err
	}
	if _, err := AggregatorOf(f.Role); err != nil {
		return nil, err
	}
	raw, err := base64.StdEncoding.DecodeString(f.HPKEPrivateKey)
	if err != nil {
		return nil, errors.New("HPKE private key is not base64")
	}
	priv, err := hpkeScheme().UnmarshalBinaryPrivateKey(raw)
	clear(raw)
	if err != nil {
		return nil, fmt.Errorf("HPKE private key: %w", err)
	}
	seed, err := base64.StdEncoding.DecodeString(f.SigningPrivateKey)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, errors.New("signing private key is not base64 of a 32-byte seed")
	}
	k := &HolderKey{ID: f.Holder, Role: f.Role, HPKE: priv, Sign: ed25519.NewKeyFromSeed(seed)}
	clear(seed)
	// circl derives and caches the public key on first use, unsafely for concurrent callers:
	// derive it now, while k has one owner.
	_ = k.HPKE.Public()
	return k, nil
}

func strict(data []byte, v any) error {
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
