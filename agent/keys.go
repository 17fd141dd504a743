package agent

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tributary-health/tributary/formats"
)

// Key file names made by InitKeys.
const (
	PrivateKeyFile = "practice.key"
	PublicKeyFile  = "practice.pub"
)

// InitKeys creates a practice's Ed25519 key pair in dir: practice.key (private, mode 0600)
// and practice.pub (to send to the federation lead). It refuses to overwrite a key.
func InitKeys(dir string) (priv, pub string, err error) {
	priv, pub = filepath.Join(dir, PrivateKeyFile), filepath.Join(dir, PublicKeyFile)
	if _, err := os.Stat(priv); err == nil {
		return "", "", fmt.Errorf("%s already exists; a practice keeps its key (to replace it, move it away first and ask the federation lead to register the new public key)", priv)
	}
	pk, sk, err := formats.GenerateKey()
	if err != nil {
		return "", "", err
	}
	skPEM, err := formats.MarshalPrivateKey(sk)
	if err != nil {
		return "", "", err
	}
	pkPEM, err := formats.MarshalPublicKey(pk)
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(priv, skPEM, 0o600); err != nil {
		return "", "", err
	}
	if err := os.WriteFile(pub, pkPEM, 0o644); err != nil {
		return "", "", err
	}
	return priv, pub, nil
}

func readKey(path string) (ed25519.PrivateKey, error) {
	if path == "" {
		return nil, errors.New("key_file is not set; name the practice's private key, made with 'tributary-agent keys init --out DIR'")
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		dir := filepath.Dir(path)
		if abs, err := filepath.Abs(dir); err == nil {
			dir = abs
		}
		return nil, fmt.Errorf("key_file %s does not exist; create it with 'tributary-agent keys init --out %s', then send %s to the federation lead", path, dir, filepath.Join(dir, PublicKeyFile))
	}
	if err != nil {
		return nil, fmt.Errorf("key_file: %w", err)
	}
	k, err := formats.ParsePrivateKey(b)
	if err != nil {
		if _, perr := formats.ParsePublicKey(b); perr == nil {
			return nil, fmt.Errorf("key_file %s is the public key; name the private key (%s, kept on this machine) as key_file", path, PrivateKeyFile)
		}
		return nil, fmt.Errorf("key_file %s: %w", path, err)
	}
	return k, nil
}
