package holder

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cloudflare/circl/vdaf/prio3/arith/fp128"
	"github.com/cloudflare/circl/vdaf/prio3/sumvec"

	"github.com/tributary-health/tributary/coordinator/secure"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/secagg"
)

// canaryCounts are a practice's counts, the same in every fine cell of a measure: 5-digit
// values, none a multiple of 5, so that neither they nor their sums over 2, 3, 6, 19, 38, 57
// or 114 cells (margins, totals, the two months' quarter) are ever a rounded value. They keep
// the admission relations (emergency + elective <= admissions; patients <= emergency).
var canaryCounts = map[string]int64{
	formats.RegisteredPatients: 54321, formats.Consultations: 43211, formats.OutpatientAttendances: 32109,
	formats.AEAttendances: 21098, formats.Admissions: 47777, formats.AdmissionsEmergency: 19876,
	formats.AdmissionsElective: 18767, formats.BedDays: 38383, formats.PatientsAdmittedEmergency: 17654,
}

// needles are the canary practice's exact values: each count and its sums over the cells of
// a margin, total or quarter.
func canaryNeedles() []int64 {
	var out []int64
	for _, v := range canaryCounts {
		for _, k := range []int64{1, 2, 3, 6, 19, 38, 57, 114} {
			out = append(out, k*v)
		}
	}
	return out
}

// encodings are the ways a count could be written in binary: 8-byte integers of either
// order, 4-byte ones where the count needs more than two bytes (a 4-byte needle with two zero
// bytes is a 2-byte needle, found by chance in any compressed file), and a Prio3 field
// element (the share of a count is never one, but the count is). The field element is last.
func encodings(v int64) [][]byte {
	var out [][]byte
	b := make([]byte, 8)
	if v >= 1<<16 {
		binary.LittleEndian.PutUint32(b, uint32(v))
		out = append(out, slices.Clone(b[:4]))
		binary.BigEndian.PutUint32(b, uint32(v))
		out = append(out, slices.Clone(b[:4]))
	}
	binary.LittleEndian.PutUint64(b, uint64(v))
	out = append(out, slices.Clone(b))
	binary.BigEndian.PutUint64(b, uint64(v))
	out = append(out, slices.Clone(b))
	var e fp128.Fp
	if err := e.SetUint64(uint64(v)); err != nil {
		panic(err)
	}
	fe, _ := e.MarshalBinary()
	return append(out, fe)
}

// containsNumber reports whether text holds n as a number of its own (not inside a longer
// run of letters, digits or base64).
func containsNumber(text []byte, n int64) bool {
	re := regexp.MustCompile(`(^|[^0-9A-Za-z+/])` + strconv.FormatInt(n, 10) + `($|[^0-9A-Za-z+/])`)
	return re.Match(text)
}

