package pluginbench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tributary-health/tributary/internal/synthconv"
	"github.com/tributary-health/tributary/internal/synthgen"
)

// Practice is one generated practice in each shape an extractor reads: the same people and
// contacts as Synthea CSV (internal/synthgen), FHIR R4 bulk NDJSON plain and gzip-compressed,
// OMOP CDM 5.4 CSV files and UK GP tables in ehrQL's shapes (internal/synthconv).
type Practice struct {
	CSV, FHIR, FHIRGz, OMOP, UKGP string
}

// BenchEncountersPerPatient is about what synthgen's default rate gives over ten years.
const BenchEncountersPerPatient = 58

// Generate returns the practice of about encounters encounters over patients patients
// (synthgen seed 1), writing each shape under $TMPDIR/tributary-plugin-bench on first use and
// reusing it after (about 2.5 GB at a million encounters; delete the folder to free the space).
func Generate(tb testing.TB, encounters, patients int) Practice {
	tb.Helper()
	root := filepath.Join(os.TempDir(), "tributary-plugin-bench", fmt.Sprintf("e%d-p%d-seed1", encounters, patients))
	p := Practice{
		CSV: filepath.Join(root, "csv"), FHIR: filepath.Join(root, "ndjson"),
		FHIRGz: filepath.Join(root, "ndjson-gz"), OMOP: filepath.Join(root, "omop"), UKGP: filepath.Join(root, "ukgp"),
	}
	shape := func(dir string, make func() (any, error)) {
		done := dir + ".done.json"
		if _, err := os.Stat(done); err == nil {
			return
		}
		os.RemoveAll(dir)
		start := time.Now()
		st, err := make()
		if err != nil {
			tb.Fatal(err)
		}
		data, _ := json.Marshal(st)
		if err := os.WriteFile(done, data, 0o644); err != nil {
			tb.Fatal(err)
		}
		tb.Logf("generated %s in %s: %s", dir, time.Since(start).Round(time.Second), data)
	}
	shape(p.CSV, func() (any, error) {
		rate := 6 * float64(encounters) / float64(patients*BenchEncountersPerPatient)
		return synthgen.Write(p.CSV, synthgen.Config{Seed: 1, Patients: patients, EncountersPerPatientYear: rate})
	})
	shape(p.FHIR, func() (any, error) { return synthconv.ToFHIR(p.CSV, p.FHIR, synthconv.FHIROptions{}) })
	shape(p.FHIRGz, func() (any, error) { return synthconv.ToFHIR(p.CSV, p.FHIRGz, synthconv.FHIROptions{Gzip: true}) })
	shape(p.OMOP, func() (any, error) { return synthconv.ToOMOP(p.CSV, p.OMOP) })
	shape(p.UKGP, func() (any, error) { return synthconv.ToUKGP(p.CSV, p.UKGP) })
	return p
}
