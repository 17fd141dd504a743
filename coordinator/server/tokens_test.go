package server

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestTokensFileLeftovers: a crash while a token was added or revoked leaves a temporary
// file beside the tokens file; the next OpenTokens removes it once no live writer can own it,
// and a revocation leaves only the tokens file, whole and revoking.
func TestTokensFileLeftovers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens.json")
	toks, err := OpenTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	secret, tok, err := toks.Add("Jo", RoleLead, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	stale := []string{".tokens.json.tmp-0123456789abcdef", ".tokens-1234567890"} // this version's, an earlier one's
	fresh := ".tokens.json.tmp-fedcba9876543210"                                 // perhaps a 'tokens' command writing now
	for _, name := range append(stale, fresh) {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(`{"tokens":[`), 0o600); err != nil {
			t.Fatal(err)
		}
		if name != fresh {
			if err := os.Chtimes(p, old, old); err != nil {
				t.Fatal(err)
			}
		}
	}
	if toks, err = OpenTokens(path); err != nil {
		t.Fatal(err)
	}
	if _, err := toks.Revoke(tok.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 2 || names[0] != fresh || names[1] != "tokens.json" {
		t.Errorf("beside the tokens file: %v; want only the fresh temporary file and tokens.json", names)
	}
	again, err := OpenTokens(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := again.Lookup(secret); err != ErrBadToken {
		t.Errorf("a revoked token still looks up: %v", err)
	}
}
