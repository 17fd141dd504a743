// Package objstoretest is the conformance suite every objstore.Store must pass.
package objstoretest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/tributary-health/tributary/internal/objstore"
)

// Run runs the suite as subtests of t. newStore must return a new, empty store each call.
func Run(t *testing.T, newStore func(t *testing.T) objstore.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s objstore.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"OverwriteSameBytes", testOverwrite},
		{"Stat", testStat},
		{"ListPrefix", testList},
		{"NotFound", testNotFound},
		{"TooLarge", testTooLarge},
		{"BadKeys", testBadKeys},
		{"DeleteIdempotent", testDelete},
		{"ConcurrentPuts", testConcurrent},
		{"EmptyObject", testEmpty},
		{"LargeObject", testLarge},
		{"Cancelled", testCancelled},
		{"PutIfAbsent", testPutIfAbsent},
		{"PutIfMatch", testPutIfMatch},
		{"PutIfRace", testPutIfRace},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

func sum(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

func put(t *testing.T, s objstore.Store, key string, data []byte) objstore.Info {
	t.Helper()
	info, err := s.Put(context.Background(), key, data)
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return info
}

func checkInfo(t *testing.T, what string, got objstore.Info, key string, data []byte) {
	t.Helper()
	if got.Key != key || got.Size != int64(len(data)) || got.SHA256 != sum(data) {
		t.Errorf("%s: Info = {Key:%q Size:%d SHA256:%s}, want {Key:%q Size:%d SHA256:%s}",
			what, got.Key, got.Size, got.SHA256, key, len(data), sum(data))
	}
	if got.Modified.IsZero() {
		t.Errorf("%s: Info.Modified is zero", what)
	}
}

// secret is content that must never appear in an error's text.
var secret = []byte("PATIENT-LEVEL-CONTENT-MUST-NOT-LEAK")

func checkErr(t *testing.T, what string, err, kind error, op, key string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Errorf("%s: error %v, want kind %q", what, err, kind)
		return
	}
	msg := err.Error()
	if !strings.Contains(msg, op) || !strings.Contains(msg, key) {
		t.Errorf("%s: error %q does not name the operation %q and the key %q", what, msg, op, key)
	}
	if strings.Contains(msg, string(secret)) {
		t.Errorf("%s: error %q contains object content", what, msg)
	}
}

func testRoundTrip(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	data := append([]byte("round trip "), secret...)
	key := "practices/A81001/runs/20260101T000000Z-0123abcd/2025-12.arrow"
	checkInfo(t, "Put", put(t, s, key, data), key, data)
	got, info, err := s.Get(ctx, key, 1<<20)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("Get returned %q, want %q", got, data)
	}
	checkInfo(t, "Get", info, key, data)

	other := []byte("a different object")
	put(t, s, key+".2", other)
	if got, _, err := s.Get(ctx, key, 1<<20); err != nil || !bytes.Equal(got, data) {
		t.Errorf("after putting a neighbour, Get = %q, %v; want the original", got, err)
	}
}

func testOverwrite(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	key := "federation/registry.json"
	data := []byte(`{"practices":[]}`)
	first := put(t, s, key, data)
	second := put(t, s, key, data)
	if first.SHA256 != second.SHA256 || first.Size != second.Size {
		t.Errorf("putting the same bytes twice gave %+v then %+v", first, second)
	}
	got, _, err := s.Get(ctx, key, 1<<20)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("Get after second Put = %q, %v", got, err)
	}
	list, err := s.List(ctx, "federation/")
	if err != nil || len(list) != 1 {
		t.Errorf("List after two Puts of one key = %v, %v; want one object", list, err)
	}
}

func testStat(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	for _, data := range [][]byte{[]byte("x"), bytes.Repeat([]byte("0123456789"), 1000)} {
		key := fmt.Sprintf("stat/%d", len(data))
		put(t, s, key, data)
		info, err := s.Stat(ctx, key)
		if err != nil {
			t.Fatalf("Stat(%q): %v", key, err)
		}
		checkInfo(t, "Stat "+key, info, key, data)
	}
}

