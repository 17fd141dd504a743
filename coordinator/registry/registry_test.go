package registry_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tributary-health/tributary/coordinator/registry"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

func TestAddRevokeLoad(t *testing.T) {
	ctx := context.Background()
	st, err := objstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, coord, _ := formats.GenerateKey()
	coordPub := coord.Public().(ed25519.PublicKey)
	if _, err := registry.Load(ctx, st, coordPub); !errors.Is(err, registry.ErrNoRegistry) {
		t.Fatalf("empty store: %v, want ErrNoRegistry", err)
	}
	now := time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)
	pubA1, _, _ := formats.GenerateKey()
	pubA2, _, _ := formats.GenerateKey()
	pubB, _, _ := formats.GenerateKey()
	for _, a := range []struct {
		practice string
		pub      ed25519.PublicKey
	}{{"B82002", pubB}, {"A81001", pubA1}, {"A81001", pubA2}} {
		if _, err := registry.Add(ctx, st, coord, a.practice, "Surgery "+a.practice, a.pub, now); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"same key twice", func() error { _, err := registry.Add(ctx, st, coord, "C83003", "C", pubB, now); return err }(), "already registered for practice B82002"},
		{"no name", func() error { _, err := registry.Add(ctx, st, coord, "C83003", " ", pubA1, now); return err }(), "--name"},
		{"bad id", func() error { _, err := registry.Add(ctx, st, coord, "../x", "X", pubA1, now); return err }(), "practice id"},
		{"revoke unknown practice", func() error { _, err := registry.Revoke(ctx, st, coord, "Z1", "", now); return err }(), "not in the registry"},
		{"revoke unknown key", func() error { _, err := registry.Revoke(ctx, st, coord, "A81001", "0011223344556677", now); return err }(), "no unrevoked key"},
	}
	for _, tc := range tests {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.name, tc.err, tc.want)
		}
	}

	done, err := registry.Revoke(ctx, st, coord, "A81001", formats.KeyID(pubA1), now.Add(time.Hour))
	if err != nil || len(done) != 1 {
		t.Fatalf("revoke: %v %v", done, err)
	}
	reg, err := registry.Load(ctx, st, coordPub)
	if err != nil {
		t.Fatal(err)
	}
	if len(reg.Practices) != 3 || reg.Practices[0].Practice != "A81001" || reg.Practices[2].Practice != "B82002" {
		t.Errorf("entries not sorted by practice: %+v", reg.Practices)
	}
	if _, err := reg.KeyFor("A81001", formats.KeyID(pubA1)); !errors.Is(err, formats.ErrRevoked) {
		t.Errorf("revoked key: %v", err)
	}
	if _, err := reg.KeyFor("A81001", formats.KeyID(pubA2)); err != nil {
		t.Errorf("the practice's other key was revoked too: %v", err)
	}
	if _, err := registry.Revoke(ctx, st, coord, "A81001", "", now); err != nil {
		t.Fatal(err)
	}
	if _, err := registry.Revoke(ctx, st, coord, "A81001", "", now); err == nil || !strings.Contains(err.Error(), "already revoked") {
		t.Errorf("revoking again: %v", err)
	}

	// Another coordinator key cannot read it, and says what to check.
	otherPub, _, _ := formats.GenerateKey()
	if _, err := registry.Load(ctx, st, otherPub); !errors.Is(err, formats.ErrSignature) || !strings.Contains(err.Error(), "--coordinator-pub") {
		t.Errorf("wrong coordinator key: %v", err)
	}
}

// TestConcurrentChangesAllLand: registry changes made at the same time (two leads adding
// practices, an add beside a revoke) each read, change and save the registry; none may save
// over another's change. With a plain Put, most of these adds were lost.
func TestConcurrentChangesAllLand(t *testing.T) {
	ctx := context.Background()
	st, err := objstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	_, coord, _ := formats.GenerateKey()
	now := time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)
	first, _, _ := formats.GenerateKey()
	if _, err := registry.Add(ctx, st, coord, "A00000", "Surgery A00000", first, now); err != nil {
		t.Fatal(err)
	}
	const n = 4
	var wg sync.WaitGroup
	errs := make([]error, n+1)
	for i := range n {
		pub, _, _ := formats.GenerateKey()
		id := fmt.Sprintf("B%05d", i)
		wg.Go(func() { _, errs[i] = registry.Add(ctx, st, coord, id, "Surgery "+id, pub, now) })
	}
	wg.Go(func() { _, errs[n] = registry.Revoke(ctx, st, coord, "A00000", "", now.Add(time.Hour)) })
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("change %d: %v", i, err)
		}
	}
	reg, err := registry.Load(ctx, st, coord.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	revoked := 0
	for _, e := range reg.Practices {
		if e.Revoked != nil {
			revoked++
		}
	}
	if len(reg.Practices) != n+1 || revoked != 1 {
		t.Errorf("the registry holds %d practices (%d revoked) after %d concurrent adds and a revoke; want %d, 1 revoked", len(reg.Practices), revoked, n, n+1)
	}
}