// TestNothingReadable runs two months of a round in which one practice's counts are
// distinctive, then looks for them, as numbers and in every binary encoding of a count,
// through the whole store (its shares files, manifests, the holders' messages, the round's
// record and figures, its own published figures), both holders' logs (at debug level) and
// their state folders: none is there. The practice's share, decrypted with one holder's key,
// holds none of them either. Both holders' keys together open, of all the holders exchanged,
// only the round's verify key and one aggregate share per month, never a practice's; with
// the leader's own aggregate share it gives exactly the month's federation total, and
// nothing of any one practice.
func TestNothingReadable(t *testing.T) {
	jan, feb := formats.MonthFor(2024, 1), formats.MonthFor(2024, 2)
	f := newTestFed(t, 5, jan, feb)
	canary := f.practices[2]
	canary.canary = canaryCounts
	for _, p := range f.practices {
		f.upload(p, uploadOptions{})
	}
	own := map[string][]byte{}
	lead, _ := mustRound(t, f, LeadOptions{ownAggregate: func(month string, share []byte) { own[month] = share }})
	if len(lead.Months) != 2 || len(lead.Rejected) != 0 {
		t.Fatalf("round: %+v %+v", lead.Months, lead.Rejected)
	}
	needles := canaryNeedles()
	// The search finds what it looks for.
	if !containsNumber([]byte(`msg=x count=54321 took=2ms`), 54321) || containsNumber([]byte(`AB54321/x`), 54321) ||
		!bytes.Contains(append([]byte{1, 2}, encodings(3096297)[0]...), encodings(3096297)[0]) {
		t.Fatal("the needle search is broken")
	}

	// Everything: every object, both logs, every file of both state folders.
	type blob struct {
		name string
		data []byte
	}
	var blobs []blob
	infos, err := f.st.List(f.ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		data, _, err := f.st.Get(f.ctx, in.Key, formats.MaxSharesBytes)
		if err != nil {
			t.Fatal(err)
		}
		blobs = append(blobs, blob{in.Key, data})
	}
	for i, l := range f.logs {
		if len(l.Bytes()) == 0 {
			t.Fatalf("holder %d wrote no log: the test would prove nothing", i)
		}
		blobs = append(blobs, blob{"log of " + f.keys[i].ID, l.Bytes()})
	}
	for _, dir := range f.states {
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			data, err := os.ReadFile(path)
			blobs = append(blobs, blob{path, data})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	kinds := map[string]int{}
	for _, b := range blobs {
		switch {
		case strings.HasSuffix(b.name, formats.SharesSuffix):
			kinds["shares"]++
		case strings.HasPrefix(b.name, secure.HoldersPrefix):
			kinds["messages"]++
		case strings.HasPrefix(b.name, secure.Prefix):
			kinds["publication"]++
		case strings.HasPrefix(b.name, "log of"):
			kinds["logs"]++
		case strings.HasSuffix(b.name, stateFile):
			kinds["state"]++
		}
	}
	if kinds["shares"] != 10 || kinds["messages"] < 8 || kinds["publication"] < 2 || kinds["logs"] != 2 || kinds["state"] != 2 {
		t.Fatalf("the search does not cover what it must: %v", kinds)
	}
	binaryFile := func(name string) bool {
		return strings.HasSuffix(name, formats.SharesSuffix) || strings.HasSuffix(name, ".arrow")
	}
	for _, b := range blobs {
		for _, n := range needles {
			if !binaryFile(b.name) && containsNumber(b.data, n) {
				t.Errorf("%s holds the practice's count %d as a number", b.name, n)
			}
			for _, enc := range encodings(n) {
				if bytes.Contains(b.data, enc) {
					t.Errorf("%s holds the practice's count %d in binary (% x)", b.name, n, enc)
				}
			}
		}
	}

	// One key alone: the canary's input shares, decrypted, hold none of its counts.
	for i, k := range f.keys {
		data, _, err := f.st.Get(f.ctx, formats.SharesKey(canary.id, canary.runs[0], k.ID), formats.MaxSharesBytes)
		if err != nil {
			t.Fatal(err)
		}
		s, err := formats.ReadShares(data)
		if err != nil {
			t.Fatal(err)
		}
		for r := range s.Header.Reports {
			pt, err := secagg.Open(k.HPKE, secagg.InfoInputShare, s.Header.Reports[r].Enc, formats.ReportAAD(&s.Header, &s.Header.Reports[r]), s.Ciphertexts[r])
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range needles {
				var e fp128.Fp
				_ = e.SetUint64(uint64(n))
				fe, _ := e.MarshalBinary()
				if bytes.Contains(pt, fe) {
					t.Errorf("holder %d's share of the canary's %s holds its count %d", i, s.Header.Reports[r].Month, n)
				}
			}
		}
	}

	// Both keys, over everything the holders exchanged: the sealed items are the verify key
	// and one aggregate share per month; with the leader's own share, the month's total.
	helperSign := f.keys[1].Sign.Public().(ed25519.PublicKey)
	leaderSign := f.keys[0].Sign.Public().(ed25519.PublicKey)
	var plan Plan
	planSum, err := secure.GetSigned(f.ctx, f.st, secure.MessagePrefix(f.keys[0].ID, lead.Round)+planName, kindPlan, leaderSign, &plan)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := secagg.Open(f.keys[1].HPKE, secagg.InfoVerifyKey, plan.VerifyKey.Enc, verifyKeyAAD(&plan), plan.VerifyKey.CT); err != nil {
		t.Fatal(err)
	}
	var answer Aggregate
	if _, err := secure.GetSigned(f.ctx, f.st, secure.MessagePrefix(f.keys[1].ID, lead.Round)+aggregateName, kindAggregate, helperSign, &answer); err != nil {
		t.Fatal(err)
	}
	if len(answer.Months) != 2 {
		t.Fatalf("the helper's answer has %d months", len(answer.Months))
	}
	v, _ := secagg.New(secagg.Params())
	for _, am := range answer.Months {
		if am.Share == nil || len(am.Reports) != len(f.practices) {
			t.Fatalf("%s: %+v", am.Month, am)
		}
		pt, err := secagg.Open(f.keys[0].HPKE, secagg.InfoAggShare, am.Share.Enc, aggShareAAD(lead.Round, planSum, &am), am.Share.CT)
		if err != nil {
			t.Fatal(err)
		}
		theirs, err := v.AggShareOf(pt)
		if err != nil {
			t.Fatal(err)
		}
		mine, err := v.AggShareOf(own[am.Month])
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range needles {
			for _, share := range [][]byte{pt, own[am.Month]} {
				if enc := encodings(n); bytes.Contains(share, enc[len(enc)-1]) {
					t.Errorf("%s: an aggregate share holds the canary's count %d", am.Month, n)
				}
			}
		}
		total, err := v.SV.Unshard([]sumvec.AggShare{mine, theirs}, uint(len(f.practices)))
		if err != nil {
			t.Fatal(err)
		}
		month, _ := formats.ParseMonth(am.Month)
		if !slices.Equal(*total, exactTotal(f.practices, month)) {
			t.Errorf("%s: both holders' aggregate shares do not make the federation's total", am.Month)
		}
	}
}
