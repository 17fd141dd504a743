package dashboard_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/tributary-health/tributary/coordinator/server"
)

// page is the dashboard in a headless Chromium, logged in.
type page struct {
	t         *testing.T
	ctx       context.Context
	s         *site
	downloads string
}

func openPage(t *testing.T, s *site, role string) *page {
	t.Helper()
	ctx := startChromium(t, chromium(t))
	p := &page{t: t, ctx: ctx, s: s, downloads: t.TempDir()}
	if err := chromedp.Run(ctx, chromedp.Navigate(s.url+"/"), chromedp.WaitVisible("#token", chromedp.ByID),
		browser.SetDownloadBehavior(browser.SetDownloadBehaviorBehaviorAllowAndName).WithDownloadPath(p.downloads)); err != nil {
		t.Fatal(err)
	}
	p.act("log in", chromedp.SendKeys("#token", s.tokens[role], chromedp.ByID), chromedp.Click("#login-button", chromedp.ByID))
	return p
}

func (p *page) eval(js string, v any) {
	p.t.Helper()
	if err := chromedp.Run(p.ctx, chromedp.Evaluate(js, v)); err != nil {
		p.t.Fatal(err)
	}
}

func (p *page) renders() int {
	var n string
	chromedp.Run(p.ctx, chromedp.Evaluate(`document.body.dataset.renders || "0"`, &n))
	v, _ := strconv.Atoi(n)
	return v
}

// do runs actions without waiting for what they start.
func (p *page) do(what string, actions ...chromedp.Action) {
	p.t.Helper()
	if err := chromedp.Run(p.ctx, actions...); err != nil {
		p.t.Fatalf("%s: %v", what, err)
	}
}

// act runs actions that re-render the page and waits for the render to finish; the page
// must show no error.
func (p *page) act(what string, actions ...chromedp.Action) {
	p.t.Helper()
	before := p.renders()
	p.do(what, actions...)
	deadline := time.Now().Add(30 * time.Second)
	for p.renders() <= before {
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: the page did not finish drawing", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if msg := p.text("#error"); msg != "" {
		p.t.Fatalf("%s: the page shows an error: %s", what, msg)
	}
}

func (p *page) text(sel string) string {
	p.t.Helper()
	var s string
	p.eval(fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel), &s)
	return s
}

// shot saves a screenshot among the test's artefacts.
func (p *page) shot(name string) {
	p.t.Helper()
	var png []byte
	p.do("screenshot", chromedp.FullScreenshot(&png, 100))
	if err := os.WriteFile(filepath.Join(artefacts(p.t), name+".png"), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// choose selects value in the select element id, as a user does.
func choose(id, value string) chromedp.Action {
	return chromedp.Evaluate(fmt.Sprintf(`(() => { const s = document.getElementById(%q); s.value = %q; s.dispatchEvent(new Event('change', {bubbles: true})); })()`, id, value), nil)
}

// settle lets a late answer that was just released reach the page, and the page do whatever
// it does with it.
func (p *page) settle() {
	time.Sleep(time.Second)
}

// download clicks "Download CSV" and returns the file the browser saved, or "" if it saved
// none within wait.
func (p *page) download(wait time.Duration) string {
	p.t.Helper()
	before, _ := os.ReadDir(p.downloads)
	p.do("download", chromedp.Click("#download", chromedp.ByID))
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		entries, _ := os.ReadDir(p.downloads)
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".crdownload") || slices.ContainsFunc(before, func(b os.DirEntry) bool { return b.Name() == e.Name() }) {
				continue
			}
			b, err := os.ReadFile(filepath.Join(p.downloads, e.Name()))
			if err != nil {
				p.t.Fatal(err)
			}
			return string(b)
		}
	}
	return ""
}

// noDownload is how long a test waits to be sure a click saved nothing.
const noDownload = 5 * time.Second

// isFigures matches an /api/figures request whose "to" month is to.
func isFigures(to string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		return r.URL.Path == "/api/figures" && r.URL.Query().Get("to") == to
	}
}

// TestLateAnswerDoesNotOverwriteNewerView: the lead changes the months twice; the answer to
// the first change arrives after the answer to the second. The page must show the second
// view, the one its filters say, not whichever answer came last.
func TestLateAnswerDoesNotOverwriteNewerView(t *testing.T) {
	s := newSite(t)
	p := openPage(t, s, server.RoleLead)
	from := s.months[0]
	first, second := s.months[9], s.months[12]

	release := s.gate.holdBack(t, isFigures(first))
	p.do("choose the first end month", choose("f-to", first)) // its answer is held back
	p.act("choose the second end month", choose("f-to", second))
	release(1)
	p.settle()

	var shown []shownRow
	p.eval(readShown, &shown)
	latest := ""
	for _, r := range shown {
		latest = max(latest, r.Month)
	}
	if latest != second {
		t.Fatalf("the filters say up to %s, but the page shows months up to %s: the late answer to the earlier filters was drawn over the newer view", second, latest)
	}
	checkAgainstAPI(t, s, server.RoleLead, url.Values{"from": {from}, "to": {second}}.Encode(), "rate", shown)
	if msg := p.text("#error"); msg != "" {
		t.Errorf("the page shows an error: %s", msg)
	}
}

