// Package conformance runs an extractor plugin against the contract and tells its author what
// it got wrong: it launches the binary as the agent would, calls every RPC, checks what comes
// back against formats, and prints PASS and FAIL lines that each say what to do.
package conformance

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/hashicorp/go-hclog"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/host"
	pluginv1 "github.com/tributary-health/tributary/plugins/proto/tributary/plugin/v1"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// Status of one check.
type Status string

const (
	Pass Status = "PASS"
	Warn Status = "WARN" // allowed, but probably not what the author meant
	Fail Status = "FAIL"
	Info Status = "INFO"
)

// Result is one line of the report.
type Result struct {
	Check  string
	Status Status
	Detail string // what was found
	Fix    string // what to do, for WARN and FAIL
}

// Report is the outcome of a check.
type Report struct {
	Plugin      string
	SHA256      string
	Description host.Description
	Summary     host.Summary // what the main extraction received
	Results     []Result
}

// Passed reports whether no check failed.
func (r Report) Passed() bool { return r.Failed() == 0 }

// Failed is the number of failed checks.
func (r Report) Failed() int {
	n := 0
	for _, res := range r.Results {
		if res.Status == Fail {
			n++
		}
	}
	return n
}

// Options configure a check. Path is required.
type Options struct {
	Path   string
	SHA256 string // the expected checksum; empty: compute it and report it for pinning
	Config map[string]string
	// From and To are the months to extract; zero means the twelve months before this one.
	From, To formats.Month
	// Timeouts for the plugin; zero means the host's defaults (ExtractTimeout: 10 minutes).
	StartTimeout, CallTimeout, ExtractTimeout time.Duration
	// Logger receives the plugin's own log lines; nil discards them.
	Logger hclog.Logger
}

// Check starts the plugin at path, calls every RPC, and writes a report to out, over the twelve
// months before this one. sha256 may be empty: the checksum is then computed and reported so
// that it can be pinned. The error is only for a check that could not be carried out (out
// failing); a plugin that fails is a Report that has not Passed.
func Check(ctx context.Context, path, sha256 string, config map[string]string, out io.Writer) (Report, error) {
	return Run(ctx, Options{Path: path, SHA256: sha256, Config: config}, out)
}

// Run is Check with every option.
func Run(ctx context.Context, opts Options, out io.Writer) (Report, error) {
	if opts.From == 0 && opts.To == 0 {
		this := formats.MonthOf(time.Now())
		opts.From, opts.To = this-12, this-1
	}
	if opts.ExtractTimeout <= 0 {
		opts.ExtractTimeout = 10 * time.Minute
	}
	c := &checker{opts: opts, report: Report{Plugin: opts.Path}}
	c.run(ctx)
	return c.report, write(out, c.report, opts)
}

type checker struct {
	opts   Options
	report Report
}

func (c *checker) add(check string, s Status, detail, fix string) {
	c.report.Results = append(c.report.Results, Result{Check: check, Status: s, Detail: detail, Fix: fix})
}

func (c *checker) run(ctx context.Context) {
	sum, ok := c.checksum()
	if !ok {
		return
	}
	c.report.SHA256 = sum
	p, err := host.Launch(ctx, host.Options{
		Path: c.opts.Path, SHA256: sum, Logger: c.opts.Logger,
		StartTimeout: c.opts.StartTimeout, CallTimeout: c.opts.CallTimeout, ExtractTimeout: c.opts.ExtractTimeout,
	})
	if err != nil {
		c.add("start", Fail, reason(err), fixFor(err))
		return
	}
	defer p.Close()
	d := p.Describe()
	c.report.Description = d
	c.add("start", Pass, fmt.Sprintf("handshake on protocol %d, built with %s", pluginv1.ProtocolVersion, orUnknown(d.SDK)), "")
	c.describe(d)
	c.config(ctx, p, d)
	if c.extract(ctx, p, d) {
		c.oldMonths(ctx, p)
	}

	// Closing last: what the plugin wrote to stdout is only all counted once it has gone.
	p.Close()
	if p.Exited() {
		c.add("close", Pass, "the process exited when closed", "")
	} else {
		c.add("close", Fail, "the process was still running after Close", "return from Extract when its context is done, and start no process of your own that outlives it")
	}
	if n := p.StdoutBytes(); n > 0 {
		c.add("stdout", Fail, fmt.Sprintf("the plugin wrote %d bytes to stdout", n),
			"write nothing to stdout (no fmt.Print*): log through req.Log, which goes to stderr, and never log patient values")
	} else {
		c.add("stdout", Pass, "nothing written to stdout", "")
	}
}

