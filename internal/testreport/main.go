// Command testreport reads `go test -json` on stdin and writes what people read: the output
// of failed tests and each package's result line as they come (everything with -v), then a
// summary per package, the failed and skipped tests, and a last line
// "N passed, N failed, N skipped" counting leaf tests. It exits 1 if any test or package
// failed, a package did not build, or a test never finished.
//
//	go test -json ./... | go run ./internal/testreport
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

func main() {
	verbose := flag.Bool("v", false, "pass through all test output, as go test -v would print it")
	flag.Parse()
	r := newReport(os.Stdout, *verbose)
	if err := r.read(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "testreport: reading go test -json:", err)
		os.Exit(2)
	}
	if !r.summary() {
		os.Exit(1)
	}
}

// event is one line of `go test -json` (see `go doc test2json`) or of build output (see
// `go help buildjson`).
type event struct {
	Action      string
	Package     string
	Test        string
	Output      string
	FailedBuild string
	ImportPath  string
}

type test struct {
	name     string
	result   string   // "pass", "fail", "skip", or "" if it never finished
	parent   bool     // has subtests, so not counted itself
	out      []string // its own output
	tree     []string // for a top-level test, the output of it and its subtests as it came
	subtests []*test
}

type pkg struct {
	name        string
	tests       map[string]*test
	order       []*test
	result      string
	failedBuild bool
}

type report struct {
	w       io.Writer
	verbose bool
	pkgs    map[string]*pkg
	order   []*pkg
}

func newReport(w io.Writer, verbose bool) *report {
	return &report{w: w, verbose: verbose, pkgs: map[string]*pkg{}}
}

func (r *report) pkg(name string) *pkg {
	p := r.pkgs[name]
	if p == nil {
		p = &pkg{name: name, tests: map[string]*test{}}
		r.pkgs[name] = p
		r.order = append(r.order, p)
	}
	return p
}

func (r *report) read(in io.Reader) error {
	br := bufio.NewReader(in)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			r.line(line)
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (r *report) line(line string) {
	var e event
	if !strings.HasPrefix(line, "{") || json.Unmarshal([]byte(line), &e) != nil {
		io.WriteString(r.w, line) // not JSON: a message from the go command itself
		return
	}
	switch e.Action {
	case "build-output":
		io.WriteString(r.w, e.Output)
		return
	case "build-fail":
		return // the test package's own fail event, with FailedBuild, follows
	}
	p := r.pkg(e.Package)
	if e.Test == "" {
		r.packageEvent(p, e)
		return
	}
	t := p.tests[e.Test]
	if t == nil {
		t = &test{name: e.Test}
		p.tests[e.Test] = t
		p.order = append(p.order, t)
		if i := strings.LastIndexByte(e.Test, '/'); i >= 0 {
			if parent := p.tests[e.Test[:i]]; parent != nil {
				parent.parent = true
				parent.subtests = append(parent.subtests, t)
			}
		}
	}
	switch e.Action {
	case "output":
		t.out = append(t.out, e.Output)
		root := e.Test
		if i := strings.IndexByte(root, '/'); i >= 0 {
			root = root[:i]
		}
		if rt := p.tests[root]; rt != nil {
			rt.tree = append(rt.tree, e.Output)
		}
		if r.verbose {
			io.WriteString(r.w, e.Output)
		}
	case "pass", "skip":
		t.result = e.Action
	case "fail":
		t.result = e.Action
		if !r.verbose && !strings.Contains(e.Test, "/") {
			r.printTest(t)
		}
	}
}

func (r *report) packageEvent(p *pkg, e event) {
	switch e.Action {
	case "output":
		if r.verbose || e.Output != "PASS\n" {
			io.WriteString(r.w, e.Output)
		}
	case "pass", "fail", "skip":
		p.result = e.Action
		if e.FailedBuild != "" {
			p.failedBuild = true
		}
		if e.Action == "fail" && !r.verbose {
			// A panic or timeout leaves tests unfinished; show what they printed.
			for _, t := range p.order {
				if t.result == "" && !strings.Contains(t.name, "/") {
					r.printTest(t)
				}
			}
		}
	}
}

// printTest writes the output of top-level test t and its subtests, leaving out what go test
// shows only with -v: progress lines and passing subtests' results.
func (r *report) printTest(t *test) {
	for _, line := range t.tree {
		s := strings.TrimLeft(line, " ")
		if strings.HasPrefix(s, "=== ") || strings.HasPrefix(s, "--- PASS: ") && strings.Contains(s, "/") {
			continue
		}
		io.WriteString(r.w, line)
	}
}

type counts struct{ passed, failed, skipped int }

// summary writes the closing report and says whether everything passed.
func (r *report) summary() bool {
	var total counts
	var failed, skipped []string
	badPkgs, noTests := 0, 0
	fmt.Fprintln(r.w)
	fmt.Fprintln(r.w, "=== Summary")
	for _, p := range r.order {
		var c counts
		for _, t := range p.order {
			full := p.name + " " + t.name
			switch {
			case !t.parent:
				switch t.result {
				case "pass":
					c.passed++
				case "skip":
					c.skipped++
					skipped = append(skipped, full+reason(t))
				case "fail":
					c.failed++
					failed = append(failed, full)
				default:
					c.failed++
					failed = append(failed, full+" (never finished)")
				}
			case t.result == "fail" && !anyFailed(t):
				// Failed outside its subtests, which all passed: count the failure.
				c.failed++
				failed = append(failed, full)
			}
		}
		total.passed += c.passed
		total.failed += c.failed
		total.skipped += c.skipped
		note := ""
		switch {
		case p.failedBuild:
			note = " (did not build)"
		case p.result == "fail" && c.failed == 0:
			note = " (failed outside any test)"
		case p.result == "skip" && len(p.order) == 0:
			note = " (no tests)"
		case p.result == "":
			note = " (no result: the run was cut short)"
		}
		if p.result != "pass" && p.result != "skip" {
			badPkgs++
		}
		if note == " (no tests)" {
			noTests++
			continue
		}
		fmt.Fprintf(r.w, "%-60s %d passed, %d failed, %d skipped%s\n", p.name, c.passed, c.failed, c.skipped, note)
	}
	if noTests > 0 {
		fmt.Fprintf(r.w, "(packages without tests: %d)\n", noTests)
	}
	if len(skipped) > 0 {
		fmt.Fprintln(r.w, "\nSkipped:")
		for _, s := range skipped {
			fmt.Fprintln(r.w, "  "+s)
		}
	}
	if len(failed) > 0 {
		fmt.Fprintln(r.w, "\nFailed:")
		for _, s := range failed {
			fmt.Fprintln(r.w, "  "+s)
		}
	}
	if badPkgs > 0 {
		fmt.Fprintf(r.w, "\n%d package(s) failed.\n", badPkgs)
	}
	fmt.Fprintf(r.w, "%d passed, %d failed, %d skipped\n", total.passed, total.failed, total.skipped)
	return total.failed == 0 && badPkgs == 0
}

func anyFailed(t *test) bool {
	for _, s := range t.subtests {
		if s.result == "fail" || s.result == "" || anyFailed(s) {
			return true
		}
	}
	return false
}

// reason is the first line a skipped test logged, the usual t.Skip message.
func reason(t *test) string {
	for _, line := range t.out {
		s := strings.TrimSpace(line)
		if s == "" || strings.HasPrefix(s, "=== ") || strings.HasPrefix(s, "--- ") {
			continue
		}
		if len(s) > 160 {
			s = s[:160] + "..."
		}
		return ": " + s
	}
	return ""
}
