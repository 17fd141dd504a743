package main

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tributary-health/tributary/internal/testenv"
)

// installPlugins builds the extractors and copies them into one folder under the names the
// demo looks for.
func installPlugins(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"synthea", "omop", "ukgp", "fhir"} {
		src, err := os.Open(testenv.Binary(t, "./plugins/"+name))
		if err != nil {
			t.Fatal(err)
		}
		dst, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_WRONLY, 0o755)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(dst, src); err != nil {
			t.Fatal(err)
		}
		src.Close()
		if err := dst.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestMixedShapesFromTheBinary runs the built tributary-demo over a folder of practices on
// different systems (the shared sets as they are: Synthea CSV, OMOP CDM CSV, UK GP tables,
// FHIR bulk NDJSON) and a folder of something else: each is recognised and read by its own
// extractor, the unknown one is named with the shapes the demo knows, and the rest combine.
func TestMixedShapesFromTheBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the demo and the plugins")
	}
	bin := testenv.Binary(t, "./demo/cmd/tributary-demo")
	plugins := installPlugins(t)
	practices := t.TempDir()
	link := func(id, rel string) {
		if err := os.Symlink(testenv.SharedData(t, rel), filepath.Join(practices, id)); err != nil {
			t.Fatal(err)
		}
	}
	link("SYN-MA", "synthea_csv_mcode_ma115/csv")
	link("OMOP-NJ", "omop_eunomia_synthea27nj/cdm54")
	link("UKGP-DEM", "uk_opensafely_dummy_dementia1000")
	want := map[string]string{
		"SYN-MA":   "Synthea CSV export, read by the synthea extractor",
		"OMOP-NJ":  "OMOP CDM CSV export, read by the omop extractor",
		"UKGP-DEM": "UK GP tables export, read by the ukgp extractor",
	}
	link("FHIR-KS", "synthea_fhir_bulk_ndjson_ks13")
	want["FHIR-KS"] = "FHIR export, read by the fhir extractor"
	if err := os.MkdirAll(filepath.Join(practices, "NOTES"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(practices, "NOTES", "readme.txt"), []byte("minutes\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--workdir", t.TempDir(), "--practices", practices, "--plugin-dir", plugins,
		"--from", "2016-01", "--to", "2019-12").CombinedOutput()
	text := string(out)
	if err != nil {
		t.Fatalf("tributary-demo: %v\n%s", err, text)
	}
	for id, line := range want {
		if !strings.Contains(text, "practice "+id+": "+line) {
			t.Errorf("the output does not say %q", "practice "+id+": "+line)
		}
		if !strings.Contains(text, "practice "+id+" ") || !strings.Contains(text, "file(s) uploaded") {
			t.Errorf("practice %s did not run", id)
		}
	}
	for _, s := range []string{"practice NOTES: practice folder NOTES: not a shape the demo knows; it knows Synthea CSV",
		"FHIR R4 NDJSON", "OMOP CDM CSV (person.csv", "UK GP tables in ehrQL's shapes (patients.csv and practice_registrations.csv)"} {
		if !strings.Contains(text, s) {
			t.Errorf("the output does not say %q", s)
		}
	}
	if n := len(want); !strings.Contains(text, "combined "+itoa(n)+" practice(s)") {
		t.Errorf("want %d practices combined", n)
	}
	t.Logf("%s", text)
}

func itoa(n int) string {
	return strconv.Itoa(n)
}
