package agent

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// MeasuresCacheName is the file in the spool folder holding the last federation measures file
// that verified, used while the store cannot be read or holds a file that does not verify.
const MeasuresCacheName = "federation-measures.json"

// maxMeasuresBytes bounds the federation measures file (a signed envelope).
const maxMeasuresBytes = formats.MaxEnvelopeBytes

// CoordinatorKey returns the coordinator's public key from the configuration: the base64 key
// or a PEM file (a relative path is relative to the configuration file). Nil when not set.
func CoordinatorKey(value, dir string) (ed25519.PublicKey, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return nil, nil
	}
	if pub, err := formats.ParsePublicKey([]byte(value)); err == nil {
		return pub, nil
	}
	path := value
	if !filepath.IsAbs(path) && dir != "" {
		path = filepath.Join(dir, path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("coordinator_public_key is neither a base64 Ed25519 public key nor a readable PEM file: %w", err)
	}
	pub, err := formats.ParsePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("coordinator_public_key %s: %w", path, err)
	}
	return pub, nil
}

// Definitions is what a run counts: the built-in definitions with the federation's own on
// top, and what went wrong reading the federation's (nil when nothing did).
type Definitions struct {
	Defs       []formats.Definition
	Federation int   // how many came from the federation's signed file
	Cached     bool  // the federation's came from the local copy of the last good file
	Err        error // why the federation's file in the store was not used
}

// LoadDefinitions reads the federation's signed measures file from the store, checks it with
// the coordinator's key and keeps a copy in the spool folder. A file that does not verify (a
// forgery, a file signed by another key) is refused: the last good copy is used, or the
// built-ins alone, and Err says why. No key configured: the built-ins alone.
func LoadDefinitions(ctx context.Context, st objstore.Store, pub ed25519.PublicKey, spoolDir string) Definitions {
	out := Definitions{Defs: formats.BuiltinDefinitions()}
	if pub == nil {
		return out
	}
	cache := filepath.Join(spoolDir, MeasuresCacheName)
	useCache := func() {
		data, err := os.ReadFile(cache)
		if err != nil {
			return
		}
		f, err := formats.VerifyFederationMeasures(data, pub)
		if err != nil {
			return
		}
		out.Defs = formats.MergeDefinitions(out.Defs, f.Measures)
		out.Federation, out.Cached = len(f.Measures), true
	}
	data, _, err := st.Get(ctx, formats.FederationMeasuresKey, maxMeasuresBytes)
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		// The federation defines none (or removed them all).
		_ = os.Remove(cache)
		return out
	case err != nil:
		out.Err = fmt.Errorf("reading the federation's measures: %w", err)
		useCache()
		return out
	}
	f, err := formats.VerifyFederationMeasures(data, pub)
	if err != nil {
		out.Err = fmt.Errorf("the federation's measures file %s was refused: %w", formats.FederationMeasuresKey, err)
		useCache()
		return out
	}
	out.Defs = formats.MergeDefinitions(out.Defs, f.Measures)
	out.Federation = len(f.Measures)
	tmp := cache + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err == nil {
		_ = os.Rename(tmp, cache)
	}
	return out
}

// definitions is LoadDefinitions for a run, logging what it found.
func (a *Agent) definitions(ctx context.Context, log *slog.Logger) Definitions {
	var st objstore.Store
	if a.Uploader != nil {
		st = a.Uploader.Store
	}
	pub, err := CoordinatorKey(a.Config.CoordinatorPublicKey, a.Config.Dir())
	if err != nil {
		return Definitions{Defs: formats.BuiltinDefinitions(), Err: err}
	}
	if st == nil {
		return Definitions{Defs: formats.BuiltinDefinitions()}
	}
	d := LoadDefinitions(ctx, st, pub, a.Config.Spool)
	if d.Err != nil {
		log.Error("federation measures not read; this run counts the built-in definitions and the last good federation file, if any", "error", d.Err, "cached_federation_measures", d.Federation)
	} else if d.Federation > 0 {
		log.Info("federation measures read", "measures", d.Federation)
	}
	return d
}
