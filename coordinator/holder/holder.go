// Package holder is the role of one of the two holders of secure aggregation (issue 11):
// 'tributary-coordinator holder run'. The leader plans a publication round (which reports of
// which practices, for which months), both holders verify every report's Prio3 proof jointly,
// exchanging prep shares through the object store, and aggregate only the valid ones; the
// helper sends its aggregate shares, encrypted to the leader, and the leader combines them
// into the exact federation cells, applies the federation's disclosure policy (with the
// agents' disclosure audit) in memory, and publishes only the protected values with the
// practice sets used (package secure).
//
// Neither holder needs a network path to the other, and neither sees a practice's counts:
// each holds one share of every report, which alone is uniformly random. Both enforce the
// differencing guard (guard.go) on every total, so that neither, nor anyone asking, can learn
// one practice's counts from two totals.
package holder

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/cloudflare/circl/vdaf/prio3/sumvec"

	"github.com/tributary-health/tributary/coordinator/registry"
	"github.com/tributary-health/tributary/coordinator/secure"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/secagg"
)

// DefaultMinPractices is the fewest practices behind any total: a practice that knows its own
// counts then still sees only the sum of at least two others, as a practice token does.
const DefaultMinPractices = 3

// Holder is one holder, ready to take part in rounds.
type Holder struct {
	Key         *secagg.HolderKey
	Peer        secagg.Holder     // the other holder's public keys
	Coordinator ed25519.PublicKey // verifies the registry
	Store       objstore.Store
	State       *State
	Policy      formats.Policy
	// MinPractices is the fewest practices behind any total this holder takes part in;
	// zero means DefaultMinPractices. A plan asking for fewer is held to this holder's.
	MinPractices int
	// Poll is how often the holder looks for the other's messages; Wait how long it waits.
	Poll, Wait time.Duration
	Workers    int
	Log        *slog.Logger
	Now        func() time.Time

	vdaf  *secagg.VDAF
	keyID string // of Key.HPKE's public key
}

func (h *Holder) init() error {
	if h.Key == nil || h.Store == nil || h.State == nil {
		return errors.New("holder: key, store and state are required")
	}
	if _, err := secagg.AggregatorOf(h.Key.Role); err != nil {
		return err
	}
	if h.Peer.ID == "" || h.Peer.Role == h.Key.Role || h.Peer.ID == h.Key.ID {
		return fmt.Errorf("holder %s (%s): the other holder must be the %s, with another id", h.Key.ID, h.Key.Role, other(h.Key.Role))
	}
	if h.Policy.Name == "" {
		h.Policy = formats.DefaultPolicy
	}
	if h.MinPractices <= 0 {
		h.MinPractices = DefaultMinPractices
	}
	if h.Poll <= 0 {
		h.Poll = 2 * time.Second
	}
	if h.Wait <= 0 {
		h.Wait = 30 * time.Minute
	}
	if h.Workers <= 0 {
		h.Workers = 4
	}
	if h.Log == nil {
		h.Log = slog.New(slog.DiscardHandler)
	}
	if h.Now == nil {
		h.Now = time.Now
	}
	// circl computes an X25519 private key's public key on first use and caches it, which is
	// not safe for concurrent use: take it here, before any goroutine does.
	h.keyID = secagg.KeyID(h.Key.HPKE.Public())
	if h.vdaf == nil {
		v, err := secagg.New(secagg.Params())
		if err != nil {
			return err
		}
		h.vdaf = v
	}
	return nil
}

func other(role string) string {
	if role == secagg.RoleLeader {
		return secagg.RoleHelper
	}
	return secagg.RoleLeader
}

func (h *Holder) aggregator() uint8 {
	a, _ := secagg.AggregatorOf(h.Key.Role)
	return uint8(a)
}

// leaderID and helperID name the round's two holders.
func (h *Holder) leaderID() string {
	if h.Key.Role == secagg.RoleLeader {
		return h.Key.ID
	}
	return h.Peer.ID
}

func (h *Holder) helperID() string {
	if h.Key.Role == secagg.RoleHelper {
		return h.Key.ID
	}
	return h.Peer.ID
}

// Result is what a round did, as either holder saw it. It holds no count.
type Result struct {
	Round string
	// Refused is set when the helper refused the whole plan, with its reason.
	Refused  string
	Months   []secure.MonthRecord
	Rejected []secure.Rejection
	// Published are the objects the leader wrote under federation/secure/<round>/.
	Published []string
	// Timings: preparing this holder's shares (decryption and Prio3 preparation), combining
	// both holders' prep shares and aggregating, and (leader) combining aggregate shares,
	// disclosure control and publishing.
	Prepare, Aggregate, Publish time.Duration
	Reports                     int // reports this holder prepared
}

// rejection is why a report or run is refused.
type rejection struct {
	kind, reason string
}

