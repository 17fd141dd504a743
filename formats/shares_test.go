package formats

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func sampleShares(practice, holder string) *Shares {
	h := SharesHeader{
		FormatVersion: FormatVersion, Kind: KindShares, Practice: practice, RunID: fixedRunID,
		Holder: holder, HolderKeyID: "0123456789abcdef", Aggregator: 1,
		VDAF: VDAFParams{Name: "Prio3SumVec", Bits: 16, ChunkLength: 90, Measures: Measures},
		HPKE: "DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM",
	}
	s := &Shares{Header: h}
	for i, month := range []string{"2024-01", "2024-02"} {
		nonce := strings.Repeat(string("0123456789abcdef"[i]), 32)
		s.Header.Reports = append(s.Header.Reports, ShareReport{Month: month, Nonce: nonce, Supplied: []string{RegisteredPatients, AEAttendances},
			PublicShare: bytes.Repeat([]byte{byte(i)}, 64), Enc: bytes.Repeat([]byte{7}, 32)})
		s.Ciphertexts = append(s.Ciphertexts, bytes.Repeat([]byte{byte(0x40 + i)}, 80+i))
	}
	return s
}

func TestSharesKeys(t *testing.T) {
	key := SharesKey(practiceA, fixedRunID, "icb-analytics")
	k, err := ParseKey(key)
	if err != nil || !k.Shares() || k.Holder != "icb-analytics" || k.Name != "shares-icb-analytics.bin" || k.Manifest() {
		t.Fatalf("ParseKey(%s) = %+v, %v", key, k, err)
	}
	prefix := RunPrefix(practiceA, fixedRunID)
	for _, bad := range []string{
		prefix + "shares-.bin", prefix + "shares-ICB.bin", prefix + "shares-a_b.bin", prefix + "shares--x.bin",
		prefix + "shares-x.bin.tmp", prefix + "shares-x", prefix + "shares-" + strings.Repeat("a", 33) + ".bin",
		prefix + "Shares-x.bin", prefix + "shares-x/y.bin",
	} {
		if _, err := ParseKey(bad); !errors.Is(err, ErrKey) {
			t.Errorf("ParseKey(%q) = %v, want ErrKey", bad, err)
		}
	}
	if err := ValidateHolderID("federation"); err != nil {
		t.Error(err)
	}
}

func TestManifestWithShares(t *testing.T) {
	data := mustMarshal(t, sampleSubmission(practiceA))
	m := sampleManifest(practiceA, data)
	sh, err := MarshalShares(sampleShares(practiceA, "federation"))
	if err != nil {
		t.Fatal(err)
	}
	m.Files = append(m.Files, SharesEntry(practiceA, fixedRunID, "federation", sh))
	if err := m.Validate(); err != nil {
		t.Fatalf("a manifest with a shares file: %v", err)
	}
	if f, ok := m.SharesFor("federation"); !ok || f.Key != SharesKey(practiceA, fixedRunID, "federation") {
		t.Errorf("SharesFor = %+v, %v", f, ok)
	}
	if _, ok := m.SharesFor("icb"); ok {
		t.Error("SharesFor found a holder the run has no file for")
	}
	if f, ok := m.Submission(); !ok || !strings.HasSuffix(f.Key, FiguresName) {
		t.Errorf("Submission() = %+v with a shares file beside it", f)
	}
	// Twice the same holder, or shares without figures.arrow, are refused.
	twice := *m
	twice.Files = append(append([]FileEntry{}, m.Files...), m.Files[1])
	if err := twice.Validate(); !errors.Is(err, ErrValue) {
		t.Errorf("a holder's shares listed twice: %v", err)
	}
	alone := *m
	alone.Files = m.Files[1:]
	if err := alone.Validate(); !errors.Is(err, ErrValue) {
		t.Errorf("shares without figures.arrow: %v", err)
	}
	other := *m
	other.Files = append(append([]FileEntry{}, m.Files...), SharesEntry(practiceB, fixedRunID, "icb", sh))
	if err := other.Validate(); !errors.Is(err, ErrPracticeMismatch) {
		t.Errorf("another practice's shares: %v", err)
	}
}

