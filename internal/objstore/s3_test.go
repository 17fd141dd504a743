package objstore_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
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
	if _, err := objstore.Open(ctx, srv.URL("outage"), objstore.Options{AccessKey: srv.AccessKey, SecretKey: srv.SecretKey}); err != nil {
		t.Errorf("Open without CreateBucket contacted the stopped server: %v", err)
	}
	if _, err := objstore.Open(ctx, srv.URL("outage"), objstore.Options{AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, CreateBucket: true}); !errors.Is(err, objstore.ErrUnavailable) {
		t.Errorf("Open with CreateBucket during the outage = %v, want ErrUnavailable", err)
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

// rawClient talks to srv without objstore, to see what it stored and to store what objstore
// would not.
func rawClient(t *testing.T, srv *miniotest.Server) *minio.Client {
	t.Helper()
	c, err := minio.New(srv.Endpoint(), &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""), TrailingHeaders: true})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestS3StoresChecksum: the server holds the full-object SHA-256 it checked on upload, and
// the copy Put records in the metadata.
func TestS3StoresChecksum(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := miniotest.Bucket(t)
	s := srv.Store(t, bucket)
	ctx := context.Background()
	data := []byte("checksummed content")
	sum := sha256.Sum256(data)
	if _, err := s.Put(ctx, "k", data); err != nil {
		t.Fatal(err)
	}
	st, err := rawClient(t, srv).StatObject(ctx, bucket, "k", minio.StatObjectOptions{Checksum: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := base64.StdEncoding.EncodeToString(sum[:]); st.ChecksumSHA256 != want {
		t.Errorf("server's SHA-256 checksum = %q, want %q", st.ChecksumSHA256, want)
	}
	if got := st.UserMetadata["Sha256"]; got != hex.EncodeToString(sum[:]) {
		t.Errorf("metadata sha256 = %q, want %x (all: %v)", got, sum, st.UserMetadata)
	}
}

// TestS3ForeignObjects: objects written by other tools, without Put's metadata or with keys
// objstore refuses, are handled rather than trusted blindly.
func TestS3ForeignObjects(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := miniotest.Bucket(t)
	s := srv.Store(t, bucket)
	raw := rawClient(t, srv)
	ctx := context.Background()
	rawPut := func(key string, data []byte, meta map[string]string) {
		t.Helper()
		if _, err := raw.PutObject(ctx, bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{UserMetadata: meta, DisableContentSha256: true}); err != nil {
			t.Fatalf("raw put %q: %v", key, err)
		}
	}
	plain := []byte("no metadata here")
	rawPut("plain", plain, nil)
	rawPut("corrupt", []byte("what is stored"), map[string]string{"Sha256": strings.Repeat("ab", 32)})
	rawPut("dir/", nil, nil)
	rawPut("time:12", []byte("x"), nil)

	info, err := s.Stat(ctx, "plain")
	sum := sha256.Sum256(plain)
	if err != nil || info.SHA256 != hex.EncodeToString(sum[:]) || info.Size != int64(len(plain)) {
		t.Errorf("Stat of an object without metadata = %+v, %v; want size %d sha256 %x", info, err, len(plain), sum)
	}
	if _, _, err := s.Get(ctx, "corrupt", 100); !errors.Is(err, objstore.ErrChecksum) || !strings.Contains(err.Error(), "get corrupt") {
		t.Errorf("Get of an object whose content does not match its recorded SHA-256 = %v, want ErrChecksum", err)
	}
	list, err := s.List(ctx, "")
	var keys []string
	for _, i := range list {
		keys = append(keys, i.Key)
	}
	if err != nil || strings.Join(keys, " ") != "corrupt plain" {
		t.Errorf("List = %q, %v; want only the keys objstore accepts: corrupt plain", keys, err)
	}
}
