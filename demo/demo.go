// Package demo runs a whole federation on one machine: it makes (or takes) practices' Synthea
// data, gives every practice a key and an agent, registers them, runs every agent once against
// a local directory store, and combines the result. It is the README's main command and the
// quickest way to see Tributary work end to end on your own data.
package demo

import (
	"context"
	"crypto/ed25519"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tributary-health/tributary/agent"
	"github.com/tributary-health/tributary/agent/config"
	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/registry"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/internal/progress"
	"github.com/tributary-health/tributary/internal/synthgen"
	"github.com/tributary-health/tributary/plugins/host"
	"github.com/tributary-health/tributary/secagg"
)

// Options say what to run.
type Options struct {
	// Practices is a folder with one subfolder per practice, its name the practice id, each
	// holding one practice's export in any shape the demo recognises (DetectShape: Synthea CSV,
	// FHIR NDJSON, OMOP CSV, UK GP tables), read by the matching extractor. Empty: generate
	// Generate practices of synthetic data with England's hospital rates
	// (synthgen.EnglandRates).
	Practices string
	// Generate is how many practices to generate when Practices is empty (default 5).
	Generate int
	// PatientsPerPractice for generated practices. Zero: each practice's list size is drawn
	// from Seed between MinPatients and MaxPatients, as lists in England differ.
	PatientsPerPractice int
	// Workdir holds everything the demo makes: keys, spools, the store (workdir/store).
	Workdir string
	// Plugin is the Synthea extractor binary; empty: synthea in PluginDir.
	Plugin string
	// PluginDir holds the extractor binaries, each named after its shape (synthea, fhir, omop,
	// ukgp); a practice whose extractor is not there is reported and skipped.
	PluginDir string
	// From and To are the months each agent extracts. Zero (0000-01, never a real month of
	// data) means: for Practices, the first and the last month of their encounters, To no
	// later than the last complete month; for generated practices, DefaultFrom and DefaultTo.
	From, To formats.Month
	// Seed for generated data.
	Seed int64
	// Store is the store URL; empty means the embedded default, file://<workdir>/store.
	Store string
	// StoreOptions carry credentials for an s3:// Store.
	StoreOptions objstore.Options
	// SecureAggregation also sends every practice's exact counts as secret shares to two
	// holders on this machine, runs their round, and reads the secure federation totals.
	SecureAggregation bool
	// Concurrency is how many practices' agents run at once; 0: runtime.GOMAXPROCS. Whatever
	// it is, the practices are reported in their order and the figures are the same.
	Concurrency int
	Log         *slog.Logger
	Out         io.Writer // progress for people
	// Progress, when set, is a progress bar (begun with no steps) the demo moves on as the
	// practices are extracted and uploaded and the federation combined; the caller ends it.
	Progress *progress.Bar
}

// The months of generated practices when Options do not say.
var (
	DefaultFrom = formats.MonthFor(2023, 1)
	DefaultTo   = formats.MonthFor(2024, 12)
)

// The range of generated practices' list sizes when Options do not fix one, from a small
// practice's list to a large one's.
const (
	MinPatients = 2000
	MaxPatients = 12000
)

// maxMonths is the longest range an agent's configuration accepts (agent/config, 50 years).
// Synthea follows people from birth, so an export's encounters can reach back further.
const maxMonths = 50 * 12

// Result says where things are.
type Result struct {
	StoreURL string
	// Practices are those whose agent ran and uploaded; Skipped the others, with the reason.
	Practices []string
	Skipped   []Skip
	From, To  formats.Month // the months extracted
	// Shapes is each practice folder's shape, as recognised.
	Shapes   map[string]Shape
	CoordKey string // the coordinator's private key file
	Combine  *combine.Result
	Runs     []*agent.RunReport
	Secure   *SecureResult // with Options.SecureAggregation
}

// Skip is a practice left out of the run.
type Skip struct {
	Practice string
	Err      error
}

