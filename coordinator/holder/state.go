package holder

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tributary-health/tributary/internal/atomicfile"
)

// State is what a holder remembers between rounds, in its state folder (state.json): which
// reports it has seen (the replay ledger), which rounds it took part in, and, for every month
// and measure, the reports behind the last total it released (the differencing guard's
// history). It holds report ids and practice ids, never a count or a share.
type State struct {
	dir    string
	unlock func() error

	mu   sync.Mutex
	data stateData
}

type stateData struct {
	FormatVersion int                    `json:"format_version"`
	Holder        string                 `json:"holder"`
	Reports       map[string]*ReportSeen `json:"reports"` // by nonce
	Rounds        map[string]*RoundSeen  `json:"rounds"`
	// Released: by "YYYY-MM measure", the last total released.
	Released map[string]*Release `json:"released"`
}

// ReportSeen is a report the holder prepared: where it first saw it.
type ReportSeen struct {
	Practice string `json:"practice"`
	RunID    string `json:"run_id"`
	Month    string `json:"month"`
	Round    string `json:"round"` // the first round that prepared it
	// Released: some total the holder released counted it.
	Released bool `json:"released,omitempty"`
}

// RoundSeen is a round the holder took part in.
type RoundSeen struct {
	Plan    string    `json:"plan_sha256"`
	Status  string    `json:"status"`
	Updated time.Time `json:"updated"`
}

// Round statuses.
const (
	StatusPrepared  = "prepared"  // prep shares written
	StatusReleased  = "released"  // aggregate shares released (helper) or totals published (leader)
	StatusRefused   = "refused"   // the plan was refused
	StatusAbandoned = "abandoned" // the round stopped without releasing anything
)

// Release is one released total of a month and measure: the report (nonce) of each practice
// counted.
type Release struct {
	Round string            `json:"round"`
	Units map[string]string `json:"units"` // practice -> nonce
}

const stateFile = "state.json"

// OpenState opens (creating) a holder's state folder and locks it: one process at a time
// acts for a holder.
func OpenState(dir, holder string) (*State, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("holder state: %w", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("holder state %s: %w", dir, err)
	}
	s := &State{dir: dir, unlock: unlock, data: stateData{FormatVersion: 1, Holder: holder,
		Reports: map[string]*ReportSeen{}, Rounds: map[string]*RoundSeen{}, Released: map[string]*Release{}}}
	if _, err := atomicfile.CleanDir(dir, 0); err != nil {
		unlock()
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		unlock()
		return nil, fmt.Errorf("holder state: %w", err)
	default:
		if err := json.Unmarshal(data, &s.data); err != nil {
			unlock()
			return nil, fmt.Errorf("holder state %s is damaged: %w", filepath.Join(dir, stateFile), err)
		}
		if s.data.Holder != holder {
			unlock()
			return nil, fmt.Errorf("holder state %s belongs to holder %q, not %q", dir, s.data.Holder, holder)
		}
		if s.data.Reports == nil {
			s.data.Reports = map[string]*ReportSeen{}
		}
		if s.data.Rounds == nil {
			s.data.Rounds = map[string]*RoundSeen{}
		}
		if s.data.Released == nil {
			s.data.Released = map[string]*Release{}
		}
	}
	return s, nil
}

// Close unlocks the state folder.
func (s *State) Close() error { return s.unlock() }

// Dir is the state folder.
func (s *State) Dir() string { return s.dir }

// save writes the state; the caller holds mu.
func (s *State) save() error {
	data, err := json.MarshalIndent(&s.data, "", " ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(s.dir, stateFile), data, 0o600)
}

func releaseKey(month, measure string) string { return month + " " + measure }

// seen returns the ledger entry of a nonce.
func (s *State) seen(nonce string) *ReportSeen {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.data.Reports[nonce]; r != nil {
		c := *r
		return &c
	}
	return nil
}

// round returns what the holder recorded of a round.
func (s *State) round(id string) *RoundSeen {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.data.Rounds[id]; r != nil {
		c := *r
		return &c
	}
	return nil
}

// lastRelease returns the last total released of a month and measure, or nil.
func (s *State) lastRelease(month, measure string) *Release {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data.Released[releaseKey(month, measure)]
}

// record applies change to the state and saves it.
func (s *State) record(change func(d *stateData)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	change(&s.data)
	return s.save()
}
