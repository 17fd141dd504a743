// Package secagg is the cryptography of Tributary's secure aggregation (issue 11), shared by
// the agent, which makes reports, and the two holders, which verify and sum them. It writes
// no cryptography of its own: the reports are Prio3SumVec (the IETF VDAF draft, from
// github.com/cloudflare/circl/vdaf/prio3/sumvec) and each holder's input share is encrypted
// to that holder's key with HPKE (RFC 9180, circl/hpke: DHKEM(X25519, HKDF-SHA256),
// HKDF-SHA256, AES-128-GCM). This package chooses the parameters, lays out the vector, and
// moves bytes between those libraries and the shares files of formats.
//
// # The measured vector
//
// A report is one practice-month: for each measure of the layout (formats.Measures, in
// order), its formats.NumFine exact counts of age band × sex in formats.FineShape order.
// Margins, quarters and years are sums of these, so the holders form them from the summed
// fine cells. Each count is proved to lie in 0..MaxCount (Bits bits): see Bits.
package secagg

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/cloudflare/circl/hpke"
	"github.com/cloudflare/circl/kem"
	"github.com/cloudflare/circl/vdaf/prio3/sumvec"

	"github.com/tributary-health/tributary/formats"
)

// Bits is the width of every count in a report. 16 bits hold 0..65,535 in one practice's
// age band × sex cell of one month, about four times the largest such cell an English
// practice has (a university practice's 20-24 band of one sex, some 15,000 patients; a
// 100,000-patient practice's largest band, under 10,000; consultations or bed days of one
// cell in a month, under 20,000). A 17th bit would cost 6% more bytes and time in every
// report for counts no practice has; a count over the width is not sent (the agent leaves
// that month out of secure aggregation and says so) and a report claiming one fails
// verification at the holders.
const Bits = 16

// MaxCount is the largest count a report can carry.
const MaxCount = 1<<Bits - 1

// ChunkLength is the proof's chunk length: near the square root of the encoded
// measurement's length (9 measures × 57 cells × 16 bits = 8,208), which the VDAF draft
// recommends and which measured fastest here (10 ms to shard, 4 ms to prepare one share).
const ChunkLength = 90

// VDAFName names the Prio3 variant in shares files.
const VDAFName = "Prio3SumVec"

// SuiteName names the HPKE suite in shares files.
const SuiteName = "DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM"

var suite = hpke.NewSuite(hpke.KEM_X25519_HKDF_SHA256, hpke.KDF_HKDF_SHA256, hpke.AEAD_AES128GCM)

// HPKE info strings: each use of a holder's key is bound to its purpose.
var (
	// InfoInputShare: a practice's input share, sent to a holder.
	InfoInputShare = []byte("tributary secure aggregation v2: input share")
	// InfoVerifyKey: the leader's Prio3 verification key, sent to the helper.
	InfoVerifyKey = []byte("tributary secure aggregation v2: verify key")
	// InfoAggShare: the helper's aggregate share, sent to the leader.
	InfoAggShare = []byte("tributary secure aggregation v2: aggregate share")
)

// Aggregator ids of the two holders (Prio3's aggregator ids).
const (
	Leader = 0 // receives the larger share, combines the aggregate shares and publishes
	Helper = 1
)

// Role names.
const (
	RoleLeader = "leader"
	RoleHelper = "helper"
)

// AggregatorOf returns the aggregator id of a role.
func AggregatorOf(role string) (int, error) {
	switch role {
	case RoleLeader:
		return Leader, nil
	case RoleHelper:
		return Helper, nil
	}
	return 0, fmt.Errorf("holder role %q is neither %q nor %q", role, RoleLeader, RoleHelper)
}

// Params is the VDAF instance of this build: the catalogue's measures, Bits, ChunkLength.
func Params() formats.VDAFParams {
	return formats.VDAFParams{Name: VDAFName, Bits: Bits, ChunkLength: ChunkLength, Measures: formats.Measures}
}

// VDAF is one Prio3SumVec instance, for one layout. SV is not safe for concurrent use (its
// XOF state is shared between calls): a goroutine of its own takes Instance.
type VDAF struct {
	Params formats.VDAFParams
	SV     *sumvec.SumVec
}

