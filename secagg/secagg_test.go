package secagg

import (
	"crypto/rand"
	"errors"
	"math"
	mrand "math/rand/v2"
	"strings"
	"testing"

	"github.com/cloudflare/circl/vdaf/prio3/arith/fp128"
	"github.com/cloudflare/circl/vdaf/prio3/sumvec"

	"github.com/tributary-health/tributary/formats"
)

const (
	testPractice = "A81001"
	testRun      = "20240405T060708Z-0123abcd"
)

func holders(t testing.TB) (*HolderKey, *HolderKey, [2]Recipient) {
	t.Helper()
	l, err := GenerateHolder("federation", RoleLeader)
	if err != nil {
		t.Fatal(err)
	}
	h, err := GenerateHolder("icb", RoleHelper)
	if err != nil {
		t.Fatal(err)
	}
	return l, h, [2]Recipient{l.Public().Recipient(), h.Public().Recipient()}
}

// vector is a month's counts: measure mi's fine cell f holds f(mi, f).
func vector(month formats.Month, f func(mi, fine int) uint64) Month {
	p := Params()
	m := Month{Month: month, Counts: make([]uint64, p.Length()), Supplied: p.Measures}
	for i := range m.Counts {
		m.Counts[i] = f(i/formats.NumFine, i%formats.NumFine)
	}
	return m
}

// prepare runs both holders' side of one report and returns their output shares'
// aggregate, as the holders do (PrepInit, PrepSharesToPrep, PrepNext).
func prepare(t testing.TB, v *VDAF, keys [2]*HolderKey, files [2]*formats.Shares, i int, vk *sumvec.VerifyKey, aggs *[2]sumvec.AggShare) error {
	t.Helper()
	var states [2]*sumvec.PrepState
	var shares [2]sumvec.PrepShare
	for a := range 2 {
		is, err := v.OpenInputShare(keys[a].HPKE, files[a], i)
		if err != nil {
			return err
		}
		nonce, err := NonceOf(files[a].Header.Reports[i].Nonce)
		if err != nil {
			return err
		}
		ps, err := v.PublicShareOf(files[a].Header.Reports[i].PublicShare)
		if err != nil {
			return err
		}
		st, sh, err := v.SV.PrepInit(vk, &nonce, uint8(a), ps, is)
		if err != nil {
			return err
		}
		// Through the wire format, as the holders exchange them.
		b, err := sh.MarshalBinary()
		if err != nil {
			return err
		}
		back, err := v.PrepShareOf(b)
		if err != nil {
			return err
		}
		states[a], shares[a] = st, back
	}
	msg, err := v.SV.PrepSharesToPrep(shares[:])
	if err != nil {
		return err
	}
	for a := range 2 {
		out, err := v.SV.PrepNext(states[a], msg)
		if err != nil {
			return err
		}
		v.SV.AggregateUpdate(&aggs[a], out)
	}
	return nil
}

