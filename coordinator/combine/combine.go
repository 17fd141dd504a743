// Package combine turns the practices' signed submissions into federation figures: it verifies
// every run, keeps the newest file for each practice-month, sums across practices with honest
// bounds, and writes the result, a table for each practice and a report under federation/.
//
// # Federation figures and disclosure control
//
// Every practice file is already through the federation's disclosure policy, so a federation
// cell is built from published values only: its count is the sum of the practices' published
// values (a suppressed cell adds nothing), its lower bound the sum of their lower bounds and its
// upper bound the sum of their upper bounds. Because each practice's true count lies within its
// own bounds, the true federation total always lies within the summed bounds, whatever the
// rounding and suppression. The status says how to read the count:
//
//   - rounded: every contribution was published; the count is a sum of rounded values.
//   - partial: some contribution was suppressed; the count is the sum of what was published
//     and the bounds say where the true total lies. The count leaves the suppressed
//     contributions out while the lower bound counts each as at least 1, so the count can lie
//     below the lower bound: read a partial figure by its bounds.
//   - suppressed: the bounds lie wholly within the suppressed range 1..S, where S is the
//     largest SuppressMax of the federation's policy and of any policy a file was made under.
//     The total is then known to be a small count that the policy would itself withhold (one
//     practice's suppressed cell and zeros elsewhere), so the count is withheld (null) and
//     only the bounds are reported, exactly as a practice would report it.
//
// Nothing published is computed from a true count, only from published values and bounds,
// so no federation figure, nor any difference of them, can reveal more about a suppressed
// cell than its own published bounds do. Re-rounding the sums would only widen the bounds, so
// they are not rounded again.
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

	"github.com/tributary-health/tributary/coordinator/internal/ordered"
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

// Statuses of combined figures beside formats.StatusRounded and formats.StatusSuppressed.
const StatusPartial = "partial"

// Version of the combined outputs; part of every output's name.
const Version = 1

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
}

