package sdk

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/hashicorp/go-hclog"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/fault"
)

// Kinds of failure of a run, for errors.Is. Serve carries them to the agent as gRPC status
// codes, so the host reports the same kinds.
var (
	ErrConfig   = errors.New("invalid extractor configuration")
	ErrRequest  = errors.New("invalid extraction request")
	ErrPanic    = errors.New("extractor panicked")
	ErrBudget   = errors.New("too many source rows skipped")
	ErrExtract  = errors.New("extraction failed")
	ErrDescribe = errors.New("the extractor's description is wrong") // a bug of the plugin, not of its configuration
)

// Error is a run failure with its kind and a sentence for people: the one error-with-kind
// type the store, the contract and the host share (Op and Subject are left empty here; the
// host adds the plugin when it reports the failure).
type Error = fault.Error

// Generic configuration keys that every extractor accepts. The SDK reads and removes them
// before the extractor sees its configuration.
const (
	// ConfigMaxSkippedFraction fails a run when more than this fraction of source rows were
	// skipped (Writer.Skip), reporting the counts by reason. Default DefaultMaxSkippedFraction;
	// "1" turns the check off.
	ConfigMaxSkippedFraction = "max_skipped_fraction"
)

// DefaultMaxSkippedFraction is the error budget when the configuration does not set one: a run
// that skips more than 1% of its source rows is more likely misconfigured than merely noisy.
const DefaultMaxSkippedFraction = 0.01

// GenericConfig lists the keys the SDK handles for every extractor; Serve appends them to the
// extractor's own keys in Describe.
var GenericConfig = []ConfigKey{{
	Name:    ConfigMaxSkippedFraction,
	Help:    "fail the run when more than this fraction (0 to 1) of source rows are skipped as unusable",
	Type:    TypeNumber,
	Default: strconv.FormatFloat(DefaultMaxSkippedFraction, 'g', -1, 64),
}}

// options are the generic settings of one run.
type options struct {
	maxSkipped float64
}

