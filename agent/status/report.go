package status

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tributary-health/tributary/agent/spool"
	"github.com/tributary-health/tributary/internal/objstore"
)

// Input is everything the report is made from.
type Input struct {
	Practice    string
	Plugins     []string // configured plugin names, in order
	State       *State   // nil when the service never ran
	Spool       spool.Stats
	LastRelease *spool.Release // nil when nothing ever left
	Running     bool           // the service answered on its health endpoint, or beat recently
	MaxBytes    int64          // spool size alarm, bytes
	MaxAge      time.Duration  // spool age alarm
	Now         time.Time
}

// Gather reads the state file and the spool at spoolDir and asks the service whether it is
// running. It changes nothing, so it is safe beside a running service.
func Gather(ctx context.Context, spoolDir string) (*State, spool.Stats, *spool.Release, bool, error) {
	st, err := Read(Path(spoolDir))
	if err != nil {
		return nil, spool.Stats{}, nil, false, err
	}
	sp := spool.View(spoolDir)
	stats, err := sp.Stats()
	if err != nil {
		return nil, spool.Stats{}, nil, false, err
	}
	rel, err := sp.Releases()
	if err != nil {
		return nil, spool.Stats{}, nil, false, err
	}
	pending, err := sp.Pending()
	if err != nil {
		return nil, spool.Stats{}, nil, false, err
	}
	return st, stats, LastSent(rel, pending), Alive(ctx, st), nil
}

// LastSent is the newest release of a run that has been sent whole: the objects of a run
// still waiting in the spool (its file went, its manifest did not) are not "sent" yet, since
// the coordinator sees nothing of a run until its manifest arrives.
func LastSent(rel []spool.Release, pending []spool.Run) *spool.Release {
	waiting := map[string]bool{}
	for _, r := range pending {
		waiting[r.ID] = true
	}
	for i := len(rel) - 1; i >= 0; i-- {
		if !waiting[rel[i].RunID] {
			return &rel[i]
		}
	}
	return nil
}

// Alive reports whether the service that wrote st is running: it answers on its health
// endpoint, or, with the endpoint off, it rewrote the state file within three heartbeats.
func Alive(ctx context.Context, st *State) bool {
	if st == nil || !st.Service {
		return false
	}
	if st.Listen != "" {
		return Healthy(ctx, st.Listen)
	}
	return time.Since(st.Updated) < 3*Heartbeat
}

