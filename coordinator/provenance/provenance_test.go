package provenance_test

import (
	"context"
	"crypto/ed25519"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/coordinator/provenance"
	"github.com/tributary-health/tributary/coordinator/registry"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// TestTrace changes one link of the chain after the combine in each way and checks that
// Trace names that link, and only when something changed.
func TestTrace(t *testing.T) {
	ctx := context.Background()
	fed := fedgen.New(fedgen.Params{Practices: 2, Months: 2, Seed: 5})
	p := fed.Practices[0]
	file := formats.SubmissionKey(p.ID, p.RunID)
	manifest := formats.ManifestKey(p.ID, p.RunID)
	flip := func(st objstore.Store, key string) {
		data, _, err := st.Get(ctx, key, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		data[len(data)/2] ^= 1
		if _, err := st.Put(ctx, key, data); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		change func(st objstore.Store, res *combine.Result)
		want   string // in a problem; "" for none
	}{
		{"nothing changed", func(objstore.Store, *combine.Result) {}, ""},
		{"a practice file rewritten", func(st objstore.Store, _ *combine.Result) { flip(st, file) }, "file " + file + " has SHA-256"},
		{"a practice file deleted", func(st objstore.Store, _ *combine.Result) { _ = st.Delete(ctx, file) }, "cannot re-read file " + file},
		{"a manifest rewritten", func(st objstore.Store, _ *combine.Result) { flip(st, manifest) }, "manifest " + manifest + " has SHA-256"},
		{"the signing key revoked since", func(st objstore.Store, _ *combine.Result) {
			if _, err := registry.Revoke(ctx, st, fed.Coordinator, p.ID, "", p.Created); err != nil {
				t.Fatal(err)
			}
		}, "does not verify now"},
		{"the report rewritten", func(st objstore.Store, res *combine.Result) {
			flip(st, res.Pointer.Objects[combine.ReportJSON].Key)
		}, ""}, // a flipped byte in JSON may not parse: checked below
		{"the figures rewritten", func(st objstore.Store, res *combine.Result) {
			flip(st, res.Pointer.Objects[combine.FederationArrow].Key)
		}, "the figures changed after the combine"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := objstore.NewDir(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if err := fed.Write(ctx, st, 2); err != nil {
				t.Fatal(err)
			}
			pub := fed.Coordinator.Public().(ed25519.PublicKey)
			res, err := combine.Run(ctx, st, pub, combine.Options{})
			if err != nil {
				t.Fatal(err)
			}
			tc.change(st, res)
			ch, err := provenance.Trace(ctx, st, pub, formats.Admissions, fed.Start, "")
			if tc.name == "the report rewritten" {
				if err == nil && len(ch.Problems) == 0 {
					t.Fatal("a rewritten report went unnoticed")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(ch.Links) != 2 {
				t.Errorf("%d links, want one per practice", len(ch.Links))
			}
			for _, l := range ch.Links {
				if l.File.Key != formats.SubmissionKey(l.Practice, l.RunID) || l.Manifest != formats.ManifestKey(l.Practice, l.RunID) {
					t.Errorf("link %+v does not name its run's file and manifest", l)
				}
				// The file as stored holds every shape of the measure in the month, unless
				// it was changed.
				if tc.want == "" && l.Cells != formats.NumShapes {
					t.Errorf("%s: %d values of the measure in the month, want %d", l.File.Key, l.Cells, formats.NumShapes)
				}
			}
			if ch.Measure != formats.Admissions || ch.Month != fed.Start.String() || ch.InputsSHA256 != res.Report.InputsSHA256 || ch.CombineID != res.Pointer.ID {
				t.Errorf("chain of %s %s in %s (inputs %s)", ch.Measure, ch.Month, ch.CombineID, ch.InputsSHA256)
			}
			joined := strings.Join(ch.Problems, "\n")
			switch {
			case tc.want == "" && len(ch.Problems) > 0:
				t.Errorf("problems where nothing changed:\n%s", joined)
			case tc.want != "" && !strings.Contains(joined, tc.want):
				t.Errorf("problems %q, want one containing %q", joined, tc.want)
			}
		})
	}
}

// TestTraceFollowsRevisions: a month is traced to the run it was combined from, which is the
// newer run where one covers it and the older run for the months the newer does not cover;
// a practice whose run was quarantined made no figure and is not linked.
func TestTraceFollowsRevisions(t *testing.T) {
	ctx := context.Background()
	fed := fedgen.New(fedgen.Params{Practices: 3, Months: 3, Seed: 8})
	st, err := objstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := fed.Write(ctx, st, 2); err != nil {
		t.Fatal(err)
	}
	p := fed.Practices[0]
	revised := fed.Start + 1
	sub := fedgen.Publish(fed.Policy, p.ID, "20260301T000000Z-0000beef", revised, revised, formats.Measures,
		func(m formats.Month, measure string, b, x int) int64 { return fed.True(0, m, measure, b, x) + 1 })
	if _, err := fedgen.WriteSubmission(ctx, st, p.Key, p.Created.Add(time.Hour), sub); err != nil {
		t.Fatal(err)
	}
	// The third practice's file is changed before the combine: quarantined.
	bad := fed.Practices[2]
	key := formats.SubmissionKey(bad.ID, bad.RunID)
	data, _, err := st.Get(ctx, key, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	if _, err := st.Put(ctx, key, data); err != nil {
		t.Fatal(err)
	}
	pub := fed.Coordinator.Public().(ed25519.PublicKey)
	res, err := combine.Run(ctx, st, pub, combine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Report.Quarantined) != 1 {
		t.Fatalf("quarantine: %+v", res.Report.Quarantined)
	}
	for _, tc := range []struct {
		month formats.Month
		run   string // practice 0's run the month was combined from
	}{{fed.Start, p.RunID}, {revised, sub.RunID}, {fed.Start + 2, p.RunID}} {
		ch, err := provenance.Trace(ctx, st, pub, formats.Consultations, tc.month, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(ch.Problems) != 0 {
			t.Errorf("%s: problems %q", tc.month, ch.Problems)
		}
		runs := map[string]string{}
		for _, l := range ch.Links {
			runs[l.Practice] = l.RunID
			if !slices.Contains(l.File.Months, tc.month.String()) || l.Cells != formats.NumShapes {
				t.Errorf("%s: link %+v", tc.month, l)
			}
		}
		if len(ch.Links) != 2 || runs[p.ID] != tc.run || runs[fed.Practices[1].ID] != fed.Practices[1].RunID {
			t.Errorf("%s: linked runs %v, want %s for %s and no link to %s", tc.month, runs, tc.run, p.ID, bad.ID)
		}
	}
	// Limited to one practice, only its link.
	ch, err := provenance.Trace(ctx, st, pub, formats.Consultations, revised, p.ID)
	if err != nil || len(ch.Links) != 1 || ch.Links[0].RunID != sub.RunID {
		t.Errorf("trace of %s alone: %+v (%v)", p.ID, ch, err)
	}
	if _, err := provenance.Trace(ctx, st, pub, "beds", revised, ""); err == nil {
		t.Error("a trace of an unknown measure succeeded")
	}
}
