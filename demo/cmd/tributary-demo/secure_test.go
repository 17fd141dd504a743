package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tributary-health/tributary/internal/testenv"
)

// TestDemoSecureAggregation runs the built tributary-demo with --secure-aggregation over
// three generated practices: every agent sends shares to the two holders, the holders run
// their round through the local store, and the demo prints today's table and then the same
// months by secure aggregation, marked secure, each within 2 of a truth that the summed
// figures' own bounds also hold.
func TestDemoSecureAggregation(t *testing.T) {
	bin := testenv.Binary(t, "./demo/cmd/tributary-demo")
	plugin := testenv.Binary(t, "./plugins/synthea")
	work := t.TempDir()
	cmd := exec.Command(bin, "--workdir", work, "--plugin", plugin, "--generate", "3", "--patients", "2500",
		"--from", "2024-01", "--to", "2024-03", "--secure-aggregation")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("tributary-demo: %v\n%s\n%s", err, out.String(), errb.String())
	}
	text := out.String()
	if !strings.Contains(text, "secure aggregation: holders federation and icb verified and summed 9 report(s)") {
		t.Fatalf("the holders did not sum the nine practice-months:\n%s", text)
	}
	head, secureTable, ok := strings.Cut(text, "The same months by secure aggregation")
	if !ok {
		t.Fatalf("no secure table:\n%s", text)
	}
	summed := map[string][2]int64{}
	for _, m := range regexp.MustCompile(`(?m)^\s+(2024-0\d)\s+(\w+)\s+(\d+)\s+(\d+)\s+(\d+)\s`).FindAllStringSubmatch(head, -1) {
		lo, _ := strconv.ParseInt(m[4], 10, 64)
		hi, _ := strconv.ParseInt(m[5], 10, 64)
		summed[m[1]+" "+m[2]] = [2]int64{lo, hi}
	}
	rows := regexp.MustCompile(`(?m)^\s+(2024-0\d)\s+(\w+)\s+(\d+)\s+(\d+)\s+(\d+)\s+rounded\s+3\s+secure\s*$`).FindAllStringSubmatch(secureTable, -1)
	if len(rows) != 3*4 {
		t.Fatalf("%d secure rows, want 12:\n%s", len(rows), secureTable)
	}
	for _, r := range rows {
		c, _ := strconv.ParseInt(r[3], 10, 64)
		lo, _ := strconv.ParseInt(r[4], 10, 64)
		hi, _ := strconv.ParseInt(r[5], 10, 64)
		s, ok := summed[r[1]+" "+r[2]]
		if !ok {
			t.Fatalf("no summed row for %s %s:\n%s", r[1], r[2], head)
		}
		if lo != c-2 || hi != c+2 || hi < s[0] || lo > s[1] {
			t.Errorf("%s %s: secure %d [%d, %d], summed bounds [%d, %d]: the truth cannot lie in both", r[1], r[2], c, lo, hi, s[0], s[1])
		}
	}
	// Every practice's run sent two shares files.
	shares, _ := filepath.Glob(filepath.Join(work, "store", "practices", "*", "runs", "*", "shares-*.bin"))
	if len(shares) != 6 {
		t.Errorf("%d shares files in the store, want 6: %v", len(shares), shares)
	}
	if _, err := os.Stat(filepath.Join(work, "holders", "federation", "state", "state.json")); err != nil {
		t.Errorf("the leader kept no state: %v", err)
	}
}