// Run runs the demo.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Workdir == "" {
		return nil, errors.New("demo: --workdir is required")
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Plugin == "" && o.PluginDir != "" {
		o.Plugin = filepath.Join(o.PluginDir, string(ShapeSynthea))
	}
	if o.Plugin == "" && o.Practices == "" {
		return nil, errors.New("demo: the Synthea plugin binary was not found; build it with 'go build -o bin/ ./plugins/synthea' or pass --plugin PATH")
	}
	work, err := filepath.Abs(o.Workdir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	from, to := o.From, o.To
	practicesDir := o.Practices
	if practicesDir == "" {
		if from == 0 {
			from = DefaultFrom
		}
		if to == 0 {
			to = DefaultTo
		}
		if to < from {
			return nil, fmt.Errorf("demo: --to %s is before --from %s", to, from)
		}
		practicesDir = filepath.Join(work, "practices")
		if err := generate(o, practicesDir, from, to); err != nil {
			return nil, err
		}
	} else if practicesDir, err = filepath.Abs(practicesDir); err != nil {
		// The plugin runs in its own folder, so a relative dir would name another place.
		return nil, err
	}
	practices, err := listPractices(practicesDir)
	if err != nil {
		return nil, err
	}

	res := &Result{StoreURL: o.Store, Shapes: map[string]Shape{}}
	skip := func(id string, err error) {
		fmt.Fprintf(o.Out, "practice %s: %v; skipped\n", id, err)
		res.Skipped = append(res.Skipped, Skip{Practice: id, Err: err})
	}
	plugins := map[Shape]plugin{}
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		// Months as the plugin counts them by default; without zone data UTC is at most an
		// hour off at a month's edge.
		loc = time.UTC
	}
	months := map[string]map[formats.Month]int{}
	var scanned []string
	for _, id := range practices {
		dir := filepath.Join(practicesDir, id)
		shape, err := DetectShape(dir)
		if err != nil {
			skip(id, err)
			continue
		}
		if _, ok := plugins[shape]; !ok {
			plugins[shape] = o.plugin(shape)
		}
		if err := plugins[shape].err; err != nil {
			skip(id, fmt.Errorf("%s export, but %w", shape, err))
			continue
		}
		m, known, err := activityMonths(shape, dir, loc)
		if err != nil {
			skip(id, err)
			continue
		}
		if known {
			months[id] = m
		}
		res.Shapes[id] = shape
		fmt.Fprintf(o.Out, "practice %s: %s export, read by the %s extractor\n", id, shapeName(shape), shape)
		scanned = append(scanned, id)
	}
	if o.Practices != "" && (from == 0 || to == 0) {
		from, to, err = dataRange(o.Out, months, from, to, formats.MonthOf(time.Now().UTC())-1)
		if err != nil {
			return nil, err
		}
	}
	if to < from {
		return nil, fmt.Errorf("demo: --to %s is before --from %s", to, from)
	}
	res.From, res.To = from, to

	if res.StoreURL == "" {
		res.StoreURL = "file://" + filepath.ToSlash(filepath.Join(work, "store"))
	}
	st, err := objstore.Open(ctx, res.StoreURL, o.StoreOptions)
	if err != nil {
		return nil, err
	}
	coordPriv, err := coordinatorKey(filepath.Join(work, "coordinator"))
	if err != nil {
		return nil, err
	}
	res.CoordKey = filepath.Join(work, "coordinator", "coordinator.key")

	var holderKeys [2]*secagg.HolderKey
	if o.SecureAggregation {
		if holderKeys, err = secureHolders(ctx, st, work, coordPriv); err != nil {
			return nil, err
		}
	}
	pr := practiceRun{holders: holderKeys, o: o, work: work, dir: practicesDir, plugins: plugins, shapes: res.Shapes, store: st, storeURL: res.StoreURL, coord: coordPriv, from: from, to: to}
	if err := pr.runAll(ctx, scanned, months, res); err != nil {
		return nil, err
	}
	if len(res.Runs) == 0 {
		errs := make([]error, len(res.Skipped))
		for i, sk := range res.Skipped {
			errs[i] = fmt.Errorf("practice %s: %w", sk.Practice, sk.Err)
		}
		return nil, fmt.Errorf("demo: no practice ran:\n%w", errors.Join(errs...))
	}

	if o.SecureAggregation {
		o.Progress.Describe("secure aggregation: the holders' round")
		if res.Secure, err = secureRound(ctx, o, st, work, coordPriv.Public().(ed25519.PublicKey), holderKeys); err != nil {
			return nil, err
		}
	}
	o.Progress.Describe("combining %d practice(s)", len(res.Runs))
	cr, err := combine.Run(ctx, st, coordPriv.Public().(ed25519.PublicKey), combine.Options{})
	if err != nil {
		return nil, err
	}
	o.Progress.Add(1)
	o.Progress.Describe("combined %d practice(s)", len(res.Runs))
	res.Combine = cr
	return res, nil
}

