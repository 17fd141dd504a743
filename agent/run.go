package agent

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sort"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/tributary-health/tributary/agent/aggregate"
	"github.com/tributary-health/tributary/agent/config"
	"github.com/tributary-health/tributary/agent/spool"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/plugins/host"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// Source is one extractor as the agent sees it: a plugin process started through
// plugins/host, or an in-process extractor in tests.
type Source interface {
	Describe(ctx context.Context) (sdk.Description, error)
	// Extract streams the rows for req to emit; the records are released after emit returns.
	Extract(ctx context.Context, req sdk.Request, emit func(kind string, rec arrow.Record) error) error
	Close() error
}

// Launcher starts the source for one configured plugin.
type Launcher func(ctx context.Context, p config.Plugin) (Source, error)

// Agent runs a practice's extraction, release and upload.
type Agent struct {
	Config   *config.Config
	Key      ed25519.PrivateKey
	Spool    *spool.Spool
	Uploader *Uploader
	Launch   Launcher
	Log      *slog.Logger
	Now      func() time.Time
	// Inspect, when set, is called with each run's true counts, before disclosure control.
	// They stay in this process: it is for benchmarks and tests that check the agent's
	// counts against an independent count of the same source (bench/duckdb).
	Inspect func(*aggregate.Result)
	// Progress, when set, hears how RunOnce goes, for a display to a person at a terminal
	// (run --once, the demo); nil: nothing is told.
	Progress Progress
}

// Progress hears the steps of one run as they happen: counts, never rows. RunOnce calls it
// from its own goroutine.
type Progress interface {
	// PluginStarted: plugin name, the n-th (from 1) of the run's of plugins, is starting.
	PluginStarted(name string, n, of int)
	// Batch: the running plugin sent one record batch of rows rows.
	Batch(rows int)
	// PluginDone: the running plugin finished, with err when it failed.
	PluginDone(name string, err error)
	// Uploading: the run is in the spool and the upload pass has objects objects to send
	// (this run's and any earlier run's still waiting).
	Uploading(objects int)
	// Uploaded: one more object is in the store.
	Uploaded()
}

// PluginReport says how one plugin's part of a run went. It holds counts, never rows.
type PluginReport struct {
	Name          string
	Version       string
	Registrations int64
	Events        int64
	Skipped       map[string]int64 // source rows the plugin skipped, by its reason
	Err           error            // the run went on without this plugin's rows
}

// SkipReporter is a Source that says which source rows its plugin skipped, and why, in its
// last Extract (the host's extraction summary).
type SkipReporter interface {
	Skipped() map[string]int64
}

// RunReport says what a run did.
type RunReport struct {
	RunID    string
	From, To formats.Month
	Files    int // files written to the spool besides the manifest: the run's one submission
	Periods  int // months, quarters and years the submission covers
	Values   int // values it publishes or withholds (periods × measures × shapes)
	Withheld int // values the disclosure audit withheld
	Measures []string
	Absent   []aggregate.Absent // measures of the definitions this practice cannot supply, with why
	// DefinitionsErr says why the federation's measures file was not used (built-ins, and the
	// last good copy if any, were counted); nil when it was, or none is configured.
	DefinitionsErr error
	Patients       int
	Dropped        map[string]int64
	Plugins        []PluginReport
	Upload         UploadResult
	UploadErr      error // the files wait in the spool; the next attempt sends them
	// Secure says what the run sent for secure aggregation; nil when it is not configured.
	Secure *SecureReport
}

// Failed reports whether any plugin failed.
func (r *RunReport) Failed() bool {
	for _, p := range r.Plugins {
		if p.Err != nil {
			return true
		}
	}
	return false
}

// ErrNothingExtracted: every plugin failed, so nothing was released.
var ErrNothingExtracted = errors.New("no plugin produced data; nothing was released")

func (a *Agent) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

func (a *Agent) log() *slog.Logger {
	if a.Log != nil {
		return a.Log
	}
	return slog.New(slog.DiscardHandler)
}

