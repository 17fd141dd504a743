// Package status is what the agent knows about itself: a small state file the service keeps
// in the spool folder, and the plain-words report 'tributary-agent status' prints from it,
// the spool and the release log, whether or not the service is running.
package status

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/tributary-health/tributary/internal/atomicfile"
)

// FileName is the state file's name in the spool folder.
const FileName = "state.json"

// State is what the service last knew. It holds counts, times and reasons, never rows.
type State struct {
	Updated  time.Time          `json:"updated"` // the service writes it at least every Heartbeat
	PID      int                `json:"pid"`
	Service  bool               `json:"service"`          // written by the scheduled service, not run --once
	Listen   string             `json:"listen,omitempty"` // address of /healthz and /metrics
	Schedule string             `json:"schedule,omitempty"`
	NextRun  time.Time          `json:"next_run,omitzero"`
	LastRun  *Run               `json:"last_run,omitempty"`
	Plugins  map[string]*Plugin `json:"plugins,omitempty"`
	Upload   Upload             `json:"upload"`
	Alarms   []string           `json:"alarms,omitempty"` // spool over its size or age limit, in words
}

// Heartbeat is how often a running service rewrites the state file.
const Heartbeat = 30 * time.Second

// Run is the outcome of the last run.
type Run struct {
	ID       string    `json:"id"`
	Finished time.Time `json:"finished"`
	Result   string    `json:"result"` // ok, partial or failed
	Files    int       `json:"files"`
	Error    string    `json:"error,omitempty"`
	// MeasuresError says why the federation's measures file was not used (a file that does not
	// verify with the coordinator's key, a store that could not be read): the run counted the
	// built-in measures and the last good copy, if any.
	MeasuresError string `json:"measures_error,omitempty"`
	// Absent are the measures the practice's sources cannot supply, each "measure: why".
	Absent []string `json:"absent,omitempty"`
}

// Results of a run.
const (
	ResultOK      = "ok"
	ResultPartial = "partial" // some plugins failed; the others' figures were released
	ResultFailed  = "failed"  // nothing was released
)

// Plugin is one plugin's record.
type Plugin struct {
	LastSuccess    time.Time `json:"last_success,omitzero"`
	LastFailure    time.Time `json:"last_failure,omitzero"`
	FailureKind    string    `json:"failure_kind,omitempty"`
	FailureReason  string    `json:"failure_reason,omitempty"`
	FailuresInARow int       `json:"failures_in_a_row,omitempty"`
}

// Upload is the outbox's record.
type Upload struct {
	LastSuccess   time.Time `json:"last_success,omitzero"` // a pass that left nothing pending
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
	NextRetry     time.Time `json:"next_retry,omitzero"`
}

// Path is the state file of the spool at dir.
func Path(spoolDir string) string { return filepath.Join(spoolDir, FileName) }

// Read reads the state file; a missing file is (nil, nil).
func Read(path string) (*State, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state file: %w", err)
	}
	var s State
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("state file %s is unreadable (%v); it is rewritten by the running service", path, err)
	}
	return &s, nil
}

// Write replaces the state file atomically and durably (atomicfile.Write), so a reader sees
// the old state or the new one, and a crash or a full disk never leaves a torn file.
func Write(path string, s *State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.Write(path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	return nil
}

// Clean removes the temporary files that Writes of the state file at path left when they
// were interrupted (a crash, a full disk), including those of earlier versions
// (state.json.tmp-*). The service calls it when it opens its spool, holding the spool's lock.
func Clean(path string) error {
	if err := atomicfile.Clean(path, 0, filepath.Base(path)+".tmp-"); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	return nil
}
