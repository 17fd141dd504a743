package objstore

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// TestS3ErrorKinds covers the answers a test server cannot easily be made to give.
func TestS3ErrorKinds(t *testing.T) {
	s := &S3{bucket: "b", endpoint: "store.example:9000"}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	tests := []struct {
		err      error
		kind     error
		contains string
	}{
		{minio.ErrorResponse{Code: "NoSuchKey", StatusCode: 404}, ErrNotFound, "no such object"},
		{minio.ErrorResponse{StatusCode: 404}, ErrNotFound, "no such object"},
		{minio.ErrorResponse{Code: "NoSuchBucket", StatusCode: 404}, ErrConfig, `bucket "b" does not exist`},
		{minio.ErrorResponse{Code: "AccessDenied", Message: "Access Denied.", StatusCode: 403}, ErrAccessDenied, "AccessDenied (Access Denied.)"},
		{minio.ErrorResponse{Code: "SomethingNew", StatusCode: 403}, ErrAccessDenied, "SomethingNew"},
		{minio.ErrorResponse{Code: "SlowDown", StatusCode: 503}, ErrUnavailable, "SlowDown"},
		{minio.ErrorResponse{Code: "Weird", StatusCode: 502}, ErrUnavailable, "HTTP 502"},
		{minio.ErrorResponse{Code: "BadDigest", StatusCode: 400}, ErrChecksum, "BadDigest"},
		{minio.ErrorResponse{Code: "RequestTimeTooSkewed", StatusCode: 403}, ErrConfig, "clock"},
		{minio.ErrorResponse{Code: "InvalidArgument", StatusCode: 400}, ErrConfig, "refused the request: InvalidArgument"},
		{fmt.Errorf("wrapped: %w", minio.ErrorResponse{Code: "NoSuchKey"}), ErrNotFound, ""},
		{refused, ErrUnavailable, "store.example:9000"},
		{context.DeadlineExceeded, ErrUnavailable, "timed out"},
		{x509.UnknownAuthorityError{}, ErrConfig, "ca="},
		{errors.New("http: server gave HTTP response to HTTPS client"), ErrConfig, "insecure=true"},
	}
	for _, tc := range tests {
		err := s.error("get", "practices/A/x", tc.err)
		if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.contains) || !strings.Contains(err.Error(), "get practices/A/x") {
			t.Errorf("error(%v) = %v, want kind %q saying %q with the operation and key", tc.err, err, tc.kind, tc.contains)
		}
	}
	if err := s.error("get", "k", context.DeadlineExceeded); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a timeout's error %v does not wrap context.DeadlineExceeded", err)
	}
}

func TestTLSConfigLoadsCA(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "federation CA"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := tlsConfig(ca)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: cfg.RootCAs}); err != nil {
		t.Errorf("the CA from ca= is not trusted: %v", err)
	}
	if cfg, err := tlsConfig(""); err != nil || cfg.RootCAs != nil {
		t.Errorf("tlsConfig without ca= = %v, %v; want the system roots (nil RootCAs)", cfg, err)
	}
}
