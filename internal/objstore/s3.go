package objstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/encrypt"
	"github.com/minio/minio-go/v7/pkg/s3utils"
)

// S3 is a Store in one bucket of an S3 server (MinIO, AWS, or any other), made by Open from
// an s3:// URL.
type S3 struct {
	client   *minio.Client
	bucket   string
	endpoint string
	name     string // the store URL, for messages
	sse      encrypt.ServerSide
	target   *S3Target
	tr       *http.Transport
	access   string // credentials, for the requests minio-go does not make (Notify)
	secret   string
}

// metaSHA256 is the user metadata entry holding the hex SHA-256 of the content, so Stat can
// answer without reading the object.
const metaSHA256 = "Sha256"

// attempts is how many times minio-go tries a request: callers that must not lose data
// retry for much longer with backoff of their own, so a failure should surface quickly.
const attempts = 2

// Environment variables read for credentials when Options carries none.
const (
	EnvAccessKey = "TRIBUTARY_S3_ACCESS_KEY"
	EnvSecretKey = "TRIBUTARY_S3_SECRET_KEY"
)

var s3Params = map[string]bool{"endpoint": true, "region": true, "insecure": true, "allow_insecure_remote": true, "ca": true, "sse": true}

// S3Target is what an s3:// store URL names, for tools that speak to the same server by
// other means (the MinIO admin API that provisions the federation's users).
type S3Target struct {
	Bucket   string
	Endpoint string // host:port
	Region   string
	Secure   bool               // TLS, unless insecure=true
	TLS      *tls.Config        // nil without TLS; trusts ca= when given
	SSE      encrypt.ServerSide // server-side encryption asked for by sse=, or nil
	Name     string             // the URL, for messages
}

// ParseS3URL checks an s3:// store URL (see Open) without contacting the server.
func ParseS3URL(rawURL string) (*S3Target, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "s3" {
		return nil, newError("open", "", ErrConfig, nil, "expected an s3://bucket?endpoint=host:port URL")
	}
	if u.User != nil {
		return nil, newError("open", u.Redacted(), ErrConfig, nil, "the store URL must not hold credentials; set them in the environment instead")
	}
	return parseS3(u)
}

func parseS3(u *url.URL) (*S3Target, error) {
	name := u.Redacted()
	bad := func(format string, args ...any) error {
		return newError("open", name, ErrConfig, nil, format, args...)
	}
	bucket := u.Host
	if err := s3utils.CheckValidBucketNameStrict(bucket); err != nil {
		return nil, bad("%q is not a valid bucket name: expected s3://bucket?endpoint=host:port", bucket)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, bad("an s3 store URL names a bucket only, with no path: s3://%s?endpoint=host:port", bucket)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, bad("the URL parameters cannot be parsed")
	}
	for k, v := range q {
		if !s3Params[k] {
			return nil, bad("unknown parameter %q; known ones are endpoint, region, insecure, allow_insecure_remote, ca and sse", k)
		}
		if len(v) != 1 {
			return nil, bad("parameter %q is given more than once", k)
		}
	}
	flag := func(k string) (bool, error) {
		switch q.Get(k) {
		case "", "false":
			return false, nil
		case "true":
			return true, nil
		}
		return false, bad("parameter %s must be true or false", k)
	}
	insecure, err := flag("insecure")
	if err != nil {
		return nil, err
	}
	allowRemote, err := flag("allow_insecure_remote")
	if err != nil {
		return nil, err
	}
	endpoint := q.Get("endpoint")
	if endpoint == "" {
		return nil, bad("no endpoint: add ?endpoint=host:port naming the S3 server")
	}
	if strings.Contains(endpoint, "://") || strings.ContainsAny(endpoint, "/?#@") {
		return nil, bad("endpoint must be host:port only, without a scheme or path (TLS is on unless insecure=true)")
	}
	host := endpoint
	if h, _, err := net.SplitHostPort(endpoint); err == nil {
		host = h
	}
	if insecure && !isLoopback(host) && !allowRemote {
		return nil, bad("insecure=true sends credentials and data unencrypted, so it is allowed only for a server on this machine (127.0.0.1, ::1, localhost); give the server a TLS certificate (ca=/path/ca.pem if your own CA signed it), or add allow_insecure_remote=true if the network path is trusted")
	}
	if insecure && q.Get("ca") != "" {
		return nil, bad("ca= has no effect with insecure=true; drop one of them")
	}
	t := &S3Target{Bucket: bucket, Endpoint: endpoint, Region: q.Get("region"), Secure: !insecure, Name: name}
	if !insecure {
		cfg, err := tlsConfig(q.Get("ca"))
		if err != nil {
			return nil, &Error{Op: "store open", Subject: name, Kind: ErrConfig, Detail: err.Error()}
		}
		t.TLS = cfg
	}
	switch sse := q.Get("sse"); {
	case sse == "":
	case sse == "s3":
		t.SSE = encrypt.NewSSE()
	case strings.HasPrefix(sse, "kms:") && len(sse) > len("kms:"):
		t.SSE, err = encrypt.NewSSEKMS(strings.TrimPrefix(sse, "kms:"), nil)
		if err != nil {
			return nil, bad("sse=%s: %v", sse, err)
		}
	default:
		return nil, bad("sse must be s3 (the server's default key) or kms:KEY-NAME (a named key of the server's KMS)")
	}
	return t, nil
}

