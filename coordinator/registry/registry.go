// Package registry keeps the federation registry: the signed list of practices and the public
// keys their manifests must verify with, stored at formats.RegistryKey.
package registry

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// ErrNoRegistry is returned by Load when the store holds no registry yet.
var ErrNoRegistry = errors.New("the store has no federation registry yet; add the first practice with 'tributary-coordinator registry add'")

// Loaded is a verified registry with the digest of the bytes it was read from, so a combine
// can record exactly which registry it trusted.
type Loaded struct {
	*formats.Registry
	SHA256 string // lower-case hex of the stored envelope
}

// Load reads the registry and verifies it with the coordinator's public key. A store without
// a registry gives ErrNoRegistry; a registry that does not verify gives the formats error.
func Load(ctx context.Context, st objstore.Store, coordinator ed25519.PublicKey) (*Loaded, error) {
	data, _, err := st.Get(ctx, formats.RegistryKey, formats.MaxEnvelopeBytes)
	if errors.Is(err, objstore.ErrNotFound) {
		return nil, ErrNoRegistry
	}
	if err != nil {
		return nil, fmt.Errorf("read the federation registry: %w", err)
	}
	reg, err := formats.VerifyRegistry(data, coordinator)
	if err != nil {
		return nil, fmt.Errorf("the federation registry does not verify with coordinator key %s (check --key or --coordinator-pub names this federation's coordinator key): %w", formats.KeyID(coordinator), err)
	}
	h := sha256.Sum256(data)
	return &Loaded{Registry: reg, SHA256: hex.EncodeToString(h[:])}, nil
}

// loadOrNew is Load, with an empty registry for a store that has none, and the SHA-256 of
// what it read (objstore.Absent for none), for Save.
func loadOrNew(ctx context.Context, st objstore.Store, coordinator ed25519.PublicKey) (*formats.Registry, string, error) {
	l, err := Load(ctx, st, coordinator)
	if errors.Is(err, ErrNoRegistry) {
		return &formats.Registry{FormatVersion: formats.RegistryVersion}, objstore.Absent, nil
	}
	if err != nil {
		return nil, "", err
	}
	return l.Registry, l.SHA256, nil
}

// ErrChanged: the registry was replaced (by another 'registry add' or 'revoke') between
// reading it and saving the change; nothing was saved.
var ErrChanged = errors.New("the federation registry changed while it was being updated")

// Save signs reg with the coordinator's private key and stores it, if the stored registry is
// still the one whose SHA-256 is ifSHA256 (objstore.Absent: there is none): otherwise it
// saves nothing and returns ErrChanged.
func Save(ctx context.Context, st objstore.Store, reg *formats.Registry, coordinator ed25519.PrivateKey, ifSHA256 string) error {
	data, err := formats.SignRegistry(reg, coordinator)
	if err != nil {
		return err
	}
	if _, err := st.PutIf(ctx, formats.RegistryKey, data, ifSHA256); err != nil {
		if errors.Is(err, objstore.ErrConflict) {
			return fmt.Errorf("write the federation registry: %w (%v)", ErrChanged, err)
		}
		return fmt.Errorf("write the federation registry: %w", err)
	}
	return nil
}

// attempts bounds how often Add and Revoke read the registry again after another change
// landed between their reading and their saving.
const attempts = 8

// update reads the registry (an empty one if there is none and create is set, else
// ErrNoRegistry), applies change and saves it on the condition that nobody saved another in
// between, starting again from the new registry if somebody did.
func update(ctx context.Context, st objstore.Store, coordinator ed25519.PrivateKey, create bool, change func(*formats.Registry) error) error {
	pub := coordinator.Public().(ed25519.PublicKey)
	for attempt := 1; ; attempt++ {
		reg, sum, err := loadOrNew(ctx, st, pub)
		if err != nil {
			return err
		}
		if sum == objstore.Absent && !create {
			return ErrNoRegistry
		}
		if err := change(reg); err != nil {
			return err
		}
		err = Save(ctx, st, reg, coordinator, sum)
		if errors.Is(err, ErrChanged) && attempt < attempts {
			continue
		}
		if errors.Is(err, ErrChanged) {
			return fmt.Errorf("%w; another change keeps landing first: try again", err)
		}
		return err
	}
}

// Add registers a practice's public key. A practice may hold several keys (a new key after a
// lost machine, say); adding a key that is already registered is refused.
func Add(ctx context.Context, st objstore.Store, coordinator ed25519.PrivateKey, practice, name string, pub ed25519.PublicKey, now time.Time) (formats.RegistryEntry, error) {
	e, err := formats.NewRegistryEntry(practice, strings.TrimSpace(name), pub, now)
	if err != nil {
		return e, err
	}
	if e.Name == "" {
		return e, fmt.Errorf("practice %s: give a display name with --name", practice)
	}
	return e, update(ctx, st, coordinator, true, func(reg *formats.Registry) error {
		for _, x := range reg.Practices {
			if x.KeyID == e.KeyID {
				return fmt.Errorf("key %s is already registered for practice %s; nothing to do", e.KeyID, x.Practice)
			}
		}
		reg.Practices = append(reg.Practices, e)
		sortEntries(reg.Practices)
		reg.Updated = now.UTC()
		return nil
	})
}

// Revoke marks a practice's keys revoked: the one named by keyID, or every key it holds that
// is not yet revoked when keyID is empty. Manifests signed with a revoked key are quarantined
// by every later combine. It returns the entries it revoked.
func Revoke(ctx context.Context, st objstore.Store, coordinator ed25519.PrivateKey, practice, keyID string, now time.Time) ([]formats.RegistryEntry, error) {
	var done []formats.RegistryEntry
	err := update(ctx, st, coordinator, false, func(reg *formats.Registry) error {
		done = nil
		known := false
		t := now.UTC()
		for i, e := range reg.Practices {
			if e.Practice != practice {
				continue
			}
			known = true
			if (keyID != "" && e.KeyID != keyID) || e.Revoked != nil {
				continue
			}
			reg.Practices[i].Revoked = &t
			done = append(done, reg.Practices[i])
		}
		switch {
		case !known:
			return fmt.Errorf("practice %s is not in the registry; 'tributary-coordinator registry list' shows who is", practice)
		case len(done) == 0 && keyID != "":
			return fmt.Errorf("practice %s has no unrevoked key %s; 'tributary-coordinator registry list' shows its keys", practice, keyID)
		case len(done) == 0:
			return fmt.Errorf("every key of practice %s is already revoked", practice)
		}
		reg.Updated = t
		return nil
	})
	if err != nil {
		return nil, err
	}
	return done, nil
}

func sortEntries(es []formats.RegistryEntry) {
	slices.SortStableFunc(es, func(a, b formats.RegistryEntry) int {
		if c := strings.Compare(a.Practice, b.Practice); c != 0 {
			return c
		}
		return a.Added.Compare(b.Added)
	})
}
