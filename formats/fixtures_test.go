package formats

import (
	"bytes"
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// Fixed inputs, so that every byte the tests write is the same on every run.
var (
	fixedTime   = time.Date(2024, 4, 5, 6, 7, 8, 0, time.UTC)
	fixedRunID  = "20240405T060708Z-0123abcd"
	fixedPeriod = MonthFor(2024, 3)
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

// sampleSubmission has every kind of cell: zero, rounded, suppressed, under both a catalogue
// measure and an extra one, in no particular order (the writer sorts).
func sampleSubmission(practice string) *Submission {
	return &Submission{
		Practice:   practice,
		Period:     fixedPeriod,
		RunID:      fixedRunID,
		Extractors: []string{"synthea@1.0.0", "hes@0.3.1"},
		Policy:     PolicyUK.Name,
		Cells: []Cell{
			{Measure: "local_flu_vaccinations", AgeBand: "65-69", Sex: "female", Protected: PolicyUK.Apply(41)},
			{Measure: Consultations, AgeBand: "90+", Sex: "unknown", Protected: PolicyUK.Apply(3)},
			{Measure: RegisteredPatients, AgeBand: "0-4", Sex: "female", Protected: PolicyUK.Apply(123)},
			{Measure: RegisteredPatients, AgeBand: "0-4", Sex: "male", Protected: PolicyUK.Apply(0)},
			{Measure: RegisteredPatients, AgeBand: "5-9", Sex: "male", Protected: PolicyUK.Apply(8)},
			{Measure: AdmissionsEmergency, AgeBand: "85-89", Sex: "male", Protected: PolicyUK.Apply(7)},
			{Measure: BedDays, AgeBand: "70-74", Sex: "female", Protected: PolicyUK.Apply(1)},
			{Measure: BedDays, AgeBand: "70-74", Sex: "male", Protected: PolicyUK.Apply(10001)},
		},
	}
}

func mustMarshal(t testing.TB, s *Submission) []byte {
	t.Helper()
	b, err := MarshalSubmission(s)
	if err != nil {
		t.Fatalf("MarshalSubmission: %v", err)
	}
	return b
}

// sampleManifest lists files (by period) of practice's fixed run.
func sampleManifest(practice string, files map[Month][]byte) *Manifest {
	m := &Manifest{
		FormatVersion: FormatVersion,
		Practice:      practice,
		RunID:         fixedRunID,
		Created:       fixedTime,
		Extractors:    []string{"synthea@1.0.0", "hes@0.3.1"},
		Policy:        PolicyUK.Name,
	}
	for p := MonthFor(1900, 1); p < MonthFor(2100, 1); p++ {
		if data, ok := files[p]; ok {
			m.Files = append(m.Files, Entry(practice, fixedRunID, p, data))
		}
	}
	return m
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
	r := &Registry{FormatVersion: FormatVersion, Updated: fixedTime}
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

// rawCell is a submission row as it lands in the file, with nothing checked: the tests
// write defects that WriteSubmission would refuse.
type rawCell struct {
	measure, band, sex string
	count              *int64
	status             string
	lower, upper       int64
}

func i64(v int64) *int64 { return &v }

func rawOf(c Cell) rawCell {
	r := rawCell{measure: c.Measure, band: c.AgeBand, sex: c.Sex, status: c.Status, lower: c.Lower, upper: c.Upper}
	if c.Status != StatusSuppressed {
		r.count = i64(c.Count)
	}
	return r
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

// craftSubmission writes cells under SubmissionSchema with the given metadata, using Arrow's
// own builders and file writer, so each test file carries exactly one targeted defect.
func craftSubmission(t testing.TB, meta map[string]string, cells []rawCell) []byte {
	t.Helper()
	return craftFile(t, SubmissionSchema.Fields(), meta, func(b *array.RecordBuilder) {
		for _, c := range cells {
			b.Field(0).(*array.StringBuilder).Append(c.measure)
			b.Field(1).(*array.StringBuilder).Append(c.band)
			b.Field(2).(*array.StringBuilder).Append(c.sex)
			if c.count == nil {
				b.Field(3).(*array.Int64Builder).AppendNull()
			} else {
				b.Field(3).(*array.Int64Builder).Append(*c.count)
			}
			b.Field(4).(*array.StringBuilder).Append(c.status)
			b.Field(5).(*array.Int64Builder).Append(c.lower)
			b.Field(6).(*array.Int64Builder).Append(c.upper)
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