func reject(kind, format string, args ...any) *rejection {
	return &rejection{kind: kind, reason: fmt.Sprintf(format, args...)}
}

// fatalStore reports whether a store error must stop the round rather than refuse a report.
func fatalStore(err error) bool {
	return errors.Is(err, objstore.ErrUnavailable) || errors.Is(err, objstore.ErrAccessDenied) || errors.Is(err, objstore.ErrConfig)
}

// verifiedRun is a practice's run as this holder verified it.
type verifiedRun struct {
	key, sha string
	m        *formats.Manifest
}

// readManifest reads and verifies a run's manifest against the registry.
func (h *Holder) readManifest(ctx context.Context, reg *registry.Loaded, key string) (*verifiedRun, *rejection, error) {
	data, _, err := h.Store.Get(ctx, key, formats.MaxEnvelopeBytes)
	if err != nil {
		if fatalStore(err) || ctx.Err() != nil {
			return nil, nil, err
		}
		return nil, reject(secure.KindMissing, "the run's manifest cannot be read: %v", err), nil
	}
	k, err := formats.ParseKey(key)
	if err != nil {
		return nil, reject(secure.KindMalformed, "%v", err), nil
	}
	env, err := formats.ParseEnvelope(data)
	if err != nil {
		return nil, reject(secure.KindMalformed, "%v", err), nil
	}
	if !slices.ContainsFunc(reg.Practices, func(e formats.RegistryEntry) bool { return e.Practice == k.Practice }) {
		return nil, reject(secure.KindNotRegistered, "practice %s is not in the federation registry; its reports are never counted (register it with 'tributary-coordinator registry add')", k.Practice), nil
	}
	pub, err := reg.KeyFor(k.Practice, env.KeyID)
	switch {
	case errors.Is(err, formats.ErrRevoked):
		return nil, reject(secure.KindRevoked, "%v", err), nil
	case err != nil:
		return nil, reject(secure.KindBadSignature, "the manifest is signed with key %s, which the registry does not hold for practice %s", env.KeyID, k.Practice), nil
	}
	m, err := formats.VerifyManifest(key, data, pub)
	switch {
	case errors.Is(err, formats.ErrSignature):
		return nil, reject(secure.KindBadSignature, "the manifest's signature does not verify with practice %s's registered key: it was changed after signing or signed by someone else", k.Practice), nil
	case err != nil:
		return nil, reject(secure.KindMalformed, "%v", err), nil
	}
	return &verifiedRun{key: key, sha: secure.SHA256(data), m: m}, nil, nil
}

// readShares reads this holder's shares file of a verified run and checks it is for this
// holder's key and this build's VDAF.
func (h *Holder) readShares(ctx context.Context, r *verifiedRun) (*formats.Shares, *rejection, error) {
	f, ok := r.m.SharesFor(h.Key.ID)
	if !ok {
		return nil, reject(secure.KindMissing, "the run sends no shares to holder %s", h.Key.ID), nil
	}
	if f.Size > formats.MaxSharesBytes {
		return nil, reject(secure.KindMalformed, "its shares file is %d bytes, more than %d", f.Size, formats.MaxSharesBytes), nil
	}
	data, _, err := h.Store.Get(ctx, f.Key, max(f.Size, 1))
	if err != nil {
		if fatalStore(err) || ctx.Err() != nil {
			return nil, nil, err
		}
		return nil, reject(secure.KindMissing, "its shares file cannot be read: %v", err), nil
	}
	s, err := formats.VerifyShares(r.m, f, data)
	if err != nil {
		return nil, reject(secure.KindMalformed, "%v", err), nil
	}
	hd := &s.Header
	myKey := h.keyID
	switch {
	case hd.HolderKeyID != myKey || hd.Aggregator != int(h.aggregator()):
		return nil, reject(secure.KindWrongHolder, "the shares in %s are encrypted to key %s as aggregator %d; holder %s's key is %s, aggregator %d: the practice's agent has the holders' keys the wrong way round or out of date", f.Key, hd.HolderKeyID, hd.Aggregator, h.Key.ID, myKey, h.aggregator()), nil
	case !hd.VDAF.Equal(h.vdaf.Params) || hd.HPKE != secagg.SuiteName:
		return nil, reject(secure.KindLayout, "the reports are made for %s/%d bits/%d measures with %s; this holder verifies %s/%d bits/%d measures: upgrade so agent and holders agree", hd.VDAF.Name, hd.VDAF.Bits, len(hd.VDAF.Measures), hd.HPKE, h.vdaf.Params.Name, h.vdaf.Params.Bits, len(h.vdaf.Params.Measures)), nil
	}
	return s, nil, nil
}

// prepared is one report after this holder's preparation.
type prepared struct {
	ref      PlannedReport
	created  time.Time
	digest   string
	supplied []string
	state    *sumvec.PrepState
	share    []byte
	rej      *rejection
}