// Run combines every practice's newest verified submissions in st, trusting the registry
// signed by coordinator, and stores the outputs and a new federation/current.json. Objects
// that fail verification are quarantined (listed in the report) and the combine carries on; it
// fails only when the store itself fails or the registry does not verify.
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
	reg, err := registry.Load(ctx, st, coordinator)
	if err != nil {
		return nil, err
	}
	c := &combiner{st: st, reg: reg, opts: opts, fed: map[fedKey]*fedCell{}, completeness: map[formats.Month][]Contributor{}, ignored: map[string]bool{}, tables: map[string]ObjectRef{}}
	c.suppressMax = opts.Policy.SuppressMax
	infos, err := st.List(ctx, formats.PracticesPrefix)
	if err != nil {
		return nil, fmt.Errorf("list submissions: %w", err)
	}
	var manifestKeys []string
	c.listed = make(map[string]objstore.Info, len(infos))
	for _, info := range infos {
		c.listed[info.Key] = info
		k, err := formats.ParseKey(info.Key)
		if err != nil {
			c.quarantine(practiceOfKey(info.Key), info.Key, err)
			c.digest = append(c.digest, "badkey "+info.Key)
			continue
		}
		if k.Manifest {
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
	if err == nil {
		opts.Cache.end()
	}
	return res, err
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
	st          objstore.Store
	reg         *registry.Loaded
	opts        Options
	suppressMax int64

	quarantined  []Quarantined
	digest       []string // lines naming every input that shaped the output
	fed          map[fedKey]*fedCell
	completeness map[formats.Month][]Contributor
	ignored      map[string]bool
	uses         map[string]InputFile // file key -> what became of it
	practiceMeta map[string]string
	tables       map[string]ObjectRef // practice -> its table
	listed       map[string]objstore.Info
	practiceRows int64
	contributing int
	files        int
}

func (c *combiner) quarantine(practice, key string, err error) {
	c.quarantined = append(c.quarantined, Quarantined{Practice: practice, Key: key, Kind: kindOf(err), Reason: err.Error()})
}

// manifest is a verified run manifest.
type manifest struct {
	*formats.Manifest
	key    string
	sha256 string
	keyID  string
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
	r.m = &manifest{Manifest: m, key: key, sha256: r.sha256, keyID: env.KeyID}
	return r, nil
}

// practiceWork is one practice's months, each with its candidate files newest first.
type practiceWork struct {
	practice string
	months   []monthWork
}

type monthWork struct {
	month formats.Month
	cands []candidate
}

type candidate struct {
	m    *manifest
	file formats.FileEntry
}

// newer orders runs newest first: by manifest creation time, then by run id.
func newer(a, b *manifest) int {
	if c := b.Created.Compare(a.Created); c != 0 {
		return c
	}
	return strings.Compare(b.RunID, a.RunID)
}

func plan(ms []*manifest) []practiceWork {
	by := map[string]map[formats.Month][]candidate{}
	for _, m := range ms {
		if by[m.Practice] == nil {
			by[m.Practice] = map[formats.Month][]candidate{}
		}
		for _, f := range m.Files {
			p, _ := formats.ParseMonth(f.Period) // validated with the manifest
			by[m.Practice][p] = append(by[m.Practice][p], candidate{m: m, file: f})
		}
	}
	var work []practiceWork
	for practice, months := range by {
		w := practiceWork{practice: practice}
		for month, cands := range months {
			slices.SortFunc(cands, func(a, b candidate) int { return newer(a.m, b.m) })
			w.months = append(w.months, monthWork{month: month, cands: cands})
		}
		slices.SortFunc(w.months, func(a, b monthWork) int { return int(a.month - b.month) })
		work = append(work, w)
	}
	slices.SortFunc(work, func(a, b practiceWork) int { return strings.Compare(a.practice, b.practice) })
	return work
}

// practiceResult is what one practice's files gave.
type practiceResult struct {
	practice    string
	months      []monthCells
	quarantined []Quarantined
	uses        []InputFile
	digest      []string
	table       ObjectRef // the practice's table, when it has a combined month
	rows        int64
}

// monthCells is one verified practice-month: every catalogue measure the file supplies, each
// with all its cells (those absent from the file are zero), and the list size per cell.
type monthCells struct {
	period   formats.Month
	m        *manifest
	policy   string
	measures []string
	cells    []*[cellsPerMeasure]formats.Protected // parallel to measures
	list     [cellsPerMeasure]int64
	ignored  []string // measures outside the catalogue
}

// readPractice fetches and verifies, for each month, the newest file that verifies; files
// that fail are quarantined and the next newest is tried, so one bad upload does not leave a
// hole where an earlier good revision exists.
func (c *combiner) readPractice(ctx context.Context, w practiceWork) (*practiceResult, error) {
	r := &practiceResult{practice: w.practice}
	for _, mw := range w.months {
		var used *manifest
		for _, cand := range mw.cands {
			f := cand.file
			use := InputFile{Key: f.Key, Period: f.Period, Size: f.Size, SHA256: f.SHA256}
			if used != nil {
				use.Use, use.SupersededBy = UseRevision, used.RunID
				r.uses = append(r.uses, use)
				continue
			}
			if mc, ok := c.opts.Cache.get(f.Key, f.SHA256, c.listed[f.Key], cand.m); ok {
				r.digest = append(r.digest, "file "+f.Key+" "+f.SHA256)
				use.Use = UseCombined
				r.uses = append(r.uses, use)
				used = cand.m
				r.months = append(r.months, mc)
				continue
			}
			sub, sum, err := c.readFile(ctx, cand.m, f)
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
			use.Use = UseCombined
			r.uses = append(r.uses, use)
			used = cand.m
			mc := cellsOf(cand.m, sub)
			c.opts.Cache.put(f.Key, f.SHA256, c.listed[f.Key], mc)
			r.months = append(r.months, mc)
		}
	}
	if len(r.months) > 0 {
		if err := c.writePracticeTable(ctx, r); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// cellsOf arranges a verified submission by measure and cell.
func cellsOf(m *manifest, sub *formats.Submission) monthCells {
	mc := monthCells{period: sub.Period, m: m, policy: sub.Policy}
	byMeasure := map[string]*[cellsPerMeasure]formats.Protected{}
	for _, cell := range sub.Cells {
		if !formats.IsKnownMeasure(cell.Measure) {
			if !slices.Contains(mc.ignored, cell.Measure) {
				mc.ignored = append(mc.ignored, strings.Clone(cell.Measure))
			}
			continue
		}
		cells := byMeasure[cell.Measure]
		if cells == nil {
			cells = new([cellsPerMeasure]formats.Protected)
			for i := range cells {
				cells[i].Status = formats.StatusRounded
			}
			byMeasure[cell.Measure] = cells
		}
		cells[cellIndex(cell.AgeBand, cell.Sex)] = cell.Protected
	}
	for _, name := range formats.Measures {
		if cells := byMeasure[name]; cells != nil {
			mc.measures = append(mc.measures, name)
			mc.cells = append(mc.cells, cells)
		}
	}
	if rp := byMeasure[formats.RegisteredPatients]; rp != nil {
		for i, p := range rp {
			if p.Status != formats.StatusSuppressed {
				mc.list[i] = p.Count
			}
		}
	}
	return mc
}

// writePracticeTable stores the practice's published cells as its own table, named by digest.
func (c *combiner) writePracticeTable(ctx context.Context, r *practiceResult) error {
	// One record batch per month, named in the metadata, so a query for a few months reads
	// only their batches.
	months := make([]string, len(r.months))
	for i, mc := range r.months {
		months[i] = mc.period.String()
	}
	md := maps.Clone(c.practiceMeta)
	md[MetaBatchMonths] = strings.Join(months, ",")
	tw, err := newTableWriter(KindPractices, md, false)
	if err != nil {
		return err
	}
	var row Row
	for _, mc := range r.months {
		if err := tw.flush(); err != nil {
			return err
		}
		for k, measure := range mc.measures {
			for i, p := range mc.cells[k] {
				row = Row{Practice: r.practice, Month: mc.period, Measure: measure,
					AgeBand: formats.AgeBands[i/len(formats.Sexes)], Sex: formats.Sexes[i%len(formats.Sexes)],
					Count: p.Count, Status: p.Status, Lower: p.Lower, Upper: p.Upper, ListSize: mc.list[i], Practices: 1}
				if err := tw.append(&row); err != nil {
					return err
				}
			}
		}
	}
	data, _, err := tw.finish(ctx)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	hexSum := hex.EncodeToString(sum[:])
	key := PracticeTablesPrefix + r.practice + "/" + hexSum[:32] + ".arrow"
	// Named by content: when an earlier combine stored the same table, it is not written again.
	if info, err := c.st.Stat(ctx, key); err != nil || info.SHA256 != hexSum || info.Size != int64(len(data)) {
		if _, err := c.st.Put(ctx, key, data); err != nil {
			return fmt.Errorf("write the table of practice %s: %w", r.practice, err)
		}
	}
	r.table = ObjectRef{Key: key, Size: int64(len(data)), SHA256: hexSum}
	r.rows = tw.rows
	return nil
}

// readFile reads one listed file within the size its manifest gives and verifies it before
// parsing. It returns the SHA-256 of what it read, for the output's digest.
func (c *combiner) readFile(ctx context.Context, m *manifest, f formats.FileEntry) (*formats.Submission, string, error) {
	if f.Size > c.opts.Limits.MaxObjectBytes {
		return nil, "too-large", &formats.Error{Op: "read submission", Object: f.Key, Kind: formats.ErrTooLarge,
			Detail: fmt.Sprintf("the manifest lists %d bytes, the limit is %d", f.Size, c.opts.Limits.MaxObjectBytes)}
	}
	data, _, err := c.st.Get(ctx, f.Key, f.Size)
	if errors.Is(err, objstore.ErrTooLarge) {
		return nil, "too-large", &formats.Error{Op: "read submission", Object: f.Key, Kind: formats.ErrSize,
			Detail: fmt.Sprintf("the stored file is larger than the %d bytes its signed manifest lists; it was changed after signing", f.Size), Err: err}
	}
	if errors.Is(err, objstore.ErrNotFound) {
		return nil, "missing", &formats.Error{Op: "read submission", Object: f.Key, Kind: objstore.ErrNotFound,
			Detail: "the signed manifest lists it but the store does not hold it; the practice's agent should upload the run again"}
	}
	if err != nil {
		return nil, "unreadable", err // a store failure stops the combine; a bad checksum is quarantined
	}
	sub, err := formats.VerifySubmission(m.Manifest, f, data, c.opts.Limits)
	if err == nil {
		return sub, f.SHA256, nil // equal to the data's digest: VerifySubmission checked it
	}
	h := sha256.Sum256(data)
	return nil, hex.EncodeToString(h[:]), err
}

// fedKey names a federation month and measure.
type fedKey struct {
	month   formats.Month
	measure string
}

const cellsPerMeasure = 19 * 3 // age bands × sexes

// fedCell accumulates one month and measure across practices.
type fedCell struct {
	practices int64
	cells     [cellsPerMeasure]accum
}

type accum struct {
	count, lower, upper, list int64
	suppressed                int // contributions that were suppressed
}

func cellIndex(band, sex string) int {
	b := formats.AgeBandIndex(band)
	s := slices.Index(formats.Sexes, sex)
	if b < 0 || s < 0 {
		return -1
	}
	return b*len(formats.Sexes) + s
}

// add folds one practice's verified files into the federation sums. It runs in practice
// order, so the outputs do not depend on which worker finished first.
func (c *combiner) add(r *practiceResult) error {
	c.quarantined = append(c.quarantined, r.quarantined...)
	c.digest = append(c.digest, r.digest...)
	if c.uses == nil {
		c.uses = map[string]InputFile{}
	}
	for _, u := range r.uses {
		c.uses[u.Key] = u
	}
	if len(r.months) > 0 {
		c.contributing++
		c.tables[r.practice] = r.table
		c.practiceRows += r.rows
	}
	for _, mc := range r.months {
		c.files++
		if pol, err := formats.PolicyByName(mc.policy); err == nil && pol.SuppressMax > c.suppressMax {
			c.suppressMax = pol.SuppressMax
		}
		for _, name := range mc.ignored {
			c.ignored[name] = true
		}
		c.completeness[mc.period] = append(c.completeness[mc.period], Contributor{
			Practice: r.practice, RunID: mc.m.RunID, Created: mc.m.Created.UTC(), Measures: len(mc.measures)})
		for k, measure := range mc.measures {
			key := fedKey{mc.period, measure}
			fc := c.fed[key]
			if fc == nil {
				fc = new(fedCell)
				c.fed[key] = fc
			}
			fc.practices++
			for i, p := range mc.cells[k] {
				a := &fc.cells[i]
				if p.Status == formats.StatusSuppressed {
					a.suppressed++
				} else {
					a.count += p.Count
				}
				a.lower += p.Lower
				a.upper += p.Upper
				a.list += mc.list[i]
			}
		}
	}
	return nil
}

// Status returns the status of a combined figure with the given bounds, made of contributions
// of which suppressed were suppressed, under a suppressed range of 1..suppressMax. See the
// package comment for the rule.
func Status(lower, upper int64, suppressed int, suppressMax int64) string {
	switch {
	case suppressMax > 0 && lower >= 1 && upper <= suppressMax:
		return formats.StatusSuppressed
	case suppressed > 0:
		return StatusPartial
	}
	return formats.StatusRounded
}

func (c *combiner) finish(ctx context.Context, manifests []*manifest) (*Result, error) {
	rep := &Report{
		FormatVersion:  Version,
		Policy:         c.opts.Policy.Name,
		RegistrySHA256: c.reg.SHA256,
		Practices:      c.contributing,
		FilesCombined:  c.files,
		Inputs:         []Input{},
		Quarantined:    c.quarantined,
		Completeness:   []Completeness{},
	}
	for m := range c.ignored {
		rep.IgnoredMeasures = append(rep.IgnoredMeasures, m)
	}
	sort.Strings(rep.IgnoredMeasures)
	c.digest = append(c.digest, "policy "+c.opts.Policy.Name, "registry "+c.reg.SHA256)
	sort.Strings(c.digest)
	h := sha256.New()
	fmt.Fprintf(h, "tributary combine v%d\n", Version)
	for _, line := range c.digest {
		fmt.Fprintln(h, line)
	}
	id := hex.EncodeToString(h.Sum(nil))[:32]
	rep.ID = id
	rep.SuppressMax = c.suppressMax
	for _, m := range manifests {
		in := Input{Practice: m.Practice, Manifest: m.key, RunID: m.RunID, Created: m.Created.UTC(), Policy: m.Policy, ManifestSHA256: m.sha256, KeyID: m.keyID}
		for _, f := range m.Files {
			u, ok := c.uses[f.Key]
			if !ok {
				u = InputFile{Key: f.Key, Period: f.Period, Size: f.Size, SHA256: f.SHA256, Use: UseRevision}
			}
			in.Files = append(in.Files, u)
		}
		rep.Inputs = append(rep.Inputs, in)
	}
	rep.InputsSHA256 = rep.UsedDigest()

	md := map[string]string{
		formats.MetaFormatVersion: itoa(Version),
		formats.MetaPolicy:        c.opts.Policy.Name,
		MetaInputsSHA256:          rep.InputsSHA256,
		MetaSuppressMax:           itoa(c.suppressMax),
	}
	fed, err := newTableWriter(KindFederation, withKind(md, KindFederation), true)
	if err != nil {
		return nil, err
	}
	keys := make([]fedKey, 0, len(c.fed))
	for k := range c.fed {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b fedKey) int {
		if a.month != b.month {
			return int(a.month - b.month)
		}
		return slices.Index(formats.Measures, a.measure) - slices.Index(formats.Measures, b.measure)
	})
	var row Row
	for _, k := range keys {
		fc := c.fed[k]
		for i, a := range fc.cells {
			row = Row{Month: k.month, Measure: k.measure, AgeBand: formats.AgeBands[i/len(formats.Sexes)],
				Sex: formats.Sexes[i%len(formats.Sexes)], Count: a.count, Lower: a.lower, Upper: a.upper,
				ListSize: a.list, Practices: fc.practices}
			row.Status = Status(a.lower, a.upper, a.suppressed, c.suppressMax)
			if row.Status == formats.StatusSuppressed {
				row.Count = 0
			}
			if err := fed.append(&row); err != nil {
				return nil, err
			}
		}
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
		Practices: c.contributing, Quarantined: len(rep.Quarantined), Policy: c.opts.Policy.Name, SuppressMax: c.suppressMax}
	if len(months) > 0 {
		ptr.FirstMonth, ptr.LastMonth = months[0].String(), months[len(months)-1].String()
	}
	for _, o := range []struct {
		name string
		data []byte
	}{{FederationArrow, fedArrow}, {FederationParquet, fedPq}, {ReportJSON, report}} {
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
	if _, err := c.st.Put(ctx, CurrentKey, pdata); err != nil {
		return nil, fmt.Errorf("write %s: %w", CurrentKey, err)
	}
	return &Result{Pointer: ptr, Report: rep}, nil
}

func withKind(md map[string]string, kind string) map[string]string {
	out := map[string]string{formats.MetaKind: kind}
	for k, v := range md {
		out[k] = v
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
