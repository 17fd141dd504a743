package server

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/atomicfile"
)

// Roles a token can hold.
const (
	RoleLead     = "lead"     // every practice's figures
	RolePractice = "practice" // its own practice's figures beside the federation's
	RoleAdmin    = "admin"    // manages tokens; sees no figures
)

// Roles lists the valid roles.
var Roles = []string{RoleLead, RolePractice, RoleAdmin}

// tokenPrefix starts every token, so a leaked one is easy to recognise and search for.
const tokenPrefix = "trib_"

// Token is one entry of the tokens file. The token itself is never stored: only its SHA-256.
type Token struct {
	ID       string     `json:"id"` // first 12 hex digits of the hash: names the token in lists
	Name     string     `json:"name"`
	Role     string     `json:"role"`
	Practice string     `json:"practice,omitempty"` // for RolePractice
	SHA256   string     `json:"sha256"`
	Created  time.Time  `json:"created"`
	Revoked  *time.Time `json:"revoked,omitempty"`
}

// tokensFile is the JSON layout of the tokens file.
type tokensFile struct {
	FormatVersion int     `json:"format_version"`
	Tokens        []Token `json:"tokens"`
}

// Tokens is a tokens file: read, changed and written back whole, atomically. A server
// re-reads it when it changes on disk, so 'tributary-coordinator tokens' takes effect on a
// running server within seconds.
type Tokens struct {
	path string

	mu      sync.Mutex
	modTime time.Time
	size    int64
	checked time.Time
	byHash  map[string]Token
}

// ErrBadToken is returned for a token that is unknown or revoked.
var ErrBadToken = errors.New("the token is not known or has been revoked; ask the federation's admin for a new one")

// OpenTokens reads the tokens file at path; a missing file is an empty one, created on the
// first Add. It removes the temporary files that writes of the file interrupted by a crash
// left beside it, once they are a minute old: a server and a 'tokens' command may both be
// writing the file.
func OpenTokens(path string) (*Tokens, error) {
	t := &Tokens{path: path}
	if _, err := t.read(); err != nil {
		return nil, err
	}
	if err := atomicfile.Clean(path, time.Minute, legacyTokensTemp); err != nil {
		return nil, fmt.Errorf("remove a temporary file left beside the tokens file: %w", err)
	}
	return t, nil
}

// legacyTokensTemp started the temporary files of earlier versions' writes of the tokens file.
const legacyTokensTemp = ".tokens-"

func (t *Tokens) read() (*tokensFile, error) {
	data, err := os.ReadFile(t.path)
	if errors.Is(err, os.ErrNotExist) {
		return &tokensFile{FormatVersion: 1}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the tokens file: %w", err)
	}
	var f tokensFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%s is not a tokens file (%v); it is written by 'tributary-coordinator tokens add'", t.path, err)
	}
	for i, tok := range f.Tokens {
		if !slices.Contains(Roles, tok.Role) || len(tok.SHA256) != 64 {
			return nil, fmt.Errorf("%s: token %d has role %q or a malformed hash; remove it with a text editor or 'tokens revoke'", t.path, i+1, tok.Role)
		}
	}
	return &f, nil
}

// write replaces the file durably (atomicfile.Write): a revocation that was reported done
// survives a crash. The caller holds t.mu.
func (t *Tokens) write(f *tokensFile) error {
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if dir := filepath.Dir(t.path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	if err := atomicfile.Write(t.path, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write the tokens file: %w", err)
	}
	t.byHash = nil // re-read on the next lookup
	return nil
}

func hashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}

