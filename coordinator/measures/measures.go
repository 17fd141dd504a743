// Package measures keeps the federation's own measure definitions: the signed file at
// formats.FederationMeasuresKey that 'tributary-coordinator measures add' writes, which agents
// read every run and the combine reads to know the federation's definition of every measure.
package measures

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// Loaded is the federation's definitions: the built-ins with the federation's own on top.
type Loaded struct {
	Defs       []formats.Definition // every definition, in display order
	Federation []formats.Definition // the federation's own, as signed
	SHA256     string               // of the stored file; objstore.Absent when there is none
}

// Digests maps every measure to its definition's digest.
func (l *Loaded) Digests() map[string]string {
	out := make(map[string]string, len(l.Defs))
	for i := range l.Defs {
		out[l.Defs[i].Name] = l.Defs[i].Digest()
	}
	return out
}

// Find returns the definition of a measure.
func (l *Loaded) Find(name string) (formats.Definition, bool) {
	i := slices.IndexFunc(l.Defs, func(d formats.Definition) bool { return d.Name == name })
	if i < 0 {
		return formats.Definition{}, false
	}
	return l.Defs[i], true
}

// Load reads the federation's definitions and verifies them with the coordinator's public key.
// A store without the file gives the built-ins alone; a file that does not verify is an error.
func Load(ctx context.Context, st objstore.Store, coordinator ed25519.PublicKey) (*Loaded, error) {
	out := &Loaded{Defs: formats.BuiltinDefinitions(), SHA256: objstore.Absent}
	data, _, err := st.Get(ctx, formats.FederationMeasuresKey, formats.MaxEnvelopeBytes)
	if errors.Is(err, objstore.ErrNotFound) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the federation's measures: %w", err)
	}
	f, err := formats.VerifyFederationMeasures(data, coordinator)
	if err != nil {
		return nil, fmt.Errorf("the federation's measures file does not verify with coordinator key %s: %w", formats.KeyID(coordinator), err)
	}
	h := sha256.Sum256(data)
	out.SHA256 = hex.EncodeToString(h[:])
	out.Federation = f.Measures
	out.Defs = formats.MergeDefinitions(out.Defs, f.Measures)
	return out, nil
}

// ErrChanged: the file was replaced between reading it and saving the change.
var ErrChanged = errors.New("the federation's measures changed while they were being updated")

// Add adds (or replaces, by name) definitions in the federation's file and stores it signed
// with the coordinator's key, on the condition that nobody saved another in between.
func Add(ctx context.Context, st objstore.Store, coordinator ed25519.PrivateKey, defs []formats.Definition, now time.Time) (*Loaded, error) {
	pub := coordinator.Public().(ed25519.PublicKey)
	l, err := Load(ctx, st, pub)
	if err != nil {
		return nil, err
	}
	fed := slices.Clone(l.Federation)
	for _, d := range defs {
		if i := slices.IndexFunc(fed, func(x formats.Definition) bool { return x.Name == d.Name }); i >= 0 {
			fed[i] = d
		} else {
			fed = append(fed, d)
		}
	}
	f := &formats.FederationMeasures{FormatVersion: formats.DefinitionVersion, Updated: now.UTC(), Measures: fed}
	data, err := formats.SignFederationMeasures(f, coordinator)
	if err != nil {
		return nil, err
	}
	if _, err := st.PutIf(ctx, formats.FederationMeasuresKey, data, l.SHA256); err != nil {
		if errors.Is(err, objstore.ErrConflict) {
			return nil, fmt.Errorf("write %s: %w (%v)", formats.FederationMeasuresKey, ErrChanged, err)
		}
		return nil, fmt.Errorf("write %s: %w", formats.FederationMeasuresKey, err)
	}
	return Load(ctx, st, pub)
}