// splitConfig separates the generic keys from the extractor's own.
func splitConfig(config map[string]string) (options, map[string]string, error) {
	opts := options{maxSkipped: DefaultMaxSkippedFraction}
	own := make(map[string]string, len(config))
	for k, v := range config {
		if k != ConfigMaxSkippedFraction {
			own[k] = v
			continue
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f < 0 || f > 1 {
			return opts, nil, &Error{Kind: ErrConfig, Detail: fmt.Sprintf("%s must be a number from 0 to 1, such as 0.01", ConfigMaxSkippedFraction)}
		}
		opts.maxSkipped = f
	}
	return opts, own, nil
}

// checked is a configuration that passed every check, and what the extractor supplies with it.
type checked struct {
	opts     options
	own      map[string]string // the extractor's own keys, defaults filled
	supplies Supplies
}

// checkConfig applies, in order: the description's schema (its own keys and GenericConfig:
// unknown keys, required keys, types, allowed values, defaults), the generic keys' ranges, the
// extractor's ValidateConfig and its Supplies. It never panics: a panicking extractor is an
// ErrPanic.
func checkConfig(ex Extractor, config map[string]string) (checked, error) {
	var desc Description
	if err := protect("Describe", func() error { desc = ex.Describe(); return nil }); err != nil {
		return checked{}, err
	}
	keys := append(append([]ConfigKey(nil), desc.Config...), GenericConfig...)
	if err := CheckSchema(keys); err != nil {
		return checked{}, &Error{Kind: ErrDescribe, Detail: "its configuration keys are not a valid schema; fix Describe", Err: err}
	}
	filled, err := ApplySchema(keys, config)
	if err != nil {
		return checked{}, &Error{Kind: ErrConfig, Err: err}
	}
	var c checked
	if c.opts, c.own, err = splitConfig(filled); err != nil {
		return checked{}, err
	}
	if v, ok := ex.(ConfigValidator); ok {
		err := protect("ValidateConfig", func() error { return v.ValidateConfig(c.own) })
		if err != nil && !errors.Is(err, ErrPanic) {
			err = &Error{Kind: ErrConfig, Err: err}
		}
		if err != nil {
			return checked{}, err
		}
	}
	c.supplies = desc.Supplies()
	if s, ok := ex.(Supplier); ok {
		err := protect("Supplies", func() (err error) { c.supplies, err = s.Supplies(c.own); return err })
		if err == nil {
			err = c.supplies.CheckWithin(desc.Supplies())
			if err != nil {
				err = &Error{Kind: ErrDescribe, Detail: "Supplies claims more than Describe lists", Err: err}
			}
		} else if !errors.Is(err, ErrPanic) {
			err = &Error{Kind: ErrConfig, Err: err}
		}
		if err != nil {
			return checked{}, err
		}
	}
	c.supplies = c.supplies.Clean()
	return c, nil
}

// ValidateConfig checks config exactly as Serve does before every Extract (the schema of
// Describe, the generic keys, the extractor's ValidateConfig) and returns what the extractor
// supplies with it (its Supplies, or Describe's lists). Errors are of kind ErrConfig for a
// configuration to fix, ErrDescribe or ErrPanic for an extractor to fix. Tests use it, and the
// agent's in-process sources.
func ValidateConfig(ex Extractor, config map[string]string) (Supplies, error) {
	c, err := checkConfig(ex, config)
	return c.supplies, err
}

// CheckWithin reports what s claims that max does not list, or nil.
func (s Supplies) CheckWithin(max Supplies) error {
	var errs []error
	for _, k := range s.RowKinds {
		if !slices.Contains(max.RowKinds, k) {
			errs = append(errs, fmt.Errorf("row kind %s is not among %s", k, orNone(max.RowKinds)))
		}
	}
	for _, k := range s.EventKinds {
		if !slices.Contains(max.EventKinds, k) {
			errs = append(errs, fmt.Errorf("event kind %s is not among %s", k, orNone(max.EventKinds)))
		}
	}
	if s.Methods && !max.Methods {
		errs = append(errs, errors.New("admission methods are claimed, which Describe does not"))
	}
	for _, d := range s.Diagnoses {
		if !slices.Contains(max.Diagnoses, d) {
			errs = append(errs, fmt.Errorf("diagnosis code system %s is not among %s", d, orNone(max.Diagnoses)))
		}
	}
	if s.Discharges && !max.Discharges {
		errs = append(errs, errors.New("discharge dates are claimed, which Describe does not"))
	}
	return errors.Join(errs...)
}

// Clean drops what cannot be sent: event kinds without the events row kind, admission methods
// and discharge dates without admissions, diagnoses without events or of unknown systems. A
// measure is then supplied exactly when its rows can arrive.
func (s Supplies) Clean() Supplies {
	out := Supplies{RowKinds: slices.Clone(s.RowKinds)}
	if slices.Contains(s.RowKinds, formats.RowEvents) {
		out.EventKinds = slices.Clone(s.EventKinds)
		out.Methods = s.Methods && slices.Contains(s.EventKinds, formats.KindAdmission)
		out.Discharges = s.Discharges && slices.Contains(s.EventKinds, formats.KindAdmission)
		for _, d := range s.Diagnoses {
			if formats.ValidDiagnosisSystem(d) && !slices.Contains(out.Diagnoses, d) {
				out.Diagnoses = append(out.Diagnoses, d)
			}
		}
	}
	return out
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

// Run runs one extraction in-process, exactly as Serve does for the agent but without
// go-plugin: it checks the configuration (as ValidateConfig does), calls Extract with the
// checked configuration, flushes the Writer, and applies the skipped-rows budget. emit
// receives each batch as the agent would. A panic in the extractor becomes an ErrPanic error.
// Tests and benchmarks of an extractor use Run, or plugins/sdk/sdktest, which decodes the rows.
func Run(ctx context.Context, ex Extractor, req Request, emit func(kind string, rec arrow.Record) error) (Stats, error) {
	if req.To < req.From {
		return Stats{}, &Error{Kind: ErrRequest, Detail: fmt.Sprintf("the month range %s to %s ends before it starts", req.From, req.To)}
	}
	c, err := checkConfig(ex, req.Config)
	if err != nil {
		return Stats{}, err
	}
	opts := c.opts
	req.Config = c.own
	if req.Log == nil {
		req.Log = hclog.NewNullLogger()
	}

	w := NewWriter(emit, 0)
	defer w.release()
	err = protect("Extract", func() error { return ex.Extract(ctx, req, w) })
	if err == nil && ctx.Err() != nil {
		err = ctx.Err()
	}
	if err == nil {
		err = w.Flush()
	}
	stats := w.Stats()
	if err != nil {
		switch {
		case errors.Is(err, ErrPanic):
		case ctx.Err() != nil:
			// The run was cut short by its caller (the agent's timeout or cancellation);
			// whatever the extractor returned is a consequence of that.
			err = ctx.Err()
		default:
			// Including a context.DeadlineExceeded of the extractor's own (a database
			// query that timed out): that is the extractor's failure, not the agent's
			// timeout, and must not be reported as one.
			err = &Error{Kind: ErrExtract, Err: err}
		}
		return stats, err
	}
	if f := stats.SkippedFraction(); f > opts.maxSkipped {
		return stats, &Error{Kind: ErrBudget, Detail: fmt.Sprintf(
			"%d of %d source rows (%.2f%%) were skipped, more than %s = %g allows; skipped by reason: %s. Fix the source data or the extractor's mapping, or raise %s if these rows are expected",
			stats.TotalSkipped(), stats.TotalSkipped()+stats.TotalRows(), 100*f, ConfigMaxSkippedFraction, opts.maxSkipped,
			stats.SkippedSummary(), ConfigMaxSkippedFraction)}
	}
	return stats, nil
}

// protect calls fn and turns a panic into an ErrPanic error naming the method and the source
// line that panicked. Runtime errors (nil dereference, index out of range) are quoted, since
// they carry no data; any other panic value is described by type only, because an author's
// panic message may hold a patient's values.
func protect(method string, fn func() error) (err error) {
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		what := fmt.Sprintf("a value of type %T (not shown, as it may hold patient data)", r)
		if re, ok := r.(runtime.Error); ok {
			what = re.Error()
		}
		err = &Error{Kind: ErrPanic, Detail: fmt.Sprintf("%s panicked at %s: %s; fix the extractor, it must return an error instead", method, panicSite(), what)}
	}()
	return fn()
}

// panicSite returns file:line of the innermost frame outside the Go runtime and this file,
// which is where the extractor panicked.
func panicSite() string {
	pcs := make([]uintptr, 32)
	n := runtime.Callers(3, pcs)
	frames := runtime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		if !strings.HasPrefix(f.Function, "runtime.") && !strings.HasSuffix(f.File, "/sdk/run.go") {
			return fmt.Sprintf("%s:%d", trimPath(f.File), f.Line)
		}
		if !more {
			return "an unknown place"
		}
	}
}

// trimPath keeps the last two elements of a path, enough to find the file without revealing
// the build machine's directories.
func trimPath(p string) string {
	parts := strings.Split(p, "/")
	if len(parts) > 2 {
		parts = parts[len(parts)-2:]
	}
	return strings.Join(parts, "/")
}