func testList(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	keys := []string{
		"practices/A/runs/r2/manifest.json",
		"practices/A/runs/r1/2025-01.arrow",
		"practices/A/x",
		"practices/A-1/x",
		"practices/A.b/x",
		"practices/AB/y",
		"practices/B/z",
		"federation/registry.json",
		"top",
	}
	for i, k := range keys {
		put(t, s, k, []byte(strings.Repeat("k", i+1)))
	}
	tests := []struct {
		prefix string
		want   []string
	}{
		{"practices/A/", []string{"practices/A/runs/r1/2025-01.arrow", "practices/A/runs/r2/manifest.json", "practices/A/x"}},
		{"practices/A", []string{"practices/A-1/x", "practices/A.b/x", "practices/A/runs/r1/2025-01.arrow", "practices/A/runs/r2/manifest.json", "practices/A/x", "practices/AB/y"}},
		{"practices/A/runs/r1/", []string{"practices/A/runs/r1/2025-01.arrow"}},
		{"practices/A/runs/r", []string{"practices/A/runs/r1/2025-01.arrow", "practices/A/runs/r2/manifest.json"}},
		{"practices/A/x", []string{"practices/A/x"}},
		{"practices/C/", nil},
		{"nowhere/at/all/", nil},
		{"t", []string{"top"}},
		{"", slices.Sorted(slices.Values(keys))},
	}
	for _, tc := range tests {
		list, err := s.List(ctx, tc.prefix)
		if err != nil {
			t.Errorf("List(%q): %v", tc.prefix, err)
			continue
		}
		var got []string
		for _, info := range list {
			got = append(got, info.Key)
			i := slices.Index(keys, info.Key)
			if i >= 0 && info.Size != int64(i+1) {
				t.Errorf("List(%q): %s has size %d, want %d", tc.prefix, info.Key, info.Size, i+1)
			}
			if info.SHA256 != "" && info.SHA256 != sum([]byte(strings.Repeat("k", i+1))) {
				t.Errorf("List(%q): %s has a wrong SHA256 %s", tc.prefix, info.Key, info.SHA256)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
}

func testNotFound(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	put(t, s, "practices/A/runs/r1/manifest.json", secret)
	for _, key := range []string{"missing", "practices/A/runs/r1/manifest.jso", "practices/A/runs/r1", "practices", "practices/A/runs/r1/manifest.json/more"} {
		_, _, err := s.Get(ctx, key, 1<<20)
		checkErr(t, "Get "+key, err, objstore.ErrNotFound, "get", key)
		_, err = s.Stat(ctx, key)
		checkErr(t, "Stat "+key, err, objstore.ErrNotFound, "stat", key)
	}
}

func testTooLarge(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	key := "big/one"
	data := bytes.Repeat(secret, 3)
	put(t, s, key, data)
	n := int64(len(data))
	for _, max := range []int64{0, 1, n - 1} {
		got, _, err := s.Get(ctx, key, max)
		checkErr(t, fmt.Sprintf("Get with maxBytes %d of %d", max, n), err, objstore.ErrTooLarge, "get", key)
		if got != nil {
			t.Errorf("Get refused with %v but returned %d bytes", err, len(got))
		}
	}
	if got, _, err := s.Get(ctx, key, n); err != nil || !bytes.Equal(got, data) {
		t.Errorf("Get with maxBytes equal to the size = %d bytes, %v", len(got), err)
	}
}

func testBadKeys(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	bad := []string{
		"", "/abs", "/", "..", ".", "../escape", "a/../../escape", "a/..", "./a", "a/./b",
		"a//b", "a/", "a\\b", "..\\escape", "a\x00b", "a\nb", "C:/windows", "a:b",
		strings.Repeat("k", objstore.MaxKeyLen+1),
	}
	for _, key := range bad {
		if _, err := s.Put(ctx, key, []byte("x")); !errors.Is(err, objstore.ErrBadKey) {
			t.Errorf("Put(%q) = %v, want ErrBadKey", key, err)
		}
		if _, _, err := s.Get(ctx, key, 10); !errors.Is(err, objstore.ErrBadKey) {
			t.Errorf("Get(%q) = %v, want ErrBadKey", key, err)
		}
		if _, err := s.Stat(ctx, key); !errors.Is(err, objstore.ErrBadKey) {
			t.Errorf("Stat(%q) = %v, want ErrBadKey", key, err)
		}
		if err := s.Delete(ctx, key); !errors.Is(err, objstore.ErrBadKey) {
			t.Errorf("Delete(%q) = %v, want ErrBadKey", key, err)
		}
	}
	for _, prefix := range []string{"/", "/abs", "../", "a/../", "a//", "a\\", "a\x00"} {
		if _, err := s.List(ctx, prefix); !errors.Is(err, objstore.ErrBadKey) {
			t.Errorf("List(%q) = %v, want ErrBadKey", prefix, err)
		}
	}
	if list, err := s.List(ctx, ""); err != nil || len(list) != 0 {
		t.Errorf("after refused puts, List(\"\") = %v, %v; want nothing stored", list, err)
	}
}

func testDelete(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	key := "practices/A/old"
	if err := s.Delete(ctx, key); err != nil {
		t.Errorf("Delete of a missing object: %v", err)
	}
	put(t, s, key, []byte("x"))
	put(t, s, key+"er", []byte("y"))
	if err := s.Delete(ctx, key); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, _, err := s.Get(ctx, key, 10); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("Get after Delete = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, key); err != nil {
		t.Errorf("second Delete: %v", err)
	}
	list, err := s.List(ctx, "practices/")
	if err != nil || len(list) != 1 || list[0].Key != key+"er" {
		t.Errorf("List after Delete = %v, %v; want only %s", list, err, key+"er")
	}
	if err := s.Delete(ctx, "practices"); err != nil {
		t.Errorf("Delete of a key that is only a prefix: %v", err)
	}
	if _, err := s.Stat(ctx, key+"er"); err != nil {
		t.Errorf("deleting a prefix removed an object under it: %v", err)
	}
}

func testConcurrent(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = s.Put(ctx, fmt.Sprintf("practices/P%02d/runs/r/m.json", i), fmt.Appendf(nil, "object %d", i))
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent Put %d: %v", i, err)
		}
	}
	list, err := s.List(ctx, "practices/")
	if err != nil || len(list) != n {
		t.Fatalf("List after %d concurrent puts = %d objects, %v", n, len(list), err)
	}
	for i, info := range list {
		got, _, err := s.Get(ctx, info.Key, 100)
		if want := fmt.Sprintf("object %d", i); err != nil || string(got) != want {
			t.Errorf("Get(%q) = %q, %v; want %q", info.Key, got, err, want)
		}
	}
}

func testEmpty(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	key := "empty"
	checkInfo(t, "Put", put(t, s, key, nil), key, nil)
	got, info, err := s.Get(ctx, key, 0)
	if err != nil || len(got) != 0 {
		t.Fatalf("Get of an empty object with maxBytes 0 = %q, %v", got, err)
	}
	checkInfo(t, "Get", info, key, nil)
	info, err = s.Stat(ctx, key)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	checkInfo(t, "Stat", info, key, nil)
}

func testLarge(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	data := make([]byte, 8<<20+123)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	key := "large/object.arrow"
	checkInfo(t, "Put", put(t, s, key, data), key, data)
	got, info, err := s.Get(ctx, key, int64(len(data)))
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Errorf("Get returned %d bytes that differ from the %d put", len(got), len(data))
	}
	checkInfo(t, "Get", info, key, data)
	if _, _, err := s.Get(ctx, key, 1<<20); !errors.Is(err, objstore.ErrTooLarge) {
		t.Errorf("Get with a 1 MiB limit = %v, want ErrTooLarge", err)
	}
	info, err = s.Stat(ctx, key)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	checkInfo(t, "Stat", info, key, data)
}

