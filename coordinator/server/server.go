// Package server is the coordinator's long-running service: it watches the store, re-combines
// when submissions arrive (reading and verifying only files it has not verified before),
// holds the newest combined figures in memory and answers the federation's questions over
// HTTP, as JSON, CSV or Arrow, behind API tokens with roles. The dashboard (package
// dashboard) is served from the same address.
//
// A failed combine never replaces good figures: the server keeps answering from the last
// good snapshot and reports the failure at /api/status.
package server

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/query"
	"github.com/tributary-health/tributary/coordinator/registry"
	"github.com/tributary-health/tributary/coordinator/secure"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// Options configure a Server.
type Options struct {
	Store       objstore.Store
	Coordinator ed25519.PublicKey // verifies the registry
	Tokens      *Tokens
	// Policy is the federation's disclosure policy; zero means formats.DefaultPolicy.
	Policy formats.Policy
	// Interval is how often the store is listed for new submissions; zero means 10 seconds.
	Interval time.Duration
	// Logger receives one line per check that changed something or failed; nil means
	// slog.Default().
	Logger *slog.Logger
	// Limits bound what one client can make the server hold (connections, request and
	// answer sizes, timeouts); zero values take their defaults.
	Limits Limits
	// Keep is how many published combined outputs each combine keeps (combine.Options.Keep).
	Keep int
	// MinOtherPractices is how many other practices a federation figure must include before
	// a practice token sees it (default 2), so that no practice can take its own figure
	// from the federation's and read another's.
	MinOtherPractices int
}

// Server holds the newest combined figures and serves them.
type Server struct {
	opts   Options
	limits Limits
	cache  *combine.Cache
	snap   atomic.Pointer[snapshot]
	hist   *history
	// responses keeps recent answers of the newest snapshot.
	responses *respCache

	refreshMu sync.Mutex // one refresh at a time
	fp        string     // fingerprint of the store when the current snapshot was made

	statusMu sync.Mutex
	status   Status
}

// Status is what /api/status reports about the server's view of the store.
type Status struct {
	Combined      string    `json:"combined"`            // id of the combined output served
	LoadedAt      time.Time `json:"loaded_at,omitzero"`  // when it was loaded
	LastCheck     time.Time `json:"last_check,omitzero"` // when the store was last looked at
	LastError     string    `json:"last_error,omitempty"`
	LastErrorAt   time.Time `json:"last_error_at,omitzero"`
	Combines      int       `json:"combines"`       // combines run since start
	FilesRead     int       `json:"files_read"`     // files read and verified by the last combine
	FilesCached   int       `json:"files_cached"`   // files the last combine took from memory
	CombineMillis int64     `json:"combine_millis"` // how long the last combine and load took
	// Notifications is the state of the subscription to the store's notifications: live,
	// not delivering (the listing on the interval finds new submissions) or off.
	Notifications objstore.NotifyState `json:"notifications"`
}