// outcome is what became of one practice's turn: skipped before its agent ran (noData, or
// err from its keys or registration), or its agent's run (rep or err).
type outcome struct {
	noData, err error
	rep         *agent.RunReport
	done        chan struct{} // closed when the outcome is known
}

// runAll runs the agents of the practices ids, up to Options.Concurrency at a time, and
// reports each practice's outcome in the order of ids, as it would running one after another:
// each line is printed once its practice and every one before it are done. Keys and
// registration go first, one practice after another, in that order: the registry is one
// object, read, added to and written back.
func (pr practiceRun) runAll(ctx context.Context, ids []string, months map[string]map[formats.Month]int, res *Result) error {
	o := pr.o
	outs := make([]*outcome, len(ids))
	var todo []int
	for i, id := range ids {
		outs[i] = &outcome{done: make(chan struct{})}
		if m, known := months[id]; known && !anyIn(m, pr.from, pr.to) {
			outs[i].noData = fmt.Errorf("no encounters between %s and %s", pr.from, pr.to)
			close(outs[i].done)
			continue
		}
		o.Progress.Describe("practice %s: keys and registration", id)
		if err := pr.prepare(ctx, id); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			outs[i].err = err
			close(outs[i].done)
			continue
		}
		todo = append(todo, i)
	}
	workers := o.Concurrency
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, len(todo))
	// Two steps a practice, extracted and uploaded, and one for the combine.
	o.Progress.AddMax(2*len(todo) + 1)
	d := &demoProgress{bar: o.Progress, of: len(todo)}
	d.show()
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				p := &practiceProgress{d: d}
				rep, err := pr.run(ctx, ids[i], p)
				p.finished(err == nil)
				outs[i].rep, outs[i].err = rep, err
				close(outs[i].done)
			}
		})
	}
	go func() {
		defer close(jobs)
		for k, i := range todo {
			select {
			case jobs <- i:
			case <-ctx.Done():
				for _, j := range todo[k:] {
					outs[j].err = ctx.Err()
					close(outs[j].done)
				}
				return
			}
		}
	}()
	defer wg.Wait()
	for i, id := range ids {
		<-outs[i].done
		if ctx.Err() != nil {
			return ctx.Err()
		}
		out := outs[i]
		switch {
		case out.noData != nil:
			fmt.Fprintf(o.Out, "practice %s has no encounters between %s and %s; skipped\n", id, pr.from, pr.to)
			res.Skipped = append(res.Skipped, Skip{Practice: id, Err: out.noData})
		case out.err != nil:
			fmt.Fprintf(o.Out, "practice %s: %v; skipped\n", id, out.err)
			res.Skipped = append(res.Skipped, Skip{Practice: id, Err: out.err})
		default:
			rep := out.rep
			var events int64
			for _, p := range rep.Plugins {
				events += p.Events
			}
			fmt.Fprintf(o.Out, "practice %-8s run %s: %d patients, %d events, %d file(s) uploaded (months %s to %s)\n", id, rep.RunID, rep.Patients, events, rep.Files, rep.From, rep.To)
			res.Practices = append(res.Practices, id)
			res.Runs = append(res.Runs, rep)
		}
	}
	return nil
}

