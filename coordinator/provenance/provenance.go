// Package provenance traces a combined figure back to the signed practice files it was made
// from, and re-verifies the stored bytes of every link against the digests the combine
// recorded: federation/current.json → the combined output's report.json → each practice's
// run manifest (run id, SHA-256, signing key) → the run's file (SHA-256) the month was
// combined from.
//
// A link whose stored bytes no longer match what the combine read — a file or manifest
// rewritten, deleted, or re-signed after the combine — is a Problem, named with the object,
// the digest recorded and the digest found.
package provenance

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/registry"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// MaxPointerBytes bounds federation/current.json, and MaxReportBytes a report read through it
// (a report lists every input file: 1,000 practices × 60 months is about 30 MB).
const (
	MaxPointerBytes = 4 << 20
	MaxReportBytes  = 256 << 20
)

// Chain is the provenance of one measure and month in the newest combined output.
type Chain struct {
	CombineID string
	Pointer   string // federation/current.json
	Report    combine.ObjectRef
	Figures   combine.ObjectRef // federation.arrow
	// InputsSHA256 digests the files and manifests the figures were made from (see
	// combine.Report.UsedDigest).
	InputsSHA256 string
	Measure      string
	Month        string
	Links        []Link
	Problems     []string // empty when every stored byte matches what the combine read
}

// Link is one practice run file that the combine used for the month.
type Link struct {
	Practice       string
	RunID          string
	Manifest       string
	ManifestSHA256 string // as the combine read it
	KeyID          string
	File           combine.InputFile
	Cells          int // values of the measure for the month in the file as stored now; -1 if unreadable
}

// Trace reads the newest combined output in st and builds the chain for measure and month,
// limited to practice when it is not empty. It re-reads every object of the chain and
// verifies manifests against the registry signed by coordinator. An error means the chain
// could not be read at all; what does not match is listed in Chain.Problems.
func Trace(ctx context.Context, st objstore.Store, coordinator ed25519.PublicKey, measure string, month formats.Month, practice string) (*Chain, error) {
	if !formats.MeasureNamePattern.MatchString(measure) {
		return nil, fmt.Errorf("%q is not a measure name", measure)
	}
	pdata, _, err := st.Get(ctx, combine.CurrentKey, MaxPointerBytes)
	if err != nil {
		return nil, fmt.Errorf("read %s (has the federation been combined?): %w", combine.CurrentKey, err)
	}
	ptr, err := combine.ParsePointer(pdata)
	if err != nil {
		return nil, err
	}
	ch := &Chain{CombineID: ptr.ID, Pointer: combine.CurrentKey, Measure: measure, Month: month.String(),
		Report: ptr.Objects[combine.ReportJSON], Figures: ptr.Objects[combine.FederationArrow]}
	problem := func(format string, args ...any) { ch.Problems = append(ch.Problems, fmt.Sprintf(format, args...)) }

	rdata, err := getRef(ctx, st, ch.Report, MaxReportBytes)
	if err != nil {
		return nil, fmt.Errorf("read the combined output's report: %w", err)
	}
	if sum := digest(rdata); sum != ch.Report.SHA256 {
		problem("%s has SHA-256 %s but current.json recorded %s: the report changed after the combine", ch.Report.Key, sum, ch.Report.SHA256)
	}
	rep, err := combine.ParseReport(rdata)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(rep.MeasureNames(), measure) {
		return nil, fmt.Errorf("unknown measure %q; this federation's measures are %v", measure, rep.MeasureNames())
	}
	ch.InputsSHA256 = rep.InputsSHA256
	if rep.InputsSHA256 != rep.UsedDigest() {
		problem("%s records inputs digest %s but its inputs digest to %s: the report was edited", ch.Report.Key, rep.InputsSHA256, rep.UsedDigest())
	}
	if rep.ID != ptr.ID {
		problem("%s names combined output %s but current.json names %s", ch.Report.Key, rep.ID, ptr.ID)
	}
	if fdata, err := getRef(ctx, st, ch.Figures, ch.Figures.Size); err != nil {
		problem("cannot re-read the combined figures %s: %v", ch.Figures.Key, err)
	} else if sum := digest(fdata); sum != ch.Figures.SHA256 {
		problem("%s has SHA-256 %s but current.json recorded %s: the figures changed after the combine", ch.Figures.Key, sum, ch.Figures.SHA256)
	}

	reg, err := registry.Load(ctx, st, coordinator)
	if err != nil {
		return nil, err
	}
	for _, in := range rep.Inputs {
		if practice != "" && in.Practice != practice {
			continue
		}
		for _, f := range in.Files {
			if f.Use != combine.UseCombined || !slices.Contains(f.Months, ch.Month) {
				continue
			}
			l := Link{Practice: in.Practice, RunID: in.RunID, Manifest: in.Manifest, ManifestSHA256: in.ManifestSHA256, KeyID: in.KeyID, File: f, Cells: -1}
			l.Cells = check(ctx, st, reg, in, f, measure, month, problem)
			ch.Links = append(ch.Links, l)
		}
	}
	return ch, nil
}