// checkReplay refuses a nonce the holder saw before as another practice's, run's or month's
// report: a report is counted once, where it was made.
func (h *Holder) checkReplay(p PlannedReport) *rejection {
	seen := h.State.seen(p.Nonce)
	if seen == nil || (seen.Practice == p.Practice && seen.RunID == p.RunID && seen.Month == p.Month) {
		return nil
	}
	return reject(secure.KindReplay, "report %s was first seen as practice %s's report of %s in run %s (round %s); a report is counted only where it was made, so this copy is refused", p.Nonce, seen.Practice, seen.Month, seen.RunID, seen.Round)
}

// prepare decrypts and prepares report i of s: the holder's half of verifying its proof.
func (h *Holder) prepare(s *formats.Shares, i int, vk *sumvec.VerifyKey) (*sumvec.PrepState, []byte, *rejection) {
	r := &s.Header.Reports[i]
	is, err := h.vdaf.OpenInputShare(h.Key.HPKE, s, i)
	if errors.Is(err, secagg.ErrDecrypt) {
		return nil, nil, reject(secure.KindUndecryptable, "the report of %s does not decrypt with holder %s's key although it names it: it was altered, or encrypted to another key", r.Month, h.Key.ID)
	}
	if err != nil {
		return nil, nil, reject(secure.KindMalformed, "the report of %s: %v", r.Month, err)
	}
	nonce, err := secagg.NonceOf(r.Nonce)
	if err != nil {
		return nil, nil, reject(secure.KindMalformed, "%v", err)
	}
	ps, err := h.vdaf.PublicShareOf(r.PublicShare)
	if err != nil {
		return nil, nil, reject(secure.KindMalformed, "the report of %s: %v", r.Month, err)
	}
	st, share, err := h.vdaf.Instance().PrepInit(vk, &nonce, h.aggregator(), ps, is)
	if err != nil {
		return nil, nil, invalid(r.Month, err)
	}
	b, err := share.MarshalBinary()
	if err != nil {
		return nil, nil, reject(secure.KindMalformed, "%v", err)
	}
	return st, b, nil
}

func invalid(month string, err error) *rejection {
	return reject(secure.KindInvalid, "the report of %s fails Prio3 verification (%v): a count outside 0..%d, or a share altered after it was made; it is not counted", month, err, secagg.MaxCount)
}

// reportIndex finds a month's report in a shares file.
func reportIndex(s *formats.Shares, month string) int {
	return slices.IndexFunc(s.Header.Reports, func(r formats.ShareReport) bool { return r.Month == month })
}

// listManifests lists every run manifest under practices/.
func (h *Holder) listManifests(ctx context.Context) ([]string, error) {
	infos, err := h.Store.List(ctx, formats.PracticesPrefix)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", formats.PracticesPrefix, err)
	}
	var out []string
	for _, in := range infos {
		if k, err := formats.ParseKey(in.Key); err == nil && k.Manifest() {
			out = append(out, in.Key)
		}
	}
	return out, nil
}

// waitFor polls for a message until it is in the store, the wait is over or ctx ends.
func (h *Holder) waitFor(ctx context.Context, what string, get func() (bool, error)) error {
	deadline := h.Now().Add(h.Wait)
	for {
		ok, err := get()
		if err != nil || ok {
			return err
		}
		if h.Now().After(deadline) {
			return fmt.Errorf("the other holder (%s) wrote no %s within %s; run the round again when it is running", h.Peer.ID, what, h.Wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(h.Poll):
		}
	}
}

// getMessage reads one of the peer's messages of a round; ok is false while it is absent.
func (h *Holder) getMessage(ctx context.Context, round, name, kind string, v any) (sum string, ok bool, err error) {
	sum, err = secure.GetSigned(ctx, h.Store, secure.MessagePrefix(h.Peer.ID, round)+name, kind, h.Peer.Sign, v)
	if errors.Is(err, secure.ErrNotYet) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return sum, true, nil
}

func (h *Holder) putMessage(ctx context.Context, round, name, kind string, v any) (string, error) {
	return secure.PutSigned(ctx, h.Store, secure.MessagePrefix(h.Key.ID, round)+name, kind, v, h.Key.Sign)
}

// verifyKeyAAD binds a round's sealed verify key to the round and its two holders.
func verifyKeyAAD(p *Plan) []byte {
	return []byte(strings.Join([]string{"tributary verify key", p.Round, p.Leader, p.Helper}, "\x00"))
}

// aggShareAAD binds the helper's aggregate share of a month to the round, the plan, the month,
// the reports counted and the measures released.
func aggShareAAD(round, plan string, m *AggregateMonth) []byte {
	return []byte(strings.Join([]string{"tributary aggregate share", round, plan, m.Month, strings.Join(m.Reports, ","), strings.Join(m.Released, ",")}, "\x00"))
}
