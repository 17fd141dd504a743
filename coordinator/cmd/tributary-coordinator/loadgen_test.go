package main

import (
	"encoding/csv"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestLoadgenCombineQuery: loadgen, then combine with the key it left where the demo leaves
// it, then query, as the capacity-planning recipe goes.
func TestLoadgenCombineQuery(t *testing.T) {
	dir := t.TempDir()
	store := "file://" + filepath.ToSlash(filepath.Join(dir, "store"))
	code, out, errs := runCLI(t, "loadgen", "--store", store, "--practices", "5", "--months", "14", "--workdir", dir, "--seed", "7")
	if code != 0 || !strings.Contains(out, "wrote a registry of 5 practices and 5 signed runs (2024-11 to 2025-12, 14 months each): 11 objects") {
		t.Fatalf("loadgen: %d %s %s", code, out, errs)
	}
	key := filepath.Join(dir, "coordinator", "coordinator.key")
	if !strings.Contains(out, "combine --store "+store+" --key "+key) {
		t.Errorf("loadgen does not say what to run next:\n%s", out)
	}
	code, out, errs = runCLI(t, "combine", "--store", store, "--key", key)
	if code != 0 || !strings.Contains(out, "combined 5 practices, 70 practice-months (2024-11 to 2025-12) from 5 run files") || errs != "" {
		t.Fatalf("combine: %d %s %s", code, out, errs)
	}
	code, out, errs = runCLI(t, "query", "--store", store, "--measure", "registered_patients", "--by", "month", "--format", "csv")
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if code != 0 || err != nil || len(rows) != 15 {
		t.Fatalf("query: %d %v %s\n%s", code, err, errs, out)
	}
	for _, r := range rows[1:] {
		n, err := strconv.Atoi(r[2])
		// Five lists of 2,000 to 20,000 patients.
		if err != nil || n < 5*2000 || n > 5*20000*1.02 || r[15] != "5" {
			t.Errorf("registered patients in %s: %s from %s practices", r[0], r[2], r[15])
		}
	}
	// A second loadgen with another seed into the same store and workdir is refused.
	if code, _, errs := runCLI(t, "loadgen", "--store", store, "--practices", "1", "--months", "1", "--workdir", dir, "--seed", "8"); code == 0 || !strings.Contains(errs, "another federation") {
		t.Errorf("loadgen over another federation: %d %s", code, errs)
	}
	if code, _, errs := runCLI(t, "loadgen", "--store", store, "--practices", "1", "--months", "1"); code != 2 || !strings.Contains(errs, "--workdir") {
		t.Errorf("loadgen without --workdir: %d %s", code, errs)
	}
}
