// Package demo runs a whole federation on one machine: it makes (or takes) practices' Synthea
// data, gives every practice a key and an agent, registers them, runs every agent once against
// a local directory store, and combines the result. It is the README's main command and the
// quickest way to see Tributary work end to end on your own data.
package demo

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/tributary-health/tributary/agent"
	"github.com/tributary-health/tributary/agent/config"
	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/registry"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/internal/synthgen"
	"github.com/tributary-health/tributary/plugins/host"
)

// Options say what to run.
type Options struct {
	// Practices is a folder with one subfolder of Synthea CSV files per practice; the
	// subfolder's name is the practice id. Empty: generate Generate practices of synthetic data.
	Practices string
	// Generate is how many practices to generate when Practices is empty (default 5).
	Generate int
	// PatientsPerPractice for generated practices (default 2,000).
	PatientsPerPractice int
	// Workdir holds everything the demo makes: keys, spools, the store (workdir/store).
	Workdir string
	// Plugin is the Synthea extractor binary.
	Plugin string
	// From and To are the months each agent extracts.
	From, To formats.Month
	// Seed for generated data.
	Seed int64
	// Store is the store URL; empty means the embedded default, file://<workdir>/store.
	Store string
	// StoreOptions carry credentials for an s3:// Store.
	StoreOptions objstore.Options
	Log          *slog.Logger
	Out          io.Writer // progress for people
}

// Result says where things are.
type Result struct {
	StoreURL  string
	Practices []string
	CoordKey  string // the coordinator's private key file
	Combine   *combine.Result
	Runs      []*agent.RunReport
}

// Run runs the demo.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Workdir == "" {
		return nil, errors.New("demo: --workdir is required")
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Plugin == "" {
		return nil, errors.New("demo: the Synthea plugin binary was not found; build it with 'go build -o bin/ ./plugins/synthea' or pass --plugin PATH")
	}
	sum, err := host.FileSHA256(o.Plugin)
	if err != nil {
		return nil, fmt.Errorf("demo: plugin %s: %w", o.Plugin, err)
	}
	work, err := filepath.Abs(o.Workdir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	practicesDir := o.Practices
	if practicesDir == "" {
		practicesDir = filepath.Join(work, "practices")
		n := o.Generate
		if n <= 0 {
			n = 5
		}
		pp := o.PatientsPerPractice
		if pp <= 0 {
			pp = 2000
		}
		fmt.Fprintf(o.Out, "generating %d synthetic practices of %d patients in %s\n", n, pp, practicesDir)
		if _, err := synthgen.WriteFederation(practicesDir, n, synthgen.Config{
			Seed: o.Seed, Patients: pp,
			From: o.From.Start().AddDate(-1, 0, 0), To: (o.To + 1).Start(),
		}); err != nil {
			return nil, err
		}
	}
	practices, err := listPractices(practicesDir)
	if err != nil {
		return nil, err
	}

	res := &Result{StoreURL: o.Store, Practices: practices}
	if res.StoreURL == "" {
		res.StoreURL = "file://" + filepath.ToSlash(filepath.Join(work, "store"))
	}
	st, err := objstore.Open(ctx, res.StoreURL, o.StoreOptions)
	if err != nil {
		return nil, err
	}
	coordPriv, err := coordinatorKey(filepath.Join(work, "coordinator"))
	if err != nil {
		return nil, err
	}
	res.CoordKey = filepath.Join(work, "coordinator", "coordinator.key")

	for _, id := range practices {
		keyDir := filepath.Join(work, "agents", id, "keys")
		priv := filepath.Join(keyDir, agent.PrivateKeyFile)
		if _, err := os.Stat(priv); errors.Is(err, os.ErrNotExist) {
			if _, _, err := agent.InitKeys(keyDir); err != nil {
				return nil, err
			}
		}
		pubPEM, err := os.ReadFile(filepath.Join(keyDir, agent.PublicKeyFile))
		if err != nil {
			return nil, err
		}
		pub, err := formats.ParsePublicKey(pubPEM)
		if err != nil {
			return nil, err
		}
		if err := registerOnce(ctx, st, coordPriv, id, pub); err != nil {
			return nil, err
		}
		cfg := &config.Config{
			Practice: id,
			KeyFile:  priv,
			Store:    res.StoreURL,
			Spool:    filepath.Join(work, "agents", id, "spool"),
			Policy:   formats.DefaultPolicy.Name,
			Months:   config.Months{From: o.From.String(), To: o.To.String()},
			S3:       config.S3{AccessKey: o.StoreOptions.AccessKey, SecretKey: o.StoreOptions.SecretKey},
			Plugins: []config.Plugin{{
				Name: "synthea", Path: o.Plugin, SHA256: sum,
				Config: map[string]string{"dir": filepath.Join(practicesDir, id)},
			}},
		}
		cfg.PluginStartTimeout.Duration = 30 * time.Second
		cfg.PluginRunTimeout.Duration = 30 * time.Minute
		cfg.Listen = config.ListenOff // one agent after another on this machine: no metrics endpoint
		cfg.Defaults()
		if err := cfg.Validate(); err != nil {
			return nil, fmt.Errorf("practice %s: %w", id, err)
		}
		a, err := agent.Open(ctx, cfg, agent.HostLauncher(cfg, o.Log), o.Log)
		if err != nil {
			return nil, err
		}
		rep, err := a.RunOnce(ctx)
		if err != nil {
			return nil, fmt.Errorf("practice %s: %w", id, err)
		}
		if rep.Failed() || rep.UploadErr != nil {
			for _, p := range rep.Plugins {
				if p.Err != nil {
					return nil, fmt.Errorf("practice %s: %w", id, p.Err)
				}
			}
			return nil, fmt.Errorf("practice %s: upload: %w", id, rep.UploadErr)
		}
		var events int64
		for _, p := range rep.Plugins {
			events += p.Events
		}
		fmt.Fprintf(o.Out, "practice %-8s run %s: %d patients, %d events, %d monthly files uploaded\n", id, rep.RunID, rep.Patients, events, rep.Files)
		res.Runs = append(res.Runs, rep)
	}

	cr, err := combine.Run(ctx, st, coordPriv.Public().(ed25519.PublicKey), combine.Options{})
	if err != nil {
		return nil, err
	}
	res.Combine = cr
	return res, nil
}

