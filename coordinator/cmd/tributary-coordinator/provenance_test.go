package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/miniotest"
	"github.com/tributary-health/tributary/internal/objstore"
)

// TestProvenance combines a small federation, checks that provenance lists every practice's
// manifest and file for a measure and month, then alters stored bytes after the combine and
// checks that provenance says exactly which link changed and fails.
func TestProvenance(t *testing.T) {
	dir := t.TempDir()
	storeDir := filepath.Join(dir, "store")
	st, err := objstore.NewDir(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	fed := fedgen.New(fedgen.Params{Practices: 3, Months: 2, Seed: 11})
	if err := fed.Write(ctx, st, 2); err != nil {
		t.Fatal(err)
	}
	pem, err := formats.MarshalPrivateKey(fed.Coordinator)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "coordinator.key")
	if err := os.WriteFile(keyFile, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	store := "file://" + filepath.ToSlash(storeDir)
	if code, out, errs := runCLI(t, "combine", "--store", store, "--key", keyFile); code != 0 {
		t.Fatalf("combine: %d %s %s", code, out, errs)
	}
	month := fed.Start.String()
	args := []string{"provenance", "--store", store, "--key", keyFile, "--measure", formats.Admissions, "--month", month}
	code, out, errs := runCLI(t, args...)
	if code != 0 || !strings.Contains(out, "verified: every stored byte") || !strings.Contains(out, "3 practice files made this figure") ||
		strings.Count(out, fmt.Sprintf("%d cells of admissions", formats.NumShapes)) != 3 {
		t.Fatalf("provenance before any change: %d\n%s\n%s", code, out, errs)
	}
	t.Logf("provenance output:\n%s", out)
	for _, p := range fed.Practices {
		for _, want := range []string{p.ID, p.RunID, formats.KeyID(p.Key.Public().(ed25519.PublicKey)), formats.SubmissionKey(p.ID, p.RunID)} {
			if !strings.Contains(out, want) {
				t.Errorf("provenance output lacks %q:\n%s", want, out)
			}
		}
	}
	if code, out, _ := runCLI(t, append(args, "--practice", fed.Practices[1].ID)...); code != 0 || !strings.Contains(out, "1 practice files made this figure") || strings.Contains(out, fed.Practices[0].ID) {
		t.Errorf("provenance --practice: %d\n%s", code, out)
	}

	// One practice's file is rewritten after the combine.
	victim := fed.Practices[1]
	fileKey := formats.SubmissionKey(victim.ID, victim.RunID)
	data, _, err := st.Get(ctx, fileKey, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 0x01
	if _, err := st.Put(ctx, fileKey, data); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCLI(t, args...)
	if code != 1 || !strings.Contains(out, "CHANGED: file "+fileKey) || !strings.Contains(out, "changed after the combine") || !strings.Contains(errs, "1 link(s)") {
		t.Fatalf("provenance after altering %s: %d\n%s\n%s", fileKey, code, out, errs)
	}
	t.Logf("after altering a file:\n%s%s", out, errs)
	// The run's one file made every month of the practice: the other month's chain is broken
	// too, while a chain limited to another practice still verifies.
	next := []string{"provenance", "--store", store, "--key", keyFile, "--measure", formats.Admissions, "--month", (fed.Start + 1).String()}
	if code, out, _ := runCLI(t, next...); code != 1 || !strings.Contains(out, "CHANGED: file "+fileKey) {
		t.Errorf("provenance of the other month of the altered file: %d\n%s", code, out)
	}
	if code, out, _ := runCLI(t, append(next, "--practice", fed.Practices[0].ID)...); code != 0 || !strings.Contains(out, "1 practice files made this figure") {
		t.Errorf("provenance of another practice: %d\n%s", code, out)
	}

	// A manifest deleted after the combine is detected too.
	if err := st.Delete(ctx, formats.ManifestKey(fed.Practices[2].ID, fed.Practices[2].RunID)); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := runCLI(t, append(args, "--practice", fed.Practices[2].ID)...); code != 1 || !strings.Contains(out, "cannot re-read manifest") {
		t.Errorf("provenance after deleting a manifest: %d\n%s", code, out)
	}
}

// TestPracticeProvisionCommand runs the provisioning commands against a real MinIO server and
// uses the keys they write.
func TestPracticeProvisionCommand(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := miniotest.Bucket(t)
	srv.Store(t, bucket)
	t.Setenv(envAdminAccessKey, srv.AccessKey)
	t.Setenv(envAdminSecretKey, srv.SecretKey)
	dir := t.TempDir()
	url := srv.URL(bucket)
	ctx := context.Background()
	keysIn := func(file string) objstore.Store {
		t.Helper()
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", file, fi.Mode().Perm())
		}
		var ak, sk string
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "TRIBUTARY_S3_ACCESS_KEY="); ok {
				ak = v
			}
			if v, ok := strings.CutPrefix(line, "TRIBUTARY_S3_SECRET_KEY="); ok {
				sk = v
			}
		}
		st, err := objstore.Open(ctx, url, objstore.Options{AccessKey: ak, SecretKey: sk})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	first := filepath.Join(dir, "a.env")
	if code, out, errs := runCLI(t, "practice", "provision", "--admin-url", url, "--practice", "A81001", "--out", first); code != 0 || !strings.Contains(out, "wrote "+first) {
		t.Fatalf("practice provision: %d %s %s", code, out, errs)
	}
	if code, _, errs := runCLI(t, "practice", "provision", "--admin-url", url, "--practice", "A81001", "--out", first); code != 1 || !strings.Contains(errs, "never overwritten") {
		t.Errorf("provision over an existing keys file: %d %s", code, errs)
	}
	a := keysIn(first)
	if _, err := a.Put(ctx, "practices/A81001/runs/x", []byte("ok")); err != nil {
		t.Errorf("Put with the provisioned keys: %v", err)
	}
	if _, err := a.List(ctx, ""); !errors.Is(err, objstore.ErrAccessDenied) {
		t.Errorf("List with a practice's keys = %v, want ErrAccessDenied", err)
	}
	second := filepath.Join(dir, "a2.env")
	if code, _, errs := runCLI(t, "practice", "rotate", "--admin-url", url, "--practice", "A81001", "--out", second); code != 0 || !strings.Contains(errs, "no longer work") {
		t.Fatalf("practice rotate: %d %s", code, errs)
	}
	if _, err := a.Put(ctx, "practices/A81001/runs/y", []byte("old")); !errors.Is(err, objstore.ErrAccessDenied) {
		t.Errorf("Put with rotated-out keys = %v, want ErrAccessDenied", err)
	}
	a2 := keysIn(second)
	if _, err := a2.Put(ctx, "practices/A81001/runs/y", []byte("new")); err != nil {
		t.Errorf("Put with the rotated keys: %v", err)
	}
	if code, out, errs := runCLI(t, "practice", "revoke", "--admin-url", url, "--practice", "A81001"); code != 0 || !strings.Contains(out, "no longer work") {
		t.Fatalf("practice revoke: %d %s %s", code, out, errs)
	}
	if _, err := a2.Put(ctx, "practices/A81001/runs/z", []byte("revoked")); !errors.Is(err, objstore.ErrAccessDenied) {
		t.Errorf("Put with revoked keys = %v, want ErrAccessDenied", err)
	}
	if code, out, errs := runCLI(t, "practice", "revoke", "--admin-url", url, "--practice", "Z99999"); code != 0 || !strings.Contains(out, "had no store user") {
		t.Errorf("revoke of a practice never provisioned: %d %s %s", code, out, errs)
	}
	if code, _, errs := runCLI(t, "practice", "provision", "--admin-url", url, "--practice", "../etc", "--out", "-"); code != 1 || !strings.Contains(errs, "practice id") {
		t.Errorf("provision of an invalid practice id: %d %s", code, errs)
	}
	coord := filepath.Join(dir, "coordinator.env")
	if code, out, errs := runCLI(t, "coordinator-user", "provision", "--admin-url", url, "--out", coord); code != 0 {
		t.Fatalf("coordinator-user provision: %d %s %s", code, out, errs)
	}
	c := keysIn(coord)
	if _, err := c.List(ctx, formats.PracticesPrefix); err != nil {
		t.Errorf("the coordinator lists practices/: %v", err)
	}
	if _, err := c.Put(ctx, "practices/A81001/runs/forged", []byte("x")); !errors.Is(err, objstore.ErrAccessDenied) {
		t.Errorf("the coordinator writes under practices/ = %v, want ErrAccessDenied", err)
	}
	t.Setenv(envAdminSecretKey, "wrong")
	if code, _, errs := runCLI(t, "practice", "users", "--admin-url", url, "--practice", "A81001"); code != 1 || !strings.Contains(errs, "administrator credentials") {
		t.Errorf("with a wrong admin secret: %d %s", code, errs)
	}
}
