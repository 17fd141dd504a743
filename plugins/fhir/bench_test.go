package main

import (
	"fmt"
	"testing"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/pluginbench"
	"github.com/tributary-health/tributary/internal/testenv"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// BenchmarkFHIRExtract streams a generated practice of about a million encounters through the
// Synthea extractor (its CSV) and through this one (the same practice converted to FHIR bulk
// NDJSON by internal/synthconv, plain and gzip-compressed, Encounter lines shaped like Synthea's
// own FHIR export, about 1.5 KB each), through the real host, and prints events per plugin
// CPU-second and peak RSS side by side:
//
//	go test -run '^$' -bench BenchmarkFHIRExtract -benchtime 3x -timeout 30m ./plugins/fhir/
//
// TRIBUTARY_BENCH_ENCOUNTERS (default 1000000) and TRIBUTARY_BENCH_PATIENTS (default 17241)
// set the size. The inputs are kept in $TMPDIR/tributary-plugin-bench between runs (see
// pluginbench.Generate). BenchmarkExtractors in internal/pluginbench measures every extractor.
func BenchmarkFHIRExtract(b *testing.B) {
	encounters := testenv.EnvInt(b, "TRIBUTARY_BENCH_ENCOUNTERS", 1000000)
	patients := testenv.EnvInt(b, "TRIBUTARY_BENCH_PATIENTS", 17241)
	practice := pluginbench.Generate(b, encounters, patients)
	csvDir, ndjson, gz := practice.CSV, practice.FHIR, practice.FHIRGz
	req := sdk.Request{From: formats.MonthFor(2015, 1), To: formats.MonthFor(2025, 1)}
	with := func(c map[string]string) sdk.Request { r := req; r.Config = c; return r }
	fhirConfig := func(dir string) map[string]string {
		return map[string]string{"dir": dir, "outpatient_types": "185347001,371883000"}
	}
	var table pluginbench.Table
	b.Run("synthea-csv/host", func(b *testing.B) {
		bin := testenv.Binary(b, "./plugins/synthea")
		table.Add(pluginbench.Host(b, "synthea, CSV (host)", bin, with(map[string]string{"dir": csvDir})))
	})
	b.Run("fhir-ndjson/host", func(b *testing.B) {
		bin := testenv.Binary(b, "./plugins/fhir")
		table.Add(pluginbench.Host(b, "fhir, NDJSON (host)", bin, with(fhirConfig(ndjson))))
	})
	b.Run("fhir-ndjson-gz/host", func(b *testing.B) {
		bin := testenv.Binary(b, "./plugins/fhir")
		table.Add(pluginbench.Host(b, "fhir, NDJSON.gz (host)", bin, with(fhirConfig(gz))))
	})
	b.Run("fhir-ndjson/inprocess", func(b *testing.B) {
		table.Add(pluginbench.InProcess(b, "fhir, NDJSON (in process)", Extractor{}, with(fhirConfig(ndjson))))
	})
	fmt.Printf("BenchmarkFHIRExtract: %d encounters of %d patients, 2015-01 to 2025-01:\n%s", encounters, patients, table.String())
}
