package provision_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tributary-health/tributary/coordinator/provision"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/miniotest"
	"github.com/tributary-health/tributary/internal/objstore"
)

// TestHolderLeastPrivilege provisions the two holders of secure aggregation and the
// coordinator on a real MinIO server and checks, with each user's own credentials, that each
// holder reads only its own shares files (never the other's, nor the published figures),
// writes only its own messages, that only the leader publishes, and that the coordinator can
// read no shares file and write no holder's object.
func TestHolderLeastPrivilege(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := miniotest.Bucket(t)
	root := srv.Store(t, bucket)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, err := provision.Open(srv.URL(bucket), srv.AccessKey, srv.SecretKey)
	if err != nil {
		t.Fatal(err)
	}
	credsL, err := admin.Holder(ctx, "federation", true)
	if err != nil {
		t.Fatal(err)
	}
	credsH, err := admin.Holder(ctx, "icb", false)
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
	stL, stH, stC := open(credsL), open(credsH), open(credsC)
	const practice, run = "A81001", "20250101T000000Z-0123abcd"
	sharesL, sharesH := formats.SharesKey(practice, run, "federation"), formats.SharesKey(practice, run, "icb")
	for _, key := range []string{formats.ManifestKey(practice, run), formats.SubmissionKey(practice, run), sharesL, sharesH, formats.RegistryKey,
		"federation/current.json", "federation/holders/federation/rounds/r/plan.json", "federation/holders/icb/rounds/r/prep.json"} {
		if _, err := root.Put(ctx, key, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	get := func(key string) func(objstore.Store) error {
		return func(st objstore.Store) error { _, _, err := st.Get(ctx, key, 1<<20); return err }
	}
	put := func(key string) func(objstore.Store) error {
		return func(st objstore.Store) error { _, err := st.Put(ctx, key, []byte("y")); return err }
	}
	list := func(prefix string) func(objstore.Store) error {
		return func(st objstore.Store) error { _, err := st.List(ctx, prefix); return err }
	}
	type check struct {
		name string
		st   objstore.Store
		op   func(objstore.Store) error
	}
	allowed := []check{
		{"the leader lists practices/", stL, list(formats.PracticesPrefix)},
		{"the leader reads a manifest", stL, get(formats.ManifestKey(practice, run))},
		{"the leader reads its own shares", stL, get(sharesL)},
		{"the leader reads the registry", stL, get(formats.RegistryKey)},
		{"the leader reads the helper's messages", stL, get("federation/holders/icb/rounds/r/prep.json")},
		{"the leader writes its own messages", stL, put("federation/holders/federation/rounds/r/prep.json")},
		{"the leader publishes", stL, put("federation/secure/r/round.json")},
		{"the helper reads its own shares", stH, get(sharesH)},
		{"the helper reads the leader's plan", stH, get("federation/holders/federation/rounds/r/plan.json")},
		{"the helper writes its own messages", stH, put("federation/holders/icb/rounds/r/aggregate.json")},
		{"the coordinator reads a practice's figures", stC, get(formats.SubmissionKey(practice, run))},
		{"the coordinator reads a round's publication", stC, get("federation/secure/r/round.json")},
	}
	for _, c := range allowed {
		if err := c.op(c.st); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	denied := []check{
		{"the leader reads the helper's shares", stL, get(sharesH)},
		{"the leader reads a practice's figures", stL, get(formats.SubmissionKey(practice, run))},
		{"the leader reads the combined figures", stL, get("federation/current.json")},
		{"the leader writes the helper's messages", stL, put("federation/holders/icb/rounds/r/aggregate.json")},
		{"the leader writes under practices/", stL, put(formats.SubmissionKey(practice, run))},
		{"the leader writes the registry", stL, put(formats.RegistryKey)},
		{"the helper reads the leader's shares", stH, get(sharesL)},
		{"the helper publishes", stH, put("federation/secure/r/round.json")},
		{"the helper writes the leader's messages", stH, put("federation/holders/federation/rounds/r/plan.json")},
		{"the helper reads a practice's figures", stH, get(formats.SubmissionKey(practice, run))},
		{"the coordinator reads the leader's shares", stC, get(sharesL)},
		{"the coordinator reads the helper's shares", stC, get(sharesH)},
		{"the coordinator writes a holder's message", stC, put("federation/holders/federation/rounds/r/plan.json")},
		{"the coordinator writes a round's publication", stC, put("federation/secure/r/round.json")},
	}
	for _, c := range denied {
		if err := c.op(c.st); !errors.Is(err, objstore.ErrAccessDenied) {
			t.Errorf("%s: got %v, want ErrAccessDenied", c.name, err)
		}
	}
	// Rotation keeps the holder's role: the helper's new keys still cannot publish.
	rotated, _, err := admin.Rotate(ctx, admin.HolderPolicyName("icb"))
	if err != nil {
		t.Fatal(err)
	}
	if err := put("federation/secure/r/x")(open(rotated)); !errors.Is(err, objstore.ErrAccessDenied) {
		t.Errorf("the helper's rotated keys publish: %v", err)
	}
	if err := get(sharesH)(open(rotated)); err != nil {
		t.Errorf("the helper's rotated keys: %v", err)
	}
}
