package dashboard_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/coordinator/server"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// chromium returns Debian's chromium, or skips (fails under CI=true) when it is missing.
func chromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	msg := "no chromium: the browser tests need Debian's chromium package (apt-get install chromium)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// artefacts returns where screenshots go: $TRIBUTARY_ARTIFACTS/dashboard, or a temp dir.
func artefacts(t *testing.T) string {
	dir := t.TempDir()
	if d := os.Getenv("TRIBUTARY_ARTIFACTS"); d != "" {
		dir = filepath.Join(d, "dashboard")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

type site struct {
	url    string
	tokens map[string]string
	own    string
	months []string
	gate   *gate
}

// gate sits between the browser and the coordinator: it records every API request, and holds
// back the answers to the requests it is told to, until released, as a slow network or a
// slow query would.
type gate struct {
	mu    sync.Mutex
	holds []*hold
	seen  []string
}

type hold struct {
	match   func(*http.Request) bool
	release chan struct{}
	served  chan string // the URL of each held request, once answered
}

func (g *gate) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		if strings.HasPrefix(r.URL.Path, "/api/") {
			g.seen = append(g.seen, r.URL.String())
		}
		var held *hold
		for _, x := range g.holds {
			if x.match(r) {
				held = x
				break
			}
		}
		g.mu.Unlock()
		if held == nil {
			h.ServeHTTP(w, r)
			return
		}
		select {
		case <-held.release:
		case <-r.Context().Done():
		}
		h.ServeHTTP(w, r)
		held.served <- r.URL.String()
	})
}

// holdBack holds the answers to the API requests that match until the returned function is
// called; that function waits until n of them have been answered.
func (g *gate) holdBack(t *testing.T, match func(*http.Request) bool) (release func(n int)) {
	x := &hold{match: match, release: make(chan struct{}), served: make(chan string, 16)}
	g.mu.Lock()
	g.holds = append(g.holds, x)
	g.mu.Unlock()
	return func(n int) {
		t.Helper()
		g.mu.Lock()
		g.holds = slices.DeleteFunc(g.holds, func(y *hold) bool { return y == x })
		g.mu.Unlock()
		close(x.release)
		for range n {
			select {
			case u := <-x.served:
				t.Logf("answered late: %s", u)
			case <-time.After(30 * time.Second):
				t.Fatal("a held request was never answered")
			}
		}
	}
}

// requests returns the API requests seen so far.
func (g *gate) requests() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.seen)
}