// Transport is an HTTP transport for the target with the timeouts the stores use.
func (t *S3Target) Transport() (*http.Transport, error) {
	tr, err := minio.DefaultTransport(t.Secure)
	if err != nil {
		return nil, newError("open", t.Name, ErrConfig, err, "cannot set up the HTTP transport")
	}
	tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	tr.ResponseHeaderTimeout = 30 * time.Second
	if t.TLS != nil {
		tr.TLSClientConfig = t.TLS.Clone()
	}
	return tr, nil
}

func openS3(ctx context.Context, u *url.URL, opts Options) (Store, error) {
	t, err := parseS3(u)
	if err != nil {
		return nil, err
	}
	name, bucket, endpoint := t.Name, t.Bucket, t.Endpoint
	ak, sk, err := credentialsFor(opts)
	if err != nil {
		return nil, &Error{Op: "store open", Subject: name, Kind: ErrConfig, Detail: err.Error()}
	}

	tr, err := t.Transport()
	if err != nil {
		return nil, err
	}

	client, err := minio.New(endpoint, &minio.Options{
		Creds:           credentials.NewStaticV4(ak, sk, ""),
		Secure:          t.Secure,
		Transport:       tr,
		Region:          t.Region,
		TrailingHeaders: true,
		MaxRetries:      attempts,
	})
	if err != nil {
		return nil, newError("open", name, ErrConfig, err, "cannot set up the S3 client")
	}
	s := &S3{client: client, bucket: bucket, endpoint: endpoint, name: name, sse: t.SSE, target: t, tr: tr, access: ak, secret: sk}
	if opts.CreateBucket {
		if err := s.createBucket(ctx, t.Region); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func credentialsFor(opts Options) (access, secret string, err error) {
	access, secret = opts.AccessKey, opts.SecretKey
	if access == "" && secret == "" {
		access, secret = os.Getenv(EnvAccessKey), os.Getenv(EnvSecretKey)
		if access == "" && secret == "" {
			access, secret = os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
		}
	}
	switch {
	case access == "" && secret == "":
		return "", "", errors.New("no credentials for the S3 store: set " + EnvAccessKey + " and " + EnvSecretKey)
	case access == "" || secret == "":
		return "", "", errors.New("only one of the access key and the secret key is set; set both (" + EnvAccessKey + " and " + EnvSecretKey + ")")
	}
	return access, secret, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

// tlsConfig trusts the system's authorities plus those in the PEM file caFile, if given.
func tlsConfig(caFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile == "" {
		return cfg, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, errors.New("cannot read the CA file given by ca=: " + err.Error())
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("the CA file " + caFile + " given by ca= holds no PEM certificate")
	}
	cfg.RootCAs = pool
	return cfg, nil
}

func (s *S3) createBucket(ctx context.Context, region string) error {
	ok, err := s.client.BucketExists(ctx, s.bucket)
	if err != nil {
		return s.error("create bucket", s.bucket, err)
	}
	if ok {
		return nil
	}
	err = s.client.MakeBucket(ctx, s.bucket, minio.MakeBucketOptions{Region: region})
	var resp minio.ErrorResponse
	if errors.As(err, &resp) && (resp.Code == "BucketAlreadyOwnedByYou" || resp.Code == "BucketAlreadyExists") {
		return nil // made by a concurrent caller
	}
	if err != nil {
		return s.error("create bucket", s.bucket, err)
	}
	return nil
}

// String is the store's URL.
func (s *S3) String() string { return s.name }

// Put uploads data in one request asking the server to compute its SHA-256, and checks the
// checksum the server answers with. Only when the server answers none does it read back the
// object's size and checksum, so an agent whose credentials may write but not read (the
// federation's least-privilege policy) can still verify its uploads.
func (s *S3) Put(ctx context.Context, key string, data []byte) (Info, error) {
	const op = "put"
	if err := start(ctx, op, key); err != nil {
		return Info{}, err
	}
	return s.put(ctx, op, key, data, nil)
}

// PutIf has the server check the condition: If-None-Match: * for an absent object, else
// If-Match on the ETag of the object whose SHA-256 was just checked, so a replacement between
// the check and the upload fails the upload.
func (s *S3) PutIf(ctx context.Context, key string, data []byte, ifSHA256 string) (Info, error) {
	const op = "put"
	if err := start(ctx, op, key); err != nil {
		return Info{}, err
	}
	if ifSHA256 == Absent {
		return s.put(ctx, op, key, data, func(o *minio.PutObjectOptions) { o.SetMatchETagExcept("*") })
	}
	st, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{Checksum: true})
	if err != nil {
		err = s.error(op, key, err)
		if errors.Is(err, ErrNotFound) {
			return Info{}, newError(op, key, ErrConflict, nil, "the object was removed since it was read")
		}
		return Info{}, err
	}
	if st.ETag == "" {
		return Info{}, newError(op, key, ErrConfig, nil, "the server gives the object no ETag, so it cannot be replaced on a condition")
	}
	cur, err := s.shaOf(ctx, op, key, st)
	if err != nil {
		return Info{}, err
	}
	if cur != ifSHA256 {
		return Info{}, newError(op, key, ErrConflict, nil, "another writer replaced the object meanwhile")
	}
	return s.put(ctx, op, key, data, func(o *minio.PutObjectOptions) { o.SetMatchETag(st.ETag) })
}

// put uploads data; cond, when not nil, adds a precondition, whose failure is ErrConflict.
func (s *S3) put(ctx context.Context, op, key string, data []byte, cond func(*minio.PutObjectOptions)) (Info, error) {
	sum := sha256.Sum256(data)
	hexSum := hex.EncodeToString(sum[:])
	opts := minio.PutObjectOptions{
		UserMetadata: map[string]string{metaSHA256: hexSum},
		ContentType:  "application/octet-stream",
		Checksum:     minio.ChecksumSHA256,
		// One request: the object appears whole or not at all, and its checksum is of the
		// whole content rather than of parts.
		DisableMultipart:     true,
		ServerSideEncryption: s.sse,
	}
	if cond != nil {
		cond(&opts)
	}
	up, err := s.client.PutObject(ctx, s.bucket, key, bytes.NewReader(data), int64(len(data)), opts)
	if err != nil {
		if cond != nil && preconditionFailed(err) {
			return Info{}, newError(op, key, ErrConflict, nil, "another writer replaced the object meanwhile")
		}
		return Info{}, s.error(op, key, err)
	}
	b64 := base64.StdEncoding.EncodeToString(sum[:])
	if up.ChecksumSHA256 != "" {
		// The server computed this over the bytes it stored for this very request.
		if up.ChecksumSHA256 != b64 {
			return Info{}, newError(op, key, ErrChecksum, nil, "the server computed a different SHA-256 of the upload; put it again")
		}
		mod := up.LastModified.UTC()
		if mod.IsZero() {
			mod = time.Now().UTC()
		}
		return Info{Key: key, Size: int64(len(data)), SHA256: hexSum, Modified: mod}, nil
	}
	st, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{Checksum: true})
	if err != nil {
		return Info{}, s.error(op, key, err)
	}
	switch {
	case st.Size != int64(len(data)):
		return Info{}, newError(op, key, ErrChecksum, nil, "the store holds %d bytes but %d were sent; another writer may have replaced it, or put it again", st.Size, len(data))
	case st.ChecksumSHA256 != "" && st.ChecksumSHA256 != b64,
		storedSHA(st) != hexSum:
		return Info{}, newError(op, key, ErrChecksum, nil, "the stored object's SHA-256 differs from the data sent; another writer may have replaced it, or put it again")
	}
	return Info{Key: key, Size: st.Size, SHA256: hexSum, Modified: st.LastModified.UTC()}, nil
}

// storedSHA is the SHA-256 recorded by Put, or "" for an object written some other way.
func storedSHA(st minio.ObjectInfo) string {
	for k, v := range st.UserMetadata {
		if strings.EqualFold(k, metaSHA256) {
			if b, err := hex.DecodeString(v); err == nil && len(b) == sha256.Size {
				return strings.ToLower(v)
			}
		}
	}
	return ""
}

// Get checks the size before downloading, and the content against the SHA-256 recorded by
// Put after.
func (s *S3) Get(ctx context.Context, key string, maxBytes int64) ([]byte, Info, error) {
	const op = "get"
	if err := start(ctx, op, key); err != nil {
		return nil, Info{}, err
	}
	st, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{})
	if err != nil {
		return nil, Info{}, s.error(op, key, err)
	}
	if st.Size > maxBytes {
		return nil, Info{}, tooLarge(op, key, st.Size, maxBytes)
	}
	var gopts minio.GetObjectOptions
	if st.ETag != "" {
		// The object read must be the one whose size was checked.
		if err := gopts.SetMatchETag(st.ETag); err != nil {
			return nil, Info{}, s.error(op, key, err)
		}
	}
	obj, err := s.client.GetObject(ctx, s.bucket, key, gopts)
	if err != nil {
		return nil, Info{}, s.error(op, key, err)
	}
	defer obj.Close()
	data, err := io.ReadAll(io.LimitReader(obj, maxBytes+1))
	if err != nil {
		return nil, Info{}, s.error(op, key, err)
	}
	if int64(len(data)) > maxBytes {
		return nil, Info{}, tooLarge(op, key, int64(len(data)), maxBytes)
	}
	sum := sha256.Sum256(data)
	hexSum := hex.EncodeToString(sum[:])
	if int64(len(data)) != st.Size {
		return nil, Info{}, newError(op, key, ErrUnavailable, nil, "the download ended after %d of %d bytes; try again", len(data), st.Size)
	}
	if want := storedSHA(st); want != "" && want != hexSum {
		return nil, Info{}, newError(op, key, ErrChecksum, nil, "the content does not match the SHA-256 recorded when it was stored; the object is corrupt and should be written again")
	}
	return data, Info{Key: key, Size: st.Size, SHA256: hexSum, Modified: st.LastModified.UTC()}, nil
}

