package formats

import (
	"bytes"
	"errors"
	"reflect"
	"runtime/metrics"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
)

// The fuzz targets run on every `go test` with their seeds and with the regression inputs in
// testdata/fuzz/<Name>/; to search for new failures, one at a time (each uses every core):
//
//	go test ./formats -run '^$' -fuzz '^FuzzReadSubmission$' -fuzztime 60s -fuzzminimizetime 2s
//
// (with the default minimize time the fuzzer can spend the whole minute shrinking its first
// new input). A failure is written to testdata/fuzz/<Name>/ and stays there as a regression
// case.

// fuzzLimits are tighter than the defaults so that an input that gets round a limit shows up
// as a slow, memory-hungry run rather than hiding inside a generous one.
var fuzzLimits = Limits{MaxObjectBytes: 1 << 20, MaxDecodedBytes: 16 << 20}

// maxFuzzAlloc bounds what one input may cost on the heap, all allocations counted, freed or
// not: the decode limit plus what Arrow and zstd spend besides. Before the framing checks a
// 3 KB file could cost 513 MiB, and one claiming 2^32 schema fields crashed the process.
const maxFuzzAlloc = 8 * (16 << 20)

// boundedAlloc runs fn and fails if it allocated more than maxFuzzAlloc plus 64 times the input.
func boundedAlloc(t *testing.T, input int, fn func()) {
	t.Helper()
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(sample)
	before := sample[0].Value.Uint64()
	fn()
	metrics.Read(sample)
	if n := sample[0].Value.Uint64() - before; n > maxFuzzAlloc+64*uint64(input) {
		t.Fatalf("one %d-byte input allocated %d MiB", input, n>>20)
	}
}

// checkFuzzError asserts what every error of this package promises whatever the input:
// exactly one kind, an *Error, and a bounded printable text.
func checkFuzzError(t *testing.T, err error) {
	t.Helper()
	var fe *Error
	if !errors.As(err, &fe) {
		t.Fatalf("error %q (%T) is not a *formats.Error", err, err)
	}
	n := 0
	for _, k := range allKinds {
		if errors.Is(err, k) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("error %q has %d kinds", err, n)
	}
	if msg := err.Error(); len(msg) > 1000 || strings.ContainsAny(msg, "\n\r\x00") {
		t.Fatalf("error text is unbounded or carries control characters (%d bytes): %q", len(msg), msg)
	}
}

// addSeeds adds each of inputs and its truncations, the commonest damage to an upload.
func addSeeds(f *testing.F, inputs ...[]byte) {
	for _, b := range inputs {
		f.Add(b)
		for _, n := range []int{0, 8, len(b) / 4, len(b) / 2, len(b) - 12, len(b) - 1} {
			if n >= 0 && n < len(b) {
				f.Add(b[:n])
			}
		}
	}
}

func FuzzReadSubmission(f *testing.F) {
	golden := goldenFiles(f)
	addSeeds(f, golden["submission-uk.arrow"], golden["submission-midpoint6.arrow"])
	rows := sampleRows(f, sampleSubmission(practiceA))
	rows[0].codes[1] = i32(12)
	f.Add(craftSubmission(f, submissionMeta(sampleSubmission(practiceA)), rows))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s *Submission
		var err error
		boundedAlloc(t, len(data), func() { s, err = ReadSubmission(data, fuzzLimits) })
		if err != nil {
			if s != nil {
				t.Fatal("a submission and an error")
			}
			checkFuzzError(t, err)
			return
		}
		// What is accepted is valid, and writes and reads back as itself.
		if err := s.Validate(); err != nil {
			t.Fatalf("accepted an invalid submission: %v", err)
		}
		b, err := MarshalSubmission(s)
		if err != nil {
			t.Fatalf("an accepted submission does not write: %v", err)
		}
		again, err := ReadSubmission(b, fuzzLimits)
		if err != nil {
			t.Fatalf("a rewritten submission does not read: %v", err)
		}
		s.Sort()
		if !reflect.DeepEqual(s, again) {
			t.Fatalf("round trip changed the submission:\n%+v\n%+v", s, again)
		}
	})
}

