package holder

import (
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/figures"
	"github.com/tributary-health/tributary/coordinator/query"
	"github.com/tributary-health/tributary/coordinator/server"
	"github.com/tributary-health/tributary/formats"
)

// TestLeadViewUsesSecureTotals: after a round, the combine replaces a federation month total
// by the holders' secure one only where the secure total sums exactly the practices and runs
// behind the federation figure. query and the API then give, for such a month, the secure
// value, marked secure, with bounds (±2 under round-to-5) that hold the practices' true sum,
// and rates whose list sizes are the same practices' secure registered patients. A month one
// practice sent without shares, and a month a practice revised after the round, keep the sum
// of the practices' published values and say why. The practices' own rows never change.
func TestLeadViewUsesSecureTotals(t *testing.T) {
	jul := formats.MonthFor(2024, time.July)
	aug, sep := jul+1, jul+2
	f := newTestFed(t, 5, jul, sep)
	ps := f.practices
	for _, p := range ps[:4] {
		f.upload(p, uploadOptions{})
	}
	// P005 sends shares for July and August; its September comes in a run without shares, so
	// the secure September total leaves it out while the federation figure includes it.
	f.upload(ps[4], uploadOptions{from: jul, to: aug})
	f.upload(ps[4], uploadOptions{from: sep, to: sep, noShares: true})
	mustRound(t, f, LeadOptions{})
	// After the round P004 revises August: the secure August total counts its first run.
	ps[3].version[aug]++
	f.upload(ps[3], uploadOptions{from: aug, to: aug, noShares: true})

	coord := f.coord.Public().(ed25519.PublicKey)
	res, err := combine.Run(f.ctx, f.st, coord, combine.Options{Policy: f.pol})
	if err != nil {
		t.Fatal(err)
	}
	sec := res.Report.Secure
	if sec == nil || len(sec.Rounds) != 1 || len(sec.Problems) != 0 {
		t.Fatalf("the report's secure section: %+v", sec)
	}
	uses := map[string]figures.SecureUse{}
	for _, u := range sec.Uses {
		uses[u.Month+" "+u.Measure] = u
	}
	for _, measure := range formats.Measures {
		if u := uses[jul.String()+" "+measure]; !u.Used || u.Practices != 5 {
			t.Errorf("July %s: %+v, want used over 5 practices", measure, u)
		}
		if u := uses[aug.String()+" "+measure]; u.Used || !strings.Contains(u.Reason, "earlier revision of P004") {
			t.Errorf("August %s: %+v, want not used: P004 revised it", measure, u)
		}
		if u := uses[sep.String()+" "+measure]; u.Used || !strings.Contains(u.Reason, "leaves out P005") {
			t.Errorf("September %s: %+v, want not used: it leaves out P005", measure, u)
		}
	}
	without := *res.Report
	without.Secure = nil
	if res.Report.InputsSHA256 != res.Report.UsedDigest() || without.UsedDigest() == res.Report.InputsSHA256 {
		t.Error("the report's inputs digest does not cover its secure rounds")
	}

	figs := f.published()
	truth := func(m formats.Month, measure string) int64 {
		var n int64
		for _, p := range ps {
			for fine := range formats.NumFine {
				n += p.truth(m, measure, fine)
			}
		}
		return n
	}
	c, err := query.Open(f.ctx, f.st)
	if err != nil {
		t.Fatal(err)
	}
	byMonth, err := c.Run(query.Request{By: []string{query.ByMonth}})
	if err != nil {
		t.Fatal(err)
	}
	byPractice, err := c.Run(query.Request{By: []string{query.ByMonth, query.ByPractice}})
	if err != nil {
		t.Fatal(err)
	}
	practicesSum := map[string]int64{}
	for _, r := range byPractice.Rows {
		if r.Secure || r.Method == figures.MethodSecure {
			t.Errorf("practice %s's row of %s %s is marked secure: practices' rows are their own releases", r.Practice, r.Period, r.Measure)
		}
		practicesSum[r.Period+" "+r.Measure] += r.PublishedSum
	}
	check := func(via string, rows []figures.Figure) {
		t.Helper()
		seen := 0
		for _, r := range rows {
			m, _ := formats.ParseMonth(r.Period)
			want := truth(m, r.Measure)
			if r.Lower > want || r.Upper < want {
				t.Errorf("%s: %s %s [%d, %d] does not hold the true sum %d", via, r.Period, r.Measure, r.Lower, r.Upper, want)
			}
			if r.PublishedSum != practicesSum[r.Period+" "+r.Measure] {
				t.Errorf("%s: %s %s published_sum %d, the practices' published values sum to %d", via, r.Period, r.Measure, r.PublishedSum, practicesSum[r.Period+" "+r.Measure])
			}
			switch m {
			case jul:
				seen++
				v := figs.Values[formats.MonthPeriod(m)][r.Measure][formats.TotalShape]
				if !r.Secure || r.Method != figures.MethodSecure || r.Count == nil || *r.Count != v.Count || r.Lower != v.Lower || r.Upper != v.Upper || r.Upper-r.Lower > 4 {
					t.Errorf("%s: July %s: %+v, want the secure total %+v marked secure", via, r.Measure, r, v)
				}
				if r.Measure != formats.RegisteredPatients {
					list := truth(m, formats.RegisteredPatients)
					rate := float64(want) / float64(list) * 1000
					if r.ListLower == nil || *r.ListLower > float64(list) || *r.ListUpper < float64(list) || *r.ListUpper-*r.ListLower > 4 ||
						r.RateLower == nil || r.RateUpper == nil || *r.RateLower > rate || *r.RateUpper < rate {
						t.Errorf("%s: July %s: list %v..%v, rate %v..%v; true list %d, rate %.4f", via, r.Measure, r.ListLower, r.ListUpper, r.RateLower, r.RateUpper, list, rate)
					}
				}
			case aug, sep:
				seen++
				why := map[formats.Month]string{aug: "earlier revision of P004", sep: "leaves out P005"}[m]
				if r.Secure || r.Method == figures.MethodSecure || !strings.Contains(r.Note, "not used") || !strings.Contains(r.Note, why) {
					t.Errorf("%s: %s %s: method %s, note %q; want the practices' sum, noting %q", via, r.Period, r.Measure, r.Method, r.Note, why)
				}
			}
		}
		if seen != 3*len(formats.Measures) {
			t.Errorf("%s: %d federation month rows, want %d", via, seen, 3*len(formats.Measures))
		}
	}
	check("query", byMonth.Rows)

	// The quarter spans months with and without secure totals: the practices' sum, noted.
	quarter, err := c.Run(query.Request{Measures: []string{formats.Admissions}, From: jul, To: sep})
	if err != nil || len(quarter.Rows) != 1 {
		t.Fatalf("quarter: %v %+v", err, quarter)
	}
	if q := quarter.Rows[0]; q.Secure || q.Lower > truth(jul, formats.Admissions)+truth(aug, formats.Admissions)+truth(sep, formats.Admissions) || !strings.Contains(q.Note, "not used") {
		t.Errorf("the quarter: %+v", q)
	}

	// The API answers the same.
	toks, err := server.OpenTokens(filepath.Join(t.TempDir(), "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := toks.Add("lead", server.RoleLead, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Store: f.st, Coordinator: coord, Tokens: toks, Policy: f.pol, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.LoadCurrent(f.ctx); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	req, _ := http.NewRequest("GET", hs.URL+"/api/figures?by=month", nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var api struct{ Rows []figures.Figure }
	if err := json.NewDecoder(resp.Body).Decode(&api); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/api/figures: %d %v", resp.StatusCode, err)
	}
	check("API", api.Rows)
}
