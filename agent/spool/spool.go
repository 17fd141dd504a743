// Package spool is the agent's local outbox: a run's files are written here atomically, the
// signed manifest last, and stay until the store has confirmed every one of them.
//
// Layout under the spool folder:
//
//	runs/<run-id>/figures.arrow      the run's submission (every month, quarter and year it covers)
//	runs/<run-id>/manifest.json      written last: a run without it is incomplete and discarded
//	runs/<run-id>/sent/<name>        empty marker: the store confirmed <name> (checksum verified)
//	sent/<run-id>/...                a run whose every file, manifest last, was confirmed
//	release.log                      what left the practice, when and to where (JSON lines)
package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/atomicfile"
)

// legacyTemp started the temporary files of earlier versions of the spool.
const legacyTemp = ".tmp-"

// Spool is a folder on the practice machine.
type Spool struct{ dir string }

// Run is a complete run waiting in the spool.
type Run struct {
	ID       string
	Manifest *formats.Manifest
	Raw      []byte // the signed manifest envelope
}

// Open prepares the spool folder, discards incomplete runs (those a crash interrupted before
// their manifest was written: nothing of them was released, and the next run extracts the
// same months again) and removes the temporary files of writes a crash interrupted, in the
// spool folder (the state file's, say) and in every waiting run. It returns the ids of the
// runs discarded. Call it only while holding the spool's Lock.
func Open(dir string) (*Spool, []string, error) {
	s := &Spool{dir: dir}
	for _, d := range []string{s.runsDir(), filepath.Join(dir, "sent")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, nil, fmt.Errorf("spool: cannot create %s: %w; check the spool setting and the folder's permissions", d, err)
		}
	}
	entries, err := os.ReadDir(s.runsDir())
	if err != nil {
		return nil, nil, fmt.Errorf("spool: %w", err)
	}
	var discarded []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), legacyTemp) || atomicfile.IsTemp(e.Name()) {
			os.RemoveAll(filepath.Join(s.runsDir(), e.Name()))
			continue
		}
		if _, err := os.Stat(filepath.Join(s.runsDir(), e.Name(), formats.ManifestName)); errors.Is(err, os.ErrNotExist) {
			if err := os.RemoveAll(filepath.Join(s.runsDir(), e.Name())); err != nil {
				return nil, nil, fmt.Errorf("spool: cannot discard incomplete run %s: %w", e.Name(), err)
			}
			discarded = append(discarded, e.Name())
			continue
		}
		for _, d := range []string{s.runDir(e.Name()), s.sentDir(e.Name())} {
			if _, err := atomicfile.CleanDir(d, 0, legacyTemp); err != nil {
				return nil, nil, fmt.Errorf("spool: cannot remove a temporary file left by an interrupted write: %w", err)
			}
		}
	}
	if _, err := atomicfile.CleanDir(dir, 0, legacyTemp); err != nil {
		return nil, nil, fmt.Errorf("spool: cannot remove a temporary file left by an interrupted write: %w", err)
	}
	return s, discarded, nil
}

// View returns the spool at dir for reading only: unlike Open it creates and discards
// nothing, so it is safe beside a running agent (for status and the release log).
func View(dir string) *Spool { return &Spool{dir: dir} }

// Dir is the spool folder.
func (s *Spool) Dir() string { return s.dir }

func (s *Spool) runsDir() string          { return filepath.Join(s.dir, "runs") }
func (s *Spool) runDir(id string) string  { return filepath.Join(s.runsDir(), id) }
func (s *Spool) sentDir(id string) string { return filepath.Join(s.runDir(id), "sent") }

// File is one file of a run as named in the spool.
type File struct {
	Name string // formats.FiguresName
	Data []byte
}

// WriteRun stores a run's files, each atomically, and then its signed manifest, also
// atomically: until the manifest is in place the run does not exist for Pending.
func (s *Spool) WriteRun(runID string, files []File, manifest []byte) error {
	if err := formats.ValidateRunID(runID); err != nil {
		return err
	}
	dir := s.runDir(runID)
	if err := os.MkdirAll(filepath.Join(dir, "sent"), 0o700); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	for _, f := range files {
		if err := writeAtomic(dir, f.Name, f.Data); err != nil {
			return err
		}
	}
	return writeAtomic(dir, formats.ManifestName, manifest)
}

// Pending returns the complete runs not yet fully sent, oldest first.
func (s *Spool) Pending() ([]Run, error) {
	entries, err := os.ReadDir(s.runsDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // a spool nothing was ever written to (View)
	}
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	var runs []Run
	for _, e := range entries {
		if !e.IsDir() || formats.ValidateRunID(e.Name()) != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(s.runDir(e.Name()), formats.ManifestName))
		if errors.Is(err, os.ErrNotExist) {
			continue // being written now, or discarded at the next Open
		}
		if err != nil {
			return nil, fmt.Errorf("spool: %w", err)
		}
		m, _, err := formats.ReadManifestUnverified(raw)
		if err != nil {
			return nil, fmt.Errorf("spool: run %s has an unreadable manifest: %w", e.Name(), err)
		}
		runs = append(runs, Run{ID: e.Name(), Manifest: m, Raw: raw})
	}
	sort.Slice(runs, func(i, j int) bool { return runs[i].ID < runs[j].ID })
	return runs, nil
}

// ReadFile returns a spooled file of a run.
func (s *Spool) ReadFile(runID, name string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(s.runDir(runID), filepath.Base(name)))
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return b, nil
}

// IsSent reports whether the store confirmed a file of a run.
func (s *Spool) IsSent(runID, name string) bool {
	_, err := os.Stat(filepath.Join(s.sentDir(runID), filepath.Base(name)))
	return err == nil
}

// MarkSent records that the store confirmed a file.
func (s *Spool) MarkSent(runID, name string) error {
	return writeAtomic(s.sentDir(runID), filepath.Base(name), nil)
}

// Complete moves a fully sent run out of the outbox.
func (s *Spool) Complete(runID string) error {
	dst := filepath.Join(s.dir, "sent", runID)
	os.RemoveAll(dst) // a previous attempt may have been interrupted after copying
	if err := atomicfile.Rename(s.runDir(runID), dst); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	for _, d := range []string{filepath.Join(s.dir, "sent"), s.runsDir()} {
		if err := atomicfile.SyncDir(d); err != nil {
			return fmt.Errorf("spool: %w", err)
		}
	}
	return nil
}

// Stats describe the outbox for alarms and status.
type Stats struct {
	PendingRuns  int
	PendingBytes int64
	Oldest       time.Time // when the oldest pending run was made; zero when none waits
}

// Stats sums the runs waiting to be sent.
func (s *Spool) Stats() (Stats, error) {
	runs, err := s.Pending()
	if err != nil {
		return Stats{}, err
	}
	st := Stats{PendingRuns: len(runs)}
	for _, r := range runs {
		if st.Oldest.IsZero() || r.Manifest.Created.Before(st.Oldest) {
			st.Oldest = r.Manifest.Created
		}
		for _, f := range r.Manifest.Files {
			st.PendingBytes += f.Size
		}
	}
	return st, nil
}

// writeAtomic replaces dir/name with data through atomicfile, so a crash leaves the old file,
// the new one or none.
func writeAtomic(dir, name string, data []byte) error {
	if err := atomicfile.Write(filepath.Join(dir, name), data, 0o600); err != nil {
		return fmt.Errorf("spool: writing %s: %w", name, err)
	}
	return nil
}
