package formats

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
)

var allKinds = []error{
	ErrFormatVersion, ErrSchema, ErrValue, ErrPracticeMismatch, ErrSize, ErrChecksum,
	ErrSignature, ErrUnknownKey, ErrRevoked, ErrCorrupt, ErrTooLarge, ErrKey,
}

var (
	longHex    = regexp.MustCompile(`[0-9a-fA-F]{33,}`)
	longBase64 = regexp.MustCompile(`[A-Za-z0-9+/]{44,}`)
)

// checkError asserts that err is of exactly one kind, kind, that its text contains every
// phrase of want, and that it reads as a sentence: printable, bounded, and carrying no dump
// of the bytes it refused.
func checkError(t *testing.T, err, kind error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want an error of kind %q", kind)
	}
	var kinds []string
	for _, k := range allKinds {
		if errors.Is(err, k) {
			kinds = append(kinds, k.Error())
		}
	}
	if len(kinds) != 1 || !errors.Is(err, kind) {
		t.Errorf("error %q has kinds %q, want exactly %q", err, kinds, kind)
	}
	var fe *Error
	if !errors.As(err, &fe) {
		t.Errorf("error %q is not a *formats.Error", err)
	}
	msg := err.Error()
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q does not say %q", msg, w)
		}
	}
	if !utf8.ValidString(msg) || len(msg) > 600 {
		t.Errorf("error is not a bounded readable sentence (%d bytes): %q", len(msg), msg)
	}
	for _, r := range msg {
		if !unicode.IsPrint(r) {
			t.Errorf("error carries unprintable %U: %q", r, msg)
			break
		}
	}
	if s := longHex.FindString(msg); s != "" {
		t.Errorf("error carries a hex dump %q: %q", s, msg)
	}
	if s := longBase64.FindString(msg); s != "" {
		t.Errorf("error carries a base64 dump %q: %q", s, msg)
	}
	t.Log(msg)
}

func TestShown(t *testing.T) {
	cases := map[string]string{
		"bed_days":               "bed_days",
		"":                       `""`,
		"two words":              `"two words"`,
		"line\nfake log line":    `"line\nfake log line"`,
		`say "hi"`:               `"say \"hi\""`,
		"\xff\xfe":               "\"\ufffd\"",
		strings.Repeat("a", 100): strings.Repeat("a", 100),
		strings.Repeat("a", 101): `"` + strings.Repeat("a", 100) + `"…`,
		strings.Repeat("é", 60):  `"` + strings.Repeat("é", 50) + `"…`,
	}
	for in, want := range cases {
		if got := shown(in); got != want {
			t.Errorf("shown(%q) = %s, want %s", in, got, want)
		}
	}
}