// New returns a server; call Run to start watching and Handler to serve.
func New(opts Options) (*Server, error) {
	if opts.Store == nil || opts.Coordinator == nil || opts.Tokens == nil {
		return nil, errors.New("server: a store, the coordinator's public key and a tokens file are required")
	}
	if opts.Interval <= 0 {
		opts.Interval = 10 * time.Second
	}
	if opts.Policy.Name == "" {
		opts.Policy = formats.DefaultPolicy
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MinOtherPractices <= 0 {
		opts.MinOtherPractices = 2
	}
	return &Server{opts: opts, limits: opts.Limits.withDefaults(), cache: combine.NewCache(), hist: newHistory(opts.Store), responses: newRespCache(1024, 256<<20)}, nil
}

// Status returns the server's current status.
func (s *Server) Status() Status {
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	return s.status
}

func (s *Server) fail(err error) error {
	s.statusMu.Lock()
	s.status.LastError, s.status.LastErrorAt = err.Error(), time.Now().UTC()
	s.statusMu.Unlock()
	s.opts.Logger.Error("the figures were not updated; still serving the last good ones", "error", err)
	return err
}

// Run loads the figures already combined in the store, then watches the store until ctx is
// done, re-combining whenever submissions or the registry change: at once when the store
// notifies a change (a MinIO bucket whose notifications are delivered), and in any case every
// Interval. Errors of a single check are logged and reported at /api/status; Run returns only
// when ctx is done.
func (s *Server) Run(ctx context.Context) error {
	if s.snap.Load() == nil {
		if err := s.LoadCurrent(ctx); err != nil && !errors.Is(err, query.ErrNotCombined) {
			s.fail(err)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	notified := s.subscribe(ctx)
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		s.Refresh(ctx) // errors are recorded in the status
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case _, ok := <-notified:
			if !ok {
				notified = nil
			}
		}
	}
}

// subscribe subscribes to the store's notifications of new submissions and registry
// changes, if it offers them, logging and reporting the subscription's state as it changes.
func (s *Server) subscribe(ctx context.Context) <-chan struct{} {
	n, ok := s.opts.Store.(objstore.Notifier)
	if !ok {
		s.statusMu.Lock()
		s.status.Notifications = objstore.NotifyState{State: objstore.NotifyOff, Reason: "the store sends no notifications", Since: time.Now().UTC()}
		s.statusMu.Unlock()
		s.opts.Logger.Info("the store sends no notifications: new submissions are found by listing it on the interval", "interval", s.opts.Interval.String())
		return nil
	}
	return n.Notify(ctx, []string{formats.PracticesPrefix, formats.RegistryKey}, s.notifyState)
}

func (s *Server) notifyState(n objstore.NotifyState) {
	s.statusMu.Lock()
	first := s.status.Notifications.State == ""
	s.status.Notifications = n
	s.statusMu.Unlock()
	every := s.opts.Interval.String()
	switch {
	case first && n.State == objstore.NotifySilent:
		s.opts.Logger.Info("subscribing to the store's notifications; until they are live, new submissions are found by listing the store on the interval", "interval", every)
	case n.State == objstore.NotifyLive:
		s.opts.Logger.Info("store notifications live: new submissions are combined as they arrive", "interval", every)
	case n.State == objstore.NotifySilent:
		s.opts.Logger.Warn("store notifications not delivering: new submissions are found by listing the store on the interval", "reason", n.Reason, "interval", every)
	default:
		s.opts.Logger.Warn("store notifications off: new submissions are found by listing the store on the interval", "reason", n.Reason, "interval", every)
	}
}

// LoadCurrent serves what federation/current.json names, without combining: a server starts
// answering at once while its first combine runs.
func (s *Server) LoadCurrent(ctx context.Context) error {
	c, err := query.Open(ctx, s.opts.Store)
	if err != nil {
		return err
	}
	snap, err := load(ctx, s.opts.Store, c.Pointer, s.snap.Load(), s.names(ctx))
	if err != nil {
		return err
	}
	s.publish(snap, nil)
	return nil
}

// publish serves snap. update, when not nil, records in the status what made it, in the same
// step: whoever sees the new figures and then asks /api/status is told about the combine
// that made them, never the one before.
func (s *Server) publish(snap *snapshot, update func(*Status)) {
	s.hist.observe(snap)
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	s.snap.Store(snap)
	s.status.Combined, s.status.LoadedAt = snap.ptr.ID, snap.loaded
	if update != nil {
		update(&s.status)
	}
}

// names returns the practices' display names from the registry, or none if it cannot be read.
func (s *Server) names(ctx context.Context) map[string]string {
	names := map[string]string{}
	reg, err := registry.Load(ctx, s.opts.Store, s.opts.Coordinator)
	if err != nil {
		return names
	}
	for _, e := range reg.Practices {
		names[e.Practice] = e.Name
	}
	return names
}

// fingerprint summarises every submission object and the registry: it changes whenever
// anything a combine reads does.
func (s *Server) fingerprint(ctx context.Context) (string, error) {
	infos, err := s.opts.Store.List(ctx, formats.PracticesPrefix)
	if err != nil {
		return "", fmt.Errorf("list submissions: %w", err)
	}
	h := sha256.New()
	for _, in := range infos {
		fmt.Fprintf(h, "%s %d %d\n", in.Key, in.Size, in.Modified.UnixNano())
	}
	reg, err := s.opts.Store.Stat(ctx, formats.RegistryKey)
	if err != nil && !errors.Is(err, objstore.ErrNotFound) {
		return "", fmt.Errorf("read the registry: %w", err)
	}
	fmt.Fprintf(h, "registry %s %d %d\n", reg.SHA256, reg.Size, reg.Modified.UnixNano())
	// The holders' secure rounds replace federation figures too (the combine reports any it
	// cannot read, so a failure to list them here only delays their use to the next change).
	if rounds, err := s.opts.Store.List(ctx, secure.Prefix); err == nil {
		for _, in := range rounds {
			if strings.HasSuffix(in.Key, "/"+secure.RoundName) {
				fmt.Fprintf(h, "%s %d %d\n", in.Key, in.Size, in.Modified.UnixNano())
			}
		}
	}
	if hf, err := s.opts.Store.Stat(ctx, secure.HoldersKey); err == nil {
		fmt.Fprintf(h, "holders %s %d\n", hf.SHA256, hf.Size)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Refresh looks at the store once and, if anything changed since the figures served were
// made, combines again and serves the result. On any failure the figures served stay as
// they were and the error is returned and reported at /api/status.
func (s *Server) Refresh(ctx context.Context) error {
	s.refreshMu.Lock()
	defer s.refreshMu.Unlock()
	fp, err := s.fingerprint(ctx)
	s.statusMu.Lock()
	s.status.LastCheck = time.Now().UTC()
	s.statusMu.Unlock()
	if err != nil {
		return s.fail(err)
	}
	if fp == s.fp && s.snap.Load() != nil {
		return nil
	}
	start := time.Now()
	before := s.cache.Len()
	opts := combine.Options{Policy: s.opts.Policy, Cache: s.cache, Keep: s.opts.Keep}
	res, err := combine.Run(ctx, s.opts.Store, s.opts.Coordinator, opts)
	if errors.Is(err, combine.ErrSuperseded) {
		// A manual combine published while this one ran, perhaps from older submissions
		// than this one's: combine once more, from everything now in the store (the cache
		// makes it quick), rather than serve figures that may be older than the store's.
		s.opts.Logger.Info("another combine published while this one ran; combining again", "detail", err)
		res, err = combine.Run(ctx, s.opts.Store, s.opts.Coordinator, opts)
	}
	if err != nil {
		return s.fail(fmt.Errorf("combine: %w", err))
	}
	snap, err := load(ctx, s.opts.Store, res.Pointer, s.snap.Load(), s.names(ctx))
	if err != nil {
		return s.fail(fmt.Errorf("load the combined figures: %w", err))
	}
	hits := s.cache.Hits()
	s.publish(snap, func(st *Status) {
		st.Combines++
		st.FilesCached, st.FilesRead = hits, res.Report.FilesCombined-hits
		st.CombineMillis = time.Since(start).Milliseconds()
		st.LastError, st.LastErrorAt = "", time.Time{}
	})
	s.fp = fp
	// A combine leaves much garbage behind; give it back to the system now rather than
	// holding it until the next collection.
	debug.FreeOSMemory()
	s.opts.Logger.Info("combined", "id", res.Pointer.ID, "practices", res.Report.Practices,
		"files", res.Report.FilesCombined, "read", res.Report.FilesCombined-hits, "quarantined", len(res.Report.Quarantined),
		"pruned", res.Pruned, "cached_before", before, "took", time.Since(start).Round(time.Millisecond))
	if res.PruneErr != nil {
		s.opts.Logger.Warn("the figures are published, but recording the history or pruning failed; the next combine tries again", "error", res.PruneErr)
	}
	return nil
}
