package combine_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/figures"
	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/internal/objstore"
)

// The coordinator's own readers of bytes from the store: the combined tables, current.json
// and report.json. federation/ is written only by the coordinator's user, but a reader must
// still never panic, hang or exhaust memory on whatever the bucket holds. They run with their
// seeds and the regression inputs in testdata/fuzz/<Name>/ on every go test; CI fuzzes each
// for a bounded time (.ci/run, step fuzz):
//
//	go test ./coordinator/combine -run '^$' -fuzz '^FuzzReadTable$' -fuzztime 30s -fuzzminimizetime 2s

var (
	seedOnce sync.Once
	seedOut  map[string][]byte // a real combine's outputs by object name
)

// seeds combines a small generated federation once and returns its outputs.
func seeds(tb testing.TB) map[string][]byte {
	seedOnce.Do(func() {
		ctx := context.Background()
		st, err := objstore.NewDir(tb.TempDir()) // read into memory before tb ends
		if err != nil {
			panic(err)
		}
		fed := fedgen.New(fedgen.Params{Practices: 3, Months: 2, Seed: 3})
		if err := fed.Write(ctx, st, 2); err != nil {
			panic(err)
		}
		res, err := combine.Run(ctx, st, fed.Coordinator.Public().(ed25519.PublicKey), combine.Options{})
		if err != nil {
			panic(err)
		}
		seedOut = map[string][]byte{}
		get := func(name, key string) {
			data, _, err := st.Get(ctx, key, 1<<30)
			if err != nil {
				panic(err)
			}
			seedOut[name] = data
		}
		get("current.json", combine.CurrentKey)
		for name, ref := range res.Pointer.Objects {
			get(name, ref.Key)
		}
		for _, ref := range res.Pointer.PracticeTables {
			get("practice", ref.Key)
			break
		}
	})
	return seedOut
}

func addTruncations(f *testing.F, inputs ...[]byte) {
	for _, b := range inputs {
		f.Add(b)
		for _, n := range []int{0, 8, len(b) / 3, len(b) / 2, len(b) - 9, len(b) - 1} {
			if n >= 0 && n < len(b) {
				f.Add(b[:n])
			}
		}
	}
}

// FuzzReadTable: any bytes give rows or an error, never a panic, within a bounded allocation.
func FuzzReadTable(f *testing.F) {
	s := seeds(f)
	addTruncations(f, s[combine.FederationArrow], s["practice"])
	f.Fuzz(func(t *testing.T, data []byte) {
		sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
		metrics.Read(sample)
		before := sample[0].Value.Uint64()
		rows := 0
		// Either reader on any table: each checks the table's kind before its columns.
		_, err := combine.ReadFederationTable(data, func(*figures.Figure) error {
			rows++
			return nil
		})
		_, perr := combine.ReadPracticeTable(data, func(*combine.PracticeRow) error {
			rows++
			return nil
		})
		if perr != nil {
			err = perr
		}
		metrics.Read(sample)
		if n := sample[0].Value.Uint64() - before; n > 2*combine.MaxTableDecodedBytes+64*uint64(len(data)) {
			t.Fatalf("one %d-byte table allocated %d MiB", len(data), n>>20)
		}
		if err != nil && rows > 1<<22 {
			t.Fatalf("%d rows passed on before an error", rows)
		}
	})
}

// FuzzParsePointer: a pointer that parses names only objects under federation/ with sane refs.
func FuzzParsePointer(f *testing.F) {
	addTruncations(f, seeds(f)["current.json"])
	f.Add([]byte(`{"format_version":1}`))
	f.Add([]byte(`{"format_version":2}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := combine.ParsePointer(data)
		if err != nil {
			return
		}
		for name, ref := range p.Objects {
			if ref.Key != p.Prefix+name && (name == combine.FederationArrow || name == combine.ReportJSON) {
				t.Fatalf("accepted %s at %s", name, ref.Key)
			}
			if ref.Size < 0 || len(ref.SHA256) != 64 {
				t.Fatalf("accepted ref %+v", ref)
			}
		}
	})
}

// FuzzParseReport: any bytes give a report or an error, and a report digests its inputs
// without failing.
func FuzzParseReport(f *testing.F) {
	addTruncations(f, seeds(f)[combine.ReportJSON])
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := combine.ParseReport(data)
		if err != nil {
			return
		}
		if d := r.UsedDigest(); len(d) != 64 {
			t.Fatalf("digest %q", d)
		}
	})
}

// TestReadTableBomb: a combined table whose compressed buffer claims a terabyte is refused
// before the memory is spent.
func TestReadTableBomb(t *testing.T) {
	s := seeds(t)
	for _, name := range []string{combine.FederationArrow, "practice"} {
		data := bytes.Clone(s[name])
		i := -1
		for _, magic := range [][]byte{{0x28, 0xb5, 0x2f, 0xfd}, {0x04, 0x22, 0x4d, 0x18}} { // zstd, LZ4 frame
			if j := bytes.Index(data, magic); j >= 8 && (i < 0 || j < i) {
				i = j
			}
		}
		if i < 0 {
			t.Fatalf("%s holds no compressed buffer", name)
		}
		binary.LittleEndian.PutUint64(data[i-8:], 1<<40)
		var err error
		if name == combine.FederationArrow {
			_, err = combine.ReadFederationTable(data, func(*figures.Figure) error { return nil })
		} else {
			_, err = combine.ReadPracticeTable(data, func(*combine.PracticeRow) error { return nil })
		}
		if err == nil || !strings.Contains(err.Error(), "compression bomb") {
			t.Errorf("%s claiming 1 TiB: %v, want a refusal naming a compression bomb", name, err)
		}
	}
}