// resealed re-encodes a signed envelope after edit has changed its payload, keeping the old
// signature: what someone editing a manifest by hand would upload.
func resealed(t *testing.T, env []byte, edit func([]byte) []byte) []byte {
	t.Helper()
	var e Envelope
	if err := json.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	before := e.Payload
	e.Payload = edit(bytes.Clone(e.Payload))
	if bytes.Equal(before, e.Payload) {
		t.Fatal("the edit changed nothing")
	}
	out, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// sealed signs v as it is, without the validation SignManifest and SignRegistry do, as a
// buggy or hostile signer could.
func sealed(t *testing.T, payloadType string, v any, priv ed25519.PrivateKey) []byte {
	t.Helper()
	payload, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	env, err := Seal(payloadType, payload, priv)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// TestVerifyRejects presents each way a submission, a manifest or a key can be wrong and
// requires each to be refused with its own kind and a sentence that says what to do.
func TestVerifyRejects(t *testing.T) {
	privA, privB, stranger, coordinator := seedKey(1), seedKey(2), seedKey(9), seedKey(7)
	pubA, pubB := pubOf(privA), pubOf(privB)
	subA := sampleSubmission(practiceA)
	dataA := mustMarshal(t, subA)
	manA := sampleManifest(practiceA, dataA)
	envA := mustSign(t, manA, privA)
	keyA := ManifestKey(practiceA, fixedRunID)
	if _, err := VerifyManifest(keyA, envA, pubA); err != nil {
		t.Fatalf("the sample manifest does not verify: %v", err)
	}
	if _, err := VerifySubmission(manA, manA.Files[0], dataA, DefaultLimits); err != nil {
		t.Fatalf("the sample submission does not verify: %v", err)
	}
	reg := sampleRegistry(t)
	regEnv, err := SignRegistry(reg, coordinator)
	if err != nil {
		t.Fatal(err)
	}

	rows := sampleRows(t, subA)
	// readRows writes a file with the sample's metadata, spoiled by meta, and the given rows.
	readRows := func(meta map[string]string, rows ...rawRow) error {
		md := submissionMeta(subA)
		for k, v := range meta {
			md[k] = v
		}
		_, err := ReadSubmission(craftSubmission(t, md, rows), DefaultLimits)
		return err
	}
	// with is the sample's rows with the first one edited.
	with := func(edit func(*rawRow)) []rawRow {
		out := slices.Clone(rows)
		edit(&out[0])
		return out
	}
	// writeCells asks WriteSubmission to write the sample with its cells edited.
	writeCells := func(edit func(*Submission)) error {
		s := sampleSubmission(practiceA)
		s.Sort()
		edit(s)
		_, err := MarshalSubmission(s)
		return err
	}

	cases := []struct {
		name string
		err  func() error
		kind error
		want []string
	}{
		{"truncated file against its manifest", func() error {
			_, err := VerifySubmission(manA, manA.Files[0], dataA[:len(dataA)/2], DefaultLimits)
			return err
		}, ErrSize, []string{manA.Files[0].Key, "the manifest says", "upload is incomplete"}},
		{"truncated file read on its own", func() error {
			_, err := ReadSubmission(dataA[:len(dataA)-7], DefaultLimits)
			return err
		}, ErrCorrupt, []string{"read submission", "Arrow IPC", "upload the run again"}},
		{"flipped byte", func() error {
			bad := bytes.Clone(dataA)
			bad[len(bad)/2] ^= 0x01
			_, err := VerifySubmission(manA, manA.Files[0], bad, DefaultLimits)
			return err
		}, ErrChecksum, []string{"SHA-256", "changed after signing"}},
		{"bytes appended", func() error {
			_, err := VerifySubmission(manA, manA.Files[0], append(bytes.Clone(dataA), 0), DefaultLimits)
			return err
		}, ErrSize, []string{"bytes, the manifest says"}},
		{"manifest signed by another key", func() error {
			_, err := VerifyManifest(keyA, mustSign(t, manA, stranger), pubA)
			return err
		}, ErrSignature, []string{KeyID(pubOf(stranger)), KeyID(pubA), "registered key"}},
		{"manifest tampered after signing", func() error {
			env := resealed(t, envA, func(p []byte) []byte {
				return bytes.Replace(p, []byte(manA.Files[0].SHA256), []byte(strings.Repeat("0", 64)), 1)
			})
			_, err := VerifyManifest(keyA, env, pubA)
			return err
		}, ErrSignature, []string{"changed after signing"}},
		{"manifest of A placed under B's prefix", func() error {
			_, err := VerifyManifest(ManifestKey(practiceB, fixedRunID), envA, pubA)
			return err
		}, ErrPracticeMismatch, []string{"belongs at " + keyA, "copied to another practice"}},
		{"manifest of A placed under B's prefix, checked with B's key", func() error {
			_, err := VerifyManifest(ManifestKey(practiceB, fixedRunID), envA, pubB)
			return err
		}, ErrSignature, []string{KeyID(pubB)}},
		{"A's file listed in B's signed manifest", func() error {
			manB := sampleManifest(practiceB, dataA)
			m, err := VerifyManifest(ManifestKey(practiceB, fixedRunID), mustSign(t, manB, privB), pubB)
			if err != nil {
				t.Fatalf("B's manifest must verify, so that the file is what is refused: %v", err)
			}
			_, err = VerifySubmission(m, m.Files[0], dataA, DefaultLimits)
			return err
		}, ErrPracticeMismatch, []string{"practice is " + practiceA, practiceB, "refused"}},
		{"unknown format version in schema metadata", func() error {
			return readRows(map[string]string{MetaFormatVersion: "1"}, rows...)
		}, ErrFormatVersion, []string{"format version 1,", "upgrade"}},
		{"no format version in schema metadata", func() error {
			return readRows(map[string]string{MetaFormatVersion: ""}, rows...)
		}, ErrFormatVersion, []string{MetaFormatVersion, "not a Tributary file"}},
		{"unknown format version in manifest", func() error {
			m := sampleManifest(practiceA, dataA)
			m.FormatVersion = 1
			_, err := VerifyManifest(keyA, sealed(t, PayloadManifest, m, privA), pubA)
			return err
		}, ErrFormatVersion, []string{"manifest format version 1", "upgrade"}},
		{"manifest of format 1 (its payload type)", func() error {
			m := sampleManifest(practiceA, dataA)
			_, err := VerifyManifest(keyA, sealed(t, "application/vnd.tributary.manifest+json; version=1", m, privA), pubA)
			return err
		}, ErrFormatVersion, []string{"not one this version reads", "upgrade"}},
		{"monthly file key of format 1", func() error {
			_, err := ParseKey(RunPrefix(practiceA, fixedRunID) + "2024-03.arrow")
			return err
		}, ErrFormatVersion, []string{"monthly file of format 1", "upgrade the practice's agent"}},
		{"wrong file kind", func() error {
			return readRows(map[string]string{MetaKind: RowEvents}, rows...)
		}, ErrSchema, []string{"file kind events, expected submission"}},
		{"unknown policy", func() error {
			return readRows(map[string]string{MetaPolicy: "none"}, rows...)
		}, ErrValue, []string{"unknown disclosure policy", PolicyUK.Name}},
		{"run months not months", func() error {
			return readRows(map[string]string{MetaFrom: "2024-13"}, rows...)
		}, ErrValue, []string{MetaFrom, "YYYY-MM"}},
		{"run ending before it starts", func() error {
			return readRows(map[string]string{MetaTo: "2023-12"}, rows...)
		}, ErrValue, []string{"last month 2023-12 is before its first 2024-01"}},
		{"period not a month, quarter or year", func() error {
			return readRows(nil, with(func(r *rawRow) { r.period = "2024-Q5" })...)
		}, ErrValue, []string{"row 0", "not a month, quarter or year"}},
		{"period outside the run", func() error {
			return readRows(nil, with(func(r *rawRow) { r.period = "2024-04" })...)
		}, ErrValue, []string{"holds no values of its first period 2024-01"}},
		{"a row missing: not supplied, never a zero", func() error {
			return readRows(nil, rows[:len(rows)-1]...)
		}, ErrValue, []string{"holds 11 rows", "has 12", "never read as 0"}},
		{"a row repeated", func() error {
			return readRows(nil, append([]rawRow{rows[0]}, rows...)...)
		}, ErrValue, []string{"row 1", "out of order or repeated"}},
		{"a null value", func() error {
			return readRows(nil, with(func(r *rawRow) { r.codes[5] = nil })...)
		}, ErrValue, []string{"column 5-9/unknown holds a null: a value is missing"}},
		{"a month's fine cell withheld", func() error {
			return readRows(nil, with(func(r *rawRow) { r.codes[0] = i32(codeWithheld) })...)
		}, ErrValue, []string{"2024-01 registered_patients 0-4/female", "age band × sex cell is withheld", "only margins"}},
		{"a code of no meaning", func() error {
			return readRows(nil, with(func(r *rawRow) { r.codes[3] = i32(-5) })...)
		}, ErrValue, []string{"row 0", "code -5 is neither a count nor a code"}},
		{"count the policy cannot produce", func() error {
			return readRows(nil, with(func(r *rawRow) { r.codes[0] = i32(12) })...)
		}, ErrValue, []string{"row 0", "count 12 cannot come from policy " + PolicyUK.Name}},
		{"suppressed under a policy that suppresses nothing", func() error {
			return readRows(map[string]string{MetaPolicy: PolicyMidpoint6.Name}, with(func(r *rawRow) { r.codes[0] = i32(codeSuppressed) })...)
		}, ErrValue, []string{"suppresses nothing"}},
		{"bad measure name", func() error {
			return readRows(nil, with(func(r *rawRow) { r.measure = "Bed Days" })...)
		}, ErrValue, []string{"row 0", "measure name"}},
		{"measure name of 10 KiB with a line break", func() error {
			return readRows(nil, with(func(r *rawRow) { r.measure = "x\nERROR forged log line " + strings.Repeat("y ", 5<<10) })...)
		}, ErrValue, []string{"row 0", `measure name "x\nERROR forged log line y y y`, "…"}},
		{"a shape column of the wrong type", func() error {
			fields := SubmissionSchema.Fields()
			fields[2].Type = arrow.BinaryTypes.String
			_, err := ReadSubmission(craftFile(t, fields, submissionMeta(subA), func(*array.RecordBuilder) {}), DefaultLimits)
			return err
		}, ErrSchema, []string{"field 0-4/female has type utf8", "int32"}},
		{"a shape column renamed", func() error {
			fields := SubmissionSchema.Fields()
			fields[3].Name = "0-4/men"
			_, err := ReadSubmission(craftFile(t, fields, submissionMeta(subA), func(*array.RecordBuilder) {}), DefaultLimits)
			return err
		}, ErrSchema, []string{"0-4/male"}},
		{"WriteSubmission: a cell missing", func() error {
			return writeCells(func(s *Submission) { s.Cells = s.Cells[1:] })
		}, ErrValue, []string{"carries 79 of its 80 values in 2024-01"}},
		{"WriteSubmission: a cell twice", func() error {
			return writeCells(func(s *Submission) { s.Cells = append(s.Cells, s.Cells[0]) })
		}, ErrValue, []string{"appears twice"}},
		{"WriteSubmission: an unknown age band", func() error {
			return writeCells(func(s *Submission) { s.Cells[0].AgeBand = "90-94" })
		}, ErrValue, []string{"cell 0", "age band 90-94", "not labels of the contract", "90+"}},
		{"WriteSubmission: an unknown sex", func() error {
			return writeCells(func(s *Submission) { s.Cells[0].Sex = "M" })
		}, ErrValue, []string{"cell 0", "sex M", "female, male, unknown or all"}},
		{"WriteSubmission: a period outside the run", func() error {
			return writeCells(func(s *Submission) { s.Cells[0].Period = MonthPeriod(MonthFor(2024, 4)) })
		}, ErrValue, []string{"cell 0", "period 2024-04 is not one a run over 2024-01 to 2024-03 publishes"}},
		{"WriteSubmission: bounds inconsistent with the count", func() error {
			return writeCells(func(s *Submission) {
				s.Cells[0].Protected = Protected{Count: 10, Status: StatusRounded, Lower: 5, Upper: 15}
			})
		}, ErrValue, []string{"bounds 5-15 do not match count 10", "want 8-12"}},
		{"WriteSubmission: a suppressed cell carrying a value", func() error {
			return writeCells(func(s *Submission) {
				s.Cells[0].Protected = Protected{Count: 3, Status: StatusSuppressed, Lower: 1, Upper: 7}
			})
		}, ErrValue, []string{"suppressed"}},
		{"WriteSubmission: a month's fine cell withheld", func() error {
			return writeCells(func(s *Submission) { s.Cells[0].Protected = Protected{Status: StatusWithheld} })
		}, ErrValue, []string{"age band × sex cell is withheld"}},
		{"WriteSubmission: an unknown status", func() error {
			return writeCells(func(s *Submission) { s.Cells[0].Status = "exact" })
		}, ErrValue, []string{"unknown cell status", StatusRounded, StatusSuppressed}},
		{"manifest naming another practice's file", func() error {
			m := sampleManifest(practiceA, dataA)
			m.Files[0].Key = SubmissionKey(practiceB, fixedRunID)
			_, err := VerifyManifest(keyA, sealed(t, PayloadManifest, m, privA), pubA)
			return err
		}, ErrPracticeMismatch, []string{m0Key(practiceB), "outside this run's prefix", RunPrefix(practiceA, fixedRunID)}},
		{"manifest naming another run's file", func() error {
			m := sampleManifest(practiceA, dataA)
			m.Files[0].Key = SubmissionKey(practiceA, "20230101T000000Z-00000000")
			_, err := VerifyManifest(keyA, sealed(t, PayloadManifest, m, privA), pubA)
			return err
		}, ErrPracticeMismatch, []string{"outside this run's prefix"}},
		{"SignManifest refuses a file outside the run", func() error {
			m := sampleManifest(practiceA, dataA)
			m.Files[0].Key = SubmissionKey(practiceB, fixedRunID)
			_, err := SignManifest(m, privA)
			return err
		}, ErrPracticeMismatch, []string{"outside this run's prefix"}},
		{"manifest naming a key outside the layout", func() error {
			m := sampleManifest(practiceA, dataA)
			m.Files[0].Key = RunPrefix(practiceA, fixedRunID) + "../../" + practiceB + "/x.arrow"
			_, err := VerifyManifest(keyA, sealed(t, PayloadManifest, m, privA), pubA)
			return err
		}, ErrKey, []string{"is not a submission key"}},
		{"file whose months disagree with its manifest", func() error {
			m := sampleManifest(practiceA, dataA)
			m.To = "2024-06"
			_, err := VerifySubmission(m, m.Files[0], dataA, DefaultLimits)
			return err
		}, ErrPracticeMismatch, []string{"last month is 2024-03", "2024-06"}},
		{"manifest without a submission file", func() error {
			m := sampleManifest(practiceA, dataA)
			m.Files[0].Key = RunPrefix(practiceA, fixedRunID) + ManifestName
			_, err := VerifyManifest(keyA, sealed(t, PayloadManifest, m, privA), pubA)
			return err
		}, ErrKey, []string{"is not a submission key"}},
		{"envelope with trailing data", func() error {
			_, err := VerifyManifest(keyA, append(bytes.Clone(envA), ']'), pubA)
			return err
		}, ErrCorrupt, []string{"not a signed Tributary envelope", "trailing data"}},
		{"registry envelope presented as a manifest", func() error {
			_, err := VerifyManifest(keyA, regEnv, pubOf(coordinator))
			return err
		}, ErrSchema, []string{"registry", "not a manifest"}},
		{"manifest presented as the registry", func() error {
			_, err := VerifyRegistry(envA, pubA)
			return err
		}, ErrSchema, []string{"manifest", "not a registry"}},
		{"registry signed by another key", func() error {
			forged, err := SignRegistry(reg, stranger)
			if err != nil {
				t.Fatal(err)
			}
			_, err = VerifyRegistry(forged, pubOf(coordinator))
			return err
		}, ErrSignature, []string{RegistryKey, KeyID(pubOf(coordinator))}},
		{"registry of another format version", func() error {
			r := sampleRegistry(t)
			r.FormatVersion = 2
			_, err := VerifyRegistry(sealed(t, PayloadRegistry, r, coordinator), pubOf(coordinator))
			return err
		}, ErrFormatVersion, []string{RegistryKey, "registry format version 2"}},
		{"registry key id not matching its key", func() error {
			r := sampleRegistry(t)
			r.Practices[0].KeyID = KeyID(pubB)
			_, err := VerifyRegistry(sealed(t, PayloadRegistry, r, coordinator), pubOf(coordinator))
			return err
		}, ErrValue, []string{practiceA, "does not match its key"}},
		{"registry listing a key twice", func() error {
			r := sampleRegistry(t)
			r.Practices = append(r.Practices, r.Practices[0])
			_, err := VerifyRegistry(sealed(t, PayloadRegistry, r, coordinator), pubOf(coordinator))
			return err
		}, ErrValue, []string{"listed twice"}},
		{"revoked key", func() error {
			_, err := reg.KeyFor(practiceB, KeyID(pubOf(seedKey(3))))
			return err
		}, ErrRevoked, []string{practiceB, "revoked on 2024-04-02", "sign again"}},
		{"key not registered for the practice", func() error {
			_, err := reg.KeyFor(practiceA, KeyID(pubOf(stranger)))
			return err
		}, ErrUnknownKey, []string{practiceA, KeyID(pubOf(stranger)), "register"}},
		{"practice not in the registry", func() error {
			_, err := reg.KeyFor("Z99999", KeyID(pubA))
			return err
		}, ErrUnknownKey, []string{"Z99999", "not in the federation registry"}},
		{"another practice's key", func() error {
			_, err := reg.KeyFor(practiceB, KeyID(pubA))
			return err
		}, ErrUnknownKey, []string{practiceB, KeyID(pubA)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkError(t, c.err(), c.kind, c.want...)
		})
	}
}

func m0Key(practice string) string { return SubmissionKey(practice, fixedRunID) }
