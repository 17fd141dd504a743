package combine_test

import (
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/registry"
	"github.com/tributary-health/tributary/formats"
)

// TestQuarantine breaks practice B's run in each way a store can hold a bad object and checks
// that it is quarantined with its reason, never combined, while practice A still is.
func TestQuarantine(t *testing.T) {
	const good, bad = "A81001", "B82002"
	runA, runB := runID(1, "aaaaaaaa"), runID(2, "bbbbbbbb")
	manifestB := formats.ManifestKey(bad, runB)
	fileB := formats.SubmissionKey(bad, runB, jan)
	// sealManifest signs m as it stands, bypassing SignManifest's checks, as an attacker could.
	sealManifest := func(f *fixture, m *formats.Manifest, key ed25519.PrivateKey) []byte {
		payload, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		env, err := formats.Seal(formats.PayloadManifest, payload, key)
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	readManifest := func(f *fixture) *formats.Manifest {
		m, _, err := formats.ReadManifestUnverified(f.get(manifestB))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	tests := []struct {
		name   string
		break_ func(f *fixture)
		key    string // the quarantined object
		kind   string
		reason string // part of the reason
	}{
		{"bad signature", func(f *fixture) {
			var env formats.Envelope
			if err := json.Unmarshal(f.get(manifestB), &env); err != nil {
				t.Fatal(err)
			}
			env.Payload = []byte(strings.Replace(string(env.Payload), `"hand@1"`, `"hand@2"`, 1))
			data, _ := json.Marshal(env)
			f.put(manifestB, data)
		}, manifestB, "bad_signature", "changed after signing"},
		{"unknown key", func(f *fixture) {
			_, other, _ := formats.GenerateKey()
			f.put(manifestB, sealManifest(f, readManifest(f), other))
		}, manifestB, "unknown_key", "has no registered key"},
		{"unregistered practice", func(f *fixture) {
			_, priv, _ := formats.GenerateKey()
			f.keys["Z99999"] = priv
			f.writeRun("Z99999", day(2), submission("Z99999", runB, jan, formats.PolicyUK, truth{formats.Admissions, "0-4", "male", 30}))
		}, formats.ManifestKey("Z99999", runB), "unknown_key", "not in the federation registry"},
		{"revoked key", func(f *fixture) {
			if _, err := registry.Revoke(f.ctx, f.st, f.coord, bad, "", time.Date(2024, 3, 10, 0, 0, 0, 0, time.UTC)); err != nil {
				t.Fatal(err)
			}
		}, manifestB, "revoked_key", "was revoked on 2024-03-10"},
		{"checksum mismatch", func(f *fixture) {
			data := f.get(fileB)
			data[len(data)/2] ^= 0xff
			f.put(fileB, data)
		}, fileB, "checksum_mismatch", "SHA-256 differs"},
		{"file larger than signed", func(f *fixture) {
			f.put(fileB, append(f.get(fileB), 0))
		}, fileB, "size_mismatch", "larger than"},
		{"file truncated", func(f *fixture) {
			data := f.get(fileB)
			f.put(fileB, data[:len(data)-10])
		}, fileB, "size_mismatch", "incomplete"},
		{"file missing", func(f *fixture) {
			if err := f.st.Delete(f.ctx, fileB); err != nil {
				t.Fatal(err)
			}
		}, fileB, "missing", "does not hold it"},
		{"corrupt arrow", func(f *fixture) {
			junk := []byte("ARROW1\x00\x00 this is not an arrow file at all")
			f.put(fileB, junk)
			m := readManifest(f)
			m.Files = []formats.FileEntry{formats.Entry(bad, runB, jan, junk)}
			f.put(manifestB, sealManifest(f, m, f.keys[bad]))
		}, fileB, "corrupt", "is corrupt"},
		{"practice mismatch in file", func(f *fixture) {
			// B signs a file that claims to be A's.
			data, err := formats.MarshalSubmission(submission(good, runB, jan, formats.PolicyUK, truth{formats.Admissions, "0-4", "male", 500}))
			if err != nil {
				t.Fatal(err)
			}
			f.put(fileB, data)
			m := readManifest(f)
			m.Files = []formats.FileEntry{formats.Entry(bad, runB, jan, data)}
			f.put(manifestB, sealManifest(f, m, f.keys[bad]))
		}, fileB, "practice_mismatch", "A81001"},
		{"replayed manifest under another run", func(f *fixture) {
			f.put(formats.ManifestKey(bad, runID(7, "77777777")), f.get(manifestB))
		}, formats.ManifestKey(bad, runID(7, "77777777")), "practice_mismatch", "copied to another practice or run"},
		{"manifest naming another practice's file", func(f *fixture) {
			m := readManifest(f)
			m.Files[0].Key = formats.SubmissionKey(good, runA, jan)
			f.put(manifestB, sealManifest(f, m, f.keys[bad]))
		}, manifestB, "practice_mismatch", "outside this run's prefix"},
		{"unparseable key", func(f *fixture) {
			f.put("practices/B82002/runs/not-a-run/2024-01.arrow", []byte("x"))
		}, "practices/B82002/runs/not-a-run/2024-01.arrow", "bad_key", "invalid run id"},
		{"not a manifest at all", func(f *fixture) {
			f.put(manifestB, []byte("{not json"))
		}, manifestB, "corrupt", "not a signed Tributary envelope"},
	}
	// Cases that break something beside B's run, which still counts.
	bSurvives := map[string]bool{"replayed manifest under another run": true, "unregistered practice": true, "unparseable key": true}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, good, bad)
			f.writeRun(good, day(1), submission(good, runA, jan, formats.PolicyUK, truth{formats.Admissions, "0-4", "male", 20}))
			f.writeRun(bad, day(2), submission(bad, runB, jan, formats.PolicyUK, truth{formats.Admissions, "0-4", "male", 10}))
			tc.break_(f)
			res := f.combine()

			var found *combine.Quarantined
			for i, q := range res.Report.Quarantined {
				if q.Key == tc.key {
					found = &res.Report.Quarantined[i]
				}
			}
			if found == nil {
				t.Fatalf("%s not quarantined; quarantine: %+v", tc.key, res.Report.Quarantined)
			}
			if found.Kind != tc.kind || !strings.Contains(found.Reason, tc.reason) {
				t.Errorf("quarantined as %s: %q; want %s containing %q", found.Kind, found.Reason, tc.kind, tc.reason)
			}
			if p := practiceOfTest(tc.key); found.Practice != p {
				t.Errorf("quarantine names practice %q, want %q", found.Practice, p)
			}
			fed := f.table(res, combine.FederationArrow)
			r := fed[cellKey{"", "2024-01", formats.Admissions, "0-4", "male"}]
			// A's 20 is always there; B's 10 only when B's own run was not the one broken.
			want := int64(20)
			if bSurvives[tc.name] {
				want = 30
			}
			if r.Count != want {
				t.Errorf("federation count %d, want %d: the good practice must still be combined and the bad object never", r.Count, want)
			}
			if res.Pointer.Quarantined != len(res.Report.Quarantined) || res.Pointer.Quarantined == 0 {
				t.Errorf("pointer counts %d quarantined, report %d", res.Pointer.Quarantined, len(res.Report.Quarantined))
			}
		})
	}
}

