package miniotest

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7/pkg/s3utils"
)

func TestBucketNames(t *testing.T) {
	for _, name := range []string{"TestX", "Test/With Spaces/and_UNDERSCORES", strings.Repeat("Long", 40), "___"} {
		t.Run(name, func(t *testing.T) {
			a, b := Bucket(t), Bucket(t)
			if err := s3utils.CheckValidBucketNameStrict(a); err != nil {
				t.Errorf("Bucket = %q: %v", a, err)
			}
			if a == b {
				t.Errorf("two calls gave the same bucket %q", a)
			}
		})
	}
}

// TestRestartKeepsPortAndData: what outage tests rely on.
func TestRestartKeepsPortAndData(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	s := Start(t)
	store := s.Store(t, "keep")
	if _, err := store.Put(t.Context(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	ep := s.Endpoint()
	s.Stop()
	if c, err := net.Dial("tcp", ep); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Stop", ep)
	}
	s.Start()
	if s.Endpoint() != ep {
		t.Errorf("restarted on %s, want %s", s.Endpoint(), ep)
	}
	if got, _, err := store.Get(t.Context(), "k", 10); err != nil || string(got) != "v" {
		t.Errorf("after restart Get = %q, %v", got, err)
	}
}

func TestMissingBinaryMessage(t *testing.T) {
	t.Setenv(EnvBin, filepath.Join(t.TempDir(), "no-minio-here"))
	_, msg := findBinary()
	if !strings.Contains(msg, ".ci/minio.sh install") || !strings.Contains(msg, "no-minio-here") {
		t.Errorf("message %q should name the missing path and .ci/minio.sh install", msg)
	}
	t.Setenv(EnvBin, os.Args[0]) // any existing file will do
	if bin, msg := findBinary(); bin != os.Args[0] || msg != "" {
		t.Errorf("findBinary with %s set = %q, %q", EnvBin, bin, msg)
	}
}
