package progress

import "sync"

// Run shows one agent run on a Bar: each plugin as it runs with the record batches and rows it
// has sent, then the objects uploaded. It has the methods of agent.Progress (Agent.Progress),
// a step for each plugin and each object. A Run over a nil *Bar shows nothing.
type Run struct {
	Bar *Bar

	mu            sync.Mutex
	plugin        string
	n, of         int
	batches, rows int64
	objects, sent int
}

// NewRun shows a run on b, a bar begun with no steps (New(w, enabled, 0, ...)).
func NewRun(b *Bar) *Run { return &Run{Bar: b} }

// PluginStarted implements agent.Progress.
func (r *Run) PluginStarted(name string, n, of int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.plugin, r.n, r.of, r.batches, r.rows = name, n, of, 0, 0
	if n == 1 {
		r.Bar.AddMax(of)
	}
	r.Bar.Describe("plugin %s %d/%d: starting", name, n, of)
}

// Batch implements agent.Progress.
func (r *Run) Batch(rows int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches++
	r.rows += int64(rows)
	r.Bar.Status("plugin %s %d/%d: %d batches, %s rows", r.plugin, r.n, r.of, r.batches, Count(r.rows))
}

// PluginDone implements agent.Progress.
func (r *Run) PluginDone(name string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	word := "done"
	if err != nil {
		word = "FAILED"
	}
	r.Bar.Status("plugin %s %d/%d: %s, %d batches, %s rows", name, r.n, r.of, word, r.batches, Count(r.rows))
	r.Bar.Add(1)
}

// Uploading implements agent.Progress.
func (r *Run) Uploading(objects int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.objects, r.sent = objects, 0
	r.Bar.AddMax(objects)
	r.Bar.Describe("uploading: 0/%d objects", objects)
}

// Uploaded implements agent.Progress.
func (r *Run) Uploaded() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent++
	r.Bar.Status("uploading: %d/%d objects", r.sent, r.objects)
	r.Bar.Add(1)
}