func testCancelled(t *testing.T, s objstore.Store) {
	put(t, s, "k", []byte("x"))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Put(ctx, "k2", []byte("x"))
	checkErr(t, "Put with a cancelled context", err, context.Canceled, "put", "k2")
	_, _, err = s.Get(ctx, "k", 10)
	checkErr(t, "Get with a cancelled context", err, context.Canceled, "get", "k")
	if _, err := s.List(ctx, ""); !errors.Is(err, context.Canceled) {
		t.Errorf("List with a cancelled context = %v, want context.Canceled", err)
	}
	if _, err := s.Stat(context.Background(), "k2"); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("a Put with a cancelled context stored something: Stat = %v", err)
	}
}

func sha(data []byte) string { return sum(data) }

// testPutIfAbsent: with Absent, PutIf creates an object and refuses to replace one.
func testPutIfAbsent(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	key := "federation/current.json"
	first := []byte(`{"id":"first"}`)
	info, err := s.PutIf(ctx, key, first, objstore.Absent)
	if err != nil {
		t.Fatalf("PutIf on a new key: %v", err)
	}
	checkInfo(t, "PutIf", info, key, first)
	_, err = s.PutIf(ctx, key, append([]byte("second "), secret...), objstore.Absent)
	checkErr(t, "PutIf Absent over an object", err, objstore.ErrConflict, "put", key)
	if got, _, err := s.Get(ctx, key, 1<<20); err != nil || !bytes.Equal(got, first) {
		t.Errorf("after a refused PutIf, Get = %q, %v; want the first object", got, err)
	}
	if _, err := s.PutIf(ctx, "a//b", first, objstore.Absent); !errors.Is(err, objstore.ErrBadKey) {
		t.Errorf("PutIf with a bad key = %v, want ErrBadKey", err)
	}
}