// RunOnce extracts, aggregates, releases, spools and uploads one run. A plugin that fails
// is reported and its rows are left out; the run goes on with the others. Files that cannot
// be uploaded now stay in the spool (RunReport.UploadErr) and go with the next attempt.
func (a *Agent) RunOnce(ctx context.Context) (*RunReport, error) {
	cfg := a.Config
	now := a.now()
	from, to, err := cfg.Months.Range(now)
	if err != nil {
		return nil, err
	}
	pol, err := formats.PolicyByName(cfg.Policy)
	if err != nil {
		return nil, err
	}
	rep := &RunReport{RunID: formats.NewRunID(now), From: from, To: to}
	log := a.log().With("run", rep.RunID)
	log.Info("run started", "from", from.String(), "to", to.String(), "plugins", len(cfg.Plugins))

	defs := a.definitions(ctx, log)
	rep.DefinitionsErr = defs.Err
	agg := aggregate.New(from, to, defs.Defs...)
	supplies := aggregate.Supplies{EventKinds: map[string]bool{}, Diagnoses: map[string]bool{}}
	var extractors []string
	for i, p := range cfg.Plugins {
		if a.Progress != nil {
			a.Progress.PluginStarted(p.Name, i+1, len(cfg.Plugins))
		}
		pr := a.extract(ctx, uint8(i), p, agg, agg.First(), to)
		if a.Progress != nil {
			a.Progress.PluginDone(p.Name, pr.err)
		}
		if pr.err != nil {
			agg.Discard(uint8(i))
			log.Error("plugin failed; its rows are left out of this run and it will be tried again next run", "plugin", p.Name, "kind", FailureKind(pr.err), "error", pr.err)
		} else {
			extractors = append(extractors, p.Name+"@"+pr.Version)
			supplies.Registrations = supplies.Registrations || pr.supplies.Registrations
			supplies.Methods = supplies.Methods || pr.supplies.Methods
			supplies.Discharges = supplies.Discharges || pr.supplies.Discharges
			for k := range pr.supplies.Diagnoses {
				supplies.Diagnoses[k] = true
			}
			for k := range pr.supplies.EventKinds {
				supplies.EventKinds[k] = true
			}
			log.Info("plugin finished", "plugin", p.Name, "version", pr.Version, "registrations", pr.Registrations, "events", pr.Events)
		}
		pr.PluginReport.Err = pr.err
		rep.Plugins = append(rep.Plugins, pr.PluginReport)
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
	}
	if len(extractors) == 0 {
		return rep, ErrNothingExtracted
	}
	res := agg.Finish(supplies)
	if a.Inspect != nil {
		a.Inspect(res)
	}
	rep.Measures, rep.Absent, rep.Patients, rep.Dropped = res.Measures, res.Absent, res.Patients, res.Dropped
	for _, ab := range res.Absent {
		log.Info("measure absent from this practice's figures", "measure", ab.Measure, "reason", ab.Reason)
	}
	for reason, n := range res.Dropped {
		if reason != aggregate.DropOutsideMonths {
			log.Warn("rows not counted", "reason", reason, "count", n)
		}
	}
	sub, st, err := res.ReleaseStats(cfg.Practice, rep.RunID, extractors, pol)
	if err != nil {
		return rep, err
	}
	shares, entries, secure := a.secureShares(res, rep.RunID, log)
	rep.Secure = secure
	if secure != nil && secure.Err != nil {
		log.Error("no secure-aggregation shares this run; the published figures are sent as always", "error", secure.Err)
	}
	if err := a.write(rep, sub, shares, entries, extractors, pol, now, res); err != nil {
		return rep, err
	}
	rep.Files = 1 + len(shares)
	if secure != nil && secure.Err == nil {
		log.Info("secure-aggregation shares written to spool", "holders", secure.Holders, "months", secure.Months, "bytes", secure.Bytes, "months_left_out", len(secure.Skipped))
	}
	rep.Periods = len(formats.PeriodsOf(sub.From, sub.To))
	rep.Values, rep.Withheld = len(sub.Cells), st.Withheld
	log.Info("run written to spool", "periods", rep.Periods, "measures", len(res.Measures), "values", rep.Values, "withheld", rep.Withheld)

	rep.Upload, rep.UploadErr = a.Uploader.uploadPending(ctx, a.Progress)
	if rep.UploadErr != nil {
		log.Warn("upload incomplete; files stay in the spool and are sent on the next attempt", "error", rep.UploadErr, "runs_pending", rep.Upload.RunsPending)
	}
	return rep, nil
}

type extraction struct {
	PluginReport
	supplies aggregate.Supplies
	err      error
}

