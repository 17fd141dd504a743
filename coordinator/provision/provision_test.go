package provision_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/coordinator/provision"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/miniotest"
	"github.com/tributary-health/tributary/internal/objstore"
)

// TestLeastPrivilege provisions two practices and the coordinator on a real MinIO server with
// the project's own code, then checks with each user's own credentials what it may and may not
// do: a practice uploads a whole run (verified without reading back) under its own prefix and
// nothing else; the coordinator combines but cannot touch practices' files; rotation and
// revocation take effect at once.
func TestLeastPrivilege(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := miniotest.Bucket(t)
	root := srv.Store(t, bucket)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := provision.Open(srv.URL(bucket), srv.AccessKey, srv.SecretKey)
	if err != nil {
		t.Fatal(err)
	}
	fed := fedgen.New(fedgen.Params{Practices: 2, Months: 3, Seed: 6})
	a, b := fed.Practices[0].ID, fed.Practices[1].ID
	credsA, err := admin.Practice(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	credsB, err := admin.Practice(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	credsC, err := admin.Coordinator(ctx)
	if err != nil {
		t.Fatal(err)
	}
	open := func(c provision.Credentials) objstore.Store {
		st, err := objstore.Open(ctx, srv.URL(bucket), objstore.Options{AccessKey: c.AccessKey, SecretKey: c.SecretKey})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	stA, stB, stC := open(credsA), open(credsB), open(credsC)

	// The federation's admin writes the registry; the coordinator's own first output is
	// made below with the coordinator's credentials.
	reg, err := formats.SignRegistry(fed.Registry(), fed.Coordinator)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Put(ctx, formats.RegistryKey, reg); err != nil {
		t.Fatal(err)
	}
	// Every run reads the federation's signed measure definitions: the one object outside
	// its own prefix a practice may read, and not write.
	measuresFile, err := formats.SignFederationMeasures(&formats.FederationMeasures{FormatVersion: formats.DefinitionVersion}, fed.Coordinator)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := root.Put(ctx, formats.FederationMeasuresKey, measuresFile); err != nil {
		t.Fatal(err)
	}
	if _, _, err := stA.Get(ctx, formats.FederationMeasuresKey, 1<<20); err != nil {
		t.Errorf("practice %s cannot read %s: %v", a, formats.FederationMeasuresKey, err)
	}
	if _, err := stA.Put(ctx, formats.FederationMeasuresKey, []byte("forged")); err == nil {
		t.Errorf("practice %s could write %s", a, formats.FederationMeasuresKey)
	}

	// Each practice uploads a whole run with its own write-only credentials; Put verifies
	// each upload from the server's checksum, since the user cannot read it back.
	if err := fed.WriteRun(ctx, stA, 0); err != nil {
		t.Fatalf("practice %s could not upload its run with its own credentials: %v", a, err)
	}
	if err := fed.WriteRun(ctx, stB, 1); err != nil {
		t.Fatalf("practice %s could not upload its run with its own credentials: %v", b, err)
	}
	coordPub := fed.Coordinator.Public().(ed25519.PublicKey)
	res, err := combine.Run(ctx, stC, coordPub, combine.Options{})
	if err != nil {
		t.Fatalf("combine with the coordinator's credentials: %v", err)
	}
	if res.Report.Practices != 2 || len(res.Report.Quarantined) != 0 {
		t.Fatalf("combine used %d practices and quarantined %v; want both practices, nothing quarantined", res.Report.Practices, res.Report.Quarantined)
	}

	// Practice A, through the raw S3 API, writes an object whose stored checksum metadata
	// lies about its content: the coordinator quarantines it and carries on, rather than
	// letting one practice stop every combine.
	raw, err := minio.New(srv.Endpoint(), &minio.Options{Creds: credentials.NewStaticV4(credsA.AccessKey, credsA.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	liar := formats.ManifestKey(a, "20990101T000000Z-11111111")
	body := "{}"
	if _, err := raw.PutObject(ctx, bucket, liar, strings.NewReader(body), int64(len(body)), minio.PutObjectOptions{
		UserMetadata: map[string]string{"Sha256": strings.Repeat("0", 64)}}); err != nil {
		t.Fatalf("raw put with practice A's keys: %v", err)
	}
	again, err := combine.Run(ctx, stC, coordPub, combine.Options{})
	if err != nil {
		t.Fatalf("combine with an object whose stored checksum lies: %v", err)
	}
	if q := again.Report.Quarantined; len(q) != 1 || q[0].Key != liar || q[0].Kind != "checksum_mismatch" {
		t.Errorf("quarantine %+v, want only %s as checksum_mismatch", q, liar)
	}
	if again.Pointer.Objects[combine.FederationArrow].SHA256 != res.Pointer.Objects[combine.FederationArrow].SHA256 {
		t.Error("the figures changed because of the lying object")
	}

	ownFile := formats.SubmissionKey(a, fed.Practices[0].RunID)
	otherRun := formats.SubmissionKey(b, "20990101T000000Z-0badf00d")
	denied := []struct {
		name string
		st   objstore.Store
		op   func(st objstore.Store) error
	}{
		{"practice A lists the bucket", stA, func(st objstore.Store) error { _, err := st.List(ctx, ""); return err }},
		{"practice A lists practices/", stA, func(st objstore.Store) error { _, err := st.List(ctx, formats.PracticesPrefix); return err }},
		{"practice A lists its own prefix", stA, func(st objstore.Store) error {
			_, err := st.List(ctx, formats.PracticesPrefix+a+"/")
			return err
		}},
		{"practice A reads its own file", stA, func(st objstore.Store) error { _, _, err := st.Get(ctx, ownFile, 1<<20); return err }},
		{"practice A stats its own file", stA, func(st objstore.Store) error { _, err := st.Stat(ctx, ownFile); return err }},
		{"practice A reads practice B's manifest", stA, func(st objstore.Store) error {
			_, _, err := st.Get(ctx, formats.ManifestKey(b, fed.Practices[1].RunID), 1<<20)
			return err
		}},
		{"practice A reads the registry", stA, func(st objstore.Store) error { _, _, err := st.Get(ctx, formats.RegistryKey, 1<<20); return err }},
		{"practice A reads current.json", stA, func(st objstore.Store) error { _, _, err := st.Get(ctx, combine.CurrentKey, 1<<20); return err }},
		{"practice A writes under practice B's prefix", stA, func(st objstore.Store) error { _, err := st.Put(ctx, otherRun, []byte("forged")); return err }},
		{"practice A writes a key prefixed like its own id", stA, func(st objstore.Store) error {
			_, err := st.Put(ctx, formats.PracticesPrefix+a+"X/runs/x", []byte("forged"))
			return err
		}},
		{"practice A overwrites current.json", stA, func(st objstore.Store) error { _, err := st.Put(ctx, combine.CurrentKey, []byte("{}")); return err }},
		{"practice A overwrites the registry", stA, func(st objstore.Store) error { _, err := st.Put(ctx, formats.RegistryKey, []byte("{}")); return err }},
		{"practice A writes a new federation output", stA, func(st objstore.Store) error {
			_, err := st.Put(ctx, combine.CombinedPrefix+"forged/federation.arrow", []byte("x"))
			return err
		}},
		{"practice A deletes current.json", stA, func(st objstore.Store) error { return st.Delete(ctx, combine.CurrentKey) }},
		{"practice A deletes a combined output", stA, func(st objstore.Store) error {
			return st.Delete(ctx, res.Pointer.Objects[combine.FederationArrow].Key)
		}},
		{"practice A deletes its own file", stA, func(st objstore.Store) error { return st.Delete(ctx, ownFile) }},
		{"practice A deletes practice B's manifest", stA, func(st objstore.Store) error {
			return st.Delete(ctx, formats.ManifestKey(b, fed.Practices[1].RunID))
		}},
		{"practice A writes outside both prefixes", stA, func(st objstore.Store) error { _, err := st.Put(ctx, "elsewhere", []byte("x")); return err }},
		{"the coordinator writes under a practice's prefix", stC, func(st objstore.Store) error { _, err := st.Put(ctx, otherRun, []byte("forged")); return err }},
		{"the coordinator deletes a practice's file", stC, func(st objstore.Store) error { return st.Delete(ctx, ownFile) }},
	}
	for _, tc := range denied {
		if err := tc.op(tc.st); !errors.Is(err, objstore.ErrAccessDenied) {
			t.Errorf("%s: got %v, want ErrAccessDenied", tc.name, err)
		}
	}
	// Nothing the denied calls tried changed the store.
	if _, err := root.Stat(ctx, otherRun); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("the forged object under B's prefix exists: %v", err)
	}
	if _, err := root.Stat(ctx, ownFile); err != nil {
		t.Errorf("A's own file is gone: %v", err)
	}
	if got, _, err := root.Get(ctx, combine.CurrentKey, 1<<20); err != nil || len(got) < 10 {
		t.Errorf("current.json after the denied calls: %d bytes, %v", len(got), err)
	}

	// Rotation: the old keys stop working at once, the new ones write.
	rotated, old, err := admin.Rotate(ctx, admin.PracticePolicyName(a))
	if err != nil {
		t.Fatal(err)
	}
	if len(old) != 1 || old[0] != credsA.AccessKey || rotated.AccessKey == credsA.AccessKey {
		t.Errorf("Rotate replaced %v with %s; want the one old user %s replaced by a new one", old, rotated.AccessKey, credsA.AccessKey)
	}
	if _, err := stA.Put(ctx, ownFile, []byte("after rotation")); !errors.Is(err, objstore.ErrAccessDenied) {
		t.Errorf("Put with practice A's rotated-out keys = %v, want ErrAccessDenied", err)
	}
	if _, err := open(rotated).Put(ctx, formats.PracticesPrefix+a+"/probe", []byte("new keys")); err != nil {
		t.Errorf("Put with practice A's new keys: %v", err)
	}

	// Revocation: B's keys stop working and no user keeps its policy.
	gone, err := admin.Revoke(ctx, admin.PracticePolicyName(b))
	if err != nil || len(gone) != 1 || gone[0] != credsB.AccessKey {
		t.Fatalf("Revoke = %v, %v; want B's one user", gone, err)
	}
	if _, err := stB.Put(ctx, formats.PracticesPrefix+b+"/probe", []byte("x")); !errors.Is(err, objstore.ErrAccessDenied) {
		t.Errorf("Put with practice B's revoked keys = %v, want ErrAccessDenied", err)
	}
	if users, err := admin.Users(ctx, admin.PracticePolicyName(b)); err != nil || len(users) != 0 {
		t.Errorf("users with B's policy after Revoke: %v, %v", users, err)
	}
	// The coordinator still combines: B's run is still there, read by the coordinator.
	if _, err := combine.Run(ctx, stC, coordPub, combine.Options{}); err != nil {
		t.Errorf("combine after rotation and revocation: %v", err)
	}
}

// TestPolicyFilesMatch checks that the policy documents in deploy/minio are the ones the
// provisioning command installs, with the placeholders filled in.
func TestPolicyFilesMatch(t *testing.T) {
	for _, tc := range []struct {
		file string
		want func() []byte
	}{
		{"practice-policy.json", func() []byte { p, _ := provision.PracticePolicy("BUCKET", "PRACTICE"); return p }},
		{"coordinator-policy.json", func() []byte { return provision.CoordinatorPolicy("BUCKET") }},
		{"holder-policy.json", func() []byte { return holderPolicy(t, false) }},
		{"leader-holder-policy.json", func() []byte { return holderPolicy(t, true) }},
	} {
		got, err := os.ReadFile(filepath.Join("..", "..", "deploy", "minio", tc.file))
		if err != nil {
			t.Fatal(err)
		}
		if want := tc.want(); string(got) != string(want) {
			t.Errorf("deploy/minio/%s differs from what provision installs; write it again from provision's output:\n%s", tc.file, want)
		}
	}
}

// holderPolicy is a holder's policy with the placeholder HOLDER for its id (ids are lower-case,
// so the placeholder is put in after).
func holderPolicy(t *testing.T, leader bool) []byte {
	p, err := provision.HolderPolicy("BUCKET", "h0ld3r", leader)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(strings.ReplaceAll(string(p), "h0ld3r", "HOLDER"))
}

// TestProvisionOverTLS makes a practice user through the admin API of a MinIO server whose
// certificate only the federation's own CA (ca= in the URL) vouches for, and uploads with it;
// without ca= the admin client refuses the server.
func TestProvisionOverTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a TLS server")
	}
	srv := miniotest.StartTLS(t)
	bucket := miniotest.Bucket(t)
	srv.Store(t, bucket)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := srv.URL(bucket)
	if !strings.Contains(url, "ca=") {
		t.Fatalf("the TLS server's URL %s names no CA", url)
	}
	admin, err := provision.Open(url, srv.AccessKey, srv.SecretKey)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := admin.Practice(ctx, "A81001")
	if err != nil {
		t.Fatalf("provision over TLS: %v", err)
	}
	st, err := objstore.Open(ctx, url, objstore.Options{AccessKey: creds.AccessKey, SecretKey: creds.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, "practices/A81001/runs/x", []byte("over TLS")); err != nil {
		t.Errorf("Put over TLS with the new user: %v", err)
	}
	noCA, err := provision.Open("s3://"+bucket+"?endpoint="+srv.Endpoint(), srv.AccessKey, srv.SecretKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := noCA.Practice(ctx, "B82002"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("provision over TLS without ca= = %v, want a certificate error", err)
	}
}

// TestWriteOnlyWithEncryption: a practice's write-only user can upload, verified, with each
// encryption-at-rest option, and the coordinator's user reads the objects back.
func TestWriteOnlyWithEncryption(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server with a KMS key")
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MINIO_KMS_SECRET_KEY", "federation-key:"+base64.StdEncoding.EncodeToString(key))
	srv := miniotest.Start(t)
	bucket := miniotest.Bucket(t)
	srv.Store(t, bucket)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := provision.Open(srv.URL(bucket), srv.AccessKey, srv.SecretKey)
	if err != nil {
		t.Fatal(err)
	}
	practice, err := admin.Practice(ctx, "A81001")
	if err != nil {
		t.Fatal(err)
	}
	coord, err := admin.Coordinator(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reader, err := objstore.Open(ctx, srv.URL(bucket), objstore.Options{AccessKey: coord.AccessKey, SecretKey: coord.SecretKey})
	if err != nil {
		t.Fatal(err)
	}
	for _, sse := range []string{"s3", "kms:federation-key"} {
		st, err := objstore.Open(ctx, srv.URL(bucket)+"&sse="+sse, objstore.Options{AccessKey: practice.AccessKey, SecretKey: practice.SecretKey})
		if err != nil {
			t.Fatal(err)
		}
		k := "practices/A81001/runs/" + strings.ReplaceAll(sse, ":", "-")
		if _, err := st.Put(ctx, k, []byte("counts "+sse)); err != nil {
			t.Errorf("write-only Put with sse=%s: %v", sse, err)
			continue
		}
		if got, _, err := reader.Get(ctx, k, 1<<10); err != nil || string(got) != "counts "+sse {
			t.Errorf("the coordinator reads %q, %v", got, err)
		}
	}
}
