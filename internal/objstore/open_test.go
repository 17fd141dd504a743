package objstore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tributary-health/tributary/internal/miniotest"
	"github.com/tributary-health/tributary/internal/objstore"
)

func TestOpenRefuses(t *testing.T) {
	creds := objstore.Options{AccessKey: "a", SecretKey: "b"}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		url      string
		opts     objstore.Options
		contains string
	}{
		{"", creds, "unknown store scheme"},
		{"ftp://host/x", creds, "unknown store scheme"},
		{"file://relative/path", creds, "three slashes"},
		{"file:///store?x=1", creds, "no parameters"},
		{"file:", creds, "absolute path"},
		{"s3://bucket", creds, "no endpoint"},
		{"s3://Bad_Bucket?endpoint=127.0.0.1:9000", creds, "not a valid bucket name"},
		{"s3://bucket/prefix?endpoint=127.0.0.1:9000", creds, "no path"},
		{"s3://bucket?endpoint=http://127.0.0.1:9000", creds, "without a scheme"},
		{"s3://bucket?endpoint=127.0.0.1:9000&regoin=x", creds, `unknown parameter "regoin"`},
		{"s3://bucket?endpoint=127.0.0.1:9000&endpoint=127.0.0.1:9001", creds, "more than once"},
		{"s3://bucket?endpoint=127.0.0.1:9000&insecure=yes", creds, "true or false"},
		{"s3://bucket?endpoint=minio.example.org:9000&insecure=true", creds, "allowed only for a server on this machine"},
		{"s3://bucket?endpoint=10.0.0.5:9000&insecure=true", creds, "allow_insecure_remote=true"},
		{"s3://bucket?endpoint=127.0.0.1:9000&insecure=true&ca=" + ca, creds, "no effect"},
		{"s3://bucket?endpoint=127.0.0.1:9000&ca=" + ca, creds, "holds no PEM certificate"},
		{"s3://bucket?endpoint=127.0.0.1:9000&ca=/nonexistent/ca.pem", creds, "cannot read the CA file"},
		{"s3://bucket?endpoint=127.0.0.1:9000", objstore.Options{AccessKey: "a"}, "only one of"},
		{"s3://user:pass@bucket?endpoint=127.0.0.1:9000", creds, "must not hold credentials"},
	}
	for _, tc := range tests {
		_, err := objstore.Open(context.Background(), tc.url, tc.opts)
		if !errors.Is(err, objstore.ErrConfig) || !strings.Contains(err.Error(), tc.contains) {
			t.Errorf("Open(%q) = %v, want ErrConfig saying %q", tc.url, err, tc.contains)
		}
		if err != nil && strings.Contains(err.Error(), "pass") {
			t.Errorf("Open(%q) error %q shows a credential", tc.url, err)
		}
	}
}

func TestOpenAccepts(t *testing.T) {
	creds := objstore.Options{AccessKey: "a", SecretKey: "b"}
	dir := t.TempDir()
	tests := []struct {
		url  string
		opts objstore.Options
	}{
		{"file://" + filepath.ToSlash(dir), creds},
		{"file://localhost" + filepath.ToSlash(dir), creds},
		{"s3://bucket?endpoint=127.0.0.1:9000&insecure=true", creds},
		{"s3://bucket?endpoint=[::1]:9000&insecure=true", creds},
		{"s3://bucket?endpoint=localhost:9000&insecure=true&region=eu-west-2", creds},
		{"s3://bucket?endpoint=minio.example.org:9000&insecure=true&allow_insecure_remote=true", creds},
		{"s3://bucket?endpoint=s3.eu-west-2.amazonaws.com&region=eu-west-2", creds},
	}
	for _, tc := range tests {
		if _, err := objstore.Open(context.Background(), tc.url, tc.opts); err != nil {
			t.Errorf("Open(%q): %v", tc.url, err)
		}
	}
}

func TestOpenCredentialsFromEnv(t *testing.T) {
	url := "s3://bucket?endpoint=127.0.0.1:9000&insecure=true"
	tests := []struct {
		env map[string]string
		ok  bool
	}{
		{map[string]string{}, false},
		{map[string]string{objstore.EnvAccessKey: "a", objstore.EnvSecretKey: "b"}, true},
		{map[string]string{"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}, true},
		{map[string]string{objstore.EnvAccessKey: "a"}, false},
	}
	for _, tc := range tests {
		for _, k := range []string{objstore.EnvAccessKey, objstore.EnvSecretKey, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
			t.Setenv(k, tc.env[k])
		}
		_, err := objstore.Open(context.Background(), url, objstore.Options{})
		if (err == nil) != tc.ok {
			t.Errorf("with env %v: Open = %v, want success %v", tc.env, err, tc.ok)
		}
		if err != nil && !errors.Is(err, objstore.ErrConfig) {
			t.Errorf("with env %v: Open = %v, want ErrConfig", tc.env, err)
		}
	}
}

// TestS3TLS talks to MinIO over HTTPS with a certificate from a CA made for the test: trusted
// through ca=, refused without it.
func TestS3TLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	srv := miniotest.StartTLS(t)
	s := srv.Store(t, "tls")
	ctx := context.Background()
	if _, err := s.Put(ctx, "over/tls", []byte("x")); err != nil {
		t.Fatalf("Put over TLS: %v", err)
	}
	if got, _, err := s.Get(ctx, "over/tls", 10); err != nil || string(got) != "x" {
		t.Fatalf("Get over TLS = %q, %v", got, err)
	}
	noCA := "s3://tls?endpoint=" + srv.Endpoint()
	untrusting, err := objstore.Open(ctx, noCA, objstore.Options{AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	_, err = untrusting.Stat(ctx, "over/tls")
	if !errors.Is(err, objstore.ErrConfig) || !strings.Contains(err.Error(), "ca=") {
		t.Errorf("Stat without the CA = %v, want ErrConfig suggesting ca=", err)
	}
}

func TestDirOpenByURL(t *testing.T) {
	dir := t.TempDir()
	s, err := objstore.Open(context.Background(), "file://"+filepath.ToSlash(dir), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(context.Background(), "a/b", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "a", "b")); err != nil || string(b) != "x" {
		t.Errorf("file store wrote %q, %v at <dir>/a/b", b, err)
	}
}
