package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// StoreNotifications subscribes to a MinIO bucket's notifications of objects created or
// removed under practices/ and returns a channel that receives a value (coalesced) for each.
// It returns an error for stores that cannot notify (a directory, a URL it cannot use); the
// server then lists on its interval alone, which it does anyway as a backstop. The
// subscription ends when ctx is done; if the server drops it, it is re-made after a pause.
// Empty credentials are read from the environment as objstore.Open reads them.
func StoreNotifications(ctx context.Context, storeURL, accessKey, secretKey string, logger *slog.Logger) (<-chan struct{}, error) {
	u, err := url.Parse(storeURL)
	if err != nil || u.Scheme != "s3" {
		return nil, errors.New("the store is not an s3:// bucket")
	}
	q := u.Query()
	endpoint := q.Get("endpoint")
	if endpoint == "" {
		return nil, errors.New("the store URL names no endpoint")
	}
	insecure := q.Get("insecure") == "true"
	ak, sk := accessKey, secretKey
	if ak == "" && sk == "" {
		ak, sk = os.Getenv(objstore.EnvAccessKey), os.Getenv(objstore.EnvSecretKey)
	}
	if ak == "" && sk == "" {
		ak, sk = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	}
	opts := &minio.Options{Creds: credentials.NewStaticV4(ak, sk, ""), Secure: !insecure, Region: q.Get("region")}
	if ca := q.Get("ca"); ca != "" && !insecure {
		pem, err := os.ReadFile(ca)
		if err != nil {
			return nil, err
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		pool.AppendCertsFromPEM(pem)
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		opts.Transport = tr
	}
	client, err := minio.New(endpoint, opts)
	if err != nil {
		return nil, err
	}
	out := make(chan struct{}, 1)
	go func() {
		for ctx.Err() == nil {
			events := client.ListenBucketNotification(ctx, u.Host, formats.PracticesPrefix, "",
				[]string{"s3:ObjectCreated:*", "s3:ObjectRemoved:*"})
			for ev := range events {
				if ev.Err != nil {
					if ctx.Err() == nil {
						logger.Warn("store notifications interrupted; listing on the interval meanwhile", "error", ev.Err)
					}
					break
				}
				if len(ev.Records) == 0 {
					continue // keep-alive
				}
				select {
				case out <- struct{}{}:
				default: // one pending wake-up is enough
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Second):
			}
		}
	}()
	return out, nil
}
