package spool

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Release is one line of the release log: one object that left the practice.
type Release struct {
	Time   time.Time `json:"time"`
	RunID  string    `json:"run_id"`
	Period string    `json:"period,omitempty"` // the months the file covers, YYYY-MM..YYYY-MM (a single YYYY-MM in logs of format 1); empty for the manifest
	Key    string    `json:"key"`
	Store  string    `json:"store"` // where it went, without credentials
	Size   int64     `json:"size"`
	SHA256 string    `json:"sha256"`
}

// LogPath is the release log's file.
func (s *Spool) LogPath() string { return filepath.Join(s.dir, "release.log") }

// LogRelease appends an entry to the release log and syncs it.
func (s *Spool) LogRelease(r Release) error {
	f, err := os.OpenFile(s.LogPath(), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("release log: %w", err)
	}
	defer f.Close()
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("release log: %w", err)
	}
	return f.Sync()
}

// Releases reads the release log.
func (s *Spool) Releases() ([]Release, error) {
	f, err := os.Open(s.LogPath())
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("release log: %w", err)
	}
	defer f.Close()
	var out []Release
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r Release
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			continue // a line torn by a crash mid-write; the next upload logs it again
		}
		out = append(out, r)
	}
	return out, sc.Err()
}
