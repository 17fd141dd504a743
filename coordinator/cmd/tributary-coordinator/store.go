package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/cli"
	"github.com/tributary-health/tributary/internal/objstore"
)

// envStore is the environment variable --store and --admin-url default to.
const envStore = "TRIBUTARY_STORE"

// addStoreFlag declares --store, the federation's store, on fs.
func addStoreFlag(fs *pflag.FlagSet, url *string) {
	fs.StringVar(url, "store", "", "the federation's store: file:///dir (or a directory path) or s3://bucket?endpoint=host:port (default $"+envStore+")")
}

// storeURL is the --store value, or $TRIBUTARY_STORE without one.
func storeURL(flag string) string {
	if flag == "" {
		return os.Getenv(envStore)
	}
	return flag
}

// openStore opens the --store URL; a plain directory path is taken as file:// for convenience.
func openStore(ctx context.Context, flag string) (objstore.Store, error) {
	raw := storeURL(flag)
	if raw == "" {
		return nil, cli.Usagef("no store given; pass --store file:///path or s3://bucket?endpoint=host:port, or set %s", envStore)
	}
	if !strings.Contains(raw, "://") {
		abs, err := filepath.Abs(raw)
		if err != nil {
			return nil, err
		}
		raw = "file://" + filepath.ToSlash(abs)
	}
	return objstore.Open(ctx, raw, objstore.Options{})
}

// keyFlags are --key and --coordinator-pub: the coordinator's key pair.
type keyFlags struct {
	key, pub string
}

// add declares --key, and --coordinator-pub unless the command signs and so needs the
// private key.
func (k *keyFlags) add(fs *pflag.FlagSet, signs bool) {
	if signs {
		fs.StringVar(&k.key, "key", "", "the coordinator's private key (coordinator.key): it signs the registry")
		return
	}
	fs.StringVar(&k.key, "key", "", "the coordinator's key, private or public: it verifies the registry")
	fs.StringVar(&k.pub, "coordinator-pub", "", "the coordinator's public key (coordinator.pub), instead of --key")
}

// private reads the coordinator's private key from --key.
func (k *keyFlags) private() (ed25519.PrivateKey, error) {
	if k.key == "" {
		return nil, cli.Usagef("no coordinator key given; pass --key with the file 'tributary-coordinator keys init' wrote (coordinator.key)")
	}
	data, err := os.ReadFile(k.key)
	if err != nil {
		return nil, fmt.Errorf("read the coordinator key: %w", err)
	}
	key, err := formats.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (it must be the coordinator.key that 'tributary-coordinator keys init' wrote)", k.key, err)
	}
	return key, nil
}

// openStore reads the coordinator's public key, then opens the store: what every command
// that verifies the store's signed files needs first.
func (k *keyFlags) openStore(ctx context.Context, store string) (objstore.Store, ed25519.PublicKey, error) {
	pub, err := k.public()
	if err != nil {
		return nil, nil, err
	}
	st, err := openStore(ctx, store)
	if err != nil {
		return nil, nil, err
	}
	return st, pub, nil
}

// public returns the coordinator's public key from --coordinator-pub, or from --key, which
// may hold the private key or the public one.
func (k *keyFlags) public() (ed25519.PublicKey, error) {
	path := k.pub
	if path == "" {
		path = k.key
	}
	if path == "" {
		return nil, cli.Usagef("no coordinator key given; pass --key coordinator.key or --coordinator-pub coordinator.pub")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the coordinator key: %w", err)
	}
	if k.pub == "" {
		if priv, err := formats.ParsePrivateKey(data); err == nil {
			return priv.Public().(ed25519.PublicKey), nil
		}
	}
	pub, err := formats.ParsePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s is neither the coordinator's private nor its public key: %w", path, err)
	}
	return pub, nil
}

// given reports whether either key flag was given.
func (k *keyFlags) given() bool { return k.key != "" || k.pub != "" }