// Healthy reports whether an agent answers /healthz at addr (host:port).
func Healthy(ctx context.Context, addr string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// Report writes the plain-words status and returns the things a person should do (none when
// all is well).
func Report(w io.Writer, in Input) (todo []string) {
	when := func(t time.Time) string { return ago(in.Now, t) }
	fmt.Fprintf(w, "Tributary agent for practice %s\n\n", in.Practice)
	st := in.State

	switch {
	case in.Running:
		line := "Service: running"
		if !st.NextRun.IsZero() {
			line += "; next run " + when(st.NextRun)
		}
		fmt.Fprintln(w, line+".")
	case st != nil && st.Service:
		fmt.Fprintf(w, "Service: NOT RUNNING (last seen %s).\n", when(st.Updated))
		todo = append(todo, "Start the service: 'tributary-agent service start --config FILE' (or ask IT to check why it stopped: 'journalctl -u tributary-agent' on Linux, the agent.log in the spool folder on Windows).")
	case st != nil:
		// One-off runs are how a practice tries the agent out: not running the service yet is
		// a next step, not something wrong.
		fmt.Fprintln(w, "Service: not running (only one-off runs so far). To run on the schedule: 'tributary-agent service install --config FILE', then 'tributary-agent service start --config FILE'.")
	default:
		fmt.Fprintln(w, "Service: not running (it has never run here).")
		todo = append(todo, "Install and start the service: 'tributary-agent service install --config FILE', then 'tributary-agent service start --config FILE'.")
	}

	if st != nil && st.LastRun != nil {
		r := st.LastRun
		switch r.Result {
		case ResultOK:
			fmt.Fprintf(w, "Last run: %s, %d file(s); every plugin worked.\n", when(r.Finished), r.Files)
		case ResultPartial:
			fmt.Fprintf(w, "Last run: %s, %d file(s); some plugins failed (below) and their figures were left out.\n", when(r.Finished), r.Files)
		default:
			fmt.Fprintf(w, "Last run: %s FAILED, nothing was released: %s\n", when(r.Finished), r.Error)
		}
		if r.MeasuresError != "" {
			fmt.Fprintf(w, "Federation measures REFUSED: %s\n", r.MeasuresError)
			todo = append(todo, "Ask the federation lead about the federation's measures file: this agent refused it (above), so it counts only the built-in measures and the last good copy.")
		}
		if len(r.Absent) > 0 {
			fmt.Fprintf(w, "Measures absent from this practice's figures (its sources cannot supply them): %s\n", strings.Join(r.Absent, "; "))
		}
	} else {
		fmt.Fprintln(w, "Last run: none yet.")
	}

	if len(in.Plugins) > 0 {
		fmt.Fprintln(w, "\nPlugins:")
	}
	for _, name := range in.Plugins {
		var p *Plugin
		if st != nil {
			p = st.Plugins[name]
		}
		switch {
		case p == nil:
			fmt.Fprintf(w, "  %s: not run yet.\n", name)
		case p.LastFailure.After(p.LastSuccess):
			since := "it has never worked"
			if !p.LastSuccess.IsZero() {
				since = "last worked " + when(p.LastSuccess)
			}
			fmt.Fprintf(w, "  %s: FAILING, %d run(s) in a row (%s), %s: %s\n", name, p.FailuresInARow, p.FailureKind, since, p.FailureReason)
			todo = append(todo, fmt.Sprintf("Plugin %s fails (%s). It is tried again at every run; if it keeps failing, send this status and the agent's log to whoever supports the plugin. %s", name, p.FailureKind, kindAdvice(p.FailureKind)))
		default:
			fmt.Fprintf(w, "  %s: OK, last worked %s.\n", name, when(p.LastSuccess))
		}
	}

	fmt.Fprintln(w, "\nOutbox:")
	if in.Spool.PendingRuns == 0 {
		fmt.Fprintln(w, "  nothing waiting to be sent.")
	} else {
		fmt.Fprintf(w, "  %d run(s), %s, waiting to be sent; the oldest since %s.\n", in.Spool.PendingRuns, size(in.Spool.PendingBytes), when(in.Spool.Oldest))
		if st != nil && st.Upload.LastError != "" && st.Upload.LastErrorTime.After(st.Upload.LastSuccess) {
			u := st.Upload
			retry := "The agent keeps trying by itself"
			if !u.NextRetry.IsZero() {
				retry += " (next try " + when(u.NextRetry) + ")"
			}
			switch StoreProblem(u.LastError) {
			case ProblemDenied:
				fmt.Fprintf(w, "  The store refused the upload: access denied (%s): %s\n", when(u.LastErrorTime), u.LastError)
				todo = append(todo, "The store refuses this agent's credentials (access denied): check that TRIBUTARY_S3_ACCESS_KEY and TRIBUTARY_S3_SECRET_KEY (the service's environment file, or [s3] in the configuration) are the store keys the federation lead made for this practice; if they were rotated or revoked, ask the lead for new ones. The runs wait in the spool meanwhile.")
			case ProblemConfig:
				fmt.Fprintf(w, "  The store settings are wrong (%s): %s\n", when(u.LastErrorTime), u.LastError)
				todo = append(todo, "Correct the store settings ('store' and [s3] in the configuration, or the store credentials in the service's environment) as the message above says; the runs wait in the spool and are sent by the next attempt.")
			default:
				fmt.Fprintf(w, "  The store could not be reached (%s): %s\n", when(u.LastErrorTime), u.LastError)
				if in.Running {
					fmt.Fprintf(w, "  %s; nothing is lost meanwhile.\n", retry)
				} else {
					todo = append(todo, "The store could not be reached and no service is running to retry: check this machine can reach the store (the endpoint in 'store'), then run 'tributary-agent run --once --config FILE' again, or start the service, which retries by itself. Nothing is lost meanwhile.")
				}
			}
		}
	}
	if in.LastRelease != nil {
		fmt.Fprintf(w, "  Last sent: %s (run %s); 'tributary-agent releases --config FILE' lists everything that left.\n", when(in.LastRelease.Time), in.LastRelease.RunID)
	} else if in.Spool.PendingRuns > 0 {
		fmt.Fprintln(w, "  Nothing has been sent whole yet.")
	}

	overSize := in.MaxBytes > 0 && in.Spool.PendingBytes > in.MaxBytes
	overAge := in.MaxAge > 0 && !in.Spool.Oldest.IsZero() && in.Now.Sub(in.Spool.Oldest) > in.MaxAge
	if overSize || overAge {
		fmt.Fprintln(w, "\nALARM: "+strings.Join(Alarms(in.Spool, in.MaxBytes, in.MaxAge, in.Now), "; "))
		todo = append(todo, "Files have been waiting too long or piling up: check this machine can reach the store and that its store credentials (TRIBUTARY_S3_ACCESS_KEY and TRIBUTARY_S3_SECRET_KEY) are the ones the federation lead sent, then tell the lead the store has not accepted uploads since "+when(in.Spool.Oldest)+". Nothing has been deleted.")
	}

	fmt.Fprintln(w)
	if len(todo) == 0 {
		fmt.Fprintln(w, "Nothing to do: everything is working.")
		return nil
	}
	fmt.Fprintln(w, "What to do:")
	for _, t := range todo {
		fmt.Fprintln(w, "  - "+t)
	}
	return todo
}

// What an upload error says about the store (StoreProblem).
const (
	ProblemUnreachable = "unreachable" // down, or not reachable from here: retrying helps
	ProblemDenied      = "denied"      // the store refused the credentials or the user's policy
	ProblemConfig      = "config"      // the store settings are wrong: bucket, TLS, credentials missing, clock
)

// StoreProblem classifies an upload error as the state file keeps it (its text) by the kind
// the object store gave it.
func StoreProblem(msg string) string {
	switch {
	case strings.Contains(msg, objstore.ErrAccessDenied.Error()):
		return ProblemDenied
	case strings.Contains(msg, objstore.ErrConfig.Error()), strings.Contains(msg, "no credentials for the S3 store"):
		return ProblemConfig
	}
	return ProblemUnreachable
}

// Alarms says, in words, which spool limits are exceeded.
func Alarms(s spool.Stats, maxBytes int64, maxAge time.Duration, now time.Time) []string {
	var out []string
	if maxBytes > 0 && s.PendingBytes > maxBytes {
		out = append(out, fmt.Sprintf("the spool holds %s waiting to be sent, over its limit of %s (spool_max_mb)", size(s.PendingBytes), size(maxBytes)))
	}
	if maxAge > 0 && !s.Oldest.IsZero() && now.Sub(s.Oldest) > maxAge {
		out = append(out, fmt.Sprintf("a run has waited %s to be sent, over the limit of %s (spool_max_age)", now.Sub(s.Oldest).Round(time.Minute), maxAge))
	}
	return out
}

func kindAdvice(kind string) string {
	switch kind {
	case "checksum":
		return "The plugin binary is not the one pinned in the configuration: if it was upgraded on purpose, pin its new sha256."
	case "timeout":
		return "It took longer than plugin_run_timeout: the practice system may be slow or unreachable."
	case "crash":
		return "The plugin program stopped unexpectedly."
	case "bad_rows":
		return "It sent data that breaks the contract: the plugin needs fixing by its author."
	case "plugin":
		return "The plugin reported a problem with its source data or settings; its message says which."
	}
	return ""
}

// ago writes a time for a person: "2 minutes ago", "in 3 hours", with the date.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	word := "ago"
	if d < 0 {
		d, word = -d, "from now"
	}
	var rel string
	switch {
	case d < time.Minute:
		rel = fmt.Sprintf("%d seconds %s", int(d.Seconds()), word)
	case d < time.Hour:
		rel = fmt.Sprintf("%d minutes %s", int(d.Minutes()), word)
	case d < 48*time.Hour:
		rel = fmt.Sprintf("%d hours %s", int(d.Hours()), word)
	default:
		rel = fmt.Sprintf("%d days %s", int(d.Hours()/24), word)
	}
	return t.Local().Format("Mon 2 Jan 15:04") + " (" + rel + ")"
}

func size(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f kB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
