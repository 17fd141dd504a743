package combine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// MaxClockSkew is how far ahead of the coordinator's clock a manifest's creation time may
// be. A run signed by an agent whose clock was years ahead would otherwise supersede every
// later real run of its practice; it is quarantined instead, and the practice's next normal
// run is combined.
const MaxClockSkew = time.Hour

// ErrFuture: a manifest created, or months extracted, after the coordinator's now.
var ErrFuture = errors.New("dated in the future")

// checkClock refuses a verified manifest created beyond MaxClockSkew ahead of now, or
// covering a month after now's.
func checkClock(m *formats.Manifest, to formats.Month, now time.Time) error {
	if m.Created.After(now.Add(MaxClockSkew)) {
		return fmt.Errorf("%s: %w: the run says it was made at %s, after the coordinator's clock (%s); check the practice machine's clock, then run the agent again",
			m.Key(), ErrFuture, m.Created.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if cur := formats.MonthOf(now.UTC()); to > cur {
		return fmt.Errorf("%s: %w: the run covers months up to %s, after the current month %s; check the agent's months setting and the machine's clock", m.Key(), ErrFuture, to, cur)
	}
	return nil
}

// HistoryKey lists the combined outputs that were published (named by current.json at some
// time), newest first: what the revision history of a figure may show. An output a combine
// wrote but never published (it was killed before writing current.json) is not in it.
const HistoryKey = formats.FederationPrefix + "history.json"

// History is federation/history.json.
type History struct {
	FormatVersion int            `json:"format_version"`
	Outputs       []HistoryEntry `json:"outputs"` // newest first
}

// HistoryEntry is one published combined output.
type HistoryEntry struct {
	ID         string    `json:"id"`
	Published  time.Time `json:"published"`
	FirstMonth string    `json:"first_month,omitempty"`
	LastMonth  string    `json:"last_month,omitempty"`
}

// Prefix is where the output's objects are.
func (e HistoryEntry) Prefix() string { return CombinedPrefix + e.ID + "/" }

// MaxHistoryBytes bounds history.json (some 100 bytes an output).
const MaxHistoryBytes = 8 << 20

// ReadHistory reads federation/history.json; a store without one has an empty history.
func ReadHistory(ctx context.Context, st objstore.Store) (*History, error) {
	h, _, err := readHistory(ctx, st)
	return h, err
}

// readHistory is ReadHistory that also returns the SHA-256 of what it read (objstore.Absent
// for no history), for replacing it with PutIf. A history it cannot parse comes with its
// SHA-256 and the error, so that the next write replaces it.
func readHistory(ctx context.Context, st objstore.Store) (*History, string, error) {
	data, info, err := st.Get(ctx, HistoryKey, MaxHistoryBytes)
	if errors.Is(err, objstore.ErrNotFound) {
		return &History{FormatVersion: Version}, objstore.Absent, nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read %s: %w", HistoryKey, err)
	}
	var h History
	if err := json.Unmarshal(data, &h); err != nil || h.FormatVersion != Version {
		return nil, info.SHA256, fmt.Errorf("%s is not a history of combined format %d; it is rebuilt by the next combine", HistoryKey, Version)
	}
	for _, e := range h.Outputs {
		if !idPattern.MatchString(e.ID) {
			return nil, info.SHA256, fmt.Errorf("%s names an output id that is not one; it is rebuilt by the next combine", HistoryKey)
		}
	}
	return &h, info.SHA256, nil
}

// DefaultKeep is how many published combined outputs are kept when Options.Keep is zero:
// a month of daily combines.
const DefaultKeep = 31

// unpublishedGrace is how old an object must be before pruning may remove it when no
// published output names it: a combine elsewhere (serve beside a manual combine) may be
// writing it.
const unpublishedGrace = time.Hour

// record adds the output just published to the history and prunes what the retention
// setting no longer keeps: published outputs beyond the newest keep, outputs a combine wrote
// but never published (an interrupted combine's leftovers, once older than an hour), and
// practice tables that the current output does not name (once older than an hour). It
// returns how many objects it removed. A failure here never undoes the combine: the figures
// are published; the history and the clean-up are tried again next time.
func record(ctx context.Context, st objstore.Store, ptr Pointer, keep int, now time.Time) (int, error) {
	if keep <= 0 {
		keep = DefaultKeep
	}
	h, dropped, err := addToHistory(ctx, st, ptr, keep, now)
	if err != nil {
		return 0, err
	}
	kept := map[string]bool{}
	for _, e := range h.Outputs {
		kept[e.ID] = true
	}
	dropping := map[string]bool{}
	for _, e := range dropped {
		dropping[e.ID] = true
	}
	infos, err := st.List(ctx, CombinedPrefix)
	if err != nil {
		return 0, fmt.Errorf("list %s: %w", CombinedPrefix, err)
	}
	removed := 0
	for _, in := range infos {
		id, _, _ := strings.Cut(strings.TrimPrefix(in.Key, CombinedPrefix), "/")
		old := now.Sub(in.Modified) > unpublishedGrace
		if kept[id] || (!dropping[id] && !old) {
			continue
		}
		if err := st.Delete(ctx, in.Key); err != nil {
			return removed, fmt.Errorf("prune %s: %w", in.Key, err)
		}
		removed++
	}
	current := map[string]bool{}
	for _, ref := range ptr.PracticeTables {
		current[ref.Key] = true
	}
	tables, err := st.List(ctx, PracticeTablesPrefix)
	if err != nil {
		return removed, fmt.Errorf("list %s: %w", PracticeTablesPrefix, err)
	}
	for _, in := range tables {
		if current[in.Key] || now.Sub(in.Modified) <= unpublishedGrace {
			continue
		}
		if err := st.Delete(ctx, in.Key); err != nil {
			return removed, fmt.Errorf("prune %s: %w", in.Key, err)
		}
		removed++
	}
	return removed, nil
}

// historyAttempts bounds how often addToHistory reads the history again after another
// combine replaced it in between.
const historyAttempts = 5

// addToHistory adds the output just published to federation/history.json, newest first,
// keeping keep outputs, and returns the history written and the outputs it dropped. It
// replaces the history with PutIf, reading it again when another combine (the service
// beside a manual one) replaced it meanwhile, so neither loses the other's entry.
func addToHistory(ctx context.Context, st objstore.Store, ptr Pointer, keep int, now time.Time) (*History, []HistoryEntry, error) {
	for attempt := 1; ; attempt++ {
		h, sum, err := readHistory(ctx, st)
		if h == nil {
			if sum == "" {
				return nil, nil, err // the store failed
			}
			h = &History{FormatVersion: Version} // a damaged history is rebuilt from here on
		}
		h.Outputs = slices.DeleteFunc(h.Outputs, func(e HistoryEntry) bool { return e.ID == ptr.ID })
		h.Outputs = slices.Insert(h.Outputs, 0, HistoryEntry{ID: ptr.ID, Published: now.UTC(), FirstMonth: ptr.FirstMonth, LastMonth: ptr.LastMonth})
		var dropped []HistoryEntry
		if len(h.Outputs) > keep {
			dropped = slices.Clone(h.Outputs[keep:])
			h.Outputs = h.Outputs[:keep]
		}
		data, err := json.MarshalIndent(h, "", "  ")
		if err != nil {
			return nil, nil, err
		}
		_, err = st.PutIf(ctx, HistoryKey, data, sum)
		if errors.Is(err, objstore.ErrConflict) && attempt < historyAttempts {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("write %s: %w", HistoryKey, err)
		}
		return h, dropped, nil
	}
}
