package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/internal/testenv"
)

func TestTokensCommand(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tokens.json")
	code, out, errs := runCLI(t, "tokens", "add", "--file", file, "--name", "Jo, lead", "--role", "lead")
	if code != 0 || !strings.HasPrefix(out, "trib_") || !strings.Contains(errs, "shown only now") {
		t.Fatalf("tokens add: %d %q %q", code, out, errs)
	}
	secret := strings.TrimSpace(out)
	data, _ := os.ReadFile(file)
	if bytes.Contains(data, []byte(secret)) || bytes.Contains(data, []byte(secret[5:])) {
		t.Fatal("the tokens file holds the token in clear")
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm()&0o077 != 0 && os.PathSeparator == '/' {
		t.Errorf("tokens file mode %v, want readable by its owner only", fi.Mode())
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"tokens", "add", "--file", file, "--name", "x", "--role", "practice"}, "practice id"},
		{[]string{"tokens", "add", "--file", file, "--name", "x", "--role", "boss"}, "unknown role"},
		{[]string{"tokens", "add", "--file", file, "--name", "x", "--role", "lead", "--practice", "A81001"}, "only practice tokens"},
		{[]string{"tokens", "revoke", "--file", file, "--id", "zzzzzzzz"}, "no token has id"},
		{[]string{"tokens", "list"}, "--file"},
		// A name with a line break would print a forged row in 'tokens list'.
		{[]string{"tokens", "add", "--file", file, "--name", "x\nabcdefgh lead forged", "--role", "lead"}, "control characters"},
		{[]string{"tokens", "add", "--file", file, "--name", "x\x1b[2Jy", "--role", "lead"}, "control characters"},
	} {
		if code, _, errs := runCLI(t, c.args...); code == 0 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: %d %q, want an error saying %q", c.args, code, errs, c.want)
		}
	}
	if code, _, _ := runCLI(t, "tokens", "add", "--file", file, "--name", "Riverside", "--role", "practice", "--practice", "A81001"); code != 0 {
		t.Fatal("practice token")
	}
	code, out, _ = runCLI(t, "tokens", "list", "--file", file)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.Contains(out, "A81001") || strings.Contains(out, secret) {
		t.Fatalf("tokens list: %d\n%s", code, out)
	}
	id := strings.Fields(lines[1])[0]
	if code, out, _ := runCLI(t, "tokens", "revoke", "--file", file, "--id", id); code != 0 || !strings.Contains(out, "revoked token "+id) {
		t.Fatalf("tokens revoke: %d %s", code, out)
	}
	_, out, _ = runCLI(t, "tokens", "list", "--file", file)
	for _, line := range strings.Split(strings.TrimSpace(out), "\n")[1:] {
		f := strings.Fields(line)
		if revoked := f[len(f)-1] != "-"; revoked != (f[0] == id) {
			t.Errorf("tokens list after revoking %s: %q", id, line)
		}
	}
}

// selfSigned writes a certificate and key for 127.0.0.1 and returns their paths and a pool
// that trusts the certificate.
func selfSigned(t *testing.T) (cert, key string, pool *x509.CertPool) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tributary test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(priv)
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600)
	c, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(c)
	return cert, key, pool
}

// serve runs as a federation lead would start it, over TLS, and picks up a new submission
// without a restart.
func TestServeCommand(t *testing.T) {
	dir := t.TempDir()
	st, err := objstore.NewDir(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	fed := fedgen.New(fedgen.Params{Practices: 2, Months: 2, Seed: 3, Start: formats.MonthFor(2025, time.March)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := fed.Write(ctx, st, 2); err != nil {
		t.Fatal(err)
	}
	pubPEM, err := formats.MarshalPublicKey(fed.Coordinator.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	pubFile := filepath.Join(dir, "coordinator.pub")
	os.WriteFile(pubFile, pubPEM, 0o644)
	tokens := filepath.Join(dir, "tokens.json")
	_, out, _ := runCLI(t, "tokens", "add", "--file", tokens, "--name", "lead", "--role", "lead")
	lead := strings.TrimSpace(out)
	store := "file://" + filepath.ToSlash(filepath.Join(dir, "store"))

	// Refusals first: no tokens file, plain HTTP beyond loopback.
	if code, _, errs := runCLI(t, "serve", "--store", store, "--coordinator-pub", pubFile); code != 2 || !strings.Contains(errs, "tokens add") {
		t.Errorf("serve without --tokens: %d %s", code, errs)
	}
	if code, _, errs := runCLI(t, "serve", "--store", store, "--coordinator-pub", pubFile, "--tokens", tokens, "--listen", "0.0.0.0:0"); code != 1 || !strings.Contains(errs, "--tls-cert") {
		t.Errorf("plain HTTP on every address: %d %s", code, errs)
	}

	cert, key, pool := selfSigned(t)
	var stdout, stderr testenv.LogBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--store", store, "--coordinator-pub", pubFile, "--tokens", tokens,
			"--listen", "127.0.0.1:0", "--tls-cert", cert, "--tls-key", key, "--interval", "200ms"}, &stdout, &stderr)
	}()
	addr := regexp.MustCompile(`https://(127\.0\.0\.1:\d+)/`)
	var base string
	for start := time.Now(); base == ""; time.Sleep(20 * time.Millisecond) {
		if m := addr.FindStringSubmatch(stdout.String()); m != nil {
			base = "https://" + m[1]
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("serve did not start: %s %s", stdout.String(), stderr.String())
		}
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	months := func(token string) (int, []string) {
		req, _ := http.NewRequest("GET", base+"/api/meta", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m struct{ Months []string }
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m.Months
	}
	if code, _ := months(""); code != http.StatusUnauthorized {
		t.Errorf("no token: %d", code)
	}
	wait := func(n int) {
		for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
			if _, m := months(lead); len(m) == n {
				return
			}
			if time.Since(start) > 20*time.Second {
				t.Fatalf("the API does not show %d months; log:\n%s", n, stderr.String())
			}
		}
	}
	wait(2)
	p := fed.Practices[1]
	sub := fedgen.Publish(fed.Policy, p.ID, "20260601T000000Z-00000abc", fed.Start+2, fed.Start+2, formats.Measures,
		func(m formats.Month, measure string, b, x int) int64 { return fed.True(1, m, measure, b, x) })
	if _, err := fedgen.WriteSubmission(ctx, st, p.Key, p.Created.Add(time.Hour), sub); err != nil {
		t.Fatal(err)
	}
	wait(3)
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("serve exited %d: %s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop when cancelled")
	}
}
