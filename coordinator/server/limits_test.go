package server

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tributary-health/tributary/internal/procstat"
)

// TestPracticeSeesNoLoneOtherPractice is the review's attack: in a federation of two
// practices, P1's token asked for every federation figure beside its own, and federation
// minus P1 gave P2's cells exactly; /api/revisions gave every past federation total, whose
// differences are whichever practice submitted in between. A practice token now sees a
// federation figure only where at least two other practices are in it, and no federation
// history; a lead sees everything.
func TestPracticeSeesNoLoneOtherPractice(t *testing.T) {
	for _, n := range []int{2, 3} {
		t.Run(fmt.Sprintf("%d practices", n), func(t *testing.T) {
			f := newFixture(t, n, 3)
			var res struct {
				Rows     []Figure
				Withheld int `json:"federation_rows_withheld"`
			}
			for _, q := range []string{
				"/api/figures",
				"/api/figures?by=age_band,sex",
				"/api/figures?by=practice,age_band,sex&federation=true",
				"/api/figures?by=month,practice&federation=true&format=json",
			} {
				res.Rows, res.Withheld = nil, 0
				f.getJSON(RolePractice, q, &res)
				fedRows := 0
				for _, r := range res.Rows {
					if r.Practice == "" {
						fedRows++
					} else if r.Practice != f.own {
						t.Errorf("%s: a practice token got practice %s's rows", q, r.Practice)
					}
				}
				switch n {
				case 2:
					if fedRows != 0 || res.Withheld == 0 {
						t.Errorf("%s with 2 practices: %d federation rows shown, %d withheld; want none shown", q, fedRows, res.Withheld)
					}
				case 3:
					if fedRows == 0 || res.Withheld != 0 {
						t.Errorf("%s with 3 practices: %d federation rows shown, %d withheld; want all shown", q, fedRows, res.Withheld)
					}
				}
				var lead struct{ Rows []Figure }
				f.getJSON(RoleLead, q, &lead)
				if !slices.ContainsFunc(lead.Rows, func(r Figure) bool { return r.Practice == "" }) && !strings.Contains(q, "practice") {
					t.Errorf("%s: a lead sees no federation rows", q)
				}
			}
			code, body := f.get(RolePractice, "/api/compare?measure=admissions")
			if want := map[int]int{2: http.StatusForbidden, 3: http.StatusOK}[n]; code != want {
				t.Errorf("compare as a practice with %d practices: %d %s, want %d", n, code, body, want)
			}
			code, body = f.get(RolePractice, "/api/revisions?measure=admissions&month=2024-01")
			if code != http.StatusForbidden || !strings.Contains(string(body), "own practice") {
				t.Errorf("federation revisions as a practice: %d %s, want 403", code, body)
			}
			if code, _ := f.get(RolePractice, "/api/revisions?practice="+f.own); code != http.StatusOK {
				t.Errorf("its own practice's revisions as a practice: %d", code)
			}
			if code, _ := f.get(RoleLead, "/api/revisions?measure=admissions&month=2024-01"); code != http.StatusOK {
				t.Errorf("federation revisions as a lead: %d", code)
			}
		})
	}
}

// TestRequestLimits: a ';' in the query string used to drop the parameter after it, so
// to=2023-01; answered for every month; over-long query strings, answers too large to hold
// and oversized bodies are refused with a 4xx that says what to do.
func TestRequestLimits(t *testing.T) {
	f := newFixture(t, 3, 3)
	cases := []struct {
		path string
		code int
		says string
	}{
		{"/api/figures?to=2024-01;", http.StatusBadRequest, "';'"},
		{"/api/figures?measure=admissions;to=2024-01", http.StatusBadRequest, "'&'"},
		{"/api/figures?measure=%zz", http.StatusBadRequest, "not valid"},
		{"/api/figures?measure=admissions&x=" + strings.Repeat("a", 5000), http.StatusRequestURITooLong, "query string"},
	}
	for _, c := range cases {
		code, body := f.get(RoleLead, c.path)
		if code != c.code || !strings.Contains(string(body), c.says) {
			t.Errorf("GET %.60s: %d %s, want %d saying %q", c.path, code, body, c.code, c.says)
		}
	}
	// An answer of more rows than allowed, asked by a lead.
	f.srv.limits.MaxRows = 100
	code, body := f.get(RoleLead, "/api/figures?by=month,age_band,sex")
	if code != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "narrow") {
		t.Errorf("a 1,500-row answer under a 100-row limit: %d %s", code, body)
	}
	f.srv.limits.MaxRows = 20_000
	// A token request whose body is over the limit.
	req, _ := http.NewRequest("POST", f.http.URL+"/api/tokens", strings.NewReader(strings.Repeat("x", 100<<10)))
	req.Header.Set("Authorization", "Bearer "+f.tokens[RoleAdmin])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a 100 KiB token request: %d, want 413", resp.StatusCode)
	}
}