// Instance returns a new instance of the same VDAF, for one goroutine (making one costs about
// a microsecond).
func (v *VDAF) Instance() *sumvec.SumVec {
	sv, err := newSumVec(v.Params)
	if err != nil {
		panic(err) // v.Params made v
	}
	return sv
}

func newSumVec(p formats.VDAFParams) (*sumvec.SumVec, error) {
	ctx := []byte("tributary/v2/" + strings.Join(p.Measures, ","))
	return sumvec.New(2, uint(p.Length()), uint(p.Bits), uint(p.ChunkLength), ctx)
}

// New makes the instance p names. Its application context binds the layout, so reports of
// different layouts never verify as each other's.
func New(p formats.VDAFParams) (*VDAF, error) {
	if p.Name != VDAFName {
		return nil, fmt.Errorf("VDAF %q: this build makes and verifies %s only", p.Name, VDAFName)
	}
	if p.Length() == 0 || p.Bits < 1 || p.Bits > 64 || p.ChunkLength < 1 {
		return nil, errors.New("VDAF parameters out of range")
	}
	sv, err := newSumVec(p)
	if err != nil {
		return nil, err
	}
	return &VDAF{Params: p, SV: sv}, nil
}

// NonceOf decodes a report's hex nonce.
func NonceOf(s string) (sumvec.Nonce, error) {
	var n sumvec.Nonce
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(n) {
		return n, fmt.Errorf("nonce %q is not %d bytes of hex", s, len(n))
	}
	copy(n[:], b)
	return n, nil
}

// KeyID names a holder's HPKE public key: the first 16 hex digits of the SHA-256 of its
// raw bytes.
func KeyID(pub kem.PublicKey) string {
	b, err := pub.MarshalBinary()
	if err != nil {
		return ""
	}
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

// Seal encrypts pt to pub for the purpose info, bound to aad.
func Seal(pub kem.PublicKey, info, aad, pt []byte) (enc, ct []byte, err error) {
	s, err := suite.NewSender(pub, info)
	if err != nil {
		return nil, nil, err
	}
	enc, sealer, err := s.Setup(rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	ct, err = sealer.Seal(pt, aad)
	return enc, ct, err
}

// ErrDecrypt: a ciphertext did not open with this key, for this purpose and associated data.
var ErrDecrypt = errors.New("does not decrypt with this holder's key")

// Open decrypts what Seal made for priv's public key.
func Open(priv kem.PrivateKey, info, enc, aad, ct []byte) ([]byte, error) {
	r, err := suite.NewReceiver(priv, info)
	if err != nil {
		return nil, err
	}
	o, err := r.Setup(enc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDecrypt, err)
	}
	pt, err := o.Open(ct, aad)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDecrypt, err)
	}
	return pt, nil
}

// Recipient is a holder as a practice's agent knows it: its id, role and HPKE public key.
type Recipient struct {
	ID   string
	Role string
	Key  kem.PublicKey
}

// Month is one month's exact vector (Params().Length() counts in layout order) and the
// measures of the layout the run supplied.
type Month struct {
	Month    formats.Month
	Counts   []uint64
	Supplied []string
}

// ErrOverWidth: a count does not fit in Bits bits; the month cannot be reported.
var ErrOverWidth = fmt.Errorf("a count is above %d, the most a %d-bit report holds", MaxCount, Bits)

// CheckWidth returns ErrOverWidth, naming the measure (never the count), if a count of m
// does not fit.
func CheckWidth(p formats.VDAFParams, m Month) error {
	if len(m.Counts) != p.Length() {
		return fmt.Errorf("the vector of %s has %d counts, the layout %d", m.Month, len(m.Counts), p.Length())
	}
	limit := uint64(1)<<p.Bits - 1
	for i, c := range m.Counts {
		if c > limit {
			return fmt.Errorf("%s, %s: %w", m.Month, p.Measures[i/formats.NumFine], ErrOverWidth)
		}
	}
	return nil
}

