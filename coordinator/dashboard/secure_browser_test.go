package dashboard_test

import (
	"context"
	"crypto/ed25519"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tributary-health/tributary/coordinator/holder"
	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/coordinator/secure"
	"github.com/tributary-health/tributary/coordinator/server"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/secagg"
)

// newSecureSite is a federation whose two holders have run a round of secure aggregation
// over every practice's months, served as the lead sees it.
func newSecureSite(t *testing.T) *site {
	ctx := context.Background()
	st, err := objstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fed := fedgen.New(fedgen.Params{Practices: 4, Months: 3, Seed: 5, Start: formats.MonthFor(2024, time.January), Realistic: true})
	reg, err := formats.SignRegistry(fed.Registry(), fed.Coordinator)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, formats.RegistryKey, reg); err != nil {
		t.Fatal(err)
	}
	leader, err := secagg.GenerateHolder("federation", secagg.RoleLeader)
	if err != nil {
		t.Fatal(err)
	}
	helper, err := secagg.GenerateHolder("icb", secagg.RoleHelper)
	if err != nil {
		t.Fatal(err)
	}
	hf, err := secure.SignHolders(leader.Public(), helper.Public(), fed.Coordinator, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, secure.HoldersKey, hf); err != nil {
		t.Fatal(err)
	}
	to := [2]secagg.Recipient{leader.Public().Recipient(), helper.Public().Recipient()}
	for i := range fed.Practices {
		if err := fed.WriteSecureRun(ctx, st, i, to, nil); err != nil {
			t.Fatal(err)
		}
	}
	coord := fed.Coordinator.Public().(ed25519.PublicKey)
	holders := [2]*holder.Holder{}
	for i, k := range []*secagg.HolderKey{leader, helper} {
		state, err := holder.OpenState(filepath.Join(t.TempDir(), k.ID), k.ID)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { state.Close() })
		holders[i] = &holder.Holder{Key: k, Peer: []*secagg.HolderKey{helper, leader}[i].Public(), Coordinator: coord, Store: st, State: state,
			Poll: 20 * time.Millisecond, Wait: 2 * time.Minute, Workers: 2, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	}
	round := formats.NewRunID(time.Now())
	var wg sync.WaitGroup
	var herr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, herr = holders[1].Help(ctx, holder.HelpOptions{Round: round})
	}()
	_, lerr := holders[0].Lead(ctx, holder.LeadOptions{Round: round})
	wg.Wait()
	if lerr != nil || herr != nil {
		t.Fatalf("the round: leader %v, helper %v", lerr, herr)
	}

	toks, err := server.OpenTokens(filepath.Join(t.TempDir(), "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := &site{tokens: map[string]string{}}
	secret, _, err := toks.Add("browser test", server.RoleLead, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	s.tokens[server.RoleLead] = secret
	s.serve(t, st, coord, toks, fed.Start, 3)
	return s
}

// TestDashboardMarksSecureTotals: where the holders' secure totals answer the federation's
// figures, the lead's page draws them as secure (a square on the chart, "(secure)" in the
// table, the legend saying what that means) with the API's values; the practice lines stay
// the practices' own. Screenshot: 7-secure-totals.png.
func TestDashboardMarksSecureTotals(t *testing.T) {
	exe := chromium(t)
	shots := artefacts(t)
	s := newSecureSite(t)

	var fed struct{ Rows []figure }
	q := url.Values{"from": {s.months[0]}, "to": {s.months[2]}}
	s.api(t, server.RoleLead, "/api/figures?"+q.Encode(), &fed)
	secureRows := 0
	for _, f := range fed.Rows {
		if f.Method == "secure" {
			secureRows++
		}
	}
	if secureRows == 0 {
		t.Fatalf("the API gives no secure federation figure: %+v", fed.Rows)
	}

	ctx := startChromium(t, exe)
	eval := func(js string, v any) {
		t.Helper()
		if err := chromedp.Run(ctx, chromedp.Evaluate(js, v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := chromedp.Run(ctx, chromedp.Navigate(s.url+"/"), chromedp.WaitVisible("#token", chromedp.ByID),
		chromedp.SendKeys("#token", s.tokens[server.RoleLead], chromedp.ByID), chromedp.Click("#login-button", chromedp.ByID),
		chromedp.Poll(`(document.body.dataset.renders|0) > 0 && document.querySelectorAll('#trend-table tbody tr').length > 0`, nil, chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		t.Fatal(err)
	}
	var msg string
	eval(`document.getElementById('error').textContent`, &msg)
	if msg != "" {
		t.Fatalf("the page shows an error: %s", msg)
	}
	var shown []shownRow
	eval(readShown, &shown)
	checkAgainstAPI(t, s, server.RoleLead, q.Encode(), "rate", shown)
	var marked, squares, labelled int
	eval(`document.querySelectorAll('#trend-table tbody tr[data-kind=secure][data-practice=""]').length`, &marked)
	eval(`document.querySelectorAll('#trend-charts g.pt[data-kind=secure] rect.secure-mark').length`, &squares)
	eval(`Array.from(document.querySelectorAll('#trend-table tbody tr[data-kind=secure] td.sec')).filter(td => td.textContent.endsWith(' (secure)')).length`, &labelled)
	if marked != secureRows || squares != secureRows || labelled != secureRows {
		t.Errorf("the API gives %d secure federation figures; the page marks %d rows, draws %d squares and labels %d cells '(secure)'", secureRows, marked, squares, labelled)
	}
	var legend string
	eval(`document.querySelector('#page-trends .legend').textContent`, &legend)
	if !strings.Contains(legend, "secure: the federation's exact total from the two holders") {
		t.Errorf("the legend does not say what secure means: %q", legend)
	}
	var title string
	eval(`(document.querySelector('#trend-charts g.pt[data-kind=secure] title') || {}).textContent || ''`, &title)
	if !strings.Contains(title, "secure: the holders' exact total") {
		t.Errorf("a secure point's title: %q", title)
	}
	// A practice's line is its own release, never secure.
	act := chromedp.Evaluate(`(() => { const s = document.getElementById('f-practices'); for (const o of s.options) o.selected = o.index === 0; s.dispatchEvent(new Event('change', {bubbles: true})); })()`, nil)
	if err := chromedp.Run(ctx, act, chromedp.Poll(`document.querySelectorAll('#trend-table tbody tr:not([data-practice=""])').length > 0`, nil, chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		t.Fatal(err)
	}
	var practiceSecure int
	eval(`document.querySelectorAll('#trend-table tbody tr[data-kind=secure]:not([data-practice=""])').length`, &practiceSecure)
	if practiceSecure != 0 {
		t.Errorf("%d practice figures are marked secure", practiceSecure)
	}
	var png []byte
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(shots, "7-secure-totals.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