func practiceOfTest(key string) string {
	parts := strings.Split(key, "/")
	return parts[1]
}

// TestFallbackToEarlierRevision: when the newest run's file for a month fails verification, it
// is quarantined and the newest earlier revision that verifies is combined instead.
func TestFallbackToEarlierRevision(t *testing.T) {
	const p = "A81001"
	f := newFixture(t, p)
	older, newer := runID(1, "00000001"), runID(4, "00000004")
	f.writeRun(p, day(1), submission(p, older, jan, formats.PolicyUK, truth{formats.Admissions, "0-4", "male", 20}))
	f.writeRun(p, day(4), submission(p, newer, jan, formats.PolicyUK, truth{formats.Admissions, "0-4", "male", 40}))
	bad := formats.SubmissionKey(p, newer, jan)
	data := f.get(bad)
	data[100] ^= 1
	f.put(bad, data)
	res := f.combine()
	if len(res.Report.Quarantined) != 1 || res.Report.Quarantined[0].Key != bad {
		t.Fatalf("quarantine %+v, want only %s", res.Report.Quarantined, bad)
	}
	r := f.table(res, combine.FederationArrow)[cellKey{"", "2024-01", formats.Admissions, "0-4", "male"}]
	if r.Count != 20 {
		t.Errorf("count %d, want 20 from the earlier revision", r.Count)
	}
	if c := res.Report.Completeness[0].Contributors; len(c) != 1 || c[0].RunID != older {
		t.Errorf("completeness %+v, want the older run", c)
	}
}
