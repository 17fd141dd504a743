package sdk

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/hashicorp/go-hclog"
)

// Kinds of failure of a run, for errors.Is. Serve carries them to the agent as gRPC status
// codes, so the host reports the same kinds.
var (
	ErrConfig  = errors.New("invalid extractor configuration")
	ErrRequest = errors.New("invalid extraction request")
	ErrPanic   = errors.New("extractor panicked")
	ErrBudget  = errors.New("too many source rows skipped")
	ErrExtract = errors.New("extraction failed")
)

// Error is a run failure with its kind and a sentence for people.
type Error struct {
	Kind   error
	Detail string
	Err    error
}

func (e *Error) Error() string {
	s := e.Kind.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Is reports whether target is the error's kind.
func (e *Error) Is(target error) bool { return target == e.Kind }

func (e *Error) Unwrap() error { return e.Err }

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

// validateConfig checks the generic keys and, when ex implements ConfigValidator, its own keys.
// It never panics: a panicking validator is an ErrPanic.
func validateConfig(ex Extractor, config map[string]string) (opts options, own map[string]string, err error) {
	opts, own, err = splitConfig(config)
	if err != nil {
		return opts, nil, err
	}
	var desc Description
	if err := protect("Describe", func() error { desc = ex.Describe(); return nil }); err != nil {
		return opts, nil, err
	}
	for _, k := range desc.Config {
		if _, ok := own[k.Name]; k.Required && !ok {
			return opts, nil, &Error{Kind: ErrConfig, Detail: fmt.Sprintf("the required key %s is not set (%s)", k.Name, k.Help)}
		}
	}
	if v, ok := ex.(ConfigValidator); ok {
		err := protect("ValidateConfig", func() error { return v.ValidateConfig(own) })
		if err != nil && !errors.Is(err, ErrPanic) {
			err = &Error{Kind: ErrConfig, Err: err}
		}
		if err != nil {
			return opts, nil, err
		}
	}
	return opts, own, nil
}

// Run runs one extraction in-process, exactly as Serve does for the agent but without
// go-plugin: it checks the configuration (generic keys, required keys, ConfigValidator), calls
// Extract, flushes the Writer, and applies the skipped-rows budget. emit receives each batch as
// the agent would. A panic in the extractor becomes an ErrPanic error. Tests and benchmarks of
// an extractor use Run.
func Run(ctx context.Context, ex Extractor, req Request, emit func(kind string, rec arrow.Record) error) (Stats, error) {
	if req.To < req.From {
		return Stats{}, &Error{Kind: ErrRequest, Detail: fmt.Sprintf("the month range %s to %s ends before it starts", req.From, req.To)}
	}
	opts, own, err := validateConfig(ex, req.Config)
	if err != nil {
		return Stats{}, err
	}
	req.Config = own
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
