package formats

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseKey(t *testing.T) {
	run := fixedRunID
	good := []struct {
		key  string
		want ObjectKey
	}{
		{ManifestKey(practiceA, run), ObjectKey{Practice: practiceA, RunID: run, Name: ManifestName}},
		{SubmissionKey(practiceA, run), ObjectKey{Practice: practiceA, RunID: run, Name: FiguresName}},
		{"practices/a-b_9/runs/" + run + "/figures.arrow", ObjectKey{Practice: "a-b_9", RunID: run, Name: FiguresName}},
	}
	for _, c := range good {
		got, err := ParseKey(c.key)
		if err != nil || got != c.want {
			t.Errorf("ParseKey(%q) = %+v, %v; want %+v", c.key, got, err, c.want)
		}
	}
	prefix := RunPrefix(practiceA, run)
	bad := []string{
		"",
		"practices/",
		"practices/../federation/x",
		"practices/../federation/registry.json",
		prefix + "../../" + practiceB + "/runs/" + run + "/2024-03.arrow",
		"practices/" + practiceA + "/runs/../../" + practiceB + "/runs/" + run + "/manifest.json",
		"practices/./runs/" + run + "/manifest.json",
		"practices/" + practiceA + "/runs/./manifest.json",
		prefix + "2024-13.arrow",
		prefix + "2024-00.arrow",
		prefix + "2024-+3.arrow",
		prefix + "２０２４-03.arrow",
		prefix + "2024-03.ARROW",
		prefix + "figures.arrow.tmp",
		prefix + "Figures.arrow",
		prefix + "2024-03.arrow/",
		prefix + "2024-03.arrow\x00",
		prefix + "2024-03",
		prefix + "manifest.json.bak",
		prefix + "Manifest.json",
		prefix,
		prefix + "/2024-03.arrow",
		strings.TrimSuffix(prefix, "/"),
		"/" + ManifestKey(practiceA, run),
		"./" + ManifestKey(practiceA, run),
		"Practices/" + practiceA + "/runs/" + run + "/manifest.json",
		"practices/" + practiceA + "/RUNS/" + run + "/manifest.json",
		"practices/Ä81001/runs/" + run + "/manifest.json",
		"practices/A81001\u200b/runs/" + run + "/manifest.json",
		"practices/" + practiceA + "/runs/20240405T060708Z-0123ABCD/manifest.json",
		"practices/" + practiceA + "/runs/20240405t060708z-0123abcd/manifest.json",
		"practices/" + practiceA + `\runs\` + run + `\manifest.json`,
		"practices/" + practiceA + "/runs/" + run + `\..\..\` + practiceB + "/manifest.json",
		RegistryKey,
		"federation/" + ManifestKey(practiceA, run),
	}
	for _, key := range bad {
		_, err := ParseKey(key)
		if !errors.Is(err, ErrKey) {
			t.Errorf("ParseKey(%q) = %v, want ErrKey", key, err)
			continue
		}
		if !strings.Contains(err.Error(), "expected practices/<practice>/runs/<run-id>/") {
			t.Errorf("ParseKey(%q): the error does not show the layout: %v", key, err)
		}
	}
}

func TestKeyRoundTrip(t *testing.T) {
	for _, practice := range []string{"A81001", "x", strings.Repeat("Z", 32)} {
		k, err := ParseKey(SubmissionKey(practice, fixedRunID))
		if err != nil || k.Practice != practice || k.RunID != fixedRunID || k.Name != FiguresName || k.Manifest() {
			t.Errorf("SubmissionKey(%s) parses as %+v, %v", practice, k, err)
		}
		if !strings.HasPrefix(SubmissionKey(practice, fixedRunID), PracticePrefix(practice)) {
			t.Errorf("a submission key of %s is outside its prefix", practice)
		}
	}
}

func TestValidatePracticeID(t *testing.T) {
	for _, id := range []string{"A81001", "a", "0", "A-1_b", strings.Repeat("x", 32)} {
		if err := ValidatePracticeID(id); err != nil {
			t.Errorf("ValidatePracticeID(%q): %v", id, err)
		}
	}
	for _, id := range []string{"", "-A", "_A", strings.Repeat("x", 33), "A/B", "..", ".", "A.B", "Ä81001", "A B", "A\n", "A81001/", "*", "A%2F"} {
		err := ValidatePracticeID(id)
		if !errors.Is(err, ErrValue) {
			t.Errorf("ValidatePracticeID(%q) = %v, want ErrValue", id, err)
		} else if !strings.Contains(err.Error(), "ODS code") {
			t.Errorf("ValidatePracticeID(%q): the error does not say what an id looks like: %v", id, err)
		}
	}
}

func TestRunID(t *testing.T) {
	at := time.Date(2024, 4, 5, 6, 7, 8, 9, time.FixedZone("BST", 3600))
	a, b := NewRunID(at), NewRunID(at)
	if err := ValidateRunID(a); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(a, "20240405T050708Z-") {
		t.Errorf("NewRunID is %q, want it to start with the UTC second", a)
	}
	if a == b {
		t.Errorf("two run ids in the same second are equal: %q", a)
	}
	if later := NewRunID(at.Add(time.Second)); later <= a {
		t.Errorf("run id %q of a later second does not sort after %q", later, a)
	}
	for _, id := range []string{"", "20240405T050708Z", "20240405T050708Z-0123abc", "20240405T050708Z-0123ABCD", "../x"} {
		if err := ValidateRunID(id); !errors.Is(err, ErrValue) {
			t.Errorf("ValidateRunID(%q) = %v, want ErrValue", id, err)
		}
	}
}

func TestKeyFiles(t *testing.T) {
	priv := seedKey(1)
	privPEM, err := MarshalPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ParsePrivateKey(privPEM); err != nil || !got.Equal(priv) {
		t.Errorf("private key round trip: %v", err)
	}
	pubPEM, err := MarshalPublicKey(pubOf(priv))
	if err != nil {
		t.Fatal(err)
	}
	e, err := NewRegistryEntry(practiceA, "Riverside", pubOf(priv), fixedTime)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range [][]byte{pubPEM, []byte(e.PublicKey), []byte(" " + e.PublicKey + "\n")} {
		if got, err := ParsePublicKey(in); err != nil || !got.Equal(pubOf(priv)) {
			t.Errorf("ParsePublicKey(%q): %v", in, err)
		}
	}
	for _, bad := range [][]byte{nil, []byte("hello"), privPEM[:len(privPEM)/2], []byte(e.PublicKey[:20])} {
		if _, err := ParsePublicKey(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("ParsePublicKey(%q) = %v, want ErrCorrupt", bad, err)
		}
		if _, err := ParsePrivateKey(bad); !errors.Is(err, ErrCorrupt) {
			t.Errorf("ParsePrivateKey(%q) = %v, want ErrCorrupt", bad, err)
		}
	}
	if _, err := ParsePrivateKey(pubPEM); !errors.Is(err, ErrCorrupt) {
		t.Errorf("a public key parsed as a private one: %v", err)
	}
	if _, err := NewRegistryEntry(practiceA, "Riverside", pubOf(priv)[:31], fixedTime); !errors.Is(err, ErrValue) {
		t.Errorf("NewRegistryEntry with a short key: %v, want ErrValue", err)
	}
	if _, err := NewRegistryEntry("../x", "Riverside", pubOf(priv), fixedTime); !errors.Is(err, ErrValue) {
		t.Errorf("NewRegistryEntry with a bad practice id: %v, want ErrValue", err)
	}
	if KeyID(pubOf(priv)) != e.KeyID || len(e.KeyID) != 16 {
		t.Errorf("key id %q", e.KeyID)
	}
}
