package combine_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/query"
	"github.com/tributary-health/tributary/coordinator/registry"
	"github.com/tributary-health/tributary/formats"
)

// sealRun stores data as the file of practice's run over from..to (none when data is nil) and
// a manifest over it signed with key as it stands, bypassing SignManifest's checks, as a
// hostile agent holding key could. It returns the manifest's key.
func (f *fixture) sealRun(practice, run string, from, to formats.Month, created time.Time, key ed25519.PrivateKey, data []byte, edit func(*formats.Manifest)) string {
	f.t.Helper()
	m := &formats.Manifest{FormatVersion: formats.FormatVersion, Practice: practice, RunID: run, Created: created,
		Extractors: []string{"hand@1"}, Policy: formats.PolicyUK.Name, From: from.String(), To: to.String()}
	if data != nil {
		f.put(formats.SubmissionKey(practice, run), data)
		m.Files = append(m.Files, formats.Entry(practice, run, data))
	}
	if edit != nil {
		edit(m)
	}
	payload, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		f.t.Fatal(err)
	}
	env, err := formats.Seal(formats.PayloadManifest, payload, key)
	if err != nil {
		f.t.Fatal(err)
	}
	f.put(m.Key(), env)
	return m.Key()
}

// TestAttacks is the bucket-is-untrusted test: a federation is combined, then each attack
// adds objects to the store that a leaked credential, a hostile or buggy agent could write,
// and the next combine must quarantine the attack with its reason, leave the figures byte for
// byte as they were, and still answer queries.
func TestAttacks(t *testing.T) {
	const a, b, c = "A81001", "B82002", "C83003"
	runA, runB1, runB2, runC := runID(1, "aaaaaaa1"), runID(1, "bbbbbbb1"), runID(3, "bbbbbbb2"), runID(2, "ccccccc1")
	attackRun := runID(9, "99999999") // newer-looking than every honest run
	uk := formats.PolicyUK
	// sub is a run of p from the month from, with ns[i] admissions (0-4 male) in its i-th
	// month, three times as many consultations (40-44 female) and a list size of 1000+n.
	sub := func(p, run string, pol formats.Policy, from formats.Month, ns ...int64) *formats.Submission {
		var cells []truth
		for i, n := range ns {
			m := from + formats.Month(i)
			cells = append(cells, truth{m, formats.Admissions, "0-4", "male", n}, truth{m, formats.Consultations, "40-44", "female", 3 * n},
				truth{m, formats.RegisteredPatients, "40-44", "female", 1000 + n})
		}
		return runOf(p, run, from, from+formats.Month(len(ns)-1), pol, cells...)
	}
	marshal := func(t *testing.T, s *formats.Submission) []byte {
		data, err := formats.MarshalSubmission(s)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	const oldB = "old key of " + b // B's first key, revoked when B moved to its current one
	setup := func(t *testing.T) *fixture {
		f := newFixture(t, a, b, c)
		oldPub, oldPriv, _ := formats.GenerateKey()
		f.keys[oldB] = oldPriv
		if _, err := registry.Add(f.ctx, f.st, f.coord, b, "Surgery "+b, oldPub, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
		if _, err := registry.Revoke(f.ctx, f.st, f.coord, b, formats.KeyID(oldPub), time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
		f.sealRun(a, runA, jan, feb, day(1), f.keys[a], marshal(t, sub(a, runA, uk, jan, 20, 22)), nil)
		f.sealRun(b, runB1, jan, feb, day(1), f.keys[b], marshal(t, sub(b, runB1, uk, jan, 90, 91)), nil) // superseded by B2
		f.sealRun(b, runB2, jan, feb, day(3), f.keys[b], marshal(t, sub(b, runB2, uk, jan, 10, 11)), nil)
		f.sealRun(c, runC, jan, jan, day(2), f.keys[c], marshal(t, sub(c, runC, uk, jan, 30)), nil)
		return f
	}
	attackFile := func(t *testing.T, n int64) []byte { return marshal(t, sub(b, attackRun, uk, jan, n)) }
	firstFrame := func(t *testing.T, data []byte) int {
		i := bytes.Index(data, []byte{0x28, 0xb5, 0x2f, 0xfd})
		if i < 8 {
			t.Fatal("no zstd frame in a submission: the writer no longer compresses with zstd")
		}
		return i
	}
	attackKey := formats.SubmissionKey(b, attackRun)
	attackManifest := formats.ManifestKey(b, attackRun)
	// seal signs a run of B over January alone with B's current key.
	seal := func(f *fixture, data []byte, edit func(*formats.Manifest)) {
		f.sealRun(b, attackRun, jan, jan, day(9), f.keys[b], data, edit)
	}

	tests := []struct {
		name   string
		attack func(t *testing.T, f *fixture)
		key    string // the object quarantined
		kind   string
		reason string
	}{
		{"file signed by an unknown key", func(t *testing.T, f *fixture) {
			_, stranger, _ := formats.GenerateKey()
			f.sealRun(b, attackRun, jan, jan, day(9), stranger, attackFile(t, 5000), nil)
		}, attackManifest, "unknown_key", "has no registered key"},
		{"file signed by a revoked key", func(t *testing.T, f *fixture) {
			f.sealRun(b, attackRun, jan, jan, day(9), f.keys[oldB], attackFile(t, 5000), nil)
		}, attackManifest, "revoked_key", "revoked"},
		{"older manifest and file copied to a newer-looking run", func(t *testing.T, f *fixture) {
			f.put(attackManifest, f.get(formats.ManifestKey(b, runB1)))
			f.put(attackKey, f.get(formats.SubmissionKey(b, runB1)))
		}, attackManifest, "practice_mismatch", "copied to another practice or run"},
		{"older run signed again with a newer date but its old file", func(t *testing.T, f *fixture) {
			// B's key signs a new manifest whose file is B1's, still under B1's prefix.
			old := f.get(formats.SubmissionKey(b, runB1))
			f.sealRun(b, attackRun, jan, feb, day(9), f.keys[b], nil, func(m *formats.Manifest) {
				m.Files = []formats.FileEntry{formats.Entry(b, runB1, old)}
			})
		}, attackManifest, "practice_mismatch", "outside this run's prefix"},
		{"manifest naming another practice's file", func(t *testing.T, f *fixture) {
			stolen := f.get(formats.SubmissionKey(a, runA))
			f.sealRun(b, attackRun, jan, feb, day(9), f.keys[b], nil, func(m *formats.Manifest) {
				m.Files = []formats.FileEntry{formats.Entry(a, runA, stolen)}
			})
		}, attackManifest, "practice_mismatch", "outside this run's prefix"},
		{"manifest naming a key outside practices/", func(t *testing.T, f *fixture) {
			data := attackFile(t, 5000)
			seal(f, nil, func(m *formats.Manifest) {
				e := formats.Entry(b, attackRun, data)
				e.Key = formats.RegistryKey
				m.Files = []formats.FileEntry{e}
			})
		}, attackManifest, "bad_key", "not a submission key"},
		{"oversized manifest", func(t *testing.T, f *fixture) {
			f.put(attackManifest, bytes.Repeat([]byte("{"), formats.MaxEnvelopeBytes+1))
		}, attackManifest, "too_large", "larger than"},
		{"manifest listing an oversized file", func(t *testing.T, f *fixture) {
			seal(f, attackFile(t, 5000), func(m *formats.Manifest) {
				m.Files[0].Size = formats.DefaultLimits.MaxObjectBytes + 1
			})
		}, attackKey, "too_large", "the limit is"},
		{"file grown past its signed size", func(t *testing.T, f *fixture) {
			seal(f, attackFile(t, 5000), nil)
			f.put(attackKey, append(attackFile(t, 5000), make([]byte, 1<<20)...))
		}, attackKey, "size_mismatch", "larger than"},
		{"compression bomb: a zstd buffer claims 8 GiB", func(t *testing.T, f *fixture) {
			data := attackFile(t, 5000)
			binary.LittleEndian.PutUint64(data[firstFrame(t, data)-8:], 8<<30)
			seal(f, data, nil)
		}, attackKey, "too_large", ""},
		{"compression bomb: a zstd frame declares a 512 MiB window", func(t *testing.T, f *fixture) {
			data := attackFile(t, 5000)
			data[firstFrame(t, data)+5] = 19 << 3
			seal(f, data, nil)
		}, attackKey, "too_large", ""},
		{"malformed Arrow", func(t *testing.T, f *fixture) {
			seal(f, []byte("ARROW1\x00\x00 not an arrow file at all"), nil)
		}, attackKey, "corrupt", "is corrupt"},
		{"truncated Arrow", func(t *testing.T, f *fixture) {
			data := attackFile(t, 5000)
			seal(f, data[:len(data)*2/3], nil)
		}, attackKey, "corrupt", ""},
		{"Arrow with a flipped byte in a zstd frame", func(t *testing.T, f *fixture) {
			data := attackFile(t, 5000)
			data[firstFrame(t, data)+12] ^= 0xff
			seal(f, data, nil)
		}, attackKey, "corrupt", "CRC"},
		{"compression bomb: a zstd frame inflates to far more than its buffer claims", func(t *testing.T, f *fixture) {
			// A file of every measure over three years has column buffers large enough to
			// carry a bomb (one value per period and measure in each).
			var cells []truth
			from := jan - 35
			for i, m := range formats.Measures {
				for mo := from; mo <= jan; mo++ {
					for j, band := range formats.AgeBands {
						for k, sex := range formats.Sexes {
							cells = append(cells, truth{mo, m, band, sex, int64((i*7919 + j*104729 + k*31 + int(mo)*613) % 5000)})
						}
					}
				}
			}
			data := marshal(t, runOf(b, attackRun, from, jan, uk, cells...))
			// The largest gap between two frames holds a buffer; fill it with RLE blocks of
			// zeros (4 bytes for each 128 KiB) and leave its claimed length as it was.
			magic := []byte{0x28, 0xb5, 0x2f, 0xfd}
			best, bestLen := -1, 0
			for i := bytes.Index(data, magic); i >= 0; {
				next := bytes.Index(data[i+4:], magic)
				if next < 0 {
					break
				}
				if gap := next + 4 - 8; gap > bestLen { // up to the next buffer's length prefix
					best, bestLen = i, gap
				}
				i += 4 + next
			}
			blocks := (bestLen - 6 - 8) / 4
			if blocks < 64 {
				// The file's content is fixed, so this means the writer changed and the bomb
				// case needs a bigger buffer, not that it may be dropped.
				t.Fatalf("the largest compressed buffer is %d bytes, too small to hold a bomb", bestLen)
			}
			frame := append(bytes.Clone(magic), 0x00, 7<<3) // no content size, 128 KiB window
			for k := range blocks {
				h := uint32(1<<1 | (128<<10)<<3) // RLE block of 128 KiB
				if k == blocks-1 {
					h |= 1 // last
				}
				frame = append(frame, byte(h), byte(h>>8), byte(h>>16), 0)
			}
			copy(data[best:], frame)
			t.Logf("a %d-byte frame inflating to %d MiB, in a buffer claiming %d bytes", len(frame), blocks/8, binary.LittleEndian.Uint64(data[best-8:]))
			seal(f, data, nil)
		}, attackKey, "too_large", "compression bomb"},
		{"a newer run under a weaker policy, signed by the practice's key", func(t *testing.T, f *fixture) {
			seal(f, marshal(t, sub(b, attackRun, formats.PolicyMidpoint6, jan, 5000)), func(m *formats.Manifest) {
				m.Policy = formats.PolicyMidpoint6.Name
			})
		}, attackManifest, "policy", formats.PolicyMidpoint6.Name},
		{"a file made under another policy than its manifest names", func(t *testing.T, f *fixture) {
			seal(f, marshal(t, sub(b, attackRun, formats.PolicyMidpoint6, jan, 5000)), nil)
		}, attackKey, "practice_mismatch", "policy"},
		{"a newer run whose file lacks a value", func(t *testing.T, f *fixture) {
			// Read as 0, the missing total would hide B's admissions in January.
			seal(f, craft(t, without(sub(b, attackRun, uk, jan, 5000), formats.MonthPeriod(jan), formats.Admissions, formats.All, formats.All)), nil)
		}, attackKey, "invalid_value", "missing"},
		{"a newer run whose file holds a month outside its run", func(t *testing.T, f *fixture) {
			s := sub(b, attackRun, uk, jan, 5000, 5000)
			s.To = jan // the file says January alone, and carries February too
			seal(f, craft(t, s), nil)
		}, attackKey, "invalid_value", "a run over 2024-01 to 2024-01"},
		{"a format-1 monthly file beside a run", func(t *testing.T, f *fixture) {
			f.put(formats.RunPrefix(b, attackRun)+"2024-01.arrow", attackFile(t, 5000))
		}, formats.RunPrefix(b, attackRun) + "2024-01.arrow", "format_version", "format 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			before := f.combine()
			if len(before.Report.Quarantined) != 0 {
				t.Fatalf("the honest federation has quarantined objects: %+v", before.Report.Quarantined)
			}
			tc.attack(t, f)
			after := f.combine()

			var found *combine.Quarantined
			for i, q := range after.Report.Quarantined {
				if q.Key == tc.key {
					found = &after.Report.Quarantined[i]
				}
			}
			if found == nil {
				t.Fatalf("%s was not quarantined; quarantine: %+v", tc.key, after.Report.Quarantined)
			}
			if (tc.kind != "" && found.Kind != tc.kind) || !strings.Contains(found.Reason, tc.reason) || found.Practice != b {
				t.Errorf("quarantined as %s of %q: %q; want %s of %s containing %q", found.Kind, found.Practice, found.Reason, tc.kind, b, tc.reason)
			}
			t.Logf("quarantined %s as %s: %s", found.Key, found.Kind, found.Reason)
			if after.Pointer.Quarantined == 0 || after.Report.ID == before.Report.ID {
				t.Errorf("the new report does not say anything was quarantined (pointer %d, id unchanged %v)", after.Pointer.Quarantined, after.Report.ID == before.Report.ID)
			}
			for _, name := range []string{combine.FederationArrow, combine.FederationParquet} {
				was, now := before.Pointer.Objects[name], after.Pointer.Objects[name]
				if was.SHA256 != now.SHA256 || !bytes.Equal(f.get(was.Key), f.get(now.Key)) {
					t.Errorf("%s changed under the attack: %s -> %s", name, was.SHA256, now.SHA256)
				}
			}
			if after.Report.InputsSHA256 != before.Report.InputsSHA256 {
				t.Errorf("the figures' inputs digest changed under the attack")
			}
			for p, ref := range before.Pointer.PracticeTables {
				if after.Pointer.PracticeTables[p] != ref {
					t.Errorf("practice %s's table changed under the attack", p)
				}
			}
			if u, ok := uses(after.Report)[attackKey]; ok && u.Use != combine.UseQuarantined {
				t.Errorf("the attack's file is used as %+v", u)
			}

			// The coordinator still answers queries, from the new pointer.
			q, err := query.Open(f.ctx, f.st)
			if err != nil {
				t.Fatal(err)
			}
			if q.Pointer.ID != after.Pointer.ID {
				t.Errorf("query reads combined output %s, want %s", q.Pointer.ID, after.Pointer.ID)
			}
			res, err := q.Run(query.Request{Measures: []string{formats.Admissions}, From: jan, To: jan})
			if err != nil {
				t.Fatalf("query after the attack: %v", err)
			}
			// A 20 + B2 10 + C 30, each published exactly under PolicyUK's rounding to 5.
			if len(res.Rows) != 1 || res.Rows[0].Count == nil || *res.Rows[0].Count != 60 || res.Rows[0].Practices != 3 || res.Rows[0].Status != formats.StatusRounded {
				t.Errorf("query after the attack: admissions in January %+v, want 60 from 3 practices", res.Rows)
			}
		})
	}

	t.Run("old run re-uploaded unchanged", func(t *testing.T) {
		t.Parallel()
		f := setup(t)
		before := f.combine()
		// The same signed bytes put again: still ordered by their signed creation time.
		for _, k := range []string{formats.SubmissionKey(b, runB1), formats.ManifestKey(b, runB1)} {
			f.put(k, f.get(k))
		}
		after := f.combine()
		if after.Pointer.Objects[combine.FederationArrow].SHA256 != before.Pointer.Objects[combine.FederationArrow].SHA256 {
			t.Error("re-uploading an older run changed the figures")
		}
		found := false
		for _, in := range after.Report.Inputs {
			for _, file := range in.Files {
				if in.RunID == runB1 {
					found = true
					if file.Use != combine.UseRevision || file.SupersededBy != runB2 {
						t.Errorf("%s used as %s (superseded by %q); want a revision superseded by %s", file.Key, file.Use, file.SupersededBy, runB2)
					}
				}
			}
		}
		if !found {
			t.Error("the re-uploaded run is not among the report's inputs")
		}
	})
}