func read(t testing.TB, files map[string][]byte, id string) *formats.Shares {
	t.Helper()
	s, err := formats.ReadShares(files[id])
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSharesSumToTheTruth: reports made by MakeShares and prepared by the two holders' keys
// sum, and only sum, to the exact counts.
func TestSharesSumToTheTruth(t *testing.T) {
	l, h, to := holders(t)
	v, err := New(Params())
	if err != nil {
		t.Fatal(err)
	}
	r := mrand.New(mrand.NewPCG(1, 2))
	months := []formats.Month{formats.MonthFor(2024, 1), formats.MonthFor(2024, 2), formats.MonthFor(2024, 3)}
	want := make([]uint64, Params().Length())
	var vk sumvec.VerifyKey
	rand.Read(vk[:])
	aggs := [2]sumvec.AggShare{v.SV.AggregateInit(), v.SV.AggregateInit()}
	for p := range 4 {
		var ms []Month
		for _, m := range months {
			mv := vector(m, func(mi, fine int) uint64 { return uint64(r.IntN(MaxCount + 1)) })
			if p == 0 {
				mv.Counts[0] = MaxCount // the widest count fits
			}
			for i, c := range mv.Counts {
				want[i] += c
			}
			ms = append(ms, mv)
		}
		files, err := MakeShares(testPractice, testRun, to, ms)
		if err != nil {
			t.Fatal(err)
		}
		pair := [2]*formats.Shares{read(t, files, "federation"), read(t, files, "icb")}
		if pair[0].Header.Aggregator != Leader || pair[1].Header.Aggregator != Helper || pair[0].Header.HolderKeyID != KeyID(l.HPKE.Public()) {
			t.Fatalf("headers %+v %+v", pair[0].Header, pair[1].Header)
		}
		for i := range months {
			if err := prepare(t, v, [2]*HolderKey{l, h}, pair, i, &vk, &aggs); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := v.SV.Unshard(aggs[:], 12)
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if (*got)[i] != want[i] {
			t.Fatalf("cell %d: %d, want %d", i, (*got)[i], want[i])
		}
	}
}

func TestOverWidthIsNotSharded(t *testing.T) {
	_, _, to := holders(t)
	m := vector(formats.MonthFor(2024, 1), func(int, int) uint64 { return 1 })
	m.Counts[5*formats.NumFine+3] = MaxCount + 1
	_, err := MakeShares(testPractice, testRun, to, []Month{m})
	if !errors.Is(err, ErrOverWidth) {
		t.Fatalf("a count of %d: %v", MaxCount+1, err)
	}
	if want := formats.Measures[5]; !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "65536") {
		t.Errorf("the error should name the measure (%s) and never the count: %v", want, err)
	}
}

// TestWrongKeyDoesNotDecrypt: a share opens only with its holder's key, at its own place.
func TestWrongKeyDoesNotDecrypt(t *testing.T) {
	l, h, to := holders(t)
	v, _ := New(Params())
	files, err := MakeShares(testPractice, testRun, to, []Month{vector(formats.MonthFor(2024, 1), func(int, int) uint64 { return 3 })})
	if err != nil {
		t.Fatal(err)
	}
	leader := read(t, files, "federation")
	if _, err := v.OpenInputShare(h.HPKE, leader, 0); !errors.Is(err, ErrDecrypt) {
		t.Errorf("the helper's key opened the leader's share: %v", err)
	}
	if _, err := v.OpenInputShare(l.HPKE, leader, 0); err != nil {
		t.Errorf("the leader's key: %v", err)
	}
	moved := *leader
	moved.Header.RunID = "20240405T060708Z-0123abce"
	if _, err := v.OpenInputShare(l.HPKE, &moved, 0); !errors.Is(err, ErrDecrypt) {
		t.Errorf("a share moved to another run decrypted: %v", err)
	}
}

func TestHolderKeyFiles(t *testing.T) {
	k, err := GenerateHolder("icb", RoleHelper)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParsePrivate(MarshalPrivate(k))
	if err != nil || !back.HPKE.Equal(k.HPKE) || !back.Sign.Equal(k.Sign) || back.ID != "icb" || back.Role != RoleHelper {
		t.Fatalf("private key file does not round-trip: %v", err)
	}
	pub, err := ParsePublic(MarshalPublic(k.Public()))
	if err != nil || !pub.HPKE.Equal(k.HPKE.Public()) || !pub.Sign.Equal(k.Sign.Public()) {
		t.Fatalf("public key file does not round-trip: %v", err)
	}
	if _, err := ParsePublic(MarshalPrivate(k)); err == nil {
		t.Error("a private key file read as a public one")
	}
}

// fieldElements decodes b as consecutive fp128 elements.
func fieldElements(t testing.TB, b []byte) []fp128.Fp {
	t.Helper()
	out := make([]fp128.Fp, len(b)/fp128.Size)
	for i := range out {
		if err := out[i].UnmarshalBinary(b[i*fp128.Size : (i+1)*fp128.Size]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// oneShareView is what one holder alone holds of a report: its share of every bit of the
// encoded counts (the leader) or of every count (the helper, after expanding its seed).
type oneShareView struct {
	counts []fp128.Fp // the holder's share of each count (Σ 2^j × its share of bit j)
	raw    []byte     // the bytes it decrypted
}

func leaderView(t testing.TB, v *VDAF, k *HolderKey, s *formats.Shares) oneShareView {
	t.Helper()
	is, err := v.OpenInputShare(k.HPKE, s, 0)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := is.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	n := v.Params.Length() * v.Params.Bits
	bits := fieldElements(t, raw[:n*fp128.Size])
	counts := make([]fp128.Fp, v.Params.Length())
	for c := range counts {
		var pow, term fp128.Fp
		_ = pow.SetUint64(1)
		var two fp128.Fp
		_ = two.SetUint64(2)
		for j := range v.Params.Bits {
			term.Mul(&bits[c*v.Params.Bits+j], &pow)
			counts[c].AddAssign(&term)
			pow.MulAssign(&two)
		}
	}
	return oneShareView{counts: counts, raw: raw[:n*fp128.Size]}
}

func helperView(t testing.TB, v *VDAF, k *HolderKey, s *formats.Shares) oneShareView {
	t.Helper()
	is, err := v.OpenInputShare(k.HPKE, s, 0)
	if err != nil {
		t.Fatal(err)
	}
	nonce, _ := NonceOf(s.Header.Reports[0].Nonce)
	ps, _ := v.PublicShareOf(s.Header.Reports[0].PublicShare)
	var vk sumvec.VerifyKey
	rand.Read(vk[:])
	st, _, err := v.SV.PrepInit(&vk, &nonce, Helper, ps, is)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := st.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	n := v.Params.Length() * fp128.Size
	return oneShareView{counts: fieldElements(t, raw[:n]), raw: raw[:n]}
}

// chiSquareBytes is the χ² statistic of b's byte values against uniform (255 degrees of
// freedom: mean 255, standard deviation 22.6).
func chiSquareBytes(b []byte) float64 {
	var hist [256]float64
	for _, x := range b {
		hist[x]++
	}
	e := float64(len(b)) / 256
	var chi float64
	for _, o := range hist {
		chi += (o - e) * (o - e) / e
	}
	return chi
}

// TestOneKeyRevealsNothing decrypts each holder's share with that holder's key alone: the
// values it holds are uniformly distributed field elements, whatever the counts, and no
// count can be read from them: not one of a report's 513 cells decodes to a value in 0..65535
// (the chance of one doing so by accident is 513 × 2^16 / 2^128), shares of all-zero and
// all-maximum reports are alike, and two reports of the same counts share nothing.
func TestOneKeyRevealsNothing(t *testing.T) {
	l, h, to := holders(t)
	v, _ := New(Params())
	month := formats.MonthFor(2024, 1)
	zero := vector(month, func(int, int) uint64 { return 0 })
	full := vector(month, func(int, int) uint64 { return MaxCount })
	real := vector(month, func(mi, fine int) uint64 { return uint64(100*mi + fine) })
	type view func(testing.TB, *VDAF, *HolderKey, *formats.Shares) oneShareView
	for _, side := range []struct {
		name string
		key  *HolderKey
		view view
	}{{"leader", l, leaderView}, {"helper", h, helperView}} {
		t.Run(side.name, func(t *testing.T) {
			views := map[string][]oneShareView{}
			for name, m := range map[string]Month{"zero": zero, "full": full, "real": real} {
				for range 2 {
					files, err := MakeShares(testPractice, testRun, to, []Month{m})
					if err != nil {
						t.Fatal(err)
					}
					views[name] = append(views[name], side.view(t, v, side.key, read(t, files, side.key.ID)))
				}
			}
			for name, vs := range views {
				for _, vw := range vs {
					fits := 0
					for _, c := range vw.counts {
						if _, err := c.GetUint64(); err == nil {
							fits++
						}
					}
					if fits > 0 {
						t.Errorf("%s: %d of %d cells decode from one share to a value below 2^64; a share should hide every count", name, fits, len(vw.counts))
					}
					// Bytes 0-7 of each element are uniform (the top ones are too, but for p < 2^128).
					var low []byte
					for i := 0; i+fp128.Size <= len(vw.raw); i += fp128.Size {
						low = append(low, vw.raw[i:i+8]...)
					}
					if chi := chiSquareBytes(low); chi > 255+6*22.6 {
						t.Errorf("%s: the share's bytes are not uniform: χ² = %.0f over 255 degrees of freedom", name, chi)
					}
				}
				// Two reports of the same counts: no cell's share repeats.
				same := 0
				for i := range vs[0].counts {
					if vs[0].counts[i] == vs[1].counts[i] {
						same++
					}
				}
				if same > 0 {
					t.Errorf("%s: %d cells have the same share in two reports of the same counts", name, same)
				}
			}
			// A distinguisher that looks at the mean of the low 16 bits of each cell's share
			// finds the same mean (2^15 - 0.5) for all-zero, all-maximum and real counts.
			for name, vs := range views {
				var sum, n float64
				for _, vw := range vs {
					for _, c := range vw.counts {
						b, _ := c.MarshalBinary()
						sum += float64(uint16(b[0]) | uint16(b[1])<<8)
						n++
					}
				}
				mean := sum / n
				sd := 65536 / math.Sqrt(12) / math.Sqrt(n)
				if math.Abs(mean-32767.5) > 5*sd {
					t.Errorf("%s: the low 16 bits of the shares average %.0f, not %.0f ± %.0f: they depend on the counts", name, mean, 32767.5, 5*sd)
				}
			}
		})
	}
}
