package formats

import (
	"bytes"
	"crypto/ed25519"
	"slices"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// Fixed inputs, so that every byte the tests write is the same on every run.
var (
	fixedTime  = time.Date(2024, 4, 5, 6, 7, 8, 0, time.UTC)
	fixedRunID = "20240405T060708Z-0123abcd"
	fixedFrom  = MonthFor(2024, 1)
	fixedTo    = MonthFor(2024, 3) // with fixedFrom: three months and their quarter
)

const (
	practiceA = "A81001"
	practiceB = "B82002"
)

// seedKey is a deterministic Ed25519 key: the same seed gives the same key and signatures.
func seedKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func pubOf(priv ed25519.PrivateKey) ed25519.PublicKey { return priv.Public().(ed25519.PublicKey) }

// sampleMeasures are the sample's measures: two of the catalogue and one of a federation's own.
var sampleMeasures = []string{RegisteredPatients, AdmissionsEmergency, "local_flu_vaccinations"}

// sampleTruth is the sample's true count of one fine cell: zeros, small counts and large
// ones, varying by month, measure, band and sex.
func sampleTruth(m Month, measure, fine int) int64 {
	v := int64((fine*7 + int(m)*5 + measure*11) % 17)
	switch measure {
	case 0:
		return 40 + v*13
	case 1:
		if v > 9 {
			return 0
		}
		return v / 2
	}
	return v
}

// buildSubmission publishes the sample's truth for fixedFrom..fixedTo under pol: every
// period, measure and shape, each through the policy, with one margin withheld as the
// agent's disclosure audit may withhold it.
func buildSubmission(practice string, pol Policy) *Submission {
	s := &Submission{
		Practice:   practice,
		RunID:      fixedRunID,
		From:       fixedFrom,
		To:         fixedTo,
		Extractors: []string{"synthea@1.0.0", "hes@0.3.1"},
		Policy:     pol.Name,
	}
	for _, p := range PeriodsOf(fixedFrom, fixedTo) {
		for mi, measure := range sampleMeasures {
			var sums [NumShapes]int64
			for m := p.Start; m <= p.End(); m++ {
				for f := range NumFine {
					n := sampleTruth(m, mi, f)
					b, x := ShapeDims(f)
					sums[f] += n
					sums[BandShape(b)] += n
					sums[SexShape(x)] += n
					sums[TotalShape] += n
				}
			}
			for shape, n := range sums {
				band, sex := ShapeLabels(shape)
				c := Cell{Period: p, Measure: measure, AgeBand: band, Sex: sex, Protected: pol.Apply(n)}
				if p.Kind == KindQuarter && mi == 1 && shape == BandShape(NumBands-1) {
					c.Protected = Protected{Status: StatusWithheld}
				}
				s.Cells = append(s.Cells, c)
			}
		}
	}
	// In no particular order: the writer sorts.
	slices.Reverse(s.Cells)
	return s
}

// sampleSubmission is buildSubmission under the default policy: it has every kind of value,
// zero, rounded, suppressed and withheld, under catalogue measures and an extra one.
func sampleSubmission(practice string) *Submission { return buildSubmission(practice, PolicyUK) }

func mustMarshal(t testing.TB, s *Submission) []byte {
	t.Helper()
	b, err := MarshalSubmission(s)
	if err != nil {
		t.Fatalf("MarshalSubmission: %v", err)
	}
	return b
}

// sampleManifest is the manifest of practice's fixed run with its submission file data.
func sampleManifest(practice string, data []byte) *Manifest {
	return &Manifest{
		FormatVersion: FormatVersion,
		Practice:      practice,
		RunID:         fixedRunID,
		Created:       fixedTime,
		Extractors:    []string{"synthea@1.0.0", "hes@0.3.1"},
		Policy:        PolicyUK.Name,
		From:          fixedFrom.String(),
		To:            fixedTo.String(),
		Files:         []FileEntry{Entry(practice, fixedRunID, data)},
	}
}

func mustSign(t testing.TB, m *Manifest, priv ed25519.PrivateKey) []byte {
	t.Helper()
	b, err := SignManifest(m, priv)
	if err != nil {
		t.Fatalf("SignManifest: %v", err)
	}
	return b
}

// sampleRegistry registers practices A and B (B's first key revoked) with fixed keys.
func sampleRegistry(t testing.TB) *Registry {
	t.Helper()
	r := &Registry{FormatVersion: RegistryVersion, Updated: fixedTime}
	add := func(practice, name string, priv ed25519.PrivateKey, revoked *time.Time) {
		e, err := NewRegistryEntry(practice, name, pubOf(priv), fixedTime.AddDate(0, -1, 0))
		if err != nil {
			t.Fatal(err)
		}
		e.Revoked = revoked
		r.Practices = append(r.Practices, e)
	}
	revoked := fixedTime.AddDate(0, 0, -3)
	add(practiceA, "Riverside Surgery", seedKey(1), nil)
	add(practiceB, "Hilltop Medical Centre", seedKey(3), &revoked)
	add(practiceB, "Hilltop Medical Centre", seedKey(2), nil)
	return r
}

// rawRow is a submission row as it lands in the file, with nothing checked: the tests
// write defects that WriteSubmission would refuse. A nil code is a null.
type rawRow struct {
	period, measure string
	codes           [NumShapes]*int32
}

func i32(v int32) *int32 { return &v }

// rawOf is a block as WriteSubmission writes it.
func rawOf(b Block) rawRow {
	r := rawRow{period: b.Period.String(), measure: b.Measure}
	for i, v := range b.Values {
		r.codes[i] = i32(encode(v))
	}
	return r
}

// sampleRows are a submission's rows, in the file's order.
func sampleRows(t testing.TB, s *Submission) []rawRow {
	t.Helper()
	blocks, err := s.Blocks()
	if err != nil {
		t.Fatal(err)
	}
	var rows []rawRow
	for _, b := range blocks {
		rows = append(rows, rawOf(b))
	}
	return rows
}

// submissionMeta is the metadata WriteSubmission gives s, as a map the tests can spoil.
func submissionMeta(s *Submission) map[string]string {
	md := s.metadata()
	out := map[string]string{}
	for i, k := range md.Keys() {
		out[k] = md.Values()[i]
	}
	return out
}

// craftSubmission writes rows under SubmissionSchema with the given metadata, using Arrow's
// own builders and file writer, so each test file carries exactly one targeted defect.
func craftSubmission(t testing.TB, meta map[string]string, rows []rawRow) []byte {
	t.Helper()
	return craftFile(t, SubmissionSchema.Fields(), meta, func(b *array.RecordBuilder) {
		for _, r := range rows {
			b.Field(0).(*array.StringBuilder).Append(r.period)
			b.Field(1).(*array.StringBuilder).Append(r.measure)
			for i, c := range r.codes {
				if c == nil {
					b.Field(2 + i).(*array.Int32Builder).AppendNull()
				} else {
					b.Field(2 + i).(*array.Int32Builder).Append(*c)
				}
			}
		}
	})
}

// craftFile writes one record of any schema as a zstd Arrow IPC file.
func craftFile(t testing.TB, fields []arrow.Field, meta map[string]string, build func(*array.RecordBuilder)) []byte {
	t.Helper()
	var keys, vals []string
	for k, v := range meta {
		keys = append(keys, k)
		vals = append(vals, v)
	}
	md := arrow.NewMetadata(keys, vals)
	schema := arrow.NewSchema(fields, &md)
	b := array.NewRecordBuilder(memory.NewGoAllocator(), schema)
	defer b.Release()
	build(b)
	rec := b.NewRecord()
	defer rec.Release()
	var buf bytes.Buffer
	w, err := ipc.NewFileWriter(&positionWriter{w: &buf}, ipc.WithSchema(schema), ipc.WithZstd())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
