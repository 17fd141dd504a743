package objstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/internal/miniotest"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/internal/objstore/objstoretest"
)

func TestS3Conformance(t *testing.T) {
	srv := miniotest.Shared(t)
	objstoretest.Run(t, func(t *testing.T) objstore.Store { return srv.Store(t, "") })
}

// TestS3Outage: a stopped server gives ErrUnavailable, promptly, and the same store works
// again once the server is back.
func TestS3Outage(t *testing.T) {
	if testing.Short() {
		t.Skip("starts and stops a server")
	}
	srv := miniotest.Start(t)
	s := srv.Store(t, "outage")
	ctx := context.Background()
	if _, err := s.Put(ctx, "before", []byte("x")); err != nil {
		t.Fatalf("Put before the outage: %v", err)
	}
	srv.Stop()
	begin := time.Now()
	_, err := s.Put(ctx, "during", []byte("y"))
	if !errors.Is(err, objstore.ErrUnavailable) {
		t.Fatalf("Put during the outage = %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), "put during") || !strings.Contains(err.Error(), srv.Endpoint()) {
		t.Errorf("error %q should name the operation, key and endpoint", err)
	}
	t.Logf("outage detected after %v: %v", time.Since(begin), err)
	if _, _, err := s.Get(ctx, "before", 10); !errors.Is(err, objstore.ErrUnavailable) {
		t.Errorf("Get during the outage = %v, want ErrUnavailable", err)
	}
	if _, err := s.List(ctx, ""); !errors.Is(err, objstore.ErrUnavailable) {
		t.Errorf("List during the outage = %v, want ErrUnavailable", err)
	}
	srv.Start()
	if _, err := s.Put(ctx, "after", []byte("z")); err != nil {
		t.Fatalf("Put after the outage: %v", err)
	}
	if got, _, err := s.Get(ctx, "before", 10); err != nil || string(got) != "x" {
		t.Errorf("Get after restart = %q, %v; want the object put before the outage", got, err)
	}
}

func TestS3AccessAndConfigErrors(t *testing.T) {
	srv := miniotest.Shared(t)
	srv.Store(t, "")
	bucket := miniotest.Bucket(t)
	srv.Store(t, bucket)
	ctx := context.Background()
	tests := []struct {
		name     string
		url      string
		opts     objstore.Options
		kind     error
		contains string
	}{
		{"wrong secret", srv.URL(bucket), objstore.Options{AccessKey: srv.AccessKey, SecretKey: "wrong-secret-key"}, objstore.ErrAccessDenied, "SignatureDoesNotMatch"},
		{"unknown user", srv.URL(bucket), objstore.Options{AccessKey: "nobody-here", SecretKey: "wrong-secret-key"}, objstore.ErrAccessDenied, "InvalidAccessKeyId"},
		{"missing bucket", srv.URL("no-such-bucket-" + strings.ToLower(t.Name()[:4])), objstore.Options{AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}, objstore.ErrConfig, "does not exist"},
		{"TLS to a plain server", strings.Replace(srv.URL(bucket), "&insecure=true", "", 1), objstore.Options{AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}, objstore.ErrConfig, "does not speak TLS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := objstore.Open(ctx, tc.url, tc.opts)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			_, err = s.Put(ctx, "practices/A/x", []byte("x"))
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.contains) || !strings.Contains(err.Error(), "put practices/A/x") {
				t.Errorf("Put = %v, want kind %q with %q, the operation and the key in the text", err, tc.kind, tc.contains)
			}
			_, err = s.Stat(ctx, "practices/A/x")
			if !errors.Is(err, tc.kind) {
				t.Errorf("Stat = %v, want kind %q", err, tc.kind)
			}
		})
	}
}
