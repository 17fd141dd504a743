package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// openStore opens a store URL; a plain directory path is taken as file:// for convenience.
func openStore(ctx context.Context, raw string) (objstore.Store, error) {
	if raw == "" {
		return nil, errors.New("no store given; pass --store file:///path or s3://bucket?endpoint=host:port, or set TRIBUTARY_STORE")
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

// privateKey reads the coordinator's private key.
func privateKey(path string) (ed25519.PrivateKey, error) {
	if path == "" {
		return nil, errors.New("no coordinator key given; pass --key with the file 'tributary-coordinator keys init' wrote (coordinator.key)")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the coordinator key: %w", err)
	}
	k, err := formats.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (it must be the coordinator.key that 'tributary-coordinator keys init' wrote)", path, err)
	}
	return k, nil
}

// publicKey returns the coordinator's public key from --coordinator-pub, or from --key, which
// may hold the private key or the public one.
func publicKey(keyPath, pubPath string) (ed25519.PublicKey, error) {
	path := pubPath
	if path == "" {
		path = keyPath
	}
	if path == "" {
		return nil, errors.New("no coordinator key given; pass --key coordinator.key or --coordinator-pub coordinator.pub")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the coordinator key: %w", err)
	}
	if pubPath == "" {
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

// storeFlag is the --store default.
func storeFlag() string { return os.Getenv("TRIBUTARY_STORE") }