func newSite(t *testing.T) *site {
	ctx := context.Background()
	st, err := objstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// Practices of realistic size and rates, each with its own level of use, as a real
	// federation's would be: the funnel plot must tell them apart.
	fed := fedgen.New(fedgen.Params{Practices: 8, Months: 14, Seed: 11, Start: formats.MonthFor(2024, time.January), Realistic: true})
	if err := fed.Write(ctx, st, 2); err != nil {
		t.Fatal(err)
	}
	toks, err := server.OpenTokens(filepath.Join(t.TempDir(), "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := &site{tokens: map[string]string{}, own: fed.Practices[2].ID}
	for _, r := range []struct{ role, practice string }{{server.RoleLead, ""}, {server.RolePractice, s.own}} {
		secret, _, err := toks.Add("browser test", r.role, r.practice, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		s.tokens[r.role] = secret
	}
	s.serve(t, st, fed.Coordinator.Public().(ed25519.PublicKey), toks, fed.Start, 14)
	return s
}

// serve loads what st holds into a coordinator server behind the site's gate, on a local
// address, and names the site's first months months from start.
func (s *site) serve(t *testing.T, st objstore.Store, coord ed25519.PublicKey, toks *server.Tokens, start formats.Month, months int) {
	t.Helper()
	srv, err := server.New(server.Options{Store: st, Coordinator: coord, Tokens: toks, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.gate = &gate{}
	hs := httptest.NewServer(s.gate.wrap(srv.Handler()))
	t.Cleanup(hs.Close)
	s.url = hs.URL
	for k := range months {
		s.months = append(s.months, (start + formats.Month(k)).String())
	}
}

func (s *site) api(t *testing.T, role, path string, v any) {
	t.Helper()
	req, _ := http.NewRequest("GET", s.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+s.tokens[role])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

// shownRow is a row of a page's "numbers shown" table or a chart point, as the page drew it.
type shownRow struct {
	Measure, Month, Practice, Kind, Value string
}

const readShown = `Array.from(document.querySelectorAll('#trend-table tbody tr')).map(r => ({Measure: r.dataset.measure, Month: r.dataset.month, Practice: r.dataset.practice, Kind: r.dataset.kind, Value: r.dataset.value}))`
const readPoints = `Array.from(document.querySelectorAll('#trend-charts g.pt')).map(g => ({Measure: g.dataset.measure, Month: g.dataset.month, Practice: g.dataset.practice, Kind: g.dataset.kind, Value: g.dataset.value}))`

// figure is the part of an API row the page draws.
type figure struct {
	Period, Measure, Practice, Status, Method string
	Count                                     *int64
	Rate                                      *float64 `json:"rate_per_1000"`
	DSR                                       *float64 `json:"dsr_per_1000"`
	DSRPartial                                bool     `json:"dsr_partial"`
}

// expect returns what the page must show for an API row in the given mode.
func expect(f figure, mode string) (kind string, v *float64) {
	if f.Measure == formats.RegisteredPatients {
		mode = "count"
	}
	kind = "published"
	switch {
	case f.Status == formats.StatusSuppressed:
		return "suppressed", nil
	case f.Method == "secure":
		kind = "secure"
	case f.Method == "estimated" || (mode == "dsr" && f.DSRPartial):
		kind = "estimate"
	}
	switch mode {
	case "count":
		if f.Count == nil {
			return kind, nil
		}
		c := float64(*f.Count)
		return kind, &c
	case "rate":
		return kind, f.Rate
	}
	return kind, f.DSR
}

// checkAgainstAPI compares what the page shows with the API's answer for the same filters.
func checkAgainstAPI(t *testing.T, s *site, role, query, mode string, shown []shownRow) (nonPublished int) {
	t.Helper()
	var fed struct{ Rows []figure }
	s.api(t, role, "/api/figures?"+query, &fed)
	want := map[string]figure{}
	for _, f := range fed.Rows {
		want[f.Measure+" "+f.Period+" "] = f
	}
	if len(shown) != len(fed.Rows) {
		t.Errorf("%s: the page shows %d federation figures, the API gives %d", query, len(shown), len(fed.Rows))
	}
	for _, r := range shown {
		f, ok := want[r.Measure+" "+r.Month+" "+r.Practice]
		if !ok {
			t.Errorf("the page shows %s %s %q, which the API does not give", r.Measure, r.Month, r.Practice)
			continue
		}
		kind, v := expect(f, mode)
		if r.Kind != kind {
			t.Errorf("%s %s: shown as %s, API status %s", r.Measure, r.Month, r.Kind, f.Status)
		}
		if kind != "published" {
			nonPublished++
		}
		if v == nil {
			if r.Value != "" {
				t.Errorf("%s %s: shown value %q, want none (suppressed or no rate)", r.Measure, r.Month, r.Value)
			}
			continue
		}
		got, err := strconv.ParseFloat(r.Value, 64)
		if err != nil || math.Abs(got-*v) > 1e-9*math.Max(1, math.Abs(*v)) {
			t.Errorf("%s %s: the page shows %q, the API %v", r.Measure, r.Month, r.Value, *v)
		}
	}
	return nonPublished
}

// browserProfile is a folder for Chromium's profile, removed after the test. Chromium's
// helper processes can still be writing into it for a moment after the browser is stopped,
// which made t.TempDir's cleanup fail the test ("directory not empty"); this retries for a
// while and then reports, rather than fails on, what it could not remove.
func browserProfile(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tributary-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var err error
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			if err = os.RemoveAll(dir); err == nil {
				return
			}
		}
		t.Logf("could not remove Chromium's profile %s: %v", dir, err)
	})
	return dir
}

// startChromium starts a headless Chromium of its own (profile folder, window size, 3-minute
// limit), stopped when the test ends, and returns its context.
func startChromium(t *testing.T, exe string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(browserProfile(t)), chromedp.WindowSize(1366, 900),
	}
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(cancel)
	ctx, cancel = context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func TestDashboardInChromium(t *testing.T) {
	exe := chromium(t)
	shots := artefacts(t)
	s := newSite(t)

	ctx := startChromium(t, exe)

	shot := func(name string) {
		t.Helper()
		var png []byte
		if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	renders := func() int {
		var n string
		chromedp.Run(ctx, chromedp.Evaluate(`document.body.dataset.renders || "0"`, &n))
		v, _ := strconv.Atoi(n)
		return v
	}
	// act runs actions that re-render the page and waits for the render to finish.
	act := func(what string, actions ...chromedp.Action) {
		t.Helper()
		before := renders()
		if err := chromedp.Run(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for renders() <= before {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the page did not finish drawing", what)
			}
			time.Sleep(50 * time.Millisecond)
		}
		var msg string
		chromedp.Run(ctx, chromedp.Text("#error", &msg, chromedp.ByID))
		if msg != "" {
			t.Fatalf("%s: the page shows an error: %s", what, msg)
		}
	}
	eval := func(js string, v any) {
		t.Helper()
		if err := chromedp.Run(ctx, chromedp.Evaluate(js, v)); err != nil {
			t.Fatal(err)
		}
	}

	// Log in as the federation lead.
	if err := chromedp.Run(ctx, chromedp.Navigate(s.url+"/"), chromedp.WaitVisible("#token", chromedp.ByID)); err != nil {
		t.Fatal(err)
	}
	shot("1-login")
	// A wrong token is refused with a message.
	if err := chromedp.Run(ctx, chromedp.SendKeys("#token", "trib_wrong", chromedp.ByID), chromedp.Click("#login-button", chromedp.ByID)); err != nil {
		t.Fatal(err)
	}
	var loginErr string
	if err := chromedp.Run(ctx, chromedp.Poll(`document.getElementById('login-error').textContent`, &loginErr, chromedp.WithPollingTimeout(10*time.Second))); err != nil || loginErr == "" {
		t.Fatalf("a wrong token gave no message (%v)", err)
	}
	act("log in", chromedp.Evaluate(`document.getElementById('token').value = ""`, nil), chromedp.SendKeys("#token", s.tokens[server.RoleLead], chromedp.ByID), chromedp.Click("#login-button", chromedp.ByID))
	shot("2-trends-lead")
	// Each chart's description reads as sentences, its source after a full stop.
	var descs []string
	eval(`Array.from(document.querySelectorAll('#trend-charts figure.chart p.desc')).map(p => p.textContent).filter(t => t.includes('Source:'))`, &descs)
	if len(descs) == 0 {
		t.Error("no chart names its measure's source")
	}
	for _, d := range descs {
		if !regexp.MustCompile(`[.!?] Source: .*\.$`).MatchString(d) {
			t.Errorf("a chart's description runs into its source: %q", d)
		}
	}

	from := s.months[len(s.months)-14] // the page shows up to 24 months by default
	to := s.months[len(s.months)-1]
	var shown, points []shownRow
	eval(readShown, &shown)
	eval(readPoints, &points)
	base := url.Values{"from": {from}, "to": {to}}
	checkAgainstAPI(t, s, server.RoleLead, base.Encode(), "rate", shown)
	if len(points) != len(shown) {
		t.Errorf("the charts draw %d points, the table shows %d", len(points), len(shown))
	}
	for i := range min(len(points), len(shown)) {
		if points[i] != shown[i] {
			t.Errorf("point %d %+v differs from table row %+v", i, points[i], shown[i])
			break
		}
	}

	// Change filters: women only, ages 65 and over, age-standardised rates.
	act("choose sex", chromedp.Click(`input[name=sex][value=male]`, chromedp.ByQuery))
	act("choose sex", chromedp.Click(`input[name=sex][value=unknown]`, chromedp.ByQuery))
	act("choose ages", chromedp.Evaluate(`(() => { const s = document.getElementById('f-bands'); for (const o of s.options) o.selected = ['65-69','70-74','75-79','80-84','85-89','90+'].includes(o.value); s.dispatchEvent(new Event('change', {bubbles: true})); })()`, nil))
	act("choose rate", chromedp.SetValue("#f-value", "count", chromedp.ByID), chromedp.Evaluate(`document.getElementById('f-value').dispatchEvent(new Event('change', {bubbles: true}))`, nil))
	eval(readShown, &shown)
	q := url.Values{"from": {from}, "to": {to}, "sex": {"female"}, "age_band": {"65-69,70-74,75-79,80-84,85-89,90+"}}
	nonPublished := checkAgainstAPI(t, s, server.RoleLead, q.Encode(), "count", shown)
	if nonPublished == 0 {
		t.Error("the filtered view has no suppressed or estimated figure; the test needs one to check they are not drawn as numbers")
	}
	// Suppressed figures are labelled, never drawn as zero.
	var zeroSupp int
	eval(`Array.from(document.querySelectorAll('#trend-table tbody tr[data-kind=suppressed]')).filter(r => r.children[4].textContent !== 'suppressed').length`, &zeroSupp)
	if zeroSupp != 0 {
		t.Errorf("%d suppressed figures are not shown as 'suppressed'", zeroSupp)
	}
	act("standardised rates", chromedp.SetValue("#f-value", "dsr", chromedp.ByID), chromedp.Evaluate(`document.getElementById('f-value').dispatchEvent(new Event('change', {bubbles: true}))`, nil))
	act("all ages", chromedp.Evaluate(`(() => { const s = document.getElementById('f-bands'); for (const o of s.options) o.selected = false; s.dispatchEvent(new Event('change', {bubbles: true})); })()`, nil))
	eval(readShown, &shown)
	q.Del("age_band")
	checkAgainstAPI(t, s, server.RoleLead, q.Encode(), "dsr", shown)
	// A practice line on demand.
	other := "P00005"
	act("practice line", chromedp.Evaluate(fmt.Sprintf(`(() => { const s = document.getElementById('f-practices'); for (const o of s.options) o.selected = o.value === %q; s.dispatchEvent(new Event('change', {bubbles: true})); })()`, other), nil))
	var lines int
	eval(fmt.Sprintf(`document.querySelectorAll('#trend-charts g.pt[data-practice=%q]').length`, other), &lines)
	if lines != 9*14 {
		t.Errorf("practice %s's line has %d points, want 9 measures × 14 months", other, lines)
	}
	shot("3-trends-filtered")
	// Download CSV saves what is on screen: a header and one line per figure shown.
	var csvLines, tableRows int
	eval(`S.shown.rows.length`, &csvLines)
	eval(`document.querySelectorAll('#trend-table tbody tr').length`, &tableRows)
	if csvLines != tableRows+1 || tableRows == 0 {
		t.Errorf("the CSV download has %d lines for %d figures shown", csvLines, tableRows)
	}
	// The print layout: no controls, charts two to a row.
	if err := chromedp.Run(ctx, emulation.SetEmulatedMedia().WithMedia("print")); err != nil {
		t.Fatal(err)
	}
	var tabsShown bool
	eval(`getComputedStyle(document.querySelector('.tabs')).display !== 'none'`, &tabsShown)
	if tabsShown {
		t.Error("the print layout shows the page tabs")
	}
	shot("3b-trends-print")
	if err := chromedp.Run(ctx, emulation.SetEmulatedMedia().WithMedia("")); err != nil {
		t.Fatal(err)
	}

	// Completeness grid.
	act("completeness", chromedp.Click(`button[data-page=completeness]`, chromedp.ByQuery))
	var cells int
	eval(`document.querySelectorAll('#completeness-grid rect[data-submitted=true]').length`, &cells)
	if cells != 8*14 {
		t.Errorf("completeness grid: %d submitted cells, want 8 practices × 14 months", cells)
	}
	shot("4-completeness")

	// Funnel plot.
	act("compare", chromedp.Click(`button[data-page=compare]`, chromedp.ByQuery))
	var dots []struct{ Practice, Value string }
	eval(`Array.from(document.querySelectorAll('#funnel g.pt')).map(g => ({Practice: g.dataset.practice, Value: g.dataset.value}))`, &dots)
	var cmp struct {
		Practices []struct {
			Practice string
			Rate     *float64 `json:"standardised_rate_per_1000"`
			Position string
		}
		Limits []any
	}
	s.api(t, server.RoleLead, "/api/compare?measure=admissions_emergency&sex=female&from="+from+"&to="+to, &cmp)
	if len(dots) != len(cmp.Practices) || len(cmp.Practices) != 8 {
		t.Fatalf("funnel: %d dots, API %d practices", len(dots), len(cmp.Practices))
	}
	// Practices whose levels differ by up to 2 times separate: a practice is uncertain only
	// when its narrow bounds happen to straddle a limit, never most of them.
	positions := map[string]int{}
	for _, p := range cmp.Practices {
		positions[p.Position]++
	}
	t.Logf("funnel positions of emergency admissions (women): %v", positions)
	if 2*positions["uncertain"] >= len(cmp.Practices) || positions["above_95"]+positions["above_998"]+positions["below_95"]+positions["below_998"] < 2 {
		t.Errorf("funnel positions %v: practices of different levels must separate, few uncertain", positions)
	}
	for i, d := range dots {
		want := cmp.Practices[i]
		got, _ := strconv.ParseFloat(d.Value, 64)
		if d.Practice != want.Practice || (want.Rate != nil && math.Abs(got-*want.Rate) > 1e-9) {
			t.Errorf("funnel dot %d: %s %s, API %s %v", i, d.Practice, d.Value, want.Practice, want.Rate)
		}
	}
	var limitPaths int
	eval(`document.querySelectorAll('#funnel path[data-limit]').length`, &limitPaths)
	if limitPaths != 4 {
		t.Errorf("funnel draws %d control limit lines, want 4 (95%% and 99.8%%, each side)", limitPaths)
	}
	shot("5-compare")

	// A practice's view: its own practice only.
	if err := chromedp.Run(ctx, chromedp.Click("#logout", chromedp.ByID), chromedp.WaitVisible("#token", chromedp.ByID)); err != nil {
		t.Fatal(err)
	}
	act("log in as a practice", chromedp.SendKeys("#token", s.tokens[server.RolePractice], chromedp.ByID), chromedp.Click("#login-button", chromedp.ByID))
	var options []string
	eval(`Array.from(document.getElementById('f-practices').options).map(o => o.value)`, &options)
	if len(options) != 1 || options[0] != s.own {
		t.Errorf("a practice's page offers practice lines %v, want only %s", options, s.own)
	}
	act("completeness as a practice", chromedp.Click(`button[data-page=completeness]`, chromedp.ByQuery))
	var practicesShown []string
	eval(`[...new Set(Array.from(document.querySelectorAll('#completeness-grid rect')).map(r => r.dataset.practice))]`, &practicesShown)
	if len(practicesShown) != 1 || practicesShown[0] != s.own {
		t.Errorf("a practice's completeness grid shows %v", practicesShown)
	}
	act("compare as a practice", chromedp.Click(`button[data-page=compare]`, chromedp.ByQuery))
	eval(`Array.from(document.querySelectorAll('#funnel g.pt')).map(g => ({Practice: g.dataset.practice, Value: g.dataset.value}))`, &dots)
	if len(dots) != 1 || dots[0].Practice != s.own {
		t.Errorf("a practice's funnel shows %v", dots)
	}
	shot("6-compare-practice")
}
