package holder

import (
	"bytes"
	"context"
	"crypto/ed25519"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/cloudflare/circl/vdaf/prio3/arith/fp128"
	"github.com/cloudflare/circl/vdaf/prio3/sumvec"

	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/coordinator/secure"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/secagg"
)

// testFed is a federation of practices with known truth, two holders and a store.
type testFed struct {
	t         testing.TB
	ctx       context.Context
	st        objstore.Store // the federation's store, as its administrator sees it
	coord     ed25519.PrivateKey
	pol       formats.Policy
	practices []*testPractice
	keys      [2]*secagg.HolderKey // leader, helper
	holders   [2]*Holder
	states    [2]string
	logs      [2]*syncBuffer
	clock     time.Time
	from, to  formats.Month
}

// testPractice is a practice whose counts are a pure function of its seed and version (a
// revision changes the version).
type testPractice struct {
	id      string
	key     ed25519.PrivateKey
	size    float64
	seed    uint64
	version map[formats.Month]int
	runs    []string
	// canary, when set, fixes every fine cell of a measure to a distinctive value, so a test
	// can look for it anywhere it must not be.
	canary map[string]int64
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// ageShare is the share of a list in each age band (England, rounded).
var ageShare = [formats.NumBands]float64{5.4, 6.0, 6.0, 5.6, 6.0, 6.6, 7.0, 6.8, 6.4, 6.4, 6.9, 6.8, 5.9, 5.1, 5.0, 3.6, 2.4, 1.5, 0.8}

// truth is a practice's exact count of a measure's fine cell in a month. The admission
// measures keep their relations (emergency + elective <= admissions; patients admitted in an
// emergency <= emergency admissions), as real counts do and the disclosure audit assumes.
func (p *testPractice) truth(month formats.Month, measure string, fine int) int64 {
	if p.canary != nil {
		return p.canary[measure]
	}
	b, x := formats.ShapeDims(fine)
	pop := p.size * ageShare[b] / 100 * []float64{0.505, 0.49, 0.005}[x]
	r := rand.New(rand.NewPCG(p.seed^uint64(month)<<20^uint64(fine)<<8, uint64(p.version[month])+7))
	draw := func(perYear float64) int64 { return fedgen.Poisson(r, pop*perYear/12*(0.5+float64(b)/10)) }
	emergency, elective, other := draw(0.12), draw(0.15), draw(0.03)
	switch measure {
	case formats.RegisteredPatients:
		return int64(pop+0.5) + int64(p.version[month])
	case formats.Consultations:
		return draw(5)
	case formats.OutpatientAttendances:
		return draw(1.6)
	case formats.AEAttendances:
		return draw(0.4)
	case formats.Admissions:
		return emergency + elective + other
	case formats.AdmissionsEmergency:
		return emergency
	case formats.AdmissionsElective:
		return elective
	case formats.BedDays:
		return draw(1.1)
	case formats.PatientsAdmittedEmergency:
		return emergency - emergency/5
	}
	return 0
}

// vector is a practice's exact cells of a month in the reports' layout.
func (p *testPractice) vector(month formats.Month) []uint64 {
	out := make([]uint64, secagg.Params().Length())
	for li, m := range formats.Measures {
		for fine := range formats.NumFine {
			out[li*formats.NumFine+fine] = uint64(p.truth(month, m, fine))
		}
	}
	return out
}

func newTestFed(t testing.TB, n int, from, to formats.Month) *testFed {
	t.Helper()
	st, err := objstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return newTestFedOn(t, st, n, from, to)
}

func newTestFedOn(t testing.TB, st objstore.Store, n int, from, to formats.Month) *testFed {
	t.Helper()
	_, coord, _ := ed25519.GenerateKey(nil)
	f := &testFed{t: t, ctx: context.Background(), st: st, coord: coord, pol: formats.DefaultPolicy,
		clock: time.Date(2025, 2, 1, 6, 0, 0, 0, time.UTC), from: from, to: to}
	reg := &formats.Registry{FormatVersion: formats.RegistryVersion, Updated: f.clock}
	for i := range n {
		_, key, _ := ed25519.GenerateKey(nil)
		p := &testPractice{id: fmt.Sprintf("P%03d", i+1), key: key, size: 3000 + float64((i*3571)%9000), seed: uint64(i)*7919 + 11, version: map[formats.Month]int{}}
		f.practices = append(f.practices, p)
		e, err := formats.NewRegistryEntry(p.id, "Practice "+p.id, key.Public().(ed25519.PublicKey), f.clock)
		if err != nil {
			t.Fatal(err)
		}
		reg.Practices = append(reg.Practices, e)
	}
	f.putRegistry(reg)
	l, err := secagg.GenerateHolder("federation", secagg.RoleLeader)
	if err != nil {
		t.Fatal(err)
	}
	h, err := secagg.GenerateHolder("icb", secagg.RoleHelper)
	if err != nil {
		t.Fatal(err)
	}
	f.keys = [2]*secagg.HolderKey{l, h}
	hf, err := secure.SignHolders(l.Public(), h.Public(), coord, f.clock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(f.ctx, secure.HoldersKey, hf); err != nil {
		t.Fatal(err)
	}
	base := t.TempDir()
	for i, k := range f.keys {
		f.states[i] = filepath.Join(base, k.ID)
		f.logs[i] = &syncBuffer{}
		f.holders[i] = f.holder(i, st)
	}
	return f
}

func (f *testFed) putRegistry(reg *formats.Registry) {
	data, err := formats.SignRegistry(reg, f.coord)
	if err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.st.Put(f.ctx, formats.RegistryKey, data); err != nil {
		f.t.Fatal(err)
	}
}

// holder makes holder i (0 leader, 1 helper) acting on store st, with its own state and log.
func (f *testFed) holder(i int, st objstore.Store) *Holder {
	state, err := OpenState(f.states[i], f.keys[i].ID)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { state.Close() })
	return &Holder{Key: f.keys[i], Peer: f.keys[1-i].Public(), Coordinator: f.coord.Public().(ed25519.PublicKey), Store: st, State: state,
		Policy: f.pol, Poll: 10 * time.Millisecond, Wait: 2 * time.Minute, Workers: 2,
		Log: slog.New(slog.NewJSONHandler(f.logs[i], &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now: func() time.Time { return time.Now() }}
}

// uploadOptions shape a practice's run in tests; the zero value is an honest run of every
// month of the federation.
type uploadOptions struct {
	from, to formats.Month
	to2      *[2]secagg.Recipient                           // recipients instead of the two holders
	nonces   map[formats.Month]string                       // nonces to use (a replay)
	tamper   func(month formats.Month, leader []byte)       // alter the leader's input share in the clear
	noShares bool                                           // a run without secure aggregation
	sign     func(m *formats.Manifest) ([]byte, error)      // sign the manifest another way
	counts   func(month formats.Month, v []uint64)          // alter the counts before sharding
	copyFrom func(month formats.Month) *formats.ShareReport // copy another report into the leader's file
}

// upload writes a run of p: its published figures, its shares files and its signed manifest.
func (f *testFed) upload(p *testPractice, o uploadOptions) string {
	f.t.Helper()
	from, to := o.from, o.to
	if from == 0 {
		from, to = f.from, f.to
	}
	f.clock = f.clock.Add(time.Minute)
	runID := formats.NewRunID(f.clock)
	sub := fedgen.Publish(f.pol, p.id, runID, from, to, formats.Measures, func(month formats.Month, measure string, b, x int) int64 {
		return p.truth(month, measure, formats.FineShape(b, x))
	})
	data, err := formats.MarshalSubmission(sub)
	if err != nil {
		f.t.Fatal(err)
	}
	m := &formats.Manifest{FormatVersion: formats.FormatVersion, Practice: p.id, RunID: runID, Created: f.clock, Extractors: sub.Extractors,
		Policy: f.pol.Name, From: from.String(), To: to.String(), Files: []formats.FileEntry{formats.Entry(p.id, runID, data)}}
	put := func(key string, b []byte) {
		if _, err := f.st.Put(f.ctx, key, b); err != nil {
			f.t.Fatal(err)
		}
	}
	put(formats.SubmissionKey(p.id, runID), data)
	if !o.noShares {
		to2 := [2]secagg.Recipient{f.keys[0].Public().Recipient(), f.keys[1].Public().Recipient()}
		if o.to2 != nil {
			to2 = *o.to2
		}
		var months []secagg.Month
		for mo := from; mo <= to; mo++ {
			v := p.vector(mo)
			if o.counts != nil {
				o.counts(mo, v)
			}
			months = append(months, secagg.Month{Month: mo, Counts: v, Supplied: formats.Measures})
		}
		files, err := makeShares(p.id, runID, to2, months, o)
		if err != nil {
			f.t.Fatal(err)
		}
		for _, r := range to2 {
			put(formats.SharesKey(p.id, runID, r.ID), files[r.ID])
			m.Files = append(m.Files, formats.SharesEntry(p.id, runID, r.ID, files[r.ID]))
		}
	}
	sign := func(m *formats.Manifest) ([]byte, error) { return formats.SignManifest(m, p.key) }
	if o.sign != nil {
		sign = o.sign
	}
	env, err := sign(m)
	if err != nil {
		f.t.Fatal(err)
	}
	put(m.Key(), env)
	p.runs = append(p.runs, runID)
	return runID
}

// makeShares is secagg.MakeShares with a test's dishonest changes: fixed nonces, a share
// altered in the clear, or a report copied from elsewhere.
func makeShares(practice, runID string, to [2]secagg.Recipient, months []secagg.Month, o uploadOptions) (map[string][]byte, error) {
	if o.nonces == nil && o.tamper == nil && o.copyFrom == nil && o.counts == nil {
		return secagg.MakeShares(practice, runID, to, months)
	}
	p := secagg.Params()
	v, err := secagg.New(p)
	if err != nil {
		return nil, err
	}
	var files [2]formats.Shares
	for i, r := range to {
		files[i].Header = formats.SharesHeader{FormatVersion: formats.FormatVersion, Kind: formats.KindShares, Practice: practice, RunID: runID,
			Holder: r.ID, HolderKeyID: secagg.KeyID(r.Key), Aggregator: i, VDAF: p, HPKE: secagg.SuiteName}
	}
	params := v.SV.Params()
	for _, m := range months {
		var nonce sumvec.Nonce
		if s, ok := o.nonces[m.Month]; ok {
			b, _ := hex.DecodeString(s)
			copy(nonce[:], b)
		} else {
			_, _ = crand.Read(nonce[:])
		}
		seed := make([]byte, params.RandSize())
		_, _ = crand.Read(seed)
		enc := make([]uint64, len(m.Counts))
		copy(enc, m.Counts)
		over := map[int]uint64{}
		for i, c := range enc {
			if c > secagg.MaxCount {
				over[i] = c
				enc[i] = secagg.MaxCount
			}
		}
		public, inputs, err := v.SV.Shard(enc, &nonce, seed)
		if err != nil {
			return nil, err
		}
		for i := range to {
			pt, err := inputs[i].MarshalBinary()
			if err != nil {
				return nil, err
			}
			if i == 0 && o.tamper != nil {
				o.tamper(m.Month, pt)
			}
			if i == 0 {
				for cell, c := range over {
					addToBit0(pt, cell, c-secagg.MaxCount)
				}
			}
			rep := formats.ShareReport{Month: m.Month.String(), Nonce: hex.EncodeToString(nonce[:]), Supplied: m.Supplied, PublicShare: public}
			encap, ct, err := secagg.Seal(to[i].Key, secagg.InfoInputShare, formats.ReportAAD(&files[i].Header, &rep), pt)
			if err != nil {
				return nil, err
			}
			rep.Enc = encap
			if i == 0 && o.copyFrom != nil {
				if c := o.copyFrom(m.Month); c != nil {
					rep = *c
				}
			}
			files[i].Header.Reports = append(files[i].Header.Reports, rep)
			files[i].Ciphertexts = append(files[i].Ciphertexts, ct)
		}
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

// round runs one round: the leader with o, the helper answering its plan. It returns both
// results and errors.
func (f *testFed) round(o LeadOptions) (lead *Result, lerr error, help *Result, herr error) {
	f.t.Helper()
	if o.Round == "" {
		o.Round = formats.NewRunID(time.Now())
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		help, herr = f.holders[1].Help(f.ctx, HelpOptions{Round: o.Round})
	}()
	lead, lerr = f.holders[0].Lead(f.ctx, o)
	wg.Wait()
	return lead, lerr, help, herr
}

// published reads the federation's secure figures as the combine does.
func (f *testFed) published() *secure.Figures {
	f.t.Helper()
	figs, err := secure.Load(f.ctx, f.st, f.coord.Public().(ed25519.PublicKey), f.pol, formats.DefaultLimits)
	if err != nil {
		f.t.Fatal(err)
	}
	return figs
}

// exactTotal is the exact federation cell vector of a month over the given practices.
func exactTotal(ps []*testPractice, month formats.Month) []uint64 {
	out := make([]uint64, secagg.Params().Length())
	for _, p := range ps {
		for i, c := range p.vector(month) {
			out[i] += c
		}
	}
	return out
}

// addToBit0 adds delta to the leader's share of bit 0 of a cell in a marshalled leader input
// share (its measurement share comes first: Bits field elements of 16 bytes per cell), so the
// shares of that cell sum to delta more than was sharded: a count over the bit width, as a
// dishonest agent would have to make it.
func addToBit0(pt []byte, cell int, delta uint64) {
	off := cell * secagg.Bits * fp128.Size
	var e, d fp128.Fp
	if err := e.UnmarshalBinary(pt[off : off+fp128.Size]); err != nil {
		panic(err)
	}
	if err := d.SetUint64(delta); err != nil {
		panic(err)
	}
	e.AddAssign(&d)
	b, err := e.MarshalBinary()
	if err != nil {
		panic(err)
	}
	copy(pt[off:], b)
}
