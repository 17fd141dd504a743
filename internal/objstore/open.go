package objstore

import (
	"context"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
)

// Options configure Open. The zero value is ready to use.
type Options struct {
	// AccessKey and SecretKey are the S3 credentials. When both are empty, Open reads
	// TRIBUTARY_S3_ACCESS_KEY and TRIBUTARY_S3_SECRET_KEY, then AWS_ACCESS_KEY_ID and
	// AWS_SECRET_ACCESS_KEY. Unused for file:// stores.
	AccessKey string
	SecretKey string
	// CreateBucket makes the bucket if it does not exist (tests and demos); otherwise Open
	// does not contact the server at all, so an agent can start while the store is down.
	CreateBucket bool
}

// Open returns the store a URL names:
//
//	file:///abs/path    a directory on this machine (file:///C:/path on Windows), see NewDir
//	s3://bucket?endpoint=host:port[&region=R][&insecure=true][&ca=/path/ca.pem][&sse=s3|kms:KEY]
//	                    a bucket on any S3 server, see the s3 parameters below
//
// S3 parameters: endpoint (required) is the server's host and port; region skips the
// server's region lookup; TLS is on unless insecure=true, which is allowed only for a loopback
// endpoint (127.0.0.1, ::1, localhost) unless allow_insecure_remote=true is added too,
// because credentials and data would cross the network in clear; ca names a PEM file of
// extra certificate authorities to trust (a federation's own CA); sse asks the server to
// encrypt each object it stores, with its default key (sse=s3) or a named key of its KMS
// (sse=kms:KEY) — reads need no option, the server decrypts for any reader the policy allows.
//
// Errors wrap ErrConfig (a bad URL or credentials) or, when CreateBucket is set, any kind a
// store call can give.
func Open(ctx context.Context, rawURL string, opts Options) (Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, newError("open", "", ErrConfig, nil, "the store URL cannot be parsed; expected file:///path or s3://bucket?endpoint=host:port")
	}
	if u.User != nil {
		return nil, newError("open", u.Redacted(), ErrConfig, nil, "the store URL must not hold credentials; set TRIBUTARY_S3_ACCESS_KEY and TRIBUTARY_S3_SECRET_KEY instead")
	}
	switch u.Scheme {
	case "file":
		return openFile(u)
	case "s3":
		return openS3(ctx, u, opts)
	default:
		return nil, newError("open", u.Redacted(), ErrConfig, nil, "unknown store scheme %q; expected file:///path or s3://bucket?endpoint=host:port", u.Scheme)
	}
}

func openFile(u *url.URL) (Store, error) {
	name := u.String()
	if u.Host != "" && u.Host != "localhost" {
		return nil, newError("open", name, ErrConfig, nil, "a file store must be on this machine: use file:///path (three slashes)")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, newError("open", name, ErrConfig, nil, "a file store URL takes no parameters")
	}
	p := u.Path
	if runtime.GOOS == "windows" && len(p) >= 3 && p[0] == '/' && p[2] == ':' {
		p = p[1:] // file:///C:/store
	}
	p = filepath.FromSlash(p)
	if !filepath.IsAbs(p) || strings.TrimSpace(u.Path) == "" {
		return nil, newError("open", name, ErrConfig, nil, "a file store needs an absolute path, like file:///var/lib/tributary/store")
	}
	return NewDir(p)
}
