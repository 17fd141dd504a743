package miniotest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// StartTLS is Start with TLS: it makes a throw-away certificate authority, a certificate for
// 127.0.0.1 signed by it, and serves HTTPS; URL names the authority with ca=.
func StartTLS(t testing.TB) *Server {
	t.Helper()
	dir := t.TempDir()
	s := newServer(binary(t), dir)
	s.t = t
	s.certsDir = filepath.Join(dir, "certs")
	s.CAFile = filepath.Join(dir, "ca.pem")
	if err := writeCerts(s.certsDir, s.CAFile); err != nil {
		t.Fatalf("miniotest: make certificates: %v", err)
	}
	t.Cleanup(s.kill)
	if err := s.launchOnFreePort(); err != nil {
		t.Fatalf("miniotest: %v", err)
	}
	return s
}

// writeCerts writes a new CA to caFile and a server certificate and key signed by it to
// certsDir, named as MinIO expects.
func writeCerts(certsDir, caFile string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tributary miniotest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(certsDir, 0o700); err != nil {
		return err
	}
	files := []struct {
		path, kind string
		der        []byte
	}{
		{caFile, "CERTIFICATE", caDER},
		{filepath.Join(certsDir, "public.crt"), "CERTIFICATE", der},
		{filepath.Join(certsDir, "private.key"), "EC PRIVATE KEY", keyDER},
	}
	for _, f := range files {
		if err := os.WriteFile(f.path, pem.EncodeToMemory(&pem.Block{Type: f.kind, Bytes: f.der}), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// healthClient trusts the server's CA when it has one.
func (s *Server) healthClient() (client *http.Client, scheme string, err error) {
	client = &http.Client{Timeout: 2 * time.Second}
	if s.CAFile == "" {
		return client, "http", nil
	}
	pem, err := os.ReadFile(s.CAFile)
	if err != nil {
		return nil, "", err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, "", fmt.Errorf("no certificate in %s", s.CAFile)
	}
	client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	return client, "https", nil
}