// testPutIfMatch: PutIf replaces the object the caller read, and nothing else.
func testPutIfMatch(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	key := "federation/registry.json"
	v1, v2, v3 := []byte("version 1"), []byte("version 2"), []byte("version 3")
	put(t, s, key, v1)
	info, err := s.PutIf(ctx, key, v2, sha(v1))
	if err != nil {
		t.Fatalf("PutIf with the current SHA-256: %v", err)
	}
	checkInfo(t, "PutIf", info, key, v2)
	// A writer that read version 1 is now stale.
	_, err = s.PutIf(ctx, key, v3, sha(v1))
	checkErr(t, "PutIf with a stale SHA-256", err, objstore.ErrConflict, "put", key)
	if got, _, err := s.Get(ctx, key, 1<<20); err != nil || !bytes.Equal(got, v2) {
		t.Errorf("after a refused PutIf, Get = %q, %v; want version 2", got, err)
	}
	// Same bytes again still match: the condition is on content.
	put(t, s, key, v2)
	if _, err := s.PutIf(ctx, key, v3, sha(v2)); err != nil {
		t.Errorf("PutIf after the same bytes were put again: %v", err)
	}
	// A removed object is not the one read.
	if err := s.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	_, err = s.PutIf(ctx, key, v1, sha(v3))
	checkErr(t, "PutIf on a removed object", err, objstore.ErrConflict, "put", key)
	if _, err := s.Stat(ctx, key); !errors.Is(err, objstore.ErrNotFound) {
		t.Errorf("a refused PutIf on a removed object stored something: Stat = %v", err)
	}
	ctxc, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.PutIf(ctxc, key, v1, objstore.Absent); !errors.Is(err, context.Canceled) {
		t.Errorf("PutIf with a cancelled context = %v, want context.Canceled", err)
	}
}

// testPutIfRace: writers that each read, change and PutIf a counter, retrying on
// ErrConflict (and on a read that met a replacement), lose no update: PutIf is a
// compare-and-swap.
func testPutIfRace(t *testing.T, s objstore.Store) {
	ctx := context.Background()
	key := "federation/counter"
	const writers, each = 6, 4
	var wg sync.WaitGroup
	errs := make([]error, writers)
	conflicts := make([]int, writers)
	for w := range writers {
		wg.Go(func() {
			for range each {
				for {
					data, info, err := s.Get(ctx, key, 100)
					var n int
					switch {
					case errors.Is(err, objstore.ErrUnavailable) && conflicts[w] < 1000:
						conflicts[w]++ // replaced while being read: read again
						continue
					case errors.Is(err, objstore.ErrNotFound):
						info.SHA256 = objstore.Absent
					case err != nil:
						errs[w] = err
						return
					default:
						fmt.Sscan(string(data), &n)
					}
					_, err = s.PutIf(ctx, key, fmt.Appendf(nil, "%d", n+1), info.SHA256)
					if errors.Is(err, objstore.ErrConflict) {
						conflicts[w]++
						continue
					}
					if err != nil {
						errs[w] = err
						return
					}
					break
				}
			}
		})
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", w, err)
		}
	}
	got, _, err := s.Get(ctx, key, 100)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, c := range conflicts {
		total += c
	}
	t.Logf("%d writers × %d increments: %d conflicts and interrupted reads retried", writers, each, total)
	if want := fmt.Sprint(writers * each); string(got) != want {
		t.Errorf("the counter reads %s after %s increments: PutIf lost updates", got, want)
	}
}