func (a *Agent) extract(ctx context.Context, src uint8, p config.Plugin, agg *aggregate.Aggregator, from, to formats.Month) (out extraction) {
	out.Name = p.Name
	ctx, cancel := context.WithTimeout(ctx, a.Config.PluginRunTimeout.Duration)
	defer cancel()
	s, err := a.Launch(ctx, p)
	if err != nil {
		out.err = err
		return out
	}
	defer s.Close()
	pr, err := prepare(ctx, s, p)
	out.Version = pr.desc.Version
	if err != nil {
		out.err = err
		return out
	}
	out.supplies = pr.aggregate()
	agg.Begin(src)
	req := sdk.Request{From: from, To: to, Config: pr.config}
	out.err = s.Extract(ctx, req, func(kind string, rec arrow.Record) error {
		if a.Progress != nil {
			a.Progress.Batch(int(rec.NumRows()))
		}
		switch kind {
		case formats.RowRegistrations:
			return formats.DecodeRegistrations(rec, func(r formats.Registration) error {
				out.Registrations++
				agg.Registration(r)
				return nil
			})
		case formats.RowEvents:
			return formats.DecodeEvents(rec, func(e formats.Event) error {
				out.Events++
				agg.Event(e)
				return nil
			})
		}
		return fmt.Errorf("plugin %s sent rows of unknown kind %q", p.Name, kind)
	})
	if sr, ok := s.(SkipReporter); ok {
		out.Skipped = sr.Skipped()
	}
	switch {
	case out.err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		// However the plugin's call ended, the run's own deadline is why: a timeout.
		out.err = fmt.Errorf("plugin %s: %w: it did not finish within plugin_run_timeout (%s): %w", p.Name, host.ErrTimeout, a.Config.PluginRunTimeout.Duration, out.err)
	case out.err != nil:
		out.err = fmt.Errorf("plugin %s: %w", p.Name, out.err)
	}
	return out
}

// write puts the run's submission, its shares files (secure aggregation, when configured: only
// ciphertext and public shares) and then its signed manifest in the spool.
func (a *Agent) write(rep *RunReport, sub *formats.Submission, shares []spool.File, entries []formats.FileEntry, extractors []string, pol formats.Policy, now time.Time, res *aggregate.Result) error {
	data, err := formats.MarshalSubmission(sub)
	if err != nil {
		return err
	}
	m := &formats.Manifest{
		FormatVersion: formats.FormatVersion,
		Practice:      a.Config.Practice,
		RunID:         rep.RunID,
		Created:       now.UTC(), // full precision: it orders revisions made within one second
		Extractors:    extractors,
		Policy:        pol.Name,
		From:          sub.From.String(),
		To:            sub.To.String(),
		Files:         append([]formats.FileEntry{formats.Entry(a.Config.Practice, rep.RunID, data)}, entries...),
		Definitions:   res.Digests,
	}
	for _, ab := range res.Absent {
		if m.Absent == nil {
			m.Absent = map[string]string{}
		}
		m.Absent[ab.Measure] = ab.Reason
	}
	sort.Strings(m.Extractors)
	signed, err := formats.SignManifest(m, a.Key)
	if err != nil {
		return err
	}
	return a.Spool.WriteRun(rep.RunID, append([]spool.File{{Name: formats.FiguresName, Data: data}}, shares...), signed)
}

// Open builds an agent from its configuration: the key, the spool, the store. launch starts
// plugins (host.Launch in the service; in-process extractors in tests).
func Open(ctx context.Context, cfg *config.Config, launch Launcher, log *slog.Logger) (*Agent, error) {
	key, err := readKey(cfg.KeyFile)
	if err != nil {
		return nil, err
	}
	sp, discarded, err := spool.Open(cfg.Spool)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for _, id := range discarded {
		log.Warn("discarded a run interrupted before its manifest was written; its months are extracted again", "run", id)
	}
	st, err := objstore.Open(ctx, cfg.Store, objstore.Options{AccessKey: cfg.S3.AccessKey, SecretKey: cfg.S3.SecretKey})
	if err != nil {
		return nil, err
	}
	return &Agent{
		Config:   cfg,
		Key:      key,
		Spool:    sp,
		Uploader: &Uploader{Spool: sp, Store: st, StoreURL: redactURL(cfg.Store), Log: log},
		Launch:   launch,
		Log:      log,
	}, nil
}

// redactURL drops anything secret-looking from a store URL before it is logged or recorded.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable store URL)"
	}
	u.User = nil
	q := u.Query()
	for k := range q {
		switch k {
		case "endpoint", "region", "insecure", "ca", "allow_insecure_remote":
		default:
			q.Del(k)
		}
	}
	u.RawQuery = q.Encode()
	return u.String()
}
