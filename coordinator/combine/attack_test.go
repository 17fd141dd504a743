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

// sealRun stores files as practice's run and a manifest over them signed with key as it
// stands, bypassing SignManifest's checks, as a hostile agent holding key could. It returns
// the manifest's key.
func (f *fixture) sealRun(practice, run string, created time.Time, key ed25519.PrivateKey, files map[formats.Month][]byte, edit func(*formats.Manifest)) string {
	f.t.Helper()
	m := &formats.Manifest{FormatVersion: formats.FormatVersion, Practice: practice, RunID: run, Created: created,
		Extractors: []string{"hand@1"}, Policy: formats.PolicyUK.Name}
	for _, month := range []formats.Month{jan, feb} {
		data, ok := files[month]
		if !ok {
			continue
		}
		f.put(formats.SubmissionKey(practice, run, month), data)
		m.Files = append(m.Files, formats.Entry(practice, run, month, data))
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
	sub := func(p, run string, m formats.Month, n int64) []byte {
		data, err := formats.MarshalSubmission(submission(p, run, m, formats.PolicyUK,
			truth{formats.Admissions, "0-4", "male", n}, truth{formats.Consultations, "40-44", "female", 3 * n},
			truth{formats.RegisteredPatients, "40-44", "female", 1000 + n}))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	var oldB ed25519.PrivateKey // B's first key, revoked when B moved to its current one
	setup := func(t *testing.T) *fixture {
		f := newFixture(t, a, b, c)
		oldPub, oldPriv, _ := formats.GenerateKey()
		oldB = oldPriv
		if _, err := registry.Add(f.ctx, f.st, f.coord, b, "Surgery "+b, oldPub, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
		if _, err := registry.Revoke(f.ctx, f.st, f.coord, b, formats.KeyID(oldPub), time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
		f.sealRun(a, runA, day(1), f.keys[a], map[formats.Month][]byte{jan: sub(a, runA, jan, 20), feb: sub(a, runA, feb, 22)}, nil)
		f.sealRun(b, runB1, day(1), f.keys[b], map[formats.Month][]byte{jan: sub(b, runB1, jan, 90), feb: sub(b, runB1, feb, 91)}, nil) // superseded by B2
		f.sealRun(b, runB2, day(3), f.keys[b], map[formats.Month][]byte{jan: sub(b, runB2, jan, 10), feb: sub(b, runB2, feb, 11)}, nil)
		f.sealRun(c, runC, day(2), f.keys[c], map[formats.Month][]byte{jan: sub(c, runC, jan, 30)}, nil)
		return f
	}
	attackFile := func(n int64) []byte { return sub(b, attackRun, jan, n) }
	firstFrame := func(t *testing.T, data []byte) int {
		i := bytes.Index(data, []byte{0x28, 0xb5, 0x2f, 0xfd})
		if i < 8 {
			t.Fatal("no zstd frame in a submission: the writer no longer compresses with zstd")
		}
		return i
	}
	attackKey := func(m formats.Month) string { return formats.SubmissionKey(b, attackRun, m) }

	tests := []struct {
		name   string
		attack func(t *testing.T, f *fixture)
		key    string // the object quarantined
		kind   string
		reason string
	}{
		{"file signed by an unknown key", func(t *testing.T, f *fixture) {
			_, stranger, _ := formats.GenerateKey()
			f.sealRun(b, attackRun, day(9), stranger, map[formats.Month][]byte{jan: attackFile(5000)}, nil)
		}, formats.ManifestKey(b, attackRun), "unknown_key", "has no registered key"},
		{"file signed by a revoked key", func(t *testing.T, f *fixture) {
			f.sealRun(b, attackRun, day(9), oldB, map[formats.Month][]byte{jan: attackFile(5000)}, nil)
		}, formats.ManifestKey(b, attackRun), "revoked_key", "revoked"},
		{"older manifest and files copied to a newer-looking run", func(t *testing.T, f *fixture) {
			f.put(formats.ManifestKey(b, attackRun), f.get(formats.ManifestKey(b, runB1)))
			f.put(attackKey(jan), f.get(formats.SubmissionKey(b, runB1, jan)))
			f.put(attackKey(feb), f.get(formats.SubmissionKey(b, runB1, feb)))
		}, formats.ManifestKey(b, attackRun), "practice_mismatch", "copied to another practice or run"},
		{"older run signed again with a newer date but its old files", func(t *testing.T, f *fixture) {
			// B's key signs a new manifest whose files are B1's, still under B1's prefix.
			old := map[formats.Month][]byte{jan: f.get(formats.SubmissionKey(b, runB1, jan))}
			f.sealRun(b, attackRun, day(9), f.keys[b], nil, func(m *formats.Manifest) {
				m.Files = []formats.FileEntry{formats.Entry(b, runB1, jan, old[jan])}
			})
		}, formats.ManifestKey(b, attackRun), "practice_mismatch", "outside this run's prefix"},
		{"manifest naming another practice's file", func(t *testing.T, f *fixture) {
			stolen := f.get(formats.SubmissionKey(a, runA, jan))
			f.sealRun(b, attackRun, day(9), f.keys[b], nil, func(m *formats.Manifest) {
				m.Files = []formats.FileEntry{formats.Entry(a, runA, jan, stolen)}
			})
		}, formats.ManifestKey(b, attackRun), "practice_mismatch", "outside this run's prefix"},
		{"manifest naming a key outside practices/", func(t *testing.T, f *fixture) {
			data := attackFile(5000)
			f.sealRun(b, attackRun, day(9), f.keys[b], nil, func(m *formats.Manifest) {
				e := formats.Entry(b, attackRun, jan, data)
				e.Key = formats.RegistryKey
				m.Files = []formats.FileEntry{e}
			})
		}, formats.ManifestKey(b, attackRun), "bad_key", "not a submission key"},
		{"oversized manifest", func(t *testing.T, f *fixture) {
			f.put(formats.ManifestKey(b, attackRun), bytes.Repeat([]byte("{"), formats.MaxEnvelopeBytes+1))
		}, formats.ManifestKey(b, attackRun), "too_large", "larger than"},
		{"manifest listing an oversized file", func(t *testing.T, f *fixture) {
			f.sealRun(b, attackRun, day(9), f.keys[b], map[formats.Month][]byte{jan: attackFile(5000)}, func(m *formats.Manifest) {
				m.Files[0].Size = formats.DefaultLimits.MaxObjectBytes + 1
			})
		}, attackKey(jan), "too_large", "the limit is"},
		{"file grown past its signed size", func(t *testing.T, f *fixture) {
			f.sealRun(b, attackRun, day(9), f.keys[b], map[formats.Month][]byte{jan: attackFile(5000)}, nil)
			f.put(attackKey(jan), append(attackFile(5000), make([]byte, 1<<20)...))
		}, attackKey(jan), "size_mismatch", "larger than"},
		{"compression bomb: a zstd buffer claims 8 GiB", func(t *testing.T, f *fixture) {
			data := attackFile(5000)
			binary.LittleEndian.PutUint64(data[firstFrame(t, data)-8:], 8<<30)
			f.sealRun(b, attackRun, day(9), f.keys[b], map[formats.Month][]byte{jan: data}, nil)
		}, attackKey(jan), "too_large", ""},
		{"compression bomb: a zstd frame declares a 512 MiB window", func(t *testing.T, f *fixture) {
			data := attackFile(5000)
			data[firstFrame(t, data)+5] = 19 << 3
			f.sealRun(b, attackRun, day(9), f.keys[b], map[formats.Month][]byte{jan: data}, nil)
		}, attackKey(jan), "too_large", ""},
		{"malformed Arrow", func(t *testing.T, f *fixture) {
			f.sealRun(b, attackRun, day(9), f.keys[b], map[formats.Month][]byte{jan: []byte("ARROW1\x00\x00 not an arrow file at all")}, nil)
		}, attackKey(jan), "corrupt", "is corrupt"},
		{"truncated Arrow", func(t *testing.T, f *fixture) {
			data := attackFile(5000)
			f.sealRun(b, attackRun, day(9), f.keys[b], map[formats.Month][]byte{jan: data[:len(data)*2/3]}, nil)
		}, attackKey(jan), "corrupt", ""},
		{"Arrow with a flipped byte in a zstd frame", func(t *testing.T, f *fixture) {
			data := attackFile(5000)
			data[firstFrame(t, data)+12] ^= 0xff
			f.sealRun(b, attackRun, day(9), f.keys[b], map[formats.Month][]byte{jan: data}, nil)
		}, attackKey(jan), "corrupt", "CRC"},
		{"compression bomb: a zstd frame inflates to far more than its buffer claims", func(t *testing.T, f *fixture) {
			// A full file (every measure, band and sex) has buffers large enough to carry a bomb.
			var cells []truth
			for i, m := range formats.Measures {
				for j, band := range formats.AgeBands {
					for k, sex := range formats.Sexes {
						cells = append(cells, truth{m, band, sex, int64((i*7919 + j*104729 + k*31) % 5000)})
					}
				}
			}
			data, err := formats.MarshalSubmission(submission(b, attackRun, jan, formats.PolicyUK, cells...))
			if err != nil {
				t.Fatal(err)
			}
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
				// The generated federation is fixed, so this means the generator changed
				// and the bomb case needs a bigger buffer, not that it may be dropped.
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
			f.sealRun(b, attackRun, day(9), f.keys[b], map[formats.Month][]byte{jan: data}, nil)
		}, attackKey(jan), "too_large", "compression bomb"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
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
			if (tc.kind != "" && found.Kind != tc.kind) || !strings.Contains(found.Reason, tc.reason) {
				t.Errorf("quarantined as %s: %q; want %s containing %q", found.Kind, found.Reason, tc.kind, tc.reason)
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

			// The coordinator still answers queries, from the new pointer.
			q, err := query.Open(f.ctx, f.st)
			if err != nil {
				t.Fatal(err)
			}
			if q.Pointer.ID != after.Pointer.ID {
				t.Errorf("query reads combined output %s, want %s", q.Pointer.ID, after.Pointer.ID)
			}
			res, err := q.Run(f.ctx, query.Request{Measures: []string{formats.Admissions}, From: jan, To: jan})
			if err != nil {
				t.Fatalf("query after the attack: %v", err)
			}
			var total int64
			for _, r := range res.Rows {
				if r.Count != nil {
					total += *r.Count
				}
			}
			if total != 60 { // A 20 + B2 10 + C 30, each exact under PolicyUK's rounding to 10
				t.Errorf("query after the attack: admissions in January total %d, want 60", total)
			}
		})
	}

	t.Run("old run re-uploaded unchanged", func(t *testing.T) {
		f := setup(t)
		before := f.combine()
		// The same signed bytes put again: still ordered by their signed creation time.
		for _, k := range []string{formats.SubmissionKey(b, runB1, jan), formats.SubmissionKey(b, runB1, feb), formats.ManifestKey(b, runB1)} {
			f.put(k, f.get(k))
		}
		after := f.combine()
		if after.Pointer.Objects[combine.FederationArrow].SHA256 != before.Pointer.Objects[combine.FederationArrow].SHA256 {
			t.Error("re-uploading an older run changed the figures")
		}
		for _, in := range after.Report.Inputs {
			for _, file := range in.Files {
				if in.RunID == runB1 && (file.Use != combine.UseRevision || file.SupersededBy != runB2) {
					t.Errorf("%s used as %s (superseded by %q); want a revision superseded by %s", file.Key, file.Use, file.SupersededBy, runB2)
				}
			}
		}
	})
}