func TestSharesRoundTrip(t *testing.T) {
	s := sampleShares(practiceA, "federation")
	data, err := MarshalShares(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ReadShares(data)
	if err != nil {
		t.Fatal(err)
	}
	again, err := MarshalShares(got)
	if err != nil || !bytes.Equal(again, data) {
		t.Fatalf("shares do not round-trip: %v", err)
	}
	for i := range s.Ciphertexts {
		if !bytes.Equal(got.Ciphertexts[i], s.Ciphertexts[i]) {
			t.Errorf("ciphertext %d differs", i)
		}
	}
	m := sampleManifest(practiceA, mustMarshal(t, sampleSubmission(practiceA)))
	f := SharesEntry(practiceA, fixedRunID, "federation", data)
	m.Files = append(m.Files, f)
	if _, err := VerifyShares(m, f, data); err != nil {
		t.Fatalf("VerifyShares: %v", err)
	}
	// The same bytes under another holder's key, or changed, are refused.
	moved := SharesEntry(practiceA, fixedRunID, "icb", data)
	if _, err := VerifyShares(m, moved, data); !errors.Is(err, ErrPracticeMismatch) {
		t.Errorf("shares under another holder's key: %v", err)
	}
	bad := bytes.Clone(data)
	bad[len(bad)-1] ^= 1
	if _, err := VerifyShares(m, f, bad); !errors.Is(err, ErrChecksum) {
		t.Errorf("changed shares: %v", err)
	}
	// AAD binds the report to its place.
	a := ReportAAD(&s.Header, &s.Header.Reports[0])
	h2 := s.Header
	h2.RunID = "20240405T060708Z-0123abce"
	if bytes.Equal(a, ReportAAD(&h2, &s.Header.Reports[0])) || bytes.Equal(a, ReportAAD(&s.Header, &s.Header.Reports[1])) {
		t.Error("the associated data does not depend on the run or the report")
	}
	d := ReportDigest(practiceA, fixedRunID, s.Header.VDAF, &s.Header.Reports[0])
	if d == ReportDigest(practiceA, fixedRunID, s.Header.VDAF, &s.Header.Reports[1]) || len(d) != 64 {
		t.Errorf("report digest %q", d)
	}
}

func TestReadSharesRejects(t *testing.T) {
	good, err := MarshalShares(sampleShares(practiceA, "federation"))
	if err != nil {
		t.Fatal(err)
	}
	header := func(edit func(h *SharesHeader)) []byte {
		s := sampleShares(practiceA, "federation")
		edit(&s.Header)
		head := mustJSON(t, s.Header)
		var b bytes.Buffer
		b.WriteString(SharesMagic)
		_ = binary.Write(&b, binary.BigEndian, uint32(len(head)))
		b.Write(head)
		for i, ct := range s.Ciphertexts {
			if i < len(s.Header.Reports) {
				b.Write(ct)
			}
		}
		return b.Bytes()
	}
	cases := []struct {
		name string
		data []byte
		kind error
	}{
		{"empty", nil, ErrCorrupt},
		{"other magic", append([]byte("TRIBSHR1"), good[8:]...), ErrFormatVersion},
		{"not shares", []byte("PAR1 not a shares file"), ErrCorrupt},
		{"truncated", good[:len(good)-1], ErrCorrupt},
		{"appended", append(bytes.Clone(good), 0), ErrCorrupt},
		{"huge header claim", append([]byte(SharesMagic), 0xff, 0xff, 0xff, 0xff), ErrCorrupt},
		{"too large", make([]byte, MaxSharesBytes+1), ErrTooLarge},
		{"format 1", header(func(h *SharesHeader) { h.FormatVersion = 1 }), ErrFormatVersion},
		{"kind", header(func(h *SharesHeader) { h.Kind = "submission" }), ErrSchema},
		{"holder id", header(func(h *SharesHeader) { h.Holder = "ICB" }), ErrValue},
		{"aggregator", header(func(h *SharesHeader) { h.Aggregator = 2 }), ErrValue},
		{"bits", header(func(h *SharesHeader) { h.VDAF.Bits = 65 }), ErrValue},
		{"key id", header(func(h *SharesHeader) { h.HolderKeyID = "x" }), ErrValue},
		{"same month twice", header(func(h *SharesHeader) { h.Reports[1].Month = h.Reports[0].Month }), ErrValue},
		{"same nonce twice", header(func(h *SharesHeader) { h.Reports[1].Nonce = h.Reports[0].Nonce }), ErrValue},
		{"bad nonce", header(func(h *SharesHeader) { h.Reports[0].Nonce = "00" }), ErrValue},
		{"supplied outside layout", header(func(h *SharesHeader) { h.Reports[0].Supplied = []string{"x"} }), ErrValue},
		{"no reports", header(func(h *SharesHeader) { h.Reports = nil }), ErrValue},
	}
	for _, c := range cases {
		_, err := ReadShares(c.data)
		if !errors.Is(err, c.kind) {
			t.Errorf("%s: %v, want %v", c.name, err, c.kind)
		}
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzReadShares(f *testing.F) {
	good, err := MarshalShares(sampleShares(practiceA, "federation"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:40])
	f.Add([]byte(SharesMagic + "\x00\x00\x00\x02{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		boundedAlloc(t, len(data), func() {
			s, err := ReadShares(data)
			if err != nil {
				var fe *Error
				if !errors.As(err, &fe) {
					t.Fatalf("error is not a *formats.Error: %v", err)
				}
				return
			}
			again, err := MarshalShares(s)
			if err != nil {
				t.Fatalf("a file that reads does not write: %v", err)
			}
			if _, err := ReadShares(again); err != nil {
				t.Fatalf("a file written from a read one does not read: %v", err)
			}
		})
	})
}
