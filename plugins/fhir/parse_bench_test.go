package main

import (
	"bufio"
	"os"
	"path/filepath"
	"testing"

	"github.com/tributary-health/tributary/internal/testenv"
)

// BenchmarkParseEncounter reads the Encounter lines of the shared bulk export (Synthea's own
// FHIR) with the extractor's JSON reader, to see the parser alone.
func BenchmarkParseEncounter(b *testing.B) {
	f, err := os.Open(filepath.Join(testenv.SharedData(b, "synthea_fhir_bulk_ndjson_ks13"), "Encounter.000.ndjson"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var lines [][]byte
	size := 0
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
		size += len(sc.Bytes())
	}
	if len(lines) < 1000 {
		b.Fatalf("only %d Encounter lines", len(lines))
	}
	var s scanner
	var r resource
	b.SetBytes(int64(size / len(lines)))
	i := 0
	for b.Loop() {
		l := lines[i%len(lines)]
		i++
		s.reset(l)
		r.reset()
		parseResource(&s, &r)
		if s.err != nil {
			b.Fatal(s.err)
		}
	}
}
