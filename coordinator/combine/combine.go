// Package combine turns the practices' signed submissions into federation figures: it
// verifies every run, keeps for each practice-month the newest run that verifies, keeps a
// practice's quarter and year values only where that run is still the newest for all their
// months, and hands the result to coordinator/figures, which answers every figure from the
// coarsest published values (see its package comment for bounds, counts and estimates). It
// writes a table for each practice, the federation's table and a report under federation/.
//
// Nothing published is computed from a true count, only from published values and bounds,
// so no federation figure, nor any difference of them, can reveal more about a small count
// than what the practices published.
package combine

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/tributary-health/tributary/coordinator/figures"
	"github.com/tributary-health/tributary/coordinator/internal/ordered"
	"github.com/tributary-health/tributary/coordinator/measures"
	"github.com/tributary-health/tributary/coordinator/registry"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// Output layout under federation/.
const (
	CombinedPrefix    = formats.FederationPrefix + "combined/"
	CurrentKey        = formats.FederationPrefix + "current.json"
	FederationArrow   = "federation.arrow"
	FederationParquet = "federation.parquet"
	ReportJSON        = "report.json"
	// PracticeTablesPrefix holds each practice's table, named by its content's digest so a
	// practice whose files did not change keeps the same object from one combine to the next.
	PracticeTablesPrefix = formats.FederationPrefix + "practices/"
)

// StatusPartial is the status of a combined figure some of whose pieces were suppressed.
const StatusPartial = figures.StatusPartial

// Version of the combined outputs; part of every output's name. Version 2 holds periods
// (months, quarters, years) and margins; version 3 writes practice tables as one row per
// period and measure with a code column per shape, as submissions are.
const Version = 3

// Options tune a combine. The zero value is ready to use.
type Options struct {
	// Policy is the federation's disclosure policy; zero means formats.DefaultPolicy.
	Policy formats.Policy
	// Workers bounds how many objects are fetched and verified at once; zero means twice the
	// number of CPUs.
	Workers int
	// Limits bound each submission read; zero means formats.DefaultLimits.
	Limits formats.Limits
	// Cache, when set, keeps verified practice-months from one Run to the next, so a
	// long-running coordinator re-reads and re-verifies only files it has not seen.
	Cache *Cache
	// Keep is how many published combined outputs are kept (the revision history); older
	// ones, and what an interrupted combine left, are pruned. Zero means DefaultKeep.
	Keep int
	// Now is the coordinator's clock; nil means time.Now. A run created more than
	// MaxClockSkew after it, or covering a month after its month, is quarantined.
	Now func() time.Time
}

// Pointer is federation/current.json: it names the newest combined output.
type Pointer struct {
	FormatVersion int                  `json:"format_version"`
	ID            string               `json:"id"`
	Prefix        string               `json:"prefix"`
	Objects       map[string]ObjectRef `json:"objects"` // by name: federation.arrow, ...
	// PracticeTables are the per-practice tables (Arrow IPC) by practice id: each practice's
	// published cells, for queries that break down by practice.
	PracticeTables map[string]ObjectRef `json:"practice_tables"`
	FirstMonth     string               `json:"first_month,omitempty"`
	LastMonth      string               `json:"last_month,omitempty"`
	Practices      int                  `json:"practices"`
	Quarantined    int                  `json:"quarantined"`
	Policy         string               `json:"policy"`
	// SuppressMax is the top of the suppressed range (see the package comment); queries
	// that aggregate combined cells apply the same rule with it.
	SuppressMax int64 `json:"suppress_max"`
}