func FuzzReadManifest(f *testing.F) {
	golden := goldenFiles(f)
	addSeeds(f, golden["manifest.json"])
	f.Add(golden["registry.json"])
	f.Add([]byte(`{"payload_type":"x","payload":"e30=","key_id":"","signature":"AA=="}`))
	pub := pubOf(seedKey(1))
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := ParseEnvelope(data); err != nil {
			checkFuzzError(t, err)
		}
		key := ManifestKey(practiceA, fixedRunID)
		m, env, err := ReadManifestUnverified(data)
		if err != nil {
			checkFuzzError(t, err)
		} else {
			if env == nil || m == nil {
				t.Fatal("no manifest and no error")
			}
			if ValidatePracticeID(m.Practice) == nil && ValidateRunID(m.RunID) == nil {
				key = m.Key()
			}
		}
		v, err := VerifyManifest(key, data, pub)
		if err != nil {
			checkFuzzError(t, err)
			return
		}
		if err := v.Validate(); err != nil || v.Key() != key {
			t.Fatalf("accepted a manifest that is invalid (%v) or stored at %s, not %s", err, key, v.Key())
		}
		for _, f := range v.Files {
			if !strings.HasPrefix(f.Key, RunPrefix(v.Practice, v.RunID)) {
				t.Fatalf("accepted a manifest naming %s outside its run", f.Key)
			}
		}
	})
}

func FuzzVerifyRegistry(f *testing.F) {
	golden := goldenFiles(f)
	addSeeds(f, golden["registry.json"])
	f.Add(golden["manifest.json"])
	pub := pubOf(seedKey(7))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := VerifyRegistry(data, pub)
		if err != nil {
			checkFuzzError(t, err)
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("accepted an invalid registry: %v", err)
		}
		for _, e := range r.Practices {
			if _, err := r.KeyFor(e.Practice, e.KeyID); err != nil && !errors.Is(err, ErrRevoked) {
				t.Fatalf("a registered key does not look up: %v", err)
			}
		}
	})
}

func FuzzDecodeBatch(f *testing.F) {
	rb := NewRegistrationBuilder(nil)
	defer rb.Release()
	for _, r := range sampleRegistrations {
		if err := rb.Append(r); err != nil {
			f.Fatal(err)
		}
	}
	eb := NewEventBuilder(nil)
	defer eb.Release()
	for _, e := range sampleEvents {
		if err := eb.Append(e); err != nil {
			f.Fatal(err)
		}
	}
	for _, rec := range []arrow.Record{rb.NewRecord(), eb.NewRecord()} {
		b, err := EncodeBatch(rec)
		rec.Release()
		if err != nil {
			f.Fatal(err)
		}
		addSeeds(f, b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var rec arrow.Record
		var err error
		boundedAlloc(t, len(data), func() { rec, err = DecodeBatch(data, fuzzLimits.MaxDecodedBytes) })
		if err != nil {
			checkFuzzError(t, err)
			return
		}
		defer rec.Release()
		// Whatever decodes must be safe to hand to the row decoders.
		for _, err := range []error{
			DecodeRegistrations(rec, func(Registration) error { return nil }),
			DecodeEvents(rec, func(Event) error { return nil }),
		} {
			if err != nil {
				checkFuzzError(t, err)
				if strings.Contains(err.Error(), secretKey) {
					t.Fatalf("an error carries a patient key: %v", err)
				}
			}
		}
		if _, err := EncodeBatch(rec); err != nil {
			t.Fatalf("a decoded batch does not encode: %v", err)
		}
	})
}

func FuzzParseKey(f *testing.F) {
	for _, k := range []string{
		ManifestKey(practiceA, fixedRunID),
		SubmissionKey(practiceA, fixedRunID),
		"practices/../federation/x",
		RunPrefix(practiceA, fixedRunID) + "../../" + practiceB + "/runs/" + fixedRunID + "/2024-03.arrow",
		RunPrefix(practiceA, fixedRunID) + "2024-13.arrow",
		RunPrefix(practiceA, fixedRunID),
		"practices/Ä81001/runs/" + fixedRunID + "/manifest.json",
		RegistryKey,
	} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		k, err := ParseKey(key)
		if err != nil {
			checkFuzzError(t, err)
			if !errors.Is(err, ErrKey) && !errors.Is(err, ErrFormatVersion) {
				t.Fatalf("ParseKey error of kind other than ErrKey or ErrFormatVersion: %v", err)
			}
			return
		}
		// An accepted key is exactly the one the layout functions make: one key per object,
		// inside its own practice's prefix, with no way to climb out of it.
		want := ManifestKey(k.Practice, k.RunID)
		if !k.Manifest() {
			want = SubmissionKey(k.Practice, k.RunID)
		}
		if want != key {
			t.Fatalf("ParseKey(%q) = %+v, which is written %q", key, k, want)
		}
		if strings.Contains(key, "..") || strings.Contains(key, "//") || strings.ContainsAny(key, "\\\x00") {
			t.Fatalf("ParseKey accepted %q", key)
		}
		if ValidatePracticeID(k.Practice) != nil || ValidateRunID(k.RunID) != nil {
			t.Fatalf("ParseKey accepted ids that do not validate: %+v", k)
		}
		if !bytes.HasPrefix([]byte(key), []byte(PracticePrefix(k.Practice))) {
			t.Fatalf("%q is outside %s", key, PracticePrefix(k.Practice))
		}
	})
}