// TestDownloadExportsWhatIsShown: "Download CSV" saves the numbers on screen, never another
// page's: not while the page is still loading, and not after an answer for the page the user
// left arrives late.
func TestDownloadExportsWhatIsShown(t *testing.T) {
	s := newSite(t)
	p := openPage(t, s, server.RoleLead)

	// Leaving the trends while their answer is on its way.
	release := s.gate.holdBack(t, isFigures(s.months[9]))
	p.do("choose an end month", choose("f-to", s.months[9]))
	relCompleteness := s.gate.holdBack(t, func(r *http.Request) bool { return r.URL.Path == "/api/completeness" })
	p.do("open completeness", chromedp.Click(`button[data-page=completeness]`, chromedp.ByQuery))
	// The completeness page is on screen, its numbers not yet: nothing to download.
	if csv := p.download(noDownload); csv != "" {
		t.Errorf("Download CSV while the completeness page was loading saved:\n%.300s", csv)
	}
	before := p.renders()
	relCompleteness(1)
	for deadline := time.Now().Add(30 * time.Second); p.renders() <= before; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the completeness page did not finish drawing")
		}
	}
	release(1) // the trends' answer arrives after all
	p.settle()

	csv := p.download(30 * time.Second) // Chromium on a loaded machine took over 5 s to save it
	var rows int
	p.eval(`document.querySelectorAll('#completeness-table tbody tr').length`, &rows)
	lines := strings.Split(strings.TrimSpace(csv), "\n")
	if !strings.HasPrefix(csv, "practice,month,submitted,") || len(lines) != rows+1 || rows == 0 {
		t.Errorf("on the completeness page (%d rows shown), Download CSV saved %d lines starting %q", rows, len(lines), lines[0])
	}
}

// TestNoSexTicked: unticking every sex asks the coordinator nothing it must refuse; the page
// says plainly what to do, shows no figures and offers nothing to download, and ticking a sex
// again brings the figures back.
func TestNoSexTicked(t *testing.T) {
	s := newSite(t)
	p := openPage(t, s, server.RoleLead)
	for _, sex := range []string{"male", "unknown"} {
		p.act("untick "+sex, chromedp.Click(`input[name=sex][value=`+sex+`]`, chromedp.ByQuery))
	}
	before := p.renders()
	p.do("untick female", chromedp.Click(`input[name=sex][value=female]`, chromedp.ByQuery))
	for deadline := time.Now().Add(30 * time.Second); p.renders() <= before; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the page did not finish drawing")
		}
	}
	p.settle()
	for _, u := range s.gate.requests() {
		if strings.Contains(u, "none-selected") || strings.Contains(u, "sex=&") || strings.HasSuffix(u, "sex=") {
			t.Errorf("the page asked the coordinator %s", u)
		}
	}
	if msg := p.text("#error"); msg != "" {
		t.Errorf("the page shows an error: %q", msg)
	}
	p.shot("no-sex-ticked")
	notice := p.text("#notice")
	if !strings.Contains(notice, "Tick at least one sex") {
		t.Errorf("the page says %q; want it to ask for at least one sex to be ticked", notice)
	}
	var points int
	p.eval(`document.querySelectorAll('#trend-charts g.pt, #trend-table tbody tr').length`, &points)
	if points != 0 {
		t.Errorf("with no sex ticked the page still shows %d figures", points)
	}
	if csv := p.download(noDownload); csv != "" {
		t.Errorf("with no sex ticked Download CSV saved:\n%.300s", csv)
	}
	p.act("open compare", chromedp.Click(`button[data-page=compare]`, chromedp.ByQuery))
	if notice := p.text("#notice"); !strings.Contains(notice, "Tick at least one sex") {
		t.Errorf("the compare page says %q with no sex ticked", notice)
	}
	p.act("back to trends", chromedp.Click(`button[data-page=trends]`, chromedp.ByQuery))
	p.act("tick female", chromedp.Click(`input[name=sex][value=female]`, chromedp.ByQuery))
	if notice := p.text("#notice"); notice != "" {
		t.Errorf("with a sex ticked again the page still says %q", notice)
	}
	var shown []shownRow
	p.eval(readShown, &shown)
	var from, to string
	p.eval(`document.getElementById('f-from').value`, &from)
	p.eval(`document.getElementById('f-to').value`, &to)
	checkAgainstAPI(t, s, server.RoleLead, url.Values{"from": {from}, "to": {to}, "sex": {"female"}}.Encode(), "rate", shown)
}
