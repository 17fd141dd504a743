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
	// ConfigDir is the folder relative paths in Config are relative to: the configuration
	// file's (ReadConfig, Main). The values of the keys the plugin's schema marks as paths are
	// made absolute against it, as the agent does with its own configuration file. Empty
	// leaves them relative to the working directory.
	ConfigDir string
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
	main   extraction // the main extraction
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
	c.opts.Config = sdk.ResolvePaths(c.opts.Config, d.PathKeys(), c.opts.ConfigDir)
	c.describe(d)
	supplies, ok := c.config(ctx, p, d)
	if ok && c.extract(ctx, p, supplies) {
		c.stays(ctx, p, supplies)
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
	if err := sdk.CheckSchema(d.Config); err != nil {
		problems = append(problems, "its configuration schema: "+strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	if len(problems) > 0 {
		c.add("describe", Fail, strings.Join(problems, "; "), "correct the sdk.Description that Describe returns")
		return
	}
	c.add("describe", Pass, fmt.Sprintf("%s %s: rows %s; event kinds %s; admission methods %v; diagnoses %s; discharge dates %v",
		d.Name, d.Version, strings.Join(d.RowKinds, ", "), orNone(d.EventKinds), d.Methods, orNone(d.Diagnoses), d.Discharges), "")
}

// config checks the given configuration and some bad ones, and returns what the plugin supplies
// with the given one, and whether it was accepted.
func (c *checker) config(ctx context.Context, p *host.Plugin, d host.Description) (sdk.Supplies, bool) {
	supplies, cfgErr := p.Supplies(ctx, c.opts.Config)
	if cfgErr != nil {
		c.add("config", Fail, reason(cfgErr), "give a configuration the plugin accepts (--config FILE), or fix its ValidateConfig")
	} else {
		c.add("config", Pass, fmt.Sprintf("the given configuration (%s) is accepted; with it the plugin supplies %s", keys(len(c.opts.Config)), describeSupplies(supplies)), "")
	}

	// An obviously bad configuration: required keys left out and the SDK's own key malformed.
	bad := map[string]string{sdk.ConfigMaxSkippedFraction: "lots"}
	badErr := p.ValidateConfig(ctx, bad)
	switch {
	case badErr == nil:
		c.add("bad config", Fail, "a configuration with "+sdk.ConfigMaxSkippedFraction+" = \"lots\" was accepted", "build the plugin with plugins/sdk, which checks its generic keys")
	case errors.Is(badErr, sdk.ErrConfig):
		c.add("bad config", Pass, "refused with: "+clip(reason(badErr), 160), "")
	default:
		c.add("bad config", Fail, reason(badErr), "ValidateConfig must return an error for a bad configuration, never panic or hang")
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
	// A misspelt key must not be ignored: the practice manager would never learn that the
	// setting they wrote does nothing.
	const unknownKey = "no_such_key_tributary_check"
	if cfgErr == nil {
		withUnknown := with(c.opts.Config, unknownKey, "1")
		if err := p.ValidateConfig(ctx, withUnknown); err == nil {
			c.add("unknown keys", Warn, "a configuration with the unknown key "+unknownKey+" was accepted", "list every key in Describe's Config and build with the current plugins/sdk, which refuses the others")
		} else if errors.Is(err, sdk.ErrConfig) {
			c.add("unknown keys", Pass, "refused with: "+clip(reason(err), 160), "")
		} else {
			c.add("unknown keys", Fail, reason(err), "ValidateConfig must return an error for a bad configuration, never panic or hang")
		}
	}
	return supplies, cfgErr == nil
}

func describeSupplies(s sdk.Supplies) string {
	out := "rows " + orNone(s.RowKinds)
	if contains(s.RowKinds, formats.RowEvents) {
		out += "; event kinds " + orNone(s.EventKinds) + fmt.Sprintf("; admission methods %v; diagnoses %s; discharge dates %v", s.Methods, orNone(s.Diagnoses), s.Discharges)
	}
	return out
}

// extraction is what one Extract call gave.
type extraction struct {
	sum       host.Summary
	events    map[string]int64 // events by kind
	diagnoses map[string]int64 // events with a primary diagnosis, by code system
	uncounted int64            // events the agent does not count for the months (formats.EventInMonths)
	example   string           // the months of one of them, e.g. "2023-11 to 2024-03"
	stays     map[stay]bool    // admissions discharged in the months, in a later month than they began
	took      time.Duration
}

// stay identifies an admission across two extractions.
type stay struct {
	patient    string
	start, end formats.Date
	method     string
}

func extractOnce(ctx context.Context, p *host.Plugin, from, to formats.Month, config map[string]string) (extraction, error) {
	x := extraction{events: map[string]int64{}, diagnoses: map[string]int64{}, stays: map[stay]bool{}}
	start := time.Now()
	sum, err := p.Extract(ctx, sdk.Request{From: from, To: to, Config: config}, func(kind string, rec arrow.Record) error {
		if kind != formats.RowEvents {
			return nil
		}
		return formats.DecodeEvents(rec, func(e formats.Event) error {
			x.events[e.Kind]++
			if e.DiagnosisSystem != "" {
				x.diagnoses[e.DiagnosisSystem]++
			}
			if !formats.EventInMonths(e, from, to) {
				x.uncounted++
				x.example = e.Start.Month().String()
				if e.End != formats.NoEnd {
					x.example += " to " + e.End.Month().String()
				}
			}
			if e.Kind == formats.KindAdmission && e.End != formats.NoEnd {
				s, f := e.Start.Month(), e.End.Month()
				if s < f && f >= from && f <= to && len(x.stays) < maxStays {
					x.stays[stay{strings.Clone(e.PatientKey), e.Start, e.End, strings.Clone(e.Method)}] = true
				}
			}
			return nil
		})
	})
	x.sum, x.took = sum, time.Since(start)
	return x, err
}

// maxStays bounds the stays the check remembers from one extraction.
const maxStays = 100000

// extract runs the main extraction and reports whether it succeeded.
func (c *checker) extract(ctx context.Context, p *host.Plugin, d sdk.Supplies) bool {
	x, err := extractOnce(ctx, p, c.opts.From, c.opts.To, c.opts.Config)
	c.main = x
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
			c.add("row kinds", Warn, fmt.Sprintf("it supplies %s with this configuration but none were sent", k), "check the data covers the months asked for (--from, --to), or leave the kind out of Describe (or Supplies, when it depends on the configuration)")
		}
	}
	for _, k := range d.EventKinds {
		if x.events[k] == 0 {
			c.add("event kinds", Warn, fmt.Sprintf("it supplies %s with this configuration but no such event was sent", k), "check the mapping from the source, or leave the kind out of Describe (or Supplies, when the source lacks it with this configuration): a kind supplied and never sent is published as zero")
		}
	}
	if len(x.diagnoses) > 0 {
		var n int64
		for _, k := range x.diagnoses {
			n += k
		}
		c.add("diagnoses", Info, fmt.Sprintf("%d of %d events carry a primary diagnosis (%s), each a valid code of its system", n, sum.Rows[formats.RowEvents], countList(x.diagnoses)), "")
	}
	c.monthRange(x, span)
	return true
}

func (c *checker) monthRange(x extraction, span string) {
	if x.uncounted > 0 {
		c.add("month range", Warn, fmt.Sprintf("%d events were sent for a request of %s that the agent does not count, e.g. one of %s", x.uncounted, span, x.example),
			"send the events that start in the requested months and the admissions discharged in them, no others (formats.EventInMonths; registrations may start earlier)")
	}
}

// stays checks the rule for stays that cross the start of the requested months: a stay
// discharged in them counts there (its bed days), so it must be sent even though it began
// before them. It asks again from a later month M, and every stay of the main extraction that
// began before M and ended in M..To must come back.
func (c *checker) stays(ctx context.Context, p *host.Plugin, supplies sdk.Supplies) {
	if !contains(supplies.EventKinds, formats.KindAdmission) {
		return
	}
	// The later start month that the most stays cross into.
	best, n := formats.Month(0), 0
	for m := c.opts.From + 1; m <= c.opts.To; m++ {
		k := 0
		for s := range c.main.stays {
			if crosses(s, c.opts.From, m) {
				k++
			}
		}
		if k > n {
			best, n = m, k
		}
	}
	if n == 0 {
		c.add("stays", Info, fmt.Sprintf("no stay sent for %s to %s crosses a month end within those months, so the rule for stays begun before the requested months could not be checked", c.opts.From, c.opts.To),
			"check over months whose data holds a stay from one month into the next (--from, --to)")
		return
	}
	x, err := extractOnce(ctx, p, best, c.opts.To, c.opts.Config)
	if err != nil {
		c.add("stays", Fail, fmt.Sprintf("over %s to %s: %s", best, c.opts.To, reason(err)), fixFor(err))
		return
	}
	missing := 0
	for s := range c.main.stays {
		if crosses(s, c.opts.From, best) && !x.stays[s] {
			missing++
		}
	}
	if missing > 0 {
		c.add("stays", Fail, fmt.Sprintf("%d of %d stays that began before %s and were discharged in %s to %s were not sent when those months were asked for: their bed days would be lost", missing, n, best, best, c.opts.To),
			"send every admission discharged in the requested months, also when it began before them (formats.EventInMonths), not only those that start in them")
		return
	}
	c.add("stays", Pass, fmt.Sprintf("all %d stays that began before %s and were discharged in %s to %s were sent when those months were asked for", n, best, best, c.opts.To), "")
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

// crosses reports whether a stay began in the months from..m-1 and was discharged in m or later.
func crosses(s stay, from, m formats.Month) bool {
	return s.start.Month() >= from && s.start.Month() < m && s.end.Month() >= m
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

func with(m map[string]string, key, value string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	out[key] = value
	return out
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
