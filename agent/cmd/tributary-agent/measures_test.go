package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/tributary-health/tributary/internal/testenv"
)

// TestMeasuresListsWhatThePracticeCanSupply: 'tributary-agent measures --config' starts the
// configured plugin and lists every built-in measure, supplied or absent with the reason.
func TestMeasuresListsWhatThePracticeCanSupply(t *testing.T) {
	good := testenv.Binary(t, "./plugins/internal/testplugins/good")
	_, cfg := practiceDir(t, good, "from = \"2024-01\"\nto = \"2024-02\"", "rows = \"40\"")
	code, out, errs := agentBin(t, "measures", "--config", cfg)
	if code != 0 {
		t.Fatalf("measures: exit %d\n%s\n%s", code, out, errs)
	}
	t.Logf("tributary-agent measures:\n%s", out)
	for _, want := range []string{
		`admissions_emergency\s+[0-9a-f]{12}\s+yes`,
		`acsc_chronic_emergency\s+[0-9a-f]{12}\s+ABSENT\s+no source sends primary diagnoses in icd10 or snomedct`,
		`readmissions_emergency_30d\s+[0-9a-f]{12}\s+ABSENT\s+no source sends admissions' discharge dates`,
		`built-in measures only: set coordinator_public_key`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("the output does not match %q", want)
		}
	}
	if strings.Contains(out, "PROBLEM") {
		t.Error("a problem reported without a coordinator key")
	}
}