// demoProgress counts the practices' agents on the demo's bar.
type demoProgress struct {
	bar                          *progress.Bar
	mu                           sync.Mutex
	of, extracted, uploaded, bad int
	rows                         int64
}

func (d *demoProgress) show() {
	failed := ""
	if d.bad > 0 {
		failed = fmt.Sprintf(", %d failed", d.bad)
	}
	d.bar.Status("practices %d/%d extracted, %d/%d uploaded%s; %s rows", d.extracted, d.of, d.uploaded, d.of, failed, progress.Count(d.rows))
}

// practiceProgress is one practice agent's agent.Progress, told to the demo's bar.
type practiceProgress struct {
	d         *demoProgress
	extracted bool
}

func (p *practiceProgress) PluginStarted(string, int, int) {}
func (p *practiceProgress) PluginDone(string, error)       {}
func (p *practiceProgress) Uploaded()                      {}

func (p *practiceProgress) Batch(rows int) {
	p.d.mu.Lock()
	defer p.d.mu.Unlock()
	p.d.rows += int64(rows)
	p.d.show()
}

// Uploading: the practice's run is extracted and in its spool.
func (p *practiceProgress) Uploading(int) {
	p.d.mu.Lock()
	defer p.d.mu.Unlock()
	p.extracted = true
	p.d.extracted++
	p.d.show()
	p.d.bar.Add(1)
}

// finished: the practice's agent is done, its run uploaded (ok) or not.
func (p *practiceProgress) finished(ok bool) {
	p.d.mu.Lock()
	defer p.d.mu.Unlock()
	steps := 1
	if !p.extracted {
		steps = 2
	}
	if ok {
		p.d.uploaded++
	} else {
		p.d.bad++
	}
	p.d.show()
	p.d.bar.Add(steps)
}

// generate writes o.Generate practices into dir with England's hospital rates, their
// encounters from a year before from (a history before the first month) to the end of to.
func generate(o Options, dir string, from, to formats.Month) error {
	n := o.Generate
	if n <= 0 {
		n = 5
	}
	sizes := make([]int, n)
	if o.PatientsPerPractice > 0 {
		for i := range sizes {
			sizes[i] = o.PatientsPerPractice
		}
	} else {
		var err error
		if sizes, err = synthgen.Sizes(o.Seed, n, MinPatients, MaxPatients); err != nil {
			return err
		}
	}
	list := make([]string, n)
	for i, s := range sizes {
		list[i] = fmt.Sprint(s)
	}
	o.Progress.Describe("generating %d practices", n)
	fmt.Fprintf(o.Out, "generating %d synthetic practices with England's hospital rates (%s patients) in %s\n", n, strings.Join(list, ", "), dir)
	_, err := synthgen.WriteFederationSizes(dir, sizes, synthgen.Config{
		Seed: o.Seed, Rates: synthgen.EnglandRates,
		From: from.Start().AddDate(-1, 0, 0), To: (to + 1).Start(),
	})
	return err
}

// practiceRun runs one practice's agent once.
type practiceRun struct {
	o        Options
	work     string
	dir      string // the practices' folder, absolute
	plugins  map[Shape]plugin
	shapes   map[string]Shape
	store    objstore.Store
	storeURL string
	coord    ed25519.PrivateKey
	from, to formats.Month
	holders  [2]*secagg.HolderKey // with Options.SecureAggregation
}