func (c *checker) checksum() (string, bool) {
	actual, err := host.FileSHA256(c.opts.Path)
	if err != nil {
		c.add("checksum", Fail, fmt.Sprintf("cannot read the binary: %v", err), "give the path of the built plugin binary")
		return "", false
	}
	want := strings.ToLower(strings.TrimSpace(c.opts.SHA256))
	switch {
	case want == "":
		c.add("checksum", Info, "sha256 "+actual, "pin it in the agent configuration: sha256 = \""+actual+"\"")
	case want != actual:
		c.add("checksum", Fail, fmt.Sprintf("expected sha256 %s, the file has %s", want, actual), "rebuild or re-copy the binary, or pin the new checksum if the change is intended")
		return "", false
	default:
		c.add("checksum", Pass, "sha256 "+actual+" as pinned", "")
	}
	return actual, true
}

var (
	nameRE   = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,39}$`)
	semverRE = regexp.MustCompile(`^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$`)
)

func (c *checker) describe(d host.Description) {
	var problems []string
	if !nameRE.MatchString(d.Name) {
		problems = append(problems, fmt.Sprintf("name %q should be lower-case letters, digits, - or _ (it names the plugin in files and logs)", d.Name))
	}
	if !semverRE.MatchString(d.Version) {
		problems = append(problems, fmt.Sprintf("version %q should be a semantic version such as 1.2.0 (it is recorded in every file)", d.Version))
	}
	if contains(d.RowKinds, formats.RowEvents) && len(d.EventKinds) == 0 {
		problems = append(problems, "it emits events but lists no event kinds")
	}
	for _, k := range d.Config {
		if strings.TrimSpace(k.Help) == "" {
			problems = append(problems, fmt.Sprintf("config key %s has no help text", k.Name))
		}
	}
	if !hasKey(d.Config, sdk.ConfigMaxSkippedFraction) {
		problems = append(problems, "it does not offer the SDK's generic key "+sdk.ConfigMaxSkippedFraction+" (is it built with plugins/sdk?)")
	}
	if len(problems) > 0 {
		c.add("describe", Fail, strings.Join(problems, "; "), "correct the sdk.Description that Describe returns")
		return
	}
	c.add("describe", Pass, fmt.Sprintf("%s %s: rows %s; event kinds %s; admission methods %v",
		d.Name, d.Version, strings.Join(d.RowKinds, ", "), orNone(d.EventKinds), d.Methods), "")
}

func (c *checker) config(ctx context.Context, p *host.Plugin, d host.Description) {
	if err := p.ValidateConfig(ctx, c.opts.Config); err != nil {
		c.add("config", Fail, reason(err), "give a configuration the plugin accepts (--config FILE), or fix its ValidateConfig")
	} else {
		c.add("config", Pass, fmt.Sprintf("the given configuration (%s) is accepted", keys(len(c.opts.Config))), "")
	}

	// An obviously bad configuration: required keys left out and the SDK's own key malformed.
	bad := map[string]string{sdk.ConfigMaxSkippedFraction: "lots"}
	err := p.ValidateConfig(ctx, bad)
	switch {
	case err == nil:
		c.add("bad config", Fail, "a configuration with "+sdk.ConfigMaxSkippedFraction+" = \"lots\" was accepted", "build the plugin with plugins/sdk, which checks its generic keys")
	case errors.Is(err, sdk.ErrConfig):
		c.add("bad config", Pass, "refused with: "+clip(reason(err), 160), "")
	default:
		c.add("bad config", Fail, reason(err), "ValidateConfig must return an error for a bad configuration, never panic or hang")
	}
	for _, k := range d.Config {
		if !k.Required {
			continue
		}
		err := p.ValidateConfig(ctx, without(c.opts.Config, k.Name))
		if err == nil {
			c.add("bad config", Warn, "a configuration without the required key "+k.Name+" was accepted", "mark the key Required only if the plugin cannot run without it")
		} else if !errors.Is(err, sdk.ErrConfig) {
			c.add("bad config", Fail, reason(err), "ValidateConfig must return an error for a bad configuration, never panic or hang")
		}
	}
}

// extraction is what one Extract call gave.
type extraction struct {
	sum     host.Summary
	events  map[string]int64 // events by kind
	outside formats.Month    // a month outside the request that an event started in, or 0
	took    time.Duration
}

func extractOnce(ctx context.Context, p *host.Plugin, from, to formats.Month, config map[string]string) (extraction, error) {
	x := extraction{events: map[string]int64{}}
	start := time.Now()
	sum, err := p.Extract(ctx, sdk.Request{From: from, To: to, Config: config}, func(kind string, rec arrow.Record) error {
		if kind != formats.RowEvents {
			return nil
		}
		return formats.DecodeEvents(rec, func(e formats.Event) error {
			x.events[e.Kind]++
			if m := e.Start.Month(); m < from || m > to {
				x.outside = m
			}
			return nil
		})
	})
	x.sum, x.took = sum, time.Since(start)
	return x, err
}

// extract runs the main extraction and reports whether it succeeded.
func (c *checker) extract(ctx context.Context, p *host.Plugin, d host.Description) bool {
	x, err := extractOnce(ctx, p, c.opts.From, c.opts.To, c.opts.Config)
	sum := x.sum
	c.report.Summary = sum
	span := fmt.Sprintf("%s to %s", c.opts.From, c.opts.To)
	if err != nil {
		c.add("extract", Fail, fmt.Sprintf("over %s: %s", span, reason(err)), fixFor(err))
		return false
	}
	c.add("extract", Pass, fmt.Sprintf("over %s in %s: %s; skipped %s", span, x.took.Round(time.Millisecond), countList(sum.Rows), orNone0(sum.Skipped)), "")
	c.add("contract", Pass, fmt.Sprintf("%d batches, every row valid against formats (schemas, values, declared kinds)", sum.Chunks), "")
	if sum.MaxChunkBytes > pluginv1.MaxChunkBytes {
		c.add("message size", Fail, fmt.Sprintf("largest batch %d bytes", sum.MaxChunkBytes), "send rows through sdk.Writer, which keeps batches small")
	} else {
		c.add("message size", Pass, fmt.Sprintf("largest batch %d bytes of %d allowed", sum.MaxChunkBytes, pluginv1.MaxChunkBytes), "")
	}
	for _, k := range d.RowKinds {
		if sum.Rows[k] == 0 {
			c.add("row kinds", Warn, fmt.Sprintf("Describe lists %s but none were sent", k), "check the data covers the months asked for (--from, --to), or drop the kind from Describe")
		}
	}
	for _, k := range d.EventKinds {
		if x.events[k] == 0 {
			c.add("event kinds", Warn, fmt.Sprintf("Describe lists %s but no such event was sent", k), "check the mapping from the source, or drop the kind from Describe")
		}
	}
	c.monthRange(x, span)
	return true
}

func (c *checker) monthRange(x extraction, span string) {
	if x.outside != 0 {
		c.add("month range", Warn, fmt.Sprintf("events starting in %s were sent for a request of %s", x.outside, span), "emit only events that start in the requested months (registrations may start earlier)")
	}
}

// oldMonths asks for a month long before any real data: the plugin must answer, without an
// error and without sending events from other months. A plugin that counts the rows outside
// the range as skipped fails here on its error budget.
func (c *checker) oldMonths(ctx context.Context, p *host.Plugin) {
	m := formats.MonthFor(1900, time.January)
	x, err := extractOnce(ctx, p, m, m, c.opts.Config)
	if err != nil {
		c.add("old months", Fail, "over 1900-01: "+reason(err), fixFor(err)+"; rows outside the requested months are not skipped rows, leave them out silently")
		return
	}
	c.add("old months", Pass, fmt.Sprintf("over 1900-01: %s, no error", countList(x.sum.Rows)), "")
	c.monthRange(x, "1900-01")
}

// reason is an error's sentence without the plugin path and operation the report already
// gives.
func reason(err error) string {
	var he *host.Error
	if errors.As(err, &he) {
		s := he.Kind.Error()
		if he.Detail != "" {
			s += ": " + he.Detail
		}
		if he.Err != nil && he.Err.Error() != "" {
			s += ": " + he.Err.Error()
		}
		return s
	}
	return err.Error()
}

// fixFor says what to do about an error from the host.
func fixFor(err error) string {
	switch {
	case errors.Is(err, host.ErrProtocol):
		return "rebuild the plugin against the current plugins/sdk"
	case errors.Is(err, host.ErrStart):
		return "the binary must call sdk.Serve from main and print nothing to stdout; run it with the agent, not by hand"
	case errors.Is(err, host.ErrTimeout):
		return "Describe and ValidateConfig must not read data; Extract must finish within the timeout and return when its context is done"
	case errors.Is(err, host.ErrCrashed):
		return "never call os.Exit or log.Fatal, and recover panics in goroutines you start: return an error from Extract instead"
	case errors.Is(err, host.ErrContract):
		return "send rows only through sdk.Writer (w.Registration, w.Event), which builds the contract's schema, and list every row kind and event kind in Describe"
	case errors.Is(err, sdk.ErrPanic):
		return "fix the code at the place named above; Extract must return an error, never panic"
	case errors.Is(err, sdk.ErrBudget):
		return "fix the mapping for the reasons listed, or raise max_skipped_fraction in the configuration if those rows are expected"
	case errors.Is(err, sdk.ErrConfig):
		return "give a configuration the plugin accepts (--config FILE)"
	}
	return "see the error above"
}

func write(out io.Writer, r Report, opts Options) error {
	var b strings.Builder
	fmt.Fprintf(&b, "tributary plugin check %s\n", r.Plugin)
	fmt.Fprintf(&b, "months %s to %s, %s\n\n", opts.From, opts.To, keys(len(opts.Config)))
	for _, res := range r.Results {
		fmt.Fprintf(&b, "%-4s  %-13s %s\n", res.Status, res.Check, res.Detail)
		switch {
		case res.Fix == "" || res.Status == Pass:
		case res.Status == Info:
			fmt.Fprintf(&b, "      %-13s next: %s\n", "", res.Fix)
		default:
			fmt.Fprintf(&b, "      %-13s fix: %s\n", "", res.Fix)
		}
	}
	if r.Passed() {
		fmt.Fprintf(&b, "\nPASS: the plugin meets the contract")
		if r.SHA256 != "" {
			fmt.Fprintf(&b, "; pin it with sha256 = %q", r.SHA256)
		}
		b.WriteString("\n")
	} else {
		fmt.Fprintf(&b, "\nFAIL: %d of %d checks failed; fix them and run the check again\n", r.Failed(), len(r.Results))
	}
	_, err := io.WriteString(out, b.String())
	return err
}

func keys(n int) string {
	if n == 1 {
		return "1 config key"
	}
	return fmt.Sprintf("%d config keys", n)
}

func countList(m map[string]int64) string {
	if len(m) == 0 {
		return "no rows"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", m[k], k)
	}
	return strings.Join(parts, ", ")
}

func orNone0(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	return countList(m)
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown SDK"
	}
	return s
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func hasKey(keys []sdk.ConfigKey, name string) bool {
	for _, k := range keys {
		if k.Name == name {
			return true
		}
	}
	return false
}

func without(m map[string]string, key string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}
