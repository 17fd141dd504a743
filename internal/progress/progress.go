// Package progress is the one-line progress display Tributary's commands show a person at a
// terminal while they work (tributary-agent run --once, tributary-demo), and nothing at all
// anywhere else: a pipe, a file, a log collector, TERM=dumb, NO_PROGRESS set, or the command's
// --no-progress. A nil *Bar is a display that is off, so callers never ask.
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// FlagUsage is the help of every command's --no-progress.
const FlagUsage = "show no progress bar (it is shown only when stderr is a terminal; NO_PROGRESS=1 or TERM=dumb also turns it off)"

// Enabled reports whether a progress display belongs on w: w is a terminal, and neither off
// (--no-progress), NO_PROGRESS (any value but empty) nor TERM=dumb turns it off.
func Enabled(w io.Writer, off bool) bool {
	if off || os.Getenv("NO_PROGRESS") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// minRedraw is how often Status redraws at most: often enough to look alive, seldom enough
// that a plugin's thousands of batches do not flood the terminal.
const minRedraw = 100 * time.Millisecond

// Bar is a progress bar of steps on one line of a terminal, with words before it that say
// what is happening and how far (the callers put the counts there). It stays up until Done,
// full or not: the steps may be done before the command is. Its methods are safe for
// concurrent use; on a nil *Bar they do nothing.
type Bar struct {
	mu    sync.Mutex
	pb    *progressbar.ProgressBar
	desc  string
	drawn time.Time
	done  bool
}

// New starts a bar of max steps described by description on w, or returns nil (no display)
// when enabled is false. Pass Enabled(w, off) as enabled.
func New(w io.Writer, enabled bool, max int, description string) *Bar {
	if !enabled {
		return nil
	}
	b := &Bar{desc: description}
	// One step more than there is to do: progressbar takes a full bar off the line, and the
	// bar stays until Done (a stage may add steps after the last one's are done).
	b.pb = progressbar.NewOptions(max+1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(description),
		progressbar.OptionSetWidth(20),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionUseANSICodes(true),
		progressbar.OptionSetRenderBlankState(true),
	)
	b.drawn = time.Now()
	return b
}

// Describe changes the words before the bar and draws it now.
func (b *Bar) Describe(format string, args ...any) {
	b.do(func() { b.describe(fmt.Sprintf(format, args...), true) })
}

// Status changes the words before the bar, drawing it at most every tenth of a second: for
// what changes often (rows received).
func (b *Bar) Status(format string, args ...any) {
	b.do(func() { b.describe(fmt.Sprintf(format, args...), false) })
}

func (b *Bar) describe(d string, now bool) {
	b.desc = d
	if !now && time.Since(b.drawn) < minRedraw {
		return
	}
	b.pb.Describe(d)
	b.drawn = time.Now()
}

// Add moves the bar on by n steps.
func (b *Bar) Add(n int) {
	b.do(func() {
		b.pb.Describe(b.desc) // what Status held back
		if b.pb.GetMax64() <= b.pb.State().CurrentNum+int64(n) {
			b.pb.ChangeMax64(b.pb.State().CurrentNum + int64(n) + 1) // more steps than were said
		}
		_ = b.pb.Add(n)
		b.drawn = time.Now()
	})
}

// AddMax adds n steps still to do.
func (b *Bar) AddMax(n int) {
	b.do(func() { b.pb.AddMax(n) })
}

// Done takes the bar off the terminal, leaving the line empty for what the command prints
// next. A Bar is done once; later calls do nothing.
func (b *Bar) Done() {
	b.do(func() {
		b.done = true
		_ = b.pb.Exit()
		_ = b.pb.Clear()
	})
}

// do runs f on a bar that is on and not yet done, holding its lock.
func (b *Bar) do(f func()) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.done {
		f()
	}
}

// Above returns w wrapped so that what is written to it appears above the bar: the bar's line
// is cleared, the text written, and the bar drawn again below it. Give it the writers a
// command prints lines to while the bar is up (its log, its lines for people). With a nil
// *Bar it returns w.
func (b *Bar) Above(w io.Writer) io.Writer {
	if b == nil {
		return w
	}
	return above{b: b, w: w}
}

type above struct {
	b *Bar
	w io.Writer
}

func (a above) Write(p []byte) (int, error) {
	a.b.mu.Lock()
	defer a.b.mu.Unlock()
	if a.b.done {
		return a.w.Write(p)
	}
	_ = a.b.pb.Clear()
	n, err := a.w.Write(p)
	_ = a.b.pb.RenderBlank()
	a.b.drawn = time.Now()
	return n, err
}

// Count writes n short, for a narrow line: 950, 12.3k, 4.56M.
func Count(n int64) string {
	switch {
	case n < 1000:
		return fmt.Sprint(n)
	case n < 1_000_000:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	}
	return fmt.Sprintf("%.2fM", float64(n)/1e6)
}
