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

	"github.com/tributary-health/tributary/agent/aggregate"
	"github.com/tributary-health/tributary/agent/config"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/atomicfile"
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
	// The cached copy is what the next run counts if the store cannot be read; a failure to
	// keep it costs only that fallback, so the run goes on.
	_ = atomicfile.Write(cache, data, 0o600)
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

// MeasuresCheck is what this practice can supply: every definition the federation counts,
// supplied or absent with why, from what the configured plugins say they supply.
type MeasuresCheck struct {
	Definitions Definitions
	Supplied    []string
	Absent      []aggregate.Absent
	Plugins     []PluginCheck
}

// CheckMeasures starts every configured plugin as a run does, has it say what it supplies with
// its configuration, reads the federation's definitions (as a run does), and says which
// measures this practice's figures will carry and why the others are absent. It extracts
// nothing.
func CheckMeasures(ctx context.Context, cfg *config.Config, launch Launcher) *MeasuresCheck {
	out := &MeasuresCheck{Plugins: CheckPlugins(ctx, cfg, launch)}
	pub, err := CoordinatorKey(cfg.CoordinatorPublicKey, cfg.Dir())
	switch {
	case err != nil:
		out.Definitions = Definitions{Defs: formats.BuiltinDefinitions(), Err: err}
	case pub == nil:
		out.Definitions = Definitions{Defs: formats.BuiltinDefinitions()}
	default:
		st, err := objstore.Open(ctx, cfg.Store, objstore.Options{AccessKey: cfg.S3.AccessKey, SecretKey: cfg.S3.SecretKey})
		if err != nil {
			out.Definitions = LoadDefinitions(ctx, unreachable{err}, pub, cfg.Spool)
		} else {
			out.Definitions = LoadDefinitions(ctx, st, pub, cfg.Spool)
		}
	}
	s := aggregate.Supplies{EventKinds: map[string]bool{}, Diagnoses: map[string]bool{}}
	for _, p := range out.Plugins {
		if p.Err != nil {
			continue
		}
		a := prepared{supplies: p.Supplies}.aggregate()
		s.Registrations = s.Registrations || a.Registrations
		s.Methods = s.Methods || a.Methods
		s.Discharges = s.Discharges || a.Discharges
		for k := range a.EventKinds {
			s.EventKinds[k] = true
		}
		for k := range a.Diagnoses {
			s.Diagnoses[k] = true
		}
	}
	out.Supplied, out.Absent = s.Measures(out.Definitions.Defs)
	return out
}

// unreachable is a store that cannot be opened: every read fails with why.
type unreachable struct{ err error }

func (u unreachable) Get(context.Context, string, int64) ([]byte, objstore.Info, error) {
	return nil, objstore.Info{}, u.err
}
func (u unreachable) Put(context.Context, string, []byte) (objstore.Info, error) {
	return objstore.Info{}, u.err
}
func (u unreachable) PutIf(context.Context, string, []byte, string) (objstore.Info, error) {
	return objstore.Info{}, u.err
}
func (u unreachable) Stat(context.Context, string) (objstore.Info, error) {
	return objstore.Info{}, u.err
}
func (u unreachable) List(context.Context, string) ([]objstore.Info, error) { return nil, u.err }
func (u unreachable) Delete(context.Context, string) error                  { return u.err }