func listPractices(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("demo: --practices: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if err := formats.ValidatePracticeID(e.Name()); err != nil {
			return nil, fmt.Errorf("demo: subfolder %q of %s: %w", e.Name(), dir, err)
		}
		if _, err := os.Stat(filepath.Join(dir, e.Name(), "patients.csv")); err != nil {
			return nil, fmt.Errorf("demo: practice folder %s has no patients.csv; each subfolder must hold one practice's Synthea CSV export", filepath.Join(dir, e.Name()))
		}
		ids = append(ids, e.Name())
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("demo: %s has no practice subfolders", dir)
	}
	sort.Strings(ids)
	return ids, nil
}

func coordinatorKey(dir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, "coordinator.key")
	if b, err := os.ReadFile(path); err == nil {
		return formats.ParsePrivateKey(b)
	}
	_, priv, err := formats.GenerateKey()
	if err != nil {
		return nil, err
	}
	pemb, err := formats.MarshalPrivateKey(priv)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return priv, os.WriteFile(path, pemb, 0o600)
}

func registerOnce(ctx context.Context, st objstore.Store, coord ed25519.PrivateKey, id string, pub ed25519.PublicKey) error {
	loaded, err := registry.Load(ctx, st, coord.Public().(ed25519.PublicKey))
	if err == nil {
		for _, e := range loaded.Registry.Practices {
			if e.Practice == id && e.KeyID == formats.KeyID(pub) {
				return nil
			}
		}
	} else if !errors.Is(err, registry.ErrNoRegistry) {
		return err
	}
	_, err = registry.Add(ctx, st, coord, id, "Practice "+id, pub, time.Now())
	return err
}
