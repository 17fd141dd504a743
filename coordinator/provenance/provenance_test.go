package provenance_test

import (
	"context"
	"crypto/ed25519"
	"strings"
	"testing"

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
	file := formats.SubmissionKey(p.ID, p.RunID, fed.Start)
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