// Stat answers from the SHA-256 recorded by Put, else from a full-object checksum the server
// kept, else by reading the object.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	const op = "stat"
	if err := start(ctx, op, key); err != nil {
		return Info{}, err
	}
	st, err := s.client.StatObject(ctx, s.bucket, key, minio.StatObjectOptions{Checksum: true})
	if err != nil {
		return Info{}, s.error(op, key, err)
	}
	sum, err := s.shaOf(ctx, op, key, st)
	if err != nil {
		return Info{}, err
	}
	return Info{Key: key, Size: st.Size, SHA256: sum, Modified: st.LastModified.UTC()}, nil
}

// shaOf returns the SHA-256 of the object st describes: the one Put recorded, else a
// full-object checksum the server kept, else by reading the object (that very version).
func (s *S3) shaOf(ctx context.Context, op, key string, st minio.ObjectInfo) (string, error) {
	if sum := storedSHA(st); sum != "" {
		return sum, nil
	}
	if st.ChecksumSHA256 != "" && !strings.EqualFold(st.ChecksumMode, "COMPOSITE") {
		if b, err := base64.StdEncoding.DecodeString(st.ChecksumSHA256); err == nil && len(b) == sha256.Size {
			return hex.EncodeToString(b), nil
		}
	}
	var gopts minio.GetObjectOptions
	if st.ETag != "" {
		if err := gopts.SetMatchETag(st.ETag); err != nil {
			return "", s.error(op, key, err)
		}
	}
	obj, err := s.client.GetObject(ctx, s.bucket, key, gopts)
	if err != nil {
		return "", s.error(op, key, err)
	}
	defer obj.Close()
	h := sha256.New()
	if _, err := io.Copy(h, obj); err != nil {
		return "", s.error(op, key, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// preconditionFailed reports whether the server refused a conditional write because the
// object is not the one named: 412, or 409 when another conditional write won the race.
func preconditionFailed(err error) bool {
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == "PreconditionFailed", resp.Code == "ConditionalRequestConflict":
		return true
	case resp.StatusCode == http.StatusPreconditionFailed:
		return true
	}
	return false
}

// List skips keys that CheckKey refuses (written by other tools), since no method could
// read them.
func (s *S3) List(ctx context.Context, prefix string) ([]Info, error) {
	const op = "list"
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops minio-go's listing goroutine on an early return
	var out []Info
	for obj := range s.client.ListObjects(ctx, s.bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if obj.Err != nil {
			return nil, s.error(op, prefix, obj.Err)
		}
		if CheckKey(obj.Key) != nil {
			continue
		}
		out = append(out, Info{Key: obj.Key, Size: obj.Size, Modified: obj.LastModified.UTC()})
	}
	if err := ctx.Err(); err != nil {
		return nil, s.error(op, prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Delete removes the object; S3 itself treats a missing object as deleted.
func (s *S3) Delete(ctx context.Context, key string) error {
	const op = "delete"
	if err := start(ctx, op, key); err != nil {
		return err
	}
	if err := s.client.RemoveObject(ctx, s.bucket, key, minio.RemoveObjectOptions{}); err != nil {
		return s.error(op, key, err)
	}
	return nil
}

// error gives a minio-go or network error its kind, keeping the S3 error code in the text.
func (s *S3) error(op, key string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return newError(op, key, ErrUnavailable, err, "the operation was cancelled or timed out")
	}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) && (resp.Code != "" || resp.StatusCode != 0) {
		said := resp.Code
		if resp.Message != "" {
			said += " (" + resp.Message + ")"
		}
		switch resp.Code {
		case "NoSuchKey":
			return newError(op, key, ErrNotFound, nil, "no such object")
		case "NoSuchBucket":
			return newError(op, key, ErrConfig, nil, "bucket %q does not exist on %s; create it or correct the store URL", s.bucket, s.endpoint)
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled", "AccountProblem", "InvalidToken", "ExpiredToken":
			return newError(op, key, ErrAccessDenied, nil, "the server said %s; check the credentials and the user's policy for bucket %q", said, s.bucket)
		case "XAmzContentChecksumMismatch", "BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch":
			return newError(op, key, ErrChecksum, nil, "the server said %s: the data was damaged on the way; put it again", said)
		case "RequestTimeTooSkewed":
			return newError(op, key, ErrConfig, nil, "the server said %s; set this machine's clock right", said)
		case "PreconditionFailed":
			return newError(op, key, ErrUnavailable, nil, "the object changed while being read; try again")
		case "SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "XMinioServerNotInitialized":
			return newError(op, key, ErrUnavailable, nil, "the server said %s; try again later", said)
		}
		switch {
		case resp.StatusCode >= 500:
			return newError(op, key, ErrUnavailable, nil, "the server said %s (HTTP %d); try again later", said, resp.StatusCode)
		case resp.StatusCode == http.StatusNotFound && resp.Code == "":
			return newError(op, key, ErrNotFound, nil, "no such object")
		case resp.StatusCode == http.StatusForbidden:
			return newError(op, key, ErrAccessDenied, nil, "the server said %s (HTTP 403); check the credentials and the user's policy for bucket %q", said, s.bucket)
		}
		return newError(op, key, ErrConfig, nil, "the server refused the request: %s (HTTP %d)", said, resp.StatusCode)
	}
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var invalid x509.CertificateInvalidError
	if errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) {
		return newError(op, key, ErrConfig, err, "the certificate of %s is not trusted; add ca=/path/ca.pem naming the CA that signed it, or correct the endpoint", s.endpoint)
	}
	var record tls.RecordHeaderError
	// net/http turns the record error into plain text when the answer looks like HTTP.
	if errors.As(err, &record) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return newError(op, key, ErrConfig, err, "%s does not speak TLS; for a test server on this machine add insecure=true", s.endpoint)
	}
	return newError(op, key, ErrUnavailable, err, "cannot reach the store at %s; check that it is running and reachable, then try again", s.endpoint)
}

var _ Store = (*S3)(nil)