// MakeShares shards each month's vector into a Prio3 report with a fresh random nonce, and
// returns each recipient's shares file (by holder id): the public part in the clear, the
// recipient's input share encrypted to its key. The exact counts and the input shares exist
// only in memory; what is returned is ciphertext and public shares only.
func MakeShares(practice, runID string, to [2]Recipient, months []Month) (map[string][]byte, error) {
	p := Params()
	v, err := New(p)
	if err != nil {
		return nil, err
	}
	var files [2]formats.Shares
	for i, r := range to {
		agg, err := AggregatorOf(r.Role)
		if err != nil {
			return nil, err
		}
		if agg != i {
			return nil, fmt.Errorf("holders must be given leader first, then helper")
		}
		if err := formats.ValidateHolderID(r.ID); err != nil {
			return nil, err
		}
		files[i].Header = formats.SharesHeader{FormatVersion: formats.FormatVersion, Kind: formats.KindShares, Practice: practice, RunID: runID,
			Holder: r.ID, HolderKeyID: KeyID(r.Key), Aggregator: agg, VDAF: p, HPKE: SuiteName}
	}
	if to[0].ID == to[1].ID {
		return nil, errors.New("the two holders have the same id")
	}
	params := v.SV.Params()
	for _, m := range months {
		if err := CheckWidth(p, m); err != nil {
			return nil, err
		}
		var nonce sumvec.Nonce
		if _, err := rand.Read(nonce[:]); err != nil {
			return nil, err
		}
		seed := make([]byte, params.RandSize())
		if _, err := rand.Read(seed); err != nil {
			return nil, err
		}
		// The input shares' blinds alias seed, so it is cleared only once they are encrypted.
		public, inputs, err := v.SV.Shard(m.Counts, &nonce, seed)
		if err != nil {
			return nil, fmt.Errorf("shard %s: %w", m.Month, err)
		}
		for i := range to {
			pt, err := inputs[i].MarshalBinary()
			if err != nil {
				return nil, err
			}
			rep := formats.ShareReport{Month: m.Month.String(), Nonce: hex.EncodeToString(nonce[:]), Supplied: m.Supplied, PublicShare: public}
			enc, ct, err := Seal(to[i].Key, InfoInputShare, formats.ReportAAD(&files[i].Header, &rep), pt)
			clear(pt)
			if err != nil {
				return nil, err
			}
			rep.Enc = enc
			files[i].Header.Reports = append(files[i].Header.Reports, rep)
			files[i].Ciphertexts = append(files[i].Ciphertexts, ct)
		}
		clear(seed)
	}
	out := map[string][]byte{}
	for i := range files {
		data, err := formats.MarshalShares(&files[i])
		if err != nil {
			return nil, err
		}
		out[to[i].ID] = data
	}
	return out, nil
}

// OpenInputShare decrypts report i of a holder's shares file with the holder's key and
// decodes its input share for the holder's aggregator id.
func (v *VDAF) OpenInputShare(priv kem.PrivateKey, s *formats.Shares, i int) (sumvec.InputShare, error) {
	var is sumvec.InputShare
	h := &s.Header
	pt, err := Open(priv, InfoInputShare, h.Reports[i].Enc, formats.ReportAAD(h, &h.Reports[i]), s.Ciphertexts[i])
	if err != nil {
		return is, err
	}
	defer clear(pt)
	p := v.SV.Params()
	is.New(&p, uint(h.Aggregator))
	if err := is.UnmarshalBinary(pt); err != nil {
		return is, fmt.Errorf("the decrypted input share is not one of this VDAF: %w", err)
	}
	return is, nil
}

// PrepShareOf decodes a prep share.
func (v *VDAF) PrepShareOf(b []byte) (sumvec.PrepShare, error) {
	var s sumvec.PrepShare
	p := v.SV.Params()
	s.New(&p)
	return s, s.UnmarshalBinary(b)
}

// AggShareOf decodes an aggregate share.
func (v *VDAF) AggShareOf(b []byte) (sumvec.AggShare, error) {
	var s sumvec.AggShare
	p := v.SV.Params()
	s.New(&p)
	return s, s.UnmarshalBinary(b)
}

// PublicShareOf checks a public share's length for this instance.
func (v *VDAF) PublicShareOf(b []byte) (sumvec.PublicShare, error) {
	var s sumvec.PublicShare
	p := v.SV.Params()
	s.New(&p)
	if len(b) != len(s) {
		return nil, fmt.Errorf("public share of %d bytes, this VDAF's are %d", len(b), len(s))
	}
	copy(s, b)
	return s, nil
}
