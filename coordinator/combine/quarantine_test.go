package combine_test

import (
	"crypto/ed25519"
	"encoding/json"
	"slices"
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
	fileB := formats.SubmissionKey(bad, runB)
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
			f.writeRun("Z99999", day(2), runOf("Z99999", runB, jan, jan, formats.PolicyUK, truth{jan, formats.Admissions, "0-4", "male", 30}))
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
			m.Files = []formats.FileEntry{formats.Entry(bad, runB, junk)}
			f.put(manifestB, sealManifest(f, m, f.keys[bad]))
		}, fileB, "corrupt", "is corrupt"},
		{"practice mismatch in file", func(f *fixture) {
			// B signs a file that claims to be A's.
			data, err := formats.MarshalSubmission(runOf(good, runB, jan, jan, formats.PolicyUK, truth{jan, formats.Admissions, "0-4", "male", 500}))
			if err != nil {
				t.Fatal(err)
			}
			f.put(fileB, data)
			m := readManifest(f)
			m.Files = []formats.FileEntry{formats.Entry(bad, runB, data)}
			f.put(manifestB, sealManifest(f, m, f.keys[bad]))
		}, fileB, "practice_mismatch", "A81001"},
		{"replayed manifest under another run", func(f *fixture) {
			f.put(formats.ManifestKey(bad, runID(7, "77777777")), f.get(manifestB))
		}, formats.ManifestKey(bad, runID(7, "77777777")), "practice_mismatch", "copied to another practice or run"},
		{"manifest naming another practice's file", func(f *fixture) {
			m := readManifest(f)
			m.Files[0].Key = formats.SubmissionKey(good, runA)
			f.put(manifestB, sealManifest(f, m, f.keys[bad]))
		}, manifestB, "practice_mismatch", "outside this run's prefix"},
		{"unparseable key", func(f *fixture) {
			f.put("practices/B82002/runs/not-a-run/figures.arrow", []byte("x"))
		}, "practices/B82002/runs/not-a-run/figures.arrow", "bad_key", "invalid run id"},
		{"a monthly file of format 1", func(f *fixture) {
			f.put(formats.RunPrefix(bad, runID(1, "11111111"))+"2024-01.arrow", []byte("x"))
		}, formats.RunPrefix(bad, runID(1, "11111111")) + "2024-01.arrow", "format_version", "upgrade the practice's agent"},
		{"run under another policy", func(f *fixture) {
			f.writeRun(bad, day(2), runOf(bad, runB, jan, jan, formats.PolicyMidpoint6, truth{jan, formats.Admissions, "0-4", "male", 10}))
		}, manifestB, "policy", formats.PolicyMidpoint6.Name},
		{"file missing a value", func(f *fixture) {
			data := craft(t, without(runOf(bad, runB, jan, jan, formats.PolicyUK, truth{jan, formats.Admissions, "0-4", "male", 10}),
				formats.MonthPeriod(jan), formats.Admissions, "0-4", "male"))
			f.put(fileB, data)
			m := readManifest(f)
			m.Files = []formats.FileEntry{formats.Entry(bad, runB, data)}
			f.put(manifestB, sealManifest(f, m, f.keys[bad]))
		}, fileB, "invalid_value", "missing"},
		{"not a manifest at all", func(f *fixture) {
			f.put(manifestB, []byte("{not json"))
		}, manifestB, "corrupt", "not a signed Tributary envelope"},
	}
	// Cases that break something beside B's run, which still counts.
	bSurvives := map[string]bool{"replayed manifest under another run": true, "unregistered practice": true, "unparseable key": true,
		"a monthly file of format 1": true}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, good, bad)
			f.writeRun(good, day(1), runOf(good, runA, jan, jan, formats.PolicyUK, truth{jan, formats.Admissions, "0-4", "male", 20}))
			f.writeRun(bad, day(2), runOf(bad, runB, jan, jan, formats.PolicyUK, truth{jan, formats.Admissions, "0-4", "male", 10}))
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
			r := f.federation(res)[figKey{"", "2024-01", formats.Admissions, "0-4", "male"}]
			// A's 20 is always there; B's 10 only when B's own run was not the one broken.
			want, practices := int64(20), int64(1)
			if bSurvives[tc.name] {
				want, practices = 30, 2
			}
			if r.Count == nil || *r.Count != want || r.PublishedSum != want || r.Practices != practices {
				t.Errorf("federation count %v from %d practices, want %d from %d: the good practice must still be combined and the bad object never",
					deref(r.Count), r.Practices, want, practices)
			}
			if _, ok := res.Pointer.PracticeTables[bad]; ok != bSurvives[tc.name] {
				t.Errorf("B has a practice table: %v, want %v", ok, bSurvives[tc.name])
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

// TestFallbackToEarlierRevision: when the newest run's file fails verification, it is
// quarantined and each of its months goes to the newest earlier run that covers it and
// verifies; a month no earlier run covers is combined from nobody.
func TestFallbackToEarlierRevision(t *testing.T) {
	const p = "A81001"
	f := newFixture(t, p)
	older, newer := runID(1, "00000001"), runID(4, "00000004")
	f.writeRun(p, day(1), runOf(p, older, jan, jan, formats.PolicyUK, truth{jan, formats.Admissions, "0-4", "male", 20}))
	f.writeRun(p, day(4), runOf(p, newer, jan, feb, formats.PolicyUK, truth{jan, formats.Admissions, "0-4", "male", 40}, truth{feb, formats.Admissions, "0-4", "male", 40}))
	bad := formats.SubmissionKey(p, newer)
	data := f.get(bad)
	data[100] ^= 1
	f.put(bad, data)
	res := f.combine()
	if len(res.Report.Quarantined) != 1 || res.Report.Quarantined[0].Key != bad || res.Report.Quarantined[0].Kind != "checksum_mismatch" {
		t.Fatalf("quarantine %+v, want only %s", res.Report.Quarantined, bad)
	}
	fed := f.federation(res)
	if r := fed[figKey{"", "2024-01", formats.Admissions, "0-4", "male"}]; r.Count == nil || *r.Count != 20 {
		t.Errorf("count %v, want 20 from the earlier revision", deref(r.Count))
	}
	if r, ok := fed[figKey{"", "2024-02", formats.Admissions, "", ""}]; ok {
		t.Errorf("February, covered only by the quarantined run, has a figure: %+v", r)
	}
	if c := res.Report.Completeness; len(c) != 1 || len(c[0].Contributors) != 1 || c[0].Contributors[0].RunID != older {
		t.Errorf("completeness %+v, want January from the older run only", c)
	}
	if u := uses(res.Report)[formats.SubmissionKey(p, older)]; u.Use != combine.UseCombined || !slices.Equal(u.Months, []string{"2024-01"}) {
		t.Errorf("the older run is used as %+v, want combined for 2024-01", u)
	}
}