// prepare gives practice id its key pair, if it has none, and registers its public key.
func (pr practiceRun) prepare(ctx context.Context, id string) error {
	keyDir := filepath.Join(pr.work, "agents", id, "keys")
	if _, err := os.Stat(filepath.Join(keyDir, agent.PrivateKeyFile)); errors.Is(err, os.ErrNotExist) {
		if _, _, err := agent.InitKeys(keyDir); err != nil {
			return err
		}
	}
	pubPEM, err := os.ReadFile(filepath.Join(keyDir, agent.PublicKeyFile))
	if err != nil {
		return err
	}
	pub, err := formats.ParsePublicKey(pubPEM)
	if err != nil {
		return err
	}
	return registerOnce(ctx, pr.store, pr.coord, id, pub)
}

// run runs practice id's agent once (after prepare), telling prog how it goes.
func (pr practiceRun) run(ctx context.Context, id string, prog agent.Progress) (*agent.RunReport, error) {
	priv := filepath.Join(pr.work, "agents", id, "keys", agent.PrivateKeyFile)
	o := pr.o
	shape := pr.shapes[id]
	if shape == "" {
		shape = ShapeSynthea // generated practices
	}
	pl := pr.plugins[shape]
	cfg := &config.Config{
		Practice: id,
		KeyFile:  priv,
		Store:    pr.storeURL,
		Spool:    filepath.Join(pr.work, "agents", id, "spool"),
		Policy:   formats.DefaultPolicy.Name,
		Months:   config.Months{From: pr.from.String(), To: pr.to.String()},
		S3:       config.S3{AccessKey: o.StoreOptions.AccessKey, SecretKey: o.StoreOptions.SecretKey},
		Plugins: []config.Plugin{{
			Name: string(shape), Path: pl.path, SHA256: pl.sum,
			Config: pluginConfig(shape, filepath.Join(pr.dir, id)),
		}},
	}
	if o.SecureAggregation {
		cfg.SecureAggregation = secureConfig(pr.holders)
	}
	cfg.PluginStartTimeout.Duration = 30 * time.Second
	cfg.PluginRunTimeout.Duration = 30 * time.Minute
	cfg.Listen = config.ListenOff // many agents on this machine: no metrics endpoint
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a, err := agent.Open(ctx, cfg, agent.HostLauncher(cfg, o.Log), o.Log)
	if err != nil {
		return nil, err
	}
	a.Progress = prog
	rep, err := a.RunOnce(ctx)
	// The plugin's own error says more than the agent's "nothing extracted".
	if rep != nil {
		for _, p := range rep.Plugins {
			if p.Err != nil {
				return nil, p.Err
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if rep.UploadErr != nil {
		return nil, fmt.Errorf("upload: %w", rep.UploadErr)
	}
	return rep, nil
}

// encounterMonths counts the encounters of a Synthea encounters.csv by the month of START in
// loc, reading it a row at a time. Rows whose START is not a timestamp are left to the
// plugin, which skips and reports them. Errors do not quote the file, which is patient data.
func encounterMonths(path string, loc *time.Location) (map[formats.Month]int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read encounters.csv: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	r.ReuseRecord = true
	r.FieldsPerRecord = -1
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("encounters.csv has no header row: %w", err)
	}
	col := -1
	for i, h := range head {
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff")
		}
		if strings.TrimSpace(h) == "START" {
			col = i
		}
	}
	if col < 0 {
		return nil, errors.New("encounters.csv has no START column")
	}
	out := map[formats.Month]int{}
	for {
		rec, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("encounters.csv line %d is not valid CSV: %w", pe.Line, pe.Err)
			}
			return nil, fmt.Errorf("reading encounters.csv: %w", err)
		}
		if col >= len(rec) {
			continue
		}
		t, err := time.Parse(time.RFC3339, rec[col])
		if err != nil {
			continue
		}
		out[formats.MonthOf(t.In(loc))]++
	}
}

