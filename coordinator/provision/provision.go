// Package provision makes the federation's store users on a MinIO server through its admin API,
// each with the least privilege its job needs:
//
//   - a practice's user may only write objects under practices/<id>/ — it cannot list, read,
//     delete, or write anywhere else, so leaked agent credentials expose nothing and can forge
//     nothing outside that practice's prefix (and what they can write there still has to verify
//     against the practice's signing key in the registry);
//   - the coordinator's user may list and read practices/, and read, write and delete under
//     federation/.
//
// Users are named by a random access key; the policy attached to each says whose it is
// (PracticePolicyName, CoordinatorPolicyName), so rotation and revocation find a practice's users by policy.
package provision

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/minio/madmin-go/v3"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// Admin speaks MinIO's admin API for one federation bucket.
type Admin struct {
	client   *madmin.AdminClient
	s3       *minio.Client // the same server's S3 API, with the administrator's keys: the bucket
	bucket   string
	endpoint string
	name     string // the store URL, for messages
	url      string // the store URL, to open it as a store
	access   string // the administrator's keys, to open it as a store
	secret   string
	health   string // the server's unauthenticated liveness URL
	http     *http.Client
}

// Credentials are one store user's keys.
type Credentials struct {
	AccessKey string
	SecretKey string
	Policy    string // the policy attached to the user
}

// Open connects to the server an s3:// store URL names (endpoint, ca=, insecure= as for
// objstore.Open) with the MinIO administrator's keys. It does not contact the server.
func Open(storeURL, accessKey, secretKey string) (*Admin, error) {
	t, err := objstore.ParseS3URL(storeURL)
	if err != nil {
		return nil, err
	}
	if accessKey == "" || secretKey == "" {
		return nil, errors.New("no MinIO administrator credentials: set TRIBUTARY_ADMIN_ACCESS_KEY and TRIBUTARY_ADMIN_SECRET_KEY (the server's root user, or a user with the admin:CreateUser, admin:CreatePolicy and admin:AttachUserOrGroupPolicy actions)")
	}
	tr, err := t.Transport()
	if err != nil {
		return nil, err
	}
	c, err := madmin.NewWithOptions(t.Endpoint, &madmin.Options{
		Creds:     credentials.NewStaticV4(accessKey, secretKey, ""),
		Secure:    t.Secure,
		Transport: tr,
	})
	if err != nil {
		return nil, fmt.Errorf("set up the MinIO admin client for %s: %w", t.Name, err)
	}
	s3, err := minio.New(t.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(accessKey, secretKey, ""),
		Secure:    t.Secure,
		Transport: tr,
		Region:    t.Region,
	})
	if err != nil {
		return nil, fmt.Errorf("set up the S3 client for %s: %w", t.Name, err)
	}
	scheme := "http"
	if t.Secure {
		scheme = "https"
	}
	return &Admin{client: c, s3: s3, bucket: t.Bucket, endpoint: t.Endpoint, name: t.Name, url: storeURL, access: accessKey, secret: secretKey,
		health: scheme + "://" + t.Endpoint + "/minio/health/live",
		http:   &http.Client{Transport: tr, Timeout: 15 * time.Second}}, nil
}

// Bucket is the federation's bucket.
func (a *Admin) Bucket() string { return a.bucket }

// BucketExists reports whether the federation's bucket exists on the server: users and
// policies can be made without it, but nothing can be uploaded until it does.
func (a *Admin) BucketExists(ctx context.Context) (bool, error) {
	if err := a.reach(ctx); err != nil {
		return false, err
	}
	ok, err := a.s3.BucketExists(ctx, a.bucket)
	if err != nil {
		return false, a.error("check bucket "+a.bucket, err)
	}
	return ok, nil
}

// CreateBucket makes the federation's bucket if it does not exist.
func (a *Admin) CreateBucket(ctx context.Context) error {
	if err := a.reach(ctx); err != nil {
		return err
	}
	_, err := objstore.Open(ctx, a.url, objstore.Options{AccessKey: a.access, SecretKey: a.secret, CreateBucket: true})
	return err
}

