package formats

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/apache/arrow/go/v17/arrow/ipc"
)

// The golden files pin the on-disk contract byte for byte. Agents and the coordinator are
// upgraded at different times, so any change to what the writers produce (a schema field, a
// metadata key, JSON field order, compression) must show up in review as a changed file under
// testdata/golden, never slip in with a refactoring. After an intended change, rewrite them with
//
//	go test ./formats -run TestGolden -update
//
// and say in the commit why the format changed (and whether FormatVersion must move).
var update = flag.Bool("update", false, "rewrite formats/testdata/golden from the current writers")

const goldenDir = "testdata/golden"

// goldenFiles builds every golden file from fixed inputs: fixed run id and times, and keys
// from fixed seeds (ed25519.NewKeyFromSeed; Ed25519 signatures are deterministic).
func goldenFiles(t testing.TB) map[string][]byte {
	t.Helper()
	sub := mustMarshal(t, sampleSubmission(practiceA))
	midData := mustMarshal(t, buildSubmission(practiceA, PolicyMidpoint6))
	manifest := mustSign(t, sampleManifest(practiceA, sub), seedKey(1))
	registry, err := SignRegistry(sampleRegistry(t), seedKey(7))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"submission-uk.arrow":        sub,
		"submission-midpoint6.arrow": midData,
		"manifest.json":              manifest,
		"registry.json":              registry,
	}
	// The envelopes carry their payloads in base64; the payloads themselves are kept beside
	// them so that a change to the JSON reads as a diff in review.
	for _, name := range []string{"manifest", "registry"} {
		env, err := ParseEnvelope(files[name+".json"])
		if err != nil {
			t.Fatal(err)
		}
		files[name+".payload.json"] = append(env.Payload, '\n')
	}
	// Likewise a text rendering of each Arrow file: schema, metadata and rows.
	for _, name := range []string{"submission-uk", "submission-midpoint6"} {
		files[name+".txt"] = renderArrow(t, files[name+".arrow"])
	}
	return files
}

// renderArrow writes an Arrow IPC file's schema (with metadata) and rows as text.
func renderArrow(t testing.TB, data []byte) []byte {
	t.Helper()
	r, err := ipc.NewFileReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n", r.Schema())
	for i := 0; i < r.NumRecords(); i++ {
		rec, err := r.Record(i)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "record batch %d: %d rows\n", i, rec.NumRows())
		for row := 0; row < int(rec.NumRows()); row++ {
			for c, col := range rec.Columns() {
				if c > 0 {
					b.WriteString("\t")
				}
				b.WriteString(col.ValueStr(row))
			}
			b.WriteString("\n")
		}
	}
	return b.Bytes()
}

func TestGolden(t *testing.T) {
	files := goldenFiles(t)
	again := goldenFiles(t)
	for name, b := range files {
		if !bytes.Equal(b, again[name]) {
			t.Errorf("%s: writing the same input twice gave different bytes; the writers must be deterministic", name)
		}
		path := filepath.Join(goldenDir, name)
		if *update {
			if err := os.MkdirAll(goldenDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v; create the golden files with: go test ./formats -run TestGolden -update", err)
		}
		if !bytes.Equal(b, want) {
			t.Errorf("%s: the writer's output differs from the golden file (%d bytes, golden %d); if the on-disk format changed on purpose, run go test ./formats -run TestGolden -update and explain the change in the commit", name, len(b), len(want))
		}
	}
}

// TestGoldenReadable reads the committed golden files with the current readers: whatever the
// writers do now, files that agents already uploaded must still verify and read the same.
func TestGoldenReadable(t *testing.T) {
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(goldenDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	reg, err := VerifyRegistry(read("registry.json"), pubOf(seedKey(7)))
	if err != nil {
		t.Fatalf("registry: %v", err)
	}
	if !reflect.DeepEqual(reg, sampleRegistry(t)) {
		t.Errorf("registry reads as %+v", reg)
	}
	envData := read("manifest.json")
	unverified, env, err := ReadManifestUnverified(envData)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := reg.KeyFor(unverified.Practice, env.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	m, err := VerifyManifest(ManifestKey(practiceA, fixedRunID), envData, pub)
	if err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if len(m.Files) != 1 {
		t.Fatalf("manifest lists %d files, want 1", len(m.Files))
	}
	s, err := VerifySubmission(m, m.Files[0], read("submission-uk.arrow"), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	want := sampleSubmission(practiceA)
	want.Sort()
	if !reflect.DeepEqual(s, want) {
		t.Errorf("submission-uk.arrow reads as\n%+v\nwant\n%+v", s, want)
	}
	mid, err := ReadSubmission(read("submission-midpoint6.arrow"), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if mid.Policy != PolicyMidpoint6.Name || len(mid.Cells) != len(want.Cells) {
		t.Errorf("submission-midpoint6.arrow reads as %+v", mid)
	}
}
