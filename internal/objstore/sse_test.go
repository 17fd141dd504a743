package objstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/tributary-health/tributary/internal/miniotest"
	"github.com/tributary-health/tributary/internal/objstore"
)

// TestS3ServerSideEncryption stores objects through sse=s3 and sse=kms:KEY on a real MinIO
// server whose built-in KMS holds one key, and checks that the server says each object is
// encrypted at rest while the store reads it back unchanged without any key of its own.
func TestS3ServerSideEncryption(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server with a KMS key")
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MINIO_KMS_SECRET_KEY", "tributary-test:"+base64.StdEncoding.EncodeToString(key))
	srv := miniotest.Start(t) // inherits the KMS key from the environment
	ctx := context.Background()
	raw, err := minio.New(srv.Endpoint(), &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ sse, header string }{
		{"s3", "AES256"},
		{"kms:tributary-test", "aws:kms"},
	} {
		t.Run(tc.sse, func(t *testing.T) {
			bucket := miniotest.Bucket(t)
			srv.Store(t, bucket) // makes the bucket
			st, err := objstore.Open(ctx, srv.URL(bucket)+"&sse="+tc.sse, objstore.Options{AccessKey: srv.AccessKey, SecretKey: srv.SecretKey})
			if err != nil {
				t.Fatal(err)
			}
			data := bytes.Repeat([]byte("a practice's counts "), 100)
			if _, err := st.Put(ctx, "practices/A81001/x.arrow", data); err != nil {
				t.Fatalf("Put with sse=%s: %v", tc.sse, err)
			}
			got, info, err := st.Get(ctx, "practices/A81001/x.arrow", 1<<20)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("Get = %d bytes, %v; want the %d bytes put", len(got), err, len(data))
			}
			if info.SHA256 == "" {
				t.Error("Get of an encrypted object gave no SHA-256")
			}
			oi, err := raw.StatObject(ctx, bucket, "practices/A81001/x.arrow", minio.StatObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if h := oi.Metadata.Get("X-Amz-Server-Side-Encryption"); h != tc.header {
				t.Errorf("server says encryption %q, want %q", h, tc.header)
			}
		})
	}
	if _, err := objstore.Open(ctx, srv.URL("b")+"&sse=aes", objstore.Options{AccessKey: "a", SecretKey: "b"}); err == nil {
		t.Error("Open accepted sse=aes")
	}
}