// reach checks that the server answers and its certificate is trusted, because the admin
// client retries such failures until the context ends and then says only that.
func (a *Admin) reach(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.health, nil)
	if err != nil {
		return err
	}
	resp, err := a.http.Do(req)
	if err != nil {
		var unknownCA x509.UnknownAuthorityError
		var hostname x509.HostnameError
		var invalid x509.CertificateInvalidError
		if errors.As(err, &unknownCA) || errors.As(err, &hostname) || errors.As(err, &invalid) {
			return fmt.Errorf("%s: the server's certificate is not trusted (%v); add ca=/path/ca.pem naming the CA that signed it", a.name, err)
		}
		var record tls.RecordHeaderError
		if errors.As(err, &record) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
			return fmt.Errorf("%s: the server at %s speaks plain HTTP, not TLS (%v); add insecure=true to the URL for a server on this machine (and allow_insecure_remote=true for one elsewhere on a trusted network), or give the server a TLS certificate", a.name, a.endpoint, err)
		}
		return fmt.Errorf("%s: cannot reach the server (%v); check that it is running and the endpoint is right", a.name, err)
	}
	resp.Body.Close()
	return nil
}

// PracticePolicyName is the name of the policy that lets practice id write its prefix of
// bucket. Names carry the bucket, so one server can hold several federations.
func PracticePolicyName(bucket, id string) string { return practicePolicyPrefix(bucket) + id }

func practicePolicyPrefix(bucket string) string { return "tributary-" + bucket + "-practice-" }

// CoordinatorPolicyName is the name of the coordinator's policy for bucket.
func CoordinatorPolicyName(bucket string) string { return "tributary-" + bucket + "-coordinator" }

// HolderPolicyName is the name of the policy of secure-aggregation holder id in bucket.
func HolderPolicyName(bucket, id string) string { return holderPolicyPrefix(bucket) + id }

func holderPolicyPrefix(bucket string) string { return "tributary-" + bucket + "-holder-" }

// PracticePolicyName is the name of the policy of practice id in this federation.
func (a *Admin) PracticePolicyName(id string) string { return PracticePolicyName(a.bucket, id) }

// CoordinatorPolicyName is the name of this federation's coordinator policy.
func (a *Admin) CoordinatorPolicyName() string { return CoordinatorPolicyName(a.bucket) }

// statement is one IAM policy statement.
type statement struct {
	Effect    string         `json:"Effect"`
	Action    []string       `json:"Action"`
	Resource  []string       `json:"Resource"`
	Condition map[string]any `json:"Condition,omitempty"`
}

type policy struct {
	Version   string      `json:"Version"`
	Statement []statement `json:"Statement"`
}

func marshal(p policy) []byte {
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		panic(err) // a fixed structure of strings always marshals
	}
	return append(data, '\n')
}

// PracticePolicy is the IAM policy of practice id's user in bucket: PutObject under
// practices/<id>/, GetObject of the federation's signed measure definitions
// (federation/measures.json, which every run reads), and nothing else. S3 denies whatever a
// policy does not allow, so the user cannot list, read, delete, or write any other key.
func PracticePolicy(bucket, id string) ([]byte, error) {
	if err := formats.ValidatePracticeID(id); err != nil {
		return nil, err
	}
	return marshal(policy{Version: "2012-10-17", Statement: []statement{{
		Effect:   "Allow",
		Action:   []string{"s3:PutObject"},
		Resource: []string{"arn:aws:s3:::" + bucket + "/" + formats.PracticesPrefix + id + "/*"},
	}, {
		Effect:   "Allow",
		Action:   []string{"s3:GetObject"},
		Resource: []string{"arn:aws:s3:::" + bucket + "/" + formats.FederationMeasuresKey},
	}}}), nil
}

