package main

import (
	"fmt"
	"strings"
	"testing"
)

// ev writes one go test -json line.
func ev(action, pkg, test, output string) string {
	return fmt.Sprintf(`{"Action":%q,"Package":%q,"Test":%q,"Output":%q}`+"\n", action, pkg, test, output)
}

func TestReport(t *testing.T) {
	const p = "example.org/m/p"
	tests := []struct {
		name    string
		in      string
		ok      bool
		last    string
		has     []string // substrings the report must contain
		hasNot  []string
		verbose bool
	}{
		{
			name: "all pass",
			in: ev("start", p, "", "") + ev("run", p, "TestA", "") + ev("output", p, "TestA", "=== RUN   TestA\n") +
				ev("output", p, "TestA", "--- PASS: TestA (0.00s)\n") + ev("pass", p, "TestA", "") +
				ev("output", p, "", "PASS\n") + ev("output", p, "", "ok  \t"+p+"\t0.1s\n") + ev("pass", p, "", ""),
			ok: true, last: "1 passed, 0 failed, 0 skipped",
			has: []string{"ok  \t" + p}, hasNot: []string{"=== RUN", "PASS\n"},
		},
		{
			name: "verbose passes everything",
			in: ev("run", p, "TestA", "") + ev("output", p, "TestA", "=== RUN   TestA\n") + ev("pass", p, "TestA", "") +
				ev("output", p, "", "PASS\n") + ev("pass", p, "", ""),
			ok: true, last: "1 passed, 0 failed, 0 skipped", verbose: true,
			has: []string{"=== RUN   TestA\n", "PASS\n"},
		},
		{
			name: "a failing subtest counts once, by its leaf",
			in: ev("run", p, "TestA", "") + ev("run", p, "TestA/x", "") + ev("run", p, "TestA/y", "") +
				ev("output", p, "TestA", "=== RUN   TestA\n") + ev("output", p, "TestA/x", "=== RUN   TestA/x\n") +
				ev("output", p, "TestA/x", "    a_test.go:9: boom\n") + ev("output", p, "TestA/x", "    --- FAIL: TestA/x (0.00s)\n") + ev("fail", p, "TestA/x", "") +
				ev("output", p, "TestA/y", "    --- PASS: TestA/y (0.00s)\n") + ev("pass", p, "TestA/y", "") +
				ev("output", p, "TestA", "--- FAIL: TestA (0.00s)\n") + ev("fail", p, "TestA", "") + ev("fail", p, "", ""),
			ok: false, last: "1 passed, 1 failed, 0 skipped",
			has:    []string{"    a_test.go:9: boom\n    --- FAIL: TestA/x (0.00s)\n--- FAIL: TestA (0.00s)\n", "Failed:\n  " + p + " TestA/x\n"},
			hasNot: []string{"=== RUN", "TestA/y (0.00s)"},
		},
		{
			name: "a parent failing outside its passing subtests counts",
			in: ev("run", p, "TestA", "") + ev("run", p, "TestA/x", "") + ev("pass", p, "TestA/x", "") +
				ev("fail", p, "TestA", "") + ev("fail", p, "", ""),
			ok: false, last: "1 passed, 1 failed, 0 skipped",
			has: []string{"  " + p + " TestA\n"},
		},
		{
			name: "skips are counted with their reason",
			in: ev("run", p, "TestS", "") + ev("output", p, "TestS", "=== RUN   TestS\n") +
				ev("output", p, "TestS", "    s_test.go:3: needs MinIO\n") + ev("skip", p, "TestS", "") + ev("pass", p, "", ""),
			ok: true, last: "0 passed, 0 failed, 1 skipped",
			has: []string{"TestS: s_test.go:3: needs MinIO"},
		},
		{
			name: "a panic leaves a test unfinished",
			in:   ev("run", p, "TestP", "") + ev("output", p, "TestP", "panic: oops\n") + ev("fail", p, "", ""),
			ok:   false, last: "0 passed, 1 failed, 0 skipped",
			has: []string{"panic: oops", "TestP (never finished)"},
		},
		{
			name: "a build failure fails the run",
			in: `{"ImportPath":"example.org/m/q [example.org/m/q.test]","Action":"build-output","Output":"q.go:1: syntax error\n"}` + "\n" +
				`{"ImportPath":"example.org/m/q [example.org/m/q.test]","Action":"build-fail"}` + "\n" +
				`{"Action":"fail","Package":"example.org/m/q","FailedBuild":"example.org/m/q [example.org/m/q.test]"}` + "\n",
			ok: false, last: "0 passed, 0 failed, 0 skipped",
			has: []string{"q.go:1: syntax error", "(did not build)", "1 package(s) failed"},
		},
		{
			name: "a package failing outside tests fails the run",
			in:   ev("run", p, "TestA", "") + ev("pass", p, "TestA", "") + ev("output", p, "", "TestMain exited 1\n") + ev("fail", p, "", ""),
			ok:   false, last: "1 passed, 0 failed, 0 skipped",
			has: []string{"(failed outside any test)"},
		},
		{
			name: "lines that are not JSON pass through",
			in:   "go: downloading example.org/x v1.0.0\n" + ev("skip", p, "", ""),
			ok:   true, last: "0 passed, 0 failed, 0 skipped",
			has: []string{"go: downloading example.org/x v1.0.0\n", "(packages without tests: 1)"},
		},
		{
			name: "a cut-off stream fails",
			in:   ev("run", p, "TestA", "") + ev("pass", p, "TestA", ""),
			ok:   false, last: "1 passed, 0 failed, 0 skipped",
			has: []string{"cut short"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			r := newReport(&out, tc.verbose)
			if err := r.read(strings.NewReader(tc.in)); err != nil {
				t.Fatal(err)
			}
			ok := r.summary()
			got := out.String()
			if ok != tc.ok {
				t.Errorf("summary() = %v, want %v; report:\n%s", ok, tc.ok, got)
			}
			lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
			if last := lines[len(lines)-1]; last != tc.last {
				t.Errorf("last line %q, want %q", last, tc.last)
			}
			for _, s := range tc.has {
				if !strings.Contains(got, s) {
					t.Errorf("report lacks %q:\n%s", s, got)
				}
			}
			for _, s := range tc.hasNot {
				if strings.Contains(got, s) {
					t.Errorf("report has %q:\n%s", s, got)
				}
			}
		})
	}
}