// dataRange fills the unset ends of from..to with the union of the practices' months, to no
// later than lastComplete: a month still under way would be published as if it were whole.
func dataRange(out io.Writer, months map[string]map[formats.Month]int, from, to, lastComplete formats.Month) (formats.Month, formats.Month, error) {
	var first, last formats.Month
	found := false
	for _, ms := range months {
		for m := range ms {
			if !found || m < first {
				first = m
			}
			if !found || m > last {
				last = m
			}
			found = true
		}
	}
	if !found {
		return 0, 0, errors.New("demo: no practice has an encounter to take the months from; pass --from and --to")
	}
	note := ""
	if to == 0 {
		to = last
		if to > lastComplete {
			to = lastComplete
			note = fmt.Sprintf("; %s is the last complete month", to)
		}
	}
	if from == 0 {
		from = first
		if to-from >= maxMonths {
			from = to - maxMonths + 1
			note += fmt.Sprintf("; the data begin in %s but an agent extracts at most %d years", first, maxMonths/12)
		}
	}
	if to < from {
		return 0, 0, fmt.Errorf("demo: the practices' encounters run from %s to %s, which leaves no months from %s to %s; pass --from and --to", first, last, from, to)
	}
	fmt.Fprintf(out, "extracting %s to %s, the months of the practices' encounters%s\n", from, to, note)
	return from, to, nil
}

func anyIn(months map[formats.Month]int, from, to formats.Month) bool {
	for m := range months {
		if from <= m && m <= to {
			return true
		}
	}
	return false
}

func listPractices(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("demo: --practices: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if st, err := os.Stat(filepath.Join(dir, e.Name())); err != nil || !st.IsDir() {
			continue // a file, or a link to none
		}
		if err := formats.ValidatePracticeID(e.Name()); err != nil {
			return nil, fmt.Errorf("demo: subfolder %q of %s: %w", e.Name(), dir, err)
		}
		ids = append(ids, e.Name())
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("demo: %s has no practice subfolders", dir)
	}
	sort.Strings(ids)
	return ids, nil
}

func coordinatorKey(dir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, "coordinator.key")
	if b, err := os.ReadFile(path); err == nil {
		return formats.ParsePrivateKey(b)
	}
	_, priv, err := formats.GenerateKey()
	if err != nil {
		return nil, err
	}
	pemb, err := formats.MarshalPrivateKey(priv)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return priv, os.WriteFile(path, pemb, 0o600)
}

func registerOnce(ctx context.Context, st objstore.Store, coord ed25519.PrivateKey, id string, pub ed25519.PublicKey) error {
	loaded, err := registry.Load(ctx, st, coord.Public().(ed25519.PublicKey))
	if err == nil {
		for _, e := range loaded.Registry.Practices {
			if e.Practice == id && e.KeyID == formats.KeyID(pub) {
				return nil
			}
		}
	} else if !errors.Is(err, registry.ErrNoRegistry) {
		return err
	}
	_, err = registry.Add(ctx, st, coord, id, "Practice "+id, pub, time.Now())
	return err
}

// plugin is an extractor binary and its checksum, or why there is none.
type plugin struct {
	path, sum string
	err       error
}

// plugin finds the extractor for a shape: Options.Plugin for Synthea, else the shape's name
// in PluginDir.
func (o Options) plugin(shape Shape) plugin {
	path := o.Plugin
	if shape != ShapeSynthea || path == "" {
		if o.PluginDir == "" {
			return plugin{err: fmt.Errorf("no plugin folder was given to find the %s extractor in; pass --plugin-dir", shape)}
		}
		path = filepath.Join(o.PluginDir, string(shape))
	}
	sum, err := host.FileSHA256(path)
	if err != nil {
		return plugin{err: fmt.Errorf("the %s extractor %s cannot be read (%v); build it with 'go build -o %s ./plugins/%s'", shape, path, err, filepath.Dir(path)+string(filepath.Separator), shape)}
	}
	return plugin{path: path, sum: sum}
}

// shapeName is a shape for people.
func shapeName(s Shape) string {
	switch s {
	case ShapeSynthea:
		return "Synthea CSV"
	case ShapeFHIR:
		return "FHIR"
	case ShapeOMOP:
		return "OMOP CDM CSV"
	case ShapeUKGP:
		return "UK GP tables"
	}
	return string(s)
}