// Add makes a new token and records its hash; the token is returned once and never again.
func (t *Tokens) Add(name, role, practice string, now time.Time) (string, Token, error) {
	if !slices.Contains(Roles, role) {
		return "", Token{}, fmt.Errorf("unknown role %q; choose one of: %s", role, strings.Join(Roles, ", "))
	}
	if role == RolePractice {
		if err := formats.ValidatePracticeID(practice); err != nil {
			return "", Token{}, fmt.Errorf("a practice token needs --practice with the practice's id: %w", err)
		}
	} else if practice != "" {
		return "", Token{}, fmt.Errorf("only practice tokens name a practice; leave --practice out for role %s", role)
	}
	if strings.TrimSpace(name) == "" {
		return "", Token{}, errors.New("give the token a name that says who holds it (--name)")
	}
	// A name is printed in lists and logs: a line break or escape sequence in it could
	// forge a row of 'tokens list' or a log line.
	if strings.IndexFunc(name, func(r rune) bool { return unicode.IsControl(r) || r == utf8.RuneError }) >= 0 || !utf8.ValidString(name) {
		return "", Token{}, errors.New("a token's name may not hold control characters (line breaks, tabs, escapes); write it on one line")
	}
	if len(name) > 200 {
		return "", Token{}, errors.New("a token's name is at most 200 bytes")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	f, err := t.read()
	if err != nil {
		return "", Token{}, err
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", Token{}, err
	}
	secret := tokenPrefix + hex.EncodeToString(raw[:])
	sum := hashToken(secret)
	tok := Token{ID: sum[:12], Name: name, Role: role, Practice: practice, SHA256: sum, Created: now.UTC()}
	f.Tokens = append(f.Tokens, tok)
	if err := t.write(f); err != nil {
		return "", Token{}, err
	}
	return secret, tok, nil
}

// List returns every token entry, revoked ones included.
func (t *Tokens) List() ([]Token, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, err := t.read()
	if err != nil {
		return nil, err
	}
	return f.Tokens, nil
}

// Revoke marks the token with the given id (or id prefix of at least 6 digits) revoked.
func (t *Tokens) Revoke(id string, now time.Time) (Token, error) {
	if len(id) < 6 {
		return Token{}, errors.New("give at least 6 digits of the token id shown by 'tokens list'")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	f, err := t.read()
	if err != nil {
		return Token{}, err
	}
	found := -1
	for i, tok := range f.Tokens {
		if strings.HasPrefix(tok.ID, id) {
			if found >= 0 {
				return Token{}, fmt.Errorf("%q matches more than one token; give more digits", id)
			}
			found = i
		}
	}
	if found < 0 {
		return Token{}, fmt.Errorf("no token has id %q; see 'tokens list'", id)
	}
	if f.Tokens[found].Revoked == nil {
		r := now.UTC()
		f.Tokens[found].Revoked = &r
	}
	return f.Tokens[found], t.write(f)
}

// Lookup returns the live token entry for a presented token. It re-reads the file when it
// changed on disk, checking at most once a second.
func (t *Tokens) Lookup(presented string) (Token, error) {
	if !strings.HasPrefix(presented, tokenPrefix) || len(presented) != len(tokenPrefix)+64 {
		return Token{}, ErrBadToken
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if now := time.Now(); t.byHash == nil || now.Sub(t.checked) > time.Second {
		t.checked = now
		fi, err := os.Stat(t.path)
		switch {
		case errors.Is(err, os.ErrNotExist):
			t.byHash = map[string]Token{}
		case err != nil:
			return Token{}, fmt.Errorf("read the tokens file: %w", err)
		case t.byHash == nil || !fi.ModTime().Equal(t.modTime) || fi.Size() != t.size:
			f, err := t.read()
			if err != nil {
				return Token{}, err
			}
			t.byHash = map[string]Token{}
			for _, tok := range f.Tokens {
				if tok.Revoked == nil {
					t.byHash[tok.SHA256] = tok
				}
			}
			t.modTime, t.size = fi.ModTime(), fi.Size()
		}
	}
	sum := hashToken(presented)
	tok, ok := t.byHash[sum]
	if !ok || subtle.ConstantTimeCompare([]byte(tok.SHA256), []byte(sum)) != 1 {
		return Token{}, ErrBadToken
	}
	return tok, nil
}