// TestUnderAttack serves the real http.Server on a real listener, with the limits the CLI
// uses, while attackers without a token hold 300 idle connections and 40 slow requests (a
// POST that promises 60,000 bytes and sends 3, headers sent a byte at a time), and a token
// holder sends 300 requests with unique 3 KiB query strings. A lead's requests must all be
// answered meanwhile (each within a generous 20 s client timeout, so a hung server fails
// the test rather than stalling it); the test prints the lead's p50 and p99 and the
// server's resident memory before and after.
func TestUnderAttack(t *testing.T) {
	f := newFixture(t, 3, 6)
	// Short timeouts so the slow clients are cut off within the test.
	f.srv.limits.ReadHeaderTimeout, f.srv.limits.ReadTimeout = 2*time.Second, 3*time.Second
	f.srv.limits.ConnsPerClient = 64
	hs := f.srv.HTTPServer(slog.New(slog.NewTextHandler(io.Discard, nil)))
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go hs.Serve(f.srv.Listen(raw))
	defer hs.Close()
	addr := raw.Addr().String()
	base := "http://" + addr
	rssBefore := procstat.RSS(os.Getpid())

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	// The attackers come from other addresses than the lead's (Linux answers all of 127/8).
	dialFrom := func(ip string) *net.Dialer {
		return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	}
	idle, slow, greedy := dialFrom("127.0.0.2"), dialFrom("127.0.0.3"), dialFrom("127.0.0.4")
	var attackers sync.WaitGroup
	var hung atomic.Int64
	var held []net.Conn
	var heldMu sync.Mutex
	for range 300 { // idle connections, which the per-client limit and idle timeouts bound
		c, err := idle.Dial("tcp", addr)
		if err != nil {
			continue
		}
		heldMu.Lock()
		held = append(held, c)
		heldMu.Unlock()
	}
	for i := range 40 { // slow requests
		attackers.Add(1)
		go func() {
			defer attackers.Done()
			c, err := slow.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer c.Close()
			var req string
			if i%2 == 0 {
				req = "POST /api/tokens HTTP/1.1\r\nHost: x\r\nContent-Length: 60000\r\n\r\nabc"
			} else {
				req = "GET /api/figures HTTP/1.1\r\nHost: x\r\nX-Slow: "
			}
			for _, b := range []byte(req) {
				if ctx.Err() != nil {
					return
				}
				c.Write([]byte{b})
				time.Sleep(5 * time.Millisecond)
			}
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			// Until the server answers and closes, or cuts the connection off; only our own
			// 20 s deadline means the server let a slow client hold it.
			if _, err := io.Copy(io.Discard, c); err != nil {
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					hung.Add(1)
				}
			}
		}()
	}
	attackers.Add(1)
	go func() { // a token holder trying to grow the cache
		defer attackers.Done()
		client := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{DialContext: greedy.DialContext}}
		for i := range 300 {
			if ctx.Err() != nil {
				return
			}
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/figures?measure=admissions&from=2024-01&x%d=%s", base, i, strings.Repeat("y", 3000)), nil)
			req.Header.Set("Authorization", "Bearer "+f.tokens[RolePractice])
			if resp, err := client.Do(req); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	}()

	lead := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{}, MaxIdleConnsPerHost: 4}}
	var took []time.Duration
	for i := range 120 {
		start := time.Now()
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/figures?measure=%s&by=month,sex", base, []string{"ae_attendances", "admissions", "consultations"}[i%3]), nil)
		req.Header.Set("Authorization", "Bearer "+f.tokens[RoleLead])
		resp, err := lead.Do(req)
		if err != nil {
			t.Fatalf("a lead's request %d under attack failed: %v", i, err)
		}
		var body struct{ Rows []Figure }
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusOK || len(body.Rows) == 0 {
			t.Fatalf("a lead's request %d under attack: %d, %d rows, %v", i, resp.StatusCode, len(body.Rows), err)
		}
		resp.Body.Close()
		took = append(took, time.Since(start))
		time.Sleep(10 * time.Millisecond)
	}
	// Every idle connection beyond the per-client limit was answered 503 and closed.
	refused := 0
	for _, c := range held {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		if strings.Contains(line, "503") {
			refused++
		}
		c.Close()
	}
	stop()
	attackers.Wait()
	slices.Sort(took)
	rssAfter := procstat.RSS(os.Getpid())
	t.Logf("under attack (300 idle connections, 40 slow requests, 300 unique 3 KiB queries): a lead's p50 %v, p99 %v over %d requests; %d idle connections refused with 503; RSS %d MiB before, %d MiB after",
		took[len(took)/2].Round(time.Millisecond), took[len(took)*99/100].Round(time.Millisecond), len(took), refused, rssBefore>>20, rssAfter>>20)
	if refused < 300-f.srv.limits.ConnsPerClient {
		t.Errorf("only %d of 300 idle connections were refused over a per-client limit of %d", refused, f.srv.limits.ConnsPerClient)
	}
	if n := hung.Load(); n > 0 {
		t.Errorf("%d slow clients held their connection until the client gave up; the server must cut them off", n)
	}
	if f.srv.responses.bytes > f.srv.responses.maxBytes {
		t.Errorf("the answer cache holds %d bytes over its %d limit", f.srv.responses.bytes, f.srv.responses.maxBytes)
	}
}