// check re-reads one link's manifest and file, reporting what no longer matches, and returns
// the number of the measure's cells in the file, or -1 if it cannot be read.
func check(ctx context.Context, st objstore.Store, reg *registry.Loaded, in combine.Input, f combine.InputFile, measure string, month formats.Month, problem func(string, ...any)) int {
	mdata, _, err := st.Get(ctx, in.Manifest, formats.MaxEnvelopeBytes)
	if err != nil {
		problem("cannot re-read manifest %s: %v", in.Manifest, err)
		return -1
	}
	if sum := digest(mdata); sum != in.ManifestSHA256 {
		problem("manifest %s has SHA-256 %s now but the combine read %s: it changed after the combine", in.Manifest, sum, in.ManifestSHA256)
	}
	var m *formats.Manifest
	env, err := formats.ParseEnvelope(mdata)
	if err == nil {
		var pub ed25519.PublicKey
		if pub, err = reg.KeyFor(in.Practice, env.KeyID); err == nil {
			m, err = formats.VerifyManifest(in.Manifest, mdata, pub)
		}
	}
	if err != nil {
		problem("manifest %s does not verify now: %v", in.Manifest, err)
		return -1
	}
	var entry *formats.FileEntry
	for i := range m.Files {
		if m.Files[i].Key == f.Key {
			entry = &m.Files[i]
		}
	}
	if entry == nil || entry.SHA256 != f.SHA256 || entry.Size != f.Size {
		problem("manifest %s no longer lists %s as the combine read it", in.Manifest, f.Key)
		return -1
	}
	data, _, err := st.Get(ctx, f.Key, f.Size)
	if errors.Is(err, objstore.ErrTooLarge) {
		problem("file %s is larger now than the %d bytes the combine read: it changed after the combine", f.Key, f.Size)
		return -1
	}
	if err != nil {
		problem("cannot re-read file %s: %v", f.Key, err)
		return -1
	}
	if sum := digest(data); sum != f.SHA256 {
		problem("file %s has SHA-256 %s now but the combine read %s (signed in %s): it changed after the combine", f.Key, sum, f.SHA256, in.Manifest)
		return -1
	}
	sub, err := formats.VerifySubmission(m, *entry, data, formats.DefaultLimits)
	if err != nil {
		problem("file %s does not verify now: %v", f.Key, err)
		return -1
	}
	n := 0
	for _, c := range sub.Cells {
		if c.Measure == measure && c.Period == formats.MonthPeriod(month) {
			n++
		}
	}
	return n
}

func getRef(ctx context.Context, st objstore.Store, ref combine.ObjectRef, limit int64) ([]byte, error) {
	if ref.Key == "" {
		return nil, errors.New("current.json names no such object")
	}
	data, _, err := st.Get(ctx, ref.Key, limit)
	return data, err
}

func digest(data []byte) string {
	h := sha256.Sum256(data)
	return hex.EncodeToString(h[:])
}