// CoordinatorPolicy is the IAM policy of the coordinator's user in bucket: list the bucket
// under practices/ and federation/, read practices/, read, write and delete under
// federation/ (combined outputs, the registry, current.json), and hear of new objects (serve).
// It may not read the practices' secure-aggregation shares files, which are the holders'
// alone, nor write the holders' messages and publications (federation/holders/,
// federation/secure/), which it only reads.
func CoordinatorPolicy(bucket string) []byte {
	arn := "arn:aws:s3:::" + bucket
	return marshal(policy{Version: "2012-10-17", Statement: []statement{
		{Effect: "Allow", Action: []string{"s3:ListBucket"}, Resource: []string{arn},
			Condition: map[string]any{"StringLike": map[string][]string{"s3:prefix": {formats.PracticesPrefix + "*", formats.FederationPrefix + "*"}}}},
		{Effect: "Allow", Action: []string{"s3:GetBucketLocation", "s3:ListenBucketNotification"}, Resource: []string{arn}},
		{Effect: "Allow", Action: []string{"s3:GetObject"}, Resource: []string{arn + "/" + formats.PracticesPrefix + "*"}},
		{Effect: "Allow", Action: []string{"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}, Resource: []string{arn + "/" + formats.FederationPrefix + "*"}},
		{Effect: "Deny", Action: []string{"s3:GetObject"}, Resource: []string{arn + "/" + formats.PracticesPrefix + "*/" + formats.SharesPrefix + "*"}},
		{Effect: "Deny", Action: []string{"s3:PutObject", "s3:DeleteObject"}, Resource: []string{arn + "/" + holdersPrefix + "*", arn + "/" + securePrefix + "*"}},
	}})
}

// The holders' prefixes (package coordinator/secure names them; provision does not import it).
const (
	holdersPrefix = formats.FederationPrefix + "holders/"
	securePrefix  = formats.FederationPrefix + "secure/"
)

// HolderPolicy is the IAM policy of secure-aggregation holder id's user in bucket: list the
// bucket under practices/ and federation/; read the practices' manifests and its own shares
// files (practices/*/shares-<id>.bin: never the other holder's), the registry and both
// holders' messages; write and delete only its own messages (federation/holders/<id>/).
// The leader also publishes the protected federation figures under federation/secure/.
func HolderPolicy(bucket, id string, leader bool) ([]byte, error) {
	if err := formats.ValidateHolderID(id); err != nil {
		return nil, err
	}
	arn := "arn:aws:s3:::" + bucket
	st := []statement{
		{Effect: "Allow", Action: []string{"s3:ListBucket"}, Resource: []string{arn},
			Condition: map[string]any{"StringLike": map[string][]string{"s3:prefix": {formats.PracticesPrefix + "*", formats.FederationPrefix + "*"}}}},
		{Effect: "Allow", Action: []string{"s3:GetBucketLocation"}, Resource: []string{arn}},
		{Effect: "Allow", Action: []string{"s3:GetObject"}, Resource: []string{
			arn + "/" + formats.PracticesPrefix + "*/" + formats.ManifestName,
			arn + "/" + formats.PracticesPrefix + "*/" + formats.SharesName(id),
			arn + "/" + formats.RegistryKey,
			arn + "/" + holdersPrefix + "*",
		}},
		{Effect: "Allow", Action: []string{"s3:PutObject", "s3:DeleteObject"}, Resource: []string{arn + "/" + holdersPrefix + id + "/*"}},
	}
	if leader {
		st = append(st, statement{Effect: "Allow", Action: []string{"s3:GetObject", "s3:PutObject", "s3:DeleteObject"}, Resource: []string{arn + "/" + securePrefix + "*"}})
	}
	return marshal(policy{Version: "2012-10-17", Statement: st}), nil
}

// Holder makes a new user for secure-aggregation holder id (leader: it also publishes), and
// returns its keys.
func (a *Admin) Holder(ctx context.Context, id string, leader bool) (Credentials, error) {
	pol, err := HolderPolicy(a.bucket, id, leader)
	if err != nil {
		return Credentials{}, err
	}
	return a.newUser(ctx, HolderPolicyName(a.bucket, id), pol)
}

// HolderPolicyName is the name of holder id's policy in this federation.
func (a *Admin) HolderPolicyName(id string) string { return HolderPolicyName(a.bucket, id) }

// Practice makes a new user for practice id, allowed only to write under its prefix, and
// returns its keys. Existing users of the practice are left as they are (see Rotate).
func (a *Admin) Practice(ctx context.Context, id string) (Credentials, error) {
	pol, err := PracticePolicy(a.bucket, id)
	if err != nil {
		return Credentials{}, err
	}
	return a.newUser(ctx, PracticePolicyName(a.bucket, id), pol)
}

// Coordinator makes a new user for the coordinator and returns its keys.
func (a *Admin) Coordinator(ctx context.Context) (Credentials, error) {
	return a.newUser(ctx, CoordinatorPolicyName(a.bucket), CoordinatorPolicy(a.bucket))
}

func (a *Admin) newUser(ctx context.Context, policyName string, pol []byte) (Credentials, error) {
	if err := a.reach(ctx); err != nil {
		return Credentials{}, err
	}
	if err := a.client.AddCannedPolicy(ctx, policyName, pol); err != nil {
		return Credentials{}, a.error("create policy "+policyName, err)
	}
	c := Credentials{AccessKey: "TRIB" + randomKey(16), SecretKey: randomKey(40), Policy: policyName}
	if err := a.client.AddUser(ctx, c.AccessKey, c.SecretKey); err != nil {
		return Credentials{}, a.error("create user", err)
	}
	if _, err := a.client.AttachPolicy(ctx, madmin.PolicyAssociationReq{Policies: []string{policyName}, User: c.AccessKey}); err != nil {
		_ = a.client.RemoveUser(ctx, c.AccessKey) // a user without its policy is no use
		return Credentials{}, a.error("attach policy "+policyName, err)
	}
	return c, nil
}

// Users lists the access keys whose policy is policyName, sorted.
func (a *Admin) Users(ctx context.Context, policyName string) ([]string, error) {
	if err := a.reach(ctx); err != nil {
		return nil, err
	}
	users, err := a.client.ListUsers(ctx)
	if err != nil {
		return nil, a.error("list users", err)
	}
	var out []string
	for ak, u := range users {
		for _, p := range strings.Split(u.PolicyName, ",") {
			if p == policyName {
				out = append(out, ak)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// Rotate gives every user with policyName a new user in its place: it makes the new one,
// then removes the old ones, so the old keys stop working at once. It returns the new keys.
func (a *Admin) Rotate(ctx context.Context, policyName string) (Credentials, []string, error) {
	old, err := a.Users(ctx, policyName)
	if err != nil {
		return Credentials{}, nil, err
	}
	if len(old) == 0 {
		return Credentials{}, nil, fmt.Errorf("no user on %s has policy %s: provision it first", a.name, policyName)
	}
	var c Credentials
	switch {
	case policyName == CoordinatorPolicyName(a.bucket):
		c, err = a.Coordinator(ctx)
	case strings.HasPrefix(policyName, practicePolicyPrefix(a.bucket)):
		c, err = a.Practice(ctx, strings.TrimPrefix(policyName, practicePolicyPrefix(a.bucket)))
	case strings.HasPrefix(policyName, holderPolicyPrefix(a.bucket)):
		c, err = a.rotateHolder(ctx, policyName)
	default:
		return Credentials{}, nil, fmt.Errorf("%s is not a Tributary policy", policyName)
	}
	if err != nil {
		return Credentials{}, nil, err
	}
	for _, ak := range old {
		if err := a.client.RemoveUser(ctx, ak); err != nil {
			return c, nil, a.error("remove the old user "+ak+" (the new keys work; remove it by hand)", err)
		}
	}
	return c, old, nil
}

// rotateHolder makes a new user with the holder policy already installed as policyName
// (leader or helper, as it was).
func (a *Admin) rotateHolder(ctx context.Context, policyName string) (Credentials, error) {
	info, err := a.client.InfoCannedPolicyV2(ctx, policyName)
	if err != nil {
		return Credentials{}, a.error("read policy "+policyName, err)
	}
	return a.newUser(ctx, policyName, info.Policy)
}

// Revoke removes every user with policyName and the policy itself: their keys stop working
// at once. It returns the access keys removed.
func (a *Admin) Revoke(ctx context.Context, policyName string) ([]string, error) {
	old, err := a.Users(ctx, policyName)
	if err != nil {
		return nil, err
	}
	for _, ak := range old {
		if err := a.client.RemoveUser(ctx, ak); err != nil {
			return nil, a.error("remove user "+ak, err)
		}
	}
	if err := a.client.RemoveCannedPolicy(ctx, policyName); err != nil {
		var resp madmin.ErrorResponse
		if !errors.As(err, &resp) || resp.Code != "XMinioAdminNoSuchPolicy" {
			return old, a.error("remove policy "+policyName, err)
		}
	}
	return old, nil
}

// error says what the admin API refused and what to do.
func (a *Admin) error(op string, err error) error {
	var resp madmin.ErrorResponse
	if errors.As(err, &resp) {
		switch resp.Code {
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "XMinioAdminNotImplemented":
			return fmt.Errorf("%s on %s: the server said %s (%s): the administrator credentials are wrong or lack the admin actions", op, a.name, resp.Code, resp.Message)
		}
		return fmt.Errorf("%s on %s: the server said %s (%s)", op, a.name, resp.Code, resp.Message)
	}
	var s3resp minio.ErrorResponse
	if errors.As(err, &s3resp) && s3resp.Code != "" {
		switch s3resp.Code {
		case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch":
			return fmt.Errorf("%s on %s: the server said %s (%s): the administrator credentials are wrong or lack the rights", op, a.name, s3resp.Code, s3resp.Message)
		}
		return fmt.Errorf("%s on %s: the server said %s (%s)", op, a.name, s3resp.Code, s3resp.Message)
	}
	return fmt.Errorf("%s on %s: %w (is the server running and the endpoint right?)", op, a.name, err)
}

// randomKey returns n characters from an alphabet safe in environment files and URLs.
func randomKey(n int) string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported systems
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}