// ObjectRef is one stored output.
type ObjectRef struct {
	Key    string `json:"key"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Result is what Run made.
type Result struct {
	Pointer Pointer
	Report  *Report
	// Pruned counts the objects the retention setting removed; PruneErr says why recording
	// the history or pruning failed (the figures are published all the same; both are tried
	// again by the next combine).
	Pruned   int
	PruneErr error
}

// ErrSuperseded: another combine published federation/current.json while this one ran, so
// this one did not replace it (its figures may be newer); nothing it wrote is published.
var ErrSuperseded = errors.New("another combine published while this one ran")

// Run combines every practice's newest verified submissions in st, trusting the registry
// signed by coordinator, and stores the outputs and a new federation/current.json. Objects
// that fail verification are quarantined (listed in the report) and the combine carries on; it
// fails only when the store itself fails or the registry does not verify.
//
// Run publishes only if federation/current.json is still what it was when Run started
// (objstore's PutIf): a combine running elsewhere at the same time (the service beside a
// manual combine) never has its newer figures replaced by older ones. If the pointer moved,
// Run returns an error wrapping ErrSuperseded, naming the combine that published, unless
// that combine published the very same output; combining again then combines everything
// both saw.
func Run(ctx context.Context, st objstore.Store, coordinator ed25519.PublicKey, opts Options) (*Result, error) {
	if opts.Policy.Name == "" {
		opts.Policy = formats.DefaultPolicy
	}
	if opts.Workers <= 0 {
		opts.Workers = 2 * runtime.GOMAXPROCS(0)
	}
	if opts.Limits.MaxObjectBytes <= 0 {
		opts.Limits = formats.DefaultLimits
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	// Before anything is read: whatever is published after this was made from inputs at
	// least as new as this combine's.
	published, err := st.Stat(ctx, CurrentKey)
	switch {
	case errors.Is(err, objstore.ErrNotFound):
		published.SHA256 = objstore.Absent
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", CurrentKey, err)
	}
	reg, err := registry.Load(ctx, st, coordinator)
	if err != nil {
		return nil, err
	}
	defs, err := measures.Load(ctx, st, coordinator)
	if err != nil {
		return nil, err
	}
	c := &combiner{st: st, reg: reg, opts: opts, defs: defs, digests: defs.Digests(), published: published.SHA256, completeness: map[formats.Month][]Contributor{}, ignored: map[string]bool{},
		tables: map[string]ObjectRef{}, uses: map[string]InputFile{},
		engine: figures.New(opts.Policy, opts.Policy.SuppressMax, formats.MeasureNames(defs.Defs))}
	for name, d := range c.digests {
		c.digest = append(c.digest, "definition "+name+" "+d)
	}
	c.loadSecure(ctx, coordinator)
	infos, err := st.List(ctx, formats.PracticesPrefix)
	if err != nil {
		return nil, fmt.Errorf("list submissions: %w", err)
	}
	var manifestKeys []string
	c.listed = make(map[string]objstore.Info, len(infos))
	for _, info := range infos {
		if info.Problem != "" {
			// A link, pipe or device put where an object belongs: never followed or read.
			c.quarantine(practiceOfKey(info.Key), info.Key, fmt.Errorf("%w: %s stands at %s; the store does not follow or read it: remove it", objstore.ErrNotRegular, info.Problem, info.Key))
			c.digest = append(c.digest, "irregular "+info.Key)
			continue
		}
		c.listed[info.Key] = info
		k, err := formats.ParseKey(info.Key)
		if err != nil {
			c.quarantine(practiceOfKey(info.Key), info.Key, err)
			c.digest = append(c.digest, "badkey "+info.Key)
			continue
		}
		if k.Manifest() {
			manifestKeys = append(manifestKeys, info.Key)
		}
	}
	manifests, err := c.readManifests(ctx, manifestKeys)
	if err != nil {
		return nil, err
	}
	work := plan(manifests)
	c.practiceMeta = map[string]string{
		formats.MetaKind:          KindPractices,
		formats.MetaFormatVersion: itoa(Version),
		formats.MetaPolicy:        opts.Policy.Name,
	}
	opts.Cache.begin()
	err = ordered.Run(ctx, len(work), opts.Workers,
		func(ctx context.Context, i int) (*practiceResult, error) { return c.readPractice(ctx, work[i]) },
		func(_ int, r *practiceResult) error { return c.add(r) })
	if err != nil {
		return nil, err
	}
	res, err := c.finish(ctx, manifests)
	if err != nil {
		return nil, err
	}
	opts.Cache.end()
	res.Pruned, res.PruneErr = record(ctx, st, res.Pointer, opts.Keep, opts.Now())
	return res, nil
}

// practiceOfKey returns the practice segment of a key under practices/, if it is a valid id.
func practiceOfKey(key string) string {
	rest, _ := strings.CutPrefix(key, formats.PracticesPrefix)
	p, _, _ := strings.Cut(rest, "/")
	if formats.ValidatePracticeID(p) != nil {
		return ""
	}
	return p
}

type combiner struct {
	st        objstore.Store
	reg       *registry.Loaded
	defs      *measures.Loaded
	digests   map[string]string // measure -> the federation's definition digest
	opts      Options
	engine    *figures.Engine
	published string // SHA-256 of federation/current.json when the combine started, or objstore.Absent
	sec       *secureState

	quarantined  []Quarantined
	digest       []string // lines naming every input that shaped the output
	completeness map[formats.Month][]Contributor
	ignored      map[string]bool
	uses         map[string]InputFile // file key -> what became of it
	practiceMeta map[string]string
	tables       map[string]ObjectRef // practice -> its table
	listed       map[string]objstore.Info
	practiceRows int64
	contributing int
	files        int
	months       int
}

func (c *combiner) quarantine(practice, key string, err error) {
	c.quarantined = append(c.quarantined, Quarantined{Practice: practice, Key: key, Kind: kindOf(err), Reason: err.Error()})
}

// manifest is a verified run manifest.
type manifest struct {
	*formats.Manifest
	from, to formats.Month
	key      string
	sha256   string
	keyID    string
}

type manifestResult struct {
	m      *manifest
	sha256 string
	err    error // a reason to quarantine
}

func (c *combiner) readManifests(ctx context.Context, keys []string) ([]*manifest, error) {
	var out []*manifest
	err := ordered.Run(ctx, len(keys), c.opts.Workers,
		func(ctx context.Context, i int) (manifestResult, error) { return c.readManifest(ctx, keys[i]) },
		func(i int, r manifestResult) error {
			c.digest = append(c.digest, "manifest "+keys[i]+" "+r.sha256)
			if r.err != nil {
				c.quarantine(practiceOfKey(keys[i]), keys[i], r.err)
				return nil
			}
			out = append(out, r.m)
			return nil
		})
	return out, err
}

func (c *combiner) readManifest(ctx context.Context, key string) (manifestResult, error) {
	data, _, err := c.st.Get(ctx, key, formats.MaxEnvelopeBytes)
	if err != nil {
		if fatal(err) || ctx.Err() != nil {
			return manifestResult{}, fmt.Errorf("read manifest: %w", err)
		}
		return manifestResult{sha256: "unreadable", err: err}, nil
	}
	h := sha256.Sum256(data)
	r := manifestResult{sha256: hex.EncodeToString(h[:])}
	k, _ := formats.ParseKey(key) // listed keys were parsed already
	env, err := formats.ParseEnvelope(data)
	if err != nil {
		r.err = formats.WithObject(err, key)
		return r, nil
	}
	pub, err := c.reg.KeyFor(k.Practice, env.KeyID)
	if err != nil {
		r.err = formats.WithObject(err, key)
		return r, nil
	}
	m, err := formats.VerifyManifest(key, data, pub)
	if err != nil {
		r.err = err
		return r, nil
	}
	if m.Policy != c.opts.Policy.Name {
		r.err = fmt.Errorf("%s: %w: the run was made under %s, the federation's policy is %s; set policy = %q in the practice's agent configuration and run it again",
			key, ErrPolicy, m.Policy, c.opts.Policy.Name, c.opts.Policy.Name)
		return r, nil
	}
	from, to, _ := m.Months() // validated with the manifest
	if err := checkClock(m, to, c.opts.Now()); err != nil {
		r.err = err
		return r, nil
	}
	r.m = &manifest{Manifest: m, from: from, to: to, key: key, sha256: r.sha256, keyID: env.KeyID}
	return r, nil
}

// practiceWork is one practice's verified runs, newest first.
type practiceWork struct {
	practice string
	runs     []*manifest
}

// newer orders runs newest first: by manifest creation time, then by run id.
func newer(a, b *manifest) int {
	if c := b.Created.Compare(a.Created); c != 0 {
		return c
	}
	return strings.Compare(b.RunID, a.RunID)
}

func plan(ms []*manifest) []practiceWork {
	by := map[string][]*manifest{}
	for _, m := range ms {
		by[m.Practice] = append(by[m.Practice], m)
	}
	var work []practiceWork
	for practice, runs := range by {
		slices.SortFunc(runs, newer)
		work = append(work, practiceWork{practice: practice, runs: runs})
	}
	slices.SortFunc(work, func(a, b practiceWork) int { return strings.Compare(a.practice, b.practice) })
	return work
}

// runValues is one verified run's published values, by period and catalogue measure. It is
// never changed once made, so practices (and the cache) share its arrays.
type runValues struct {
	m        *manifest
	blocks   map[formats.Period][]*figures.Shapes
	measures int      // measures of the federation's definitions the run supplied
	ignored  []string // measures the federation does not define
	// excluded are measures the run supplied by another definition than the federation's:
	// left out of this run's values (conform), with why.
	excluded []ExcludedMeasure
}

// practiceResult is what one practice's runs gave.
type practiceResult struct {
	practice    *figures.Practice
	months      []monthUse // combined months, in order
	quarantined []Quarantined
	uses        []InputFile
	digest      []string
	table       ObjectRef // the practice's table, when it has a combined month
	rows        int64
	runs        int // run files combined
	ignored     []string
}

type monthUse struct {
	month formats.Month
	run   *runValues
}

// readPractice takes the practice's runs newest first and, for each month, the newest run
// whose file verifies; a file that fails is quarantined and its months go to the next newest
// run, so one bad upload does not leave a hole where an earlier good revision exists. A
// run's quarter and year values are kept only where the run holds all their months.
func (c *combiner) readPractice(ctx context.Context, w practiceWork) (*practiceResult, error) {
	r := &practiceResult{practice: c.engine.NewPractice(w.practice)}
	taken := map[formats.Month]*runValues{}
	for _, m := range w.runs {
		f, _ := m.Submission() // validated with the manifest
		use := InputFile{Key: f.Key, Size: f.Size, SHA256: f.SHA256}
		var open []formats.Month
		for month := m.from; month <= m.to; month++ {
			if taken[month] == nil {
				open = append(open, month)
			}
		}
		if len(open) == 0 {
			use.Use, use.SupersededBy = UseRevision, taken[m.from].m.RunID
			r.uses = append(r.uses, use)
			continue
		}
		rv, ok := c.opts.Cache.get(f.Key, f.SHA256, c.listed[f.Key], m)
		if ok {
			r.digest = append(r.digest, "file "+f.Key+" "+f.SHA256)
		} else {
			blocks, sum, err := c.readFile(ctx, m, f)
			if err != nil && (fatal(err) || ctx.Err() != nil) {
				return nil, fmt.Errorf("read %s: %w", f.Key, err)
			}
			r.digest = append(r.digest, "file "+f.Key+" "+sum)
			if err != nil {
				use.Use = UseQuarantined
				r.uses = append(r.uses, use)
				r.quarantined = append(r.quarantined, Quarantined{Practice: w.practice, Key: f.Key, Kind: kindOf(err), Reason: err.Error()})
				continue
			}
			if rv, err = c.valuesOf(m, blocks); err != nil {
				use.Use = UseQuarantined
				r.uses = append(r.uses, use)
				r.quarantined = append(r.quarantined, Quarantined{Practice: w.practice, Key: f.Key, Kind: kindOf(err), Reason: err.Error()})
				continue
			}
			c.opts.Cache.put(f.Key, f.SHA256, c.listed[f.Key], rv)
		}
		rv = c.conform(rv)
		use.Use = UseCombined
		for _, month := range open {
			taken[month] = rv
			use.Months = append(use.Months, month.String())
		}
		r.uses = append(r.uses, use)
		r.runs++
		for _, name := range rv.ignored {
			if !slices.Contains(r.ignored, name) {
				r.ignored = append(r.ignored, name)
			}
		}
	}
	for month, rv := range taken {
		r.months = append(r.months, monthUse{month, rv})
		per := formats.MonthPeriod(month)
		r.practice.SetBlock(per, rv.blocks[per])
	}
	slices.SortFunc(r.months, func(a, b monthUse) int { return int(a.month - b.month) })
	// A quarter or year value stands for its months only where its run is theirs.
	for _, mu := range r.months {
		for _, per := range []formats.Period{formats.QuarterOf(mu.month), formats.YearOf(mu.month)} {
			if mu.month != per.Start || mu.run.blocks[per] == nil {
				continue
			}
			current := true
			for month := per.Start; month <= per.End(); month++ {
				current = current && taken[month] == mu.run
			}
			if current {
				r.practice.SetBlock(per, mu.run.blocks[per])
			}
		}
	}
	if len(r.months) > 0 {
		if err := c.writePracticeTable(ctx, r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// valuesOf arranges a verified submission's blocks by period and catalogue measure.
func (c *combiner) valuesOf(m *manifest, blocks []formats.Block) (*runValues, error) {
	rv := &runValues{m: m, blocks: map[formats.Period][]*figures.Shapes{}}
	supplied := map[int]bool{}
	for i := range blocks {
		blk := &blocks[i]
		mi, ok := c.engine.MeasureIndex(blk.Measure)
		if !ok {
			if !slices.Contains(rv.ignored, blk.Measure) {
				rv.ignored = append(rv.ignored, strings.Clone(blk.Measure))
			}
			continue
		}
		b := rv.blocks[blk.Period]
		if b == nil {
			b = make([]*figures.Shapes, len(c.engine.Measures))
			rv.blocks[blk.Period] = b
		}
		vals := new(figures.Shapes)
		for shape, p := range blk.Values {
			v, ok := figures.ValueOf(p)
			if !ok {
				return nil, &formats.Error{Op: "read submission", Subject: m.key, Kind: formats.ErrValue, Detail: "a value is too large for the coordinator to hold"}
			}
			vals[shape] = v
		}
		b[mi] = vals
		supplied[mi] = true
	}
	rv.measures = len(supplied)
	return rv, nil
}

// absent lists the federation's measures a run's manifest says its sources cannot supply.
func (c *combiner) absent(m *manifest) []AbsentMeasure {
	var out []AbsentMeasure
	for _, name := range c.engine.Measures {
		if why, ok := m.Absent[name]; ok {
			out = append(out, AbsentMeasure{Measure: name, Reason: why})
		}
	}
	return out
}

// conform leaves out of a run's values every measure its agent counted by another definition
// than the federation's (the digest its manifest records differs), so that a measure is
// combined only across practices that counted the same thing. It returns rv itself when
// nothing differs, else a copy: runValues are shared through the cache.
func (c *combiner) conform(rv *runValues) *runValues {
	var out *runValues
	for mi, name := range c.engine.Measures {
		supplied := false
		for _, b := range rv.blocks {
			if b[mi] != nil {
				supplied = true
				break
			}
		}
		if !supplied {
			continue
		}
		used, want := rv.m.DefinitionDigest(name), c.digests[name]
		if used == want {
			continue
		}
		if out == nil {
			out = &runValues{m: rv.m, blocks: make(map[formats.Period][]*figures.Shapes, len(rv.blocks)), measures: rv.measures, ignored: rv.ignored}
			for per, b := range rv.blocks {
				out.blocks[per] = slices.Clone(b)
			}
		}
		for _, b := range out.blocks {
			b[mi] = nil
		}
		out.measures--
		reason := fmt.Sprintf("used definition digest %s, federation's is %s", formats.ShortDigest(used), formats.ShortDigest(want))
		if used == "" {
			reason = fmt.Sprintf("its manifest records no definition for it; federation's is %s", formats.ShortDigest(want))
		}
		out.excluded = append(out.excluded, ExcludedMeasure{Measure: name, Used: used, Federation: want, Reason: reason})
	}
	if out == nil {
		return rv
	}
	return out
}

// tableSignature names everything a practice's table is made from: the combined format, the
// policy, the federation's measures and definitions, and what became of each of its files
// (key, SHA-256, use and months), which fixes the values taken from each. Two combines with
// the same signature write the same table.
func (c *combiner) tableSignature(r *practiceResult) string {
	h := sha256.New()
	fmt.Fprintf(h, "v%d %s\n", Version, c.opts.Policy.Name)
	for _, name := range c.engine.Measures {
		fmt.Fprintf(h, "measure %s %s\n", name, c.digests[name])
	}
	// A combined file's SHA-256 is the one its signed manifest lists and it verified
	// against, so its key, SHA-256 and months fix the values taken from it.
	for _, u := range r.uses {
		fmt.Fprintf(h, "use %s %s %s %s %s\n", u.Key, u.SHA256, u.Use, u.SupersededBy, strings.Join(u.Months, ","))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// writePracticeTable stores the practice's combined values as its own table, named by digest.
// A table an earlier Run with the same Cache stored from the same inputs, and still in the
// store at its size and SHA-256, is reused without encoding it again.
func (c *combiner) writePracticeTable(ctx context.Context, r *practiceResult) error {
	p := r.practice
	sig := c.tableSignature(r)
	if t, ok := c.opts.Cache.table(p.ID, sig); ok {
		if info, err := c.st.Stat(ctx, t.ref.Key); err == nil && info.SHA256 == t.ref.SHA256 && info.Size == t.ref.Size {
			r.table, r.rows = t.ref, t.rows
			c.opts.Cache.reused()
			return nil
		}
	}
	runOf := map[formats.Month]string{}
	for _, mu := range r.months {
		runOf[mu.month] = mu.run.m.RunID
	}
	var blocks []PracticeBlock
	for _, per := range p.Periods() {
		for mi, name := range c.engine.Measures {
			vals := p.Get(per, mi)
			if vals == nil {
				continue
			}
			blk := PracticeBlock{Practice: p.ID, Period: per, Measure: name, RunID: runOf[per.Start]}
			for shape, v := range vals {
				blk.Values[shape] = v.Protected()
			}
			blocks = append(blocks, blk)
		}
	}
	md := maps.Clone(c.practiceMeta)
	md[formats.MetaPractice] = p.ID
	data, err := writePracticeTable(md, blocks)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	hexSum := hex.EncodeToString(sum[:])
	key := PracticeTablesPrefix + p.ID + "/" + hexSum[:32] + ".arrow"
	// Named by content: when an earlier combine stored the same table, it is not written again.
	if info, err := c.st.Stat(ctx, key); err != nil || info.SHA256 != hexSum || info.Size != int64(len(data)) {
		if _, err := c.st.Put(ctx, key, data); err != nil {
			return fmt.Errorf("write the table of practice %s: %w", p.ID, err)
		}
	}
	r.table = ObjectRef{Key: key, Size: int64(len(data)), SHA256: hexSum}
	r.rows = int64(len(blocks)) * formats.NumShapes
	c.opts.Cache.putTable(p.ID, cachedTable{signature: sig, ref: r.table, rows: r.rows})
	return nil
}

// readFile reads one listed file within the size its manifest gives and verifies it before
// parsing. It returns the SHA-256 of what it read, for the output's digest.
func (c *combiner) readFile(ctx context.Context, m *manifest, f formats.FileEntry) ([]formats.Block, string, error) {
	if f.Size > c.opts.Limits.MaxObjectBytes {
		return nil, "too-large", &formats.Error{Op: "read submission", Subject: f.Key, Kind: formats.ErrTooLarge,
			Detail: fmt.Sprintf("the manifest lists %d bytes, the limit is %d", f.Size, c.opts.Limits.MaxObjectBytes)}
	}
	data, _, err := c.st.Get(ctx, f.Key, f.Size)
	if errors.Is(err, objstore.ErrTooLarge) {
		return nil, "too-large", &formats.Error{Op: "read submission", Subject: f.Key, Kind: formats.ErrSize,
			Detail: fmt.Sprintf("the stored file is larger than the %d bytes its signed manifest lists; it was changed after signing", f.Size), Err: err}
	}
	if errors.Is(err, objstore.ErrNotFound) {
		return nil, "missing", &formats.Error{Op: "read submission", Subject: f.Key, Kind: objstore.ErrNotFound,
			Detail: "the signed manifest lists it but the store does not hold it; the practice's agent should upload the run again"}
	}
	if err != nil {
		return nil, "unreadable", err // a store failure stops the combine; a bad checksum is quarantined
	}
	_, blocks, err := formats.VerifyBlocks(m.Manifest, f, data, c.opts.Limits)
	if err == nil {
		return blocks, f.SHA256, nil // equal to the data's digest: VerifyBlocks checked it
	}
	h := sha256.Sum256(data)
	return nil, hex.EncodeToString(h[:]), err
}

// add folds one practice's combined values into the engine and the report. It runs in
// practice order, so the outputs do not depend on which worker finished first.
func (c *combiner) add(r *practiceResult) error {
	c.quarantined = append(c.quarantined, r.quarantined...)
	c.digest = append(c.digest, r.digest...)
	for _, u := range r.uses {
		c.uses[u.Key] = u
	}
	for _, name := range r.ignored {
		c.ignored[name] = true
	}
	if len(r.months) == 0 {
		return nil
	}
	c.contributing++
	c.tables[r.practice.ID] = r.table
	c.practiceRows += r.rows
	c.files += r.runs
	c.months += len(r.months)
	c.engine.Add(r.practice)
	for _, mu := range r.months {
		c.completeness[mu.month] = append(c.completeness[mu.month], Contributor{
			Practice: r.practice.ID, RunID: mu.run.m.RunID, Created: mu.run.m.Created.UTC(), Measures: mu.run.measures, Excluded: mu.run.excluded,
			Absent: c.absent(mu.run.m)})
	}
	return nil
}

func (c *combiner) finish(ctx context.Context, manifests []*manifest) (*Result, error) {
	c.offerSecure()
	c.engine.Finish()
	pol := c.opts.Policy
	rep := &Report{
		FormatVersion:  Version,
		Policy:         pol.Name,
		SuppressMax:    pol.SuppressMax,
		RegistrySHA256: c.reg.SHA256,
		Practices:      c.contributing,
		FilesCombined:  c.files,
		MonthsCombined: c.months,
		Inputs:         []Input{},
		Quarantined:    c.quarantined,
		Completeness:   []Completeness{},
		Secure:         c.secureReport(),
	}
	for m := range c.ignored {
		rep.IgnoredMeasures = append(rep.IgnoredMeasures, m)
	}
	for _, d := range c.defs.Defs {
		rep.Measures = append(rep.Measures, MeasureDef{Definition: d, Digest: c.digests[d.Name]})
	}
	sort.Strings(rep.IgnoredMeasures)
	c.digest = append(c.digest, "policy "+pol.Name, "registry "+c.reg.SHA256)
	sort.Strings(c.digest)
	h := sha256.New()
	fmt.Fprintf(h, "tributary combine v%d\n", Version)
	for _, line := range c.digest {
		fmt.Fprintln(h, line)
	}
	id := hex.EncodeToString(h.Sum(nil))[:32]
	rep.ID = id
	for _, m := range manifests {
		in := Input{Practice: m.Practice, Manifest: m.key, RunID: m.RunID, Created: m.Created.UTC(), Policy: m.Policy,
			From: m.From, To: m.To, ManifestSHA256: m.sha256, KeyID: m.keyID}
		for _, f := range m.Files {
			u, ok := c.uses[f.Key]
			if !ok {
				u = InputFile{Key: f.Key, Size: f.Size, SHA256: f.SHA256, Use: UseRevision}
			}
			in.Files = append(in.Files, u)
		}
		rep.Inputs = append(rep.Inputs, in)
	}
	slices.SortFunc(rep.Inputs, func(a, b Input) int { return strings.Compare(a.Manifest, b.Manifest) })
	rep.InputsSHA256 = rep.UsedDigest()

	md := map[string]string{
		formats.MetaKind:          KindFederation,
		formats.MetaFormatVersion: itoa(Version),
		formats.MetaPolicy:        pol.Name,
		MetaInputsSHA256:          rep.InputsSHA256,
		MetaSuppressMax:           itoa(pol.SuppressMax),
	}
	fed, err := newTableWriter(KindFederation, md, arrowAndParquet)
	if err != nil {
		return nil, err
	}
	figs := FederationFigures(c.engine)
	for i := range figs {
		if err := fed.appendFederation(&figs[i]); err != nil {
			return nil, err
		}
	}
	dataset, err := datasetOutputs(ctx, figs, md)
	if err != nil {
		return nil, err
	}
	fedArrow, fedPq, err := fed.finish(ctx)
	if err != nil {
		return nil, err
	}
	rep.FederationRows = fed.rows
	rep.PracticeRows = c.practiceRows

	slices.SortFunc(rep.Quarantined, func(a, b Quarantined) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return strings.Compare(a.Reason, b.Reason)
	})
	if rep.Quarantined == nil {
		rep.Quarantined = []Quarantined{}
	}
	active := activePractices(c.reg.Registry)
	months := make([]formats.Month, 0, len(c.completeness))
	for m := range c.completeness {
		months = append(months, m)
	}
	slices.Sort(months)
	for _, m := range months {
		cs := c.completeness[m]
		got := map[string]bool{}
		for _, x := range cs {
			got[x.Practice] = true
		}
		comp := Completeness{Month: m.String(), Contributors: cs, Missing: []string{}}
		for _, p := range active {
			if !got[p] {
				comp.Missing = append(comp.Missing, p)
			}
		}
		rep.Completeness = append(rep.Completeness, comp)
	}
	report, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return nil, err
	}

	prefix := CombinedPrefix + id + "/"
	ptr := Pointer{FormatVersion: Version, ID: id, Prefix: prefix, Objects: map[string]ObjectRef{}, PracticeTables: c.tables,
		Practices: c.contributing, Quarantined: len(rep.Quarantined), Policy: pol.Name, SuppressMax: pol.SuppressMax}
	if len(months) > 0 {
		ptr.FirstMonth, ptr.LastMonth = months[0].String(), months[len(months)-1].String()
	}
	outputs := []struct {
		name string
		data []byte
	}{{FederationArrow, fedArrow}, {FederationParquet, fedPq}, {ReportJSON, report}}
	if sec, err := c.secureData(); err != nil {
		return nil, err
	} else if sec != nil {
		outputs = append(outputs, struct {
			name string
			data []byte
		}{SecureJSON, sec})
	}
	for _, o := range outputs {
		info, err := c.st.Put(ctx, prefix+o.name, o.data)
		if err != nil {
			return nil, fmt.Errorf("write combined output: %w", err)
		}
		sum := sha256.Sum256(o.data)
		ptr.Objects[o.name] = ObjectRef{Key: info.Key, Size: int64(len(o.data)), SHA256: hex.EncodeToString(sum[:])}
	}
	for _, o := range dataset { // the month-partitioned Parquet dataset (dataset.go)
		info, err := c.st.Put(ctx, prefix+o.name, o.data)
		if err != nil {
			return nil, fmt.Errorf("write combined output: %w", err)
		}
		sum := sha256.Sum256(o.data)
		ptr.Objects[o.name] = ObjectRef{Key: info.Key, Size: int64(len(o.data)), SHA256: hex.EncodeToString(sum[:])}
	}
	pdata, err := json.MarshalIndent(ptr, "", "  ")
	if err != nil {
		return nil, err
	}
	// The pointer is written last: until it is, readers keep using the previous output.
	if err := c.publish(ctx, ptr.ID, pdata); err != nil {
		return nil, err
	}
	return &Result{Pointer: ptr, Report: rep}, nil
}

// publish replaces federation/current.json with pdata, naming output id, if it is still the
// pointer this combine started from.
func (c *combiner) publish(ctx context.Context, id string, pdata []byte) error {
	_, err := c.st.PutIf(ctx, CurrentKey, pdata, c.published)
	if err == nil {
		return nil
	}
	if !errors.Is(err, objstore.ErrConflict) {
		return fmt.Errorf("write %s: %w", CurrentKey, err)
	}
	data, _, rerr := c.st.Get(ctx, CurrentKey, 1<<20)
	if rerr != nil {
		return fmt.Errorf("%w: %s changed while this combine ran (%v); the figures of this combine (%s) were not published; run combine again", ErrSuperseded, CurrentKey, rerr, id)
	}
	other, perr := ParsePointer(data)
	switch {
	case perr != nil:
		return fmt.Errorf("%w: %s was replaced while this combine ran by one this build cannot read (%v); the figures of this combine (%s) were not published; run combine again", ErrSuperseded, CurrentKey, perr, id)
	case other.ID == id:
		return nil // another combine of the same inputs published the same output
	}
	return fmt.Errorf("%w: %s now names combine %s, and this combine's figures (%s), which may be older, were not published over it; run combine again to publish figures from every submission now in the store", ErrSuperseded, CurrentKey, other.ID, id)
}

// FederationFigures lists the federation's figures for every period the engine holds
// (months, and the calendar quarters and years wholly inside its range), every measure and
// every shape: the rows of federation.arrow.
func FederationFigures(e *figures.Engine) []figures.Figure {
	var out []figures.Figure
	for _, per := range e.Periods() {
		for mi := range e.Measures {
			for shape := range formats.NumShapes {
				b, x := formats.ShapeDims(shape)
				q := figures.Query{Measures: []int{mi}, From: per.Start, To: per.End(), ByBand: b >= 0, BySex: x >= 0, Federation: true}
				if b >= 0 {
					q.Bands = []int{b}
				}
				if x >= 0 {
					q.Sexes = []int{x}
				}
				out = append(out, e.Figures(&q)...)
			}
		}
	}
	return out
}

// activePractices lists practices with at least one key in force, sorted.
func activePractices(reg *formats.Registry) []string {
	set := map[string]bool{}
	for _, e := range reg.Practices {
		if e.Revoked == nil {
			set[e.Practice] = true
		}
	}
	out := make([]string, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
