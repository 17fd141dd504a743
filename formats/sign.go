package formats

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"strconv"
)

// Payload types of signed envelopes. The type is part of what is signed, so a signature over
// a registry can never pass as one over a manifest.
const (
	PayloadManifest = "application/vnd.tributary.manifest+json; version=2"
	PayloadRegistry = "application/vnd.tributary.registry+json; version=1"
)

// MaxEnvelopeBytes bounds a manifest or registry read from the store.
const MaxEnvelopeBytes = 4 << 20

// Envelope is a signed payload, after the DSSE shape: the signature covers the exact payload
// bytes and their type, so verifying never depends on re-encoding JSON.
type Envelope struct {
	PayloadType string `json:"payload_type"`
	Payload     []byte `json:"payload"` // base64 in JSON
	KeyID       string `json:"key_id"`
	Signature   []byte `json:"signature"` // base64 in JSON
}

// pae is DSSE's pre-authentication encoding with Tributary's own prefix.
func pae(payloadType string, payload []byte) []byte {
	b := []byte("TRIBUTARYv1 " + strconv.Itoa(len(payloadType)) + " " + payloadType + " " + strconv.Itoa(len(payload)) + " ")
	return append(b, payload...)
}

// KeyID names a public key: the first 16 hex digits of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	h := sha256.Sum256(pub)
	return hex.EncodeToString(h[:8])
}

// Seal signs payload and returns the envelope's JSON.
func Seal(payloadType string, payload []byte, priv ed25519.PrivateKey) ([]byte, error) {
	env := Envelope{
		PayloadType: payloadType,
		Payload:     payload,
		KeyID:       KeyID(priv.Public().(ed25519.PublicKey)),
		Signature:   ed25519.Sign(priv, pae(payloadType, payload)),
	}
	return json.MarshalIndent(env, "", "  ")
}

// ParseEnvelope decodes an envelope without verifying it.
func ParseEnvelope(data []byte) (*Envelope, error) {
	const op = "read signed envelope"
	if len(data) > MaxEnvelopeBytes {
		return nil, errorf(op, ErrTooLarge, "%d bytes, the limit is %d", len(data), MaxEnvelopeBytes)
	}
	var env Envelope
	if err := strictJSON(data, &env); err != nil {
		return nil, &Error{Op: op, Kind: ErrCorrupt, Detail: "not a signed Tributary envelope", Err: err}
	}
	if env.PayloadType == "" || len(env.Signature) == 0 {
		return nil, errorf(op, ErrCorrupt, "the envelope has no payload type or signature")
	}
	return &env, nil
}

// Open verifies the envelope's signature with pub and returns the payload. want is the
// payload type the caller expects.
func (env *Envelope) Open(want string, pub ed25519.PublicKey) ([]byte, error) {
	const op = "verify signature"
	if env.PayloadType != want {
		if env.PayloadType == PayloadManifest || env.PayloadType == PayloadRegistry {
			return nil, errorf(op, ErrSchema, "the envelope holds a %s, not a %s; the object at this key is of the wrong kind", payloadName(env.PayloadType), payloadName(want))
		}
		return nil, errorf(op, ErrFormatVersion, "payload type %s is not one this version reads (%s); upgrade so agent and coordinator agree", shown(env.PayloadType), shown(want))
	}
	if len(pub) != ed25519.PublicKeySize {
		return nil, errorf(op, ErrUnknownKey, "no usable public key")
	}
	if env.KeyID != KeyID(pub) {
		return nil, errorf(op, ErrSignature, "signed with key %s, but the registered key is %s; sign with the registered key, or register the key that signed", env.KeyID, KeyID(pub))
	}
	if len(env.Signature) != ed25519.SignatureSize || !ed25519.Verify(pub, pae(env.PayloadType, env.Payload), env.Signature) {
		return nil, errorf(op, ErrSignature, "the signature does not match the registered key %s; the content was changed after signing or signed by someone else", KeyID(pub))
	}
	return env.Payload, nil
}

func payloadName(payloadType string) string {
	if payloadType == PayloadRegistry {
		return "registry"
	}
	return "manifest"
}

func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytesReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.Decode(new(json.RawMessage)) != io.EOF {
		return fmt.Errorf("trailing data after the JSON document")
	}
	return nil
}

// GenerateKey makes a new Ed25519 key pair.
func GenerateKey() (ed25519.PublicKey, ed25519.PrivateKey, error) {
	return ed25519.GenerateKey(rand.Reader)
}

// MarshalPrivateKey encodes a private key as PKCS#8 PEM (readable by openssl).
func MarshalPrivateKey(priv ed25519.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// MarshalPublicKey encodes a public key as PKIX PEM (readable by openssl).
func MarshalPublicKey(pub ed25519.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}

// ParsePrivateKey reads what MarshalPrivateKey wrote.
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	const op = "read private key"
	blk, _ := pem.Decode(data)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, errorf(op, ErrCorrupt, "not a PEM private key; create one with 'tributary-agent keys init'")
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, &Error{Op: op, Kind: ErrCorrupt, Detail: "unreadable PKCS#8 key", Err: err}
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, errorf(op, ErrCorrupt, "the key is not Ed25519; create one with 'tributary-agent keys init'")
	}
	return priv, nil
}

// ParsePublicKey reads a PEM public key, or the bare base64 form used in the registry.
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	const op = "read public key"
	blk, _ := pem.Decode(data)
	if blk == nil {
		raw, err := base64.StdEncoding.DecodeString(string(trimSpace(data)))
		if err != nil || len(raw) != ed25519.PublicKeySize {
			return nil, errorf(op, ErrCorrupt, "not a PEM or base64 Ed25519 public key")
		}
		return ed25519.PublicKey(raw), nil
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, &Error{Op: op, Kind: ErrCorrupt, Detail: "unreadable PKIX key", Err: err}
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, errorf(op, ErrCorrupt, "the key is not Ed25519")
	}
	return pub, nil
}
