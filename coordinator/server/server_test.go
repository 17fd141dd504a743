package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/ipc"

	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/coordinator/query"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// fixture is a generated federation in a directory store, a server over it and a token of
// each role.
type fixture struct {
	t      *testing.T
	ctx    context.Context
	st     objstore.Store
	fed    *fedgen.Federation
	srv    *Server
	http   *httptest.Server
	tokens map[string]string // role (or "practice") -> token
	own    string            // the practice token's practice
	others []string          // every other practice
}

func newFixture(t *testing.T, practices, months int) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := objstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fed := fedgen.New(fedgen.Params{Practices: practices, Months: months, Seed: 7, Start: formats.MonthFor(2024, time.January)})
	if err := fed.Write(ctx, st, 2); err != nil {
		t.Fatal(err)
	}
	toks, err := OpenTokens(filepath.Join(t.TempDir(), "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: ctx, st: st, fed: fed, tokens: map[string]string{}, own: fed.Practices[1].ID}
	for _, p := range fed.Practices {
		if p.ID != f.own {
			f.others = append(f.others, p.ID)
		}
	}
	for _, r := range []struct{ role, practice string }{{RoleLead, ""}, {RolePractice, f.own}, {RoleAdmin, ""}} {
		secret, _, err := toks.Add("test "+r.role, r.role, r.practice, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		f.tokens[r.role] = secret
	}
	f.srv, err = New(Options{Store: st, Coordinator: fed.Coordinator.Public().(ed25519.PublicKey), Tokens: toks,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.srv.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	f.http = httptest.NewServer(f.srv.Handler())
	t.Cleanup(f.http.Close)
	return f
}

// get fetches path with the role's token ("" for none) and returns the status and body.
func (f *fixture) get(role, path string) (int, []byte) {
	f.t.Helper()
	req, err := http.NewRequest("GET", f.http.URL+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	if role != "" {
		tok := f.tokens[role]
		if tok == "" {
			tok = role // a literal token
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return resp.StatusCode, body
}

func (f *fixture) getJSON(role, path string, v any) {
	f.t.Helper()
	code, body := f.get(role, path)
	if code != http.StatusOK {
		f.t.Fatalf("GET %s as %s: %d %s", path, role, code, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		f.t.Fatalf("GET %s: %v", path, err)
	}
}

var dataEndpoints = []string{
	"/api/meta", "/api/status", "/api/figures", "/api/figures?by=practice", "/api/compare?measure=admissions",
	"/api/completeness", "/api/revisions?measure=admissions&month=2024-01", "/api/tokens",
}

func TestNoTokenSeesNothing(t *testing.T) {
	f := newFixture(t, 3, 2)
	for _, p := range dataEndpoints {
		for _, tok := range []string{"", "trib_" + strings.Repeat("0", 64), "not-a-token"} {
			code, body := f.get(tok, p)
			if code != http.StatusUnauthorized {
				t.Errorf("GET %s with token %q: %d, want 401", p, tok, code)
			}
			for _, id := range append(f.others, f.own) {
				if bytes.Contains(body, []byte(id)) {
					t.Errorf("GET %s without a valid token shows practice %s", p, id)
				}
			}
		}
	}
	// What holds no data is open.
	for _, p := range []string{"/api/openapi.json", "/api/healthz", "/"} {
		if code, _ := f.get("", p); code != http.StatusOK {
			t.Errorf("GET %s without a token: %d, want 200", p, code)
		}
	}
}

// A practice token sees its own figures and the federation's, never another practice's,
// whatever endpoint, parameter or format it uses.
func TestPracticeTokenSeesOnlyItsOwn(t *testing.T) {
	f := newFixture(t, 4, 3)
	other := f.others[0]
	forbidden := []string{
		"/api/figures?practice=" + other,
		"/api/figures?practice=" + f.own + "," + other,
		"/api/figures?practice=" + f.own + "&practice=" + other,
		"/api/figures?by=practice&practice=" + other + "&format=csv",
		"/api/figures?by=practice&practice=" + other + "&format=arrow",
		"/api/compare?measure=admissions&practice=" + other,
		"/api/completeness?practice=" + other,
		"/api/completeness?practice=" + other + "&format=csv",
		"/api/revisions?practice=" + other,
		"/api/revisions?practice=" + other + "&month=2024-01&format=arrow",
		"/api/tokens",
	}
	for _, p := range forbidden {
		code, body := f.get(RolePractice, p)
		if code != http.StatusForbidden {
			t.Errorf("GET %s as practice %s: %d, want 403", p, f.own, code)
		}
		for _, id := range f.others {
			if bytes.Contains(body, []byte(id)) {
				t.Errorf("GET %s as practice %s names practice %s", p, f.own, id)
			}
		}
	}
	allowed := []string{
		"/api/meta", "/api/status", "/api/figures", "/api/figures?by=age_band,sex",
		"/api/figures?by=practice", "/api/figures?by=practice&format=csv", "/api/figures?by=practice&format=arrow",
		"/api/figures?by=practice&federation=true", "/api/figures?practice=" + f.own,
		"/api/compare?measure=admissions", "/api/compare?measure=admissions&format=csv", "/api/compare?measure=admissions&format=arrow",
		"/api/completeness", "/api/completeness?format=csv", "/api/completeness?format=arrow",
		"/api/revisions?practice=" + f.own, "/api/revisions?practice=" + f.own + "&format=csv",
		"/api/revisions?measure=admissions&month=2024-01",
	}
	for _, p := range allowed {
		f.get(RoleLead, p) // an answer the lead was given is never served to a practice
		code, body := f.get(RolePractice, p)
		if code != http.StatusOK {
			t.Errorf("GET %s as practice %s: %d %s, want 200", p, f.own, code, body)
			continue
		}
		for _, id := range f.others {
			if bytes.Contains(body, []byte(id)) {
				t.Errorf("GET %s as practice %s shows practice %s", p, f.own, id)
			}
		}
		if strings.Contains(p, "practice") && !strings.Contains(p, "measure=admissions&month") && !bytes.Contains(body, []byte(f.own)) {
			t.Errorf("GET %s as practice %s does not show its own practice", p, f.own)
		}
	}
	// Practice rows are the practice's own: by=practice gives every month and measure of it.
	var res struct{ Rows []Figure }
	f.getJSON(RolePractice, "/api/figures?by=practice&measure=admissions", &res)
	if len(res.Rows) != 3 {
		t.Errorf("by=practice for one measure and 3 months: %d rows, want 3", len(res.Rows))
	}
	for _, r := range res.Rows {
		if r.Practice != f.own {
			t.Errorf("row of practice %q", r.Practice)
		}
	}
	var cmp Comparison
	f.getJSON(RolePractice, "/api/compare?measure=admissions", &cmp)
	if len(cmp.Practices) != 1 || cmp.Practices[0].Practice != f.own || len(cmp.Limits) == 0 {
		t.Errorf("compare as a practice: %d practices, %d limit points", len(cmp.Practices), len(cmp.Limits))
	}
}

func TestLeadSeesEveryPractice(t *testing.T) {
	f := newFixture(t, 4, 3)
	var meta Meta
	f.getJSON(RoleLead, "/api/meta", &meta)
	if len(meta.Practices) != 4 || len(meta.Months) != 3 || meta.Role != RoleLead {
		t.Errorf("meta: %d practices, %d months, role %s", len(meta.Practices), len(meta.Months), meta.Role)
	}
	for _, p := range []string{"/api/figures?by=practice", "/api/figures?by=practice&format=csv", "/api/completeness", "/api/compare?measure=consultations"} {
		_, body := f.get(RoleLead, p)
		for _, id := range append(f.others, f.own) {
			if !bytes.Contains(body, []byte(id)) {
				t.Errorf("GET %s as lead does not show practice %s", p, id)
			}
		}
	}
	var comp struct{ Rows []CompletenessRow }
	f.getJSON(RoleLead, "/api/completeness", &comp)
	if len(comp.Rows) != 12 {
		t.Fatalf("completeness: %d rows, want 4 practices × 3 months", len(comp.Rows))
	}
	for _, r := range comp.Rows {
		if !r.Submitted || r.RunID == "" || r.Created == "" {
			t.Errorf("completeness row %+v: want submitted with run and time", r)
		}
	}
	var revs struct{ Rows []FileRevision }
	f.getJSON(RoleLead, "/api/revisions?practice="+f.own+"&month=2024-02", &revs)
	if len(revs.Rows) != 1 || revs.Rows[0].Use != "combined" {
		t.Errorf("revisions of one practice-month: %+v", revs.Rows)
	}
}

func TestAdminManagesTokensOnly(t *testing.T) {
	f := newFixture(t, 2, 1)
	for _, p := range []string{"/api/figures", "/api/compare?measure=admissions", "/api/completeness", "/api/revisions?practice=" + f.own} {
		if code, _ := f.get(RoleAdmin, p); code != http.StatusForbidden {
			t.Errorf("GET %s as admin: %d, want 403", p, code)
		}
	}
	var meta Meta
	f.getJSON(RoleAdmin, "/api/meta", &meta)
	if len(meta.Practices) != 0 || len(meta.Months) != 0 {
		t.Errorf("admin meta shows figures' practices or months: %+v", meta)
	}
	for _, role := range []string{RoleLead, RolePractice} {
		if code, _ := f.get(role, "/api/tokens"); code != http.StatusForbidden {
			t.Errorf("GET /api/tokens as %s: %d, want 403", role, code)
		}
	}
	// Make a lead token over the API, use it, revoke it, and it stops working.
	req, _ := http.NewRequest("POST", f.http.URL+"/api/tokens", strings.NewReader(`{"name":"new lead","role":"lead"}`))
	req.Header.Set("Authorization", "Bearer "+f.tokens[RoleAdmin])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var made struct {
		Token string
		Entry Token
	}
	json.NewDecoder(resp.Body).Decode(&made)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || made.Token == "" {
		t.Fatalf("POST /api/tokens: %d", resp.StatusCode)
	}
	if code, _ := f.get(made.Token, "/api/figures"); code != http.StatusOK {
		t.Fatalf("new token: %d", code)
	}
	var list struct{ Tokens []Token }
	f.getJSON(RoleAdmin, "/api/tokens", &list)
	for _, tk := range list.Tokens {
		if strings.Contains(tk.SHA256, made.Token) || tk.SHA256 == made.Token {
			t.Fatal("the tokens list holds a token in clear")
		}
	}
	if len(list.Tokens) != 4 {
		t.Errorf("%d tokens listed, want 4", len(list.Tokens))
	}
	req, _ = http.NewRequest("DELETE", f.http.URL+"/api/tokens/"+made.Entry.ID, nil)
	req.Header.Set("Authorization", "Bearer "+f.tokens[RoleAdmin])
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE token: %d", resp.StatusCode)
	}
	if code, _ := f.get(made.Token, "/api/figures"); code != http.StatusUnauthorized {
		t.Errorf("revoked token: %d, want 401", code)
	}
}

// The server's figures agree with the query layer's, which reads the stored tables; partial
// figures carry no count, only bounds and a labelled midpoint estimate.
func TestFiguresMatchQueryLayer(t *testing.T) {
	f := newFixture(t, 5, 3)
	c, err := query.Open(f.ctx, f.st)
	if err != nil {
		t.Fatal(err)
	}
	for _, by := range [][]string{nil, {"age_band"}, {"sex"}, {"practice"}, {"age_band", "sex"}} {
		want, err := c.Run(f.ctx, query.Request{By: by})
		if err != nil {
			t.Fatal(err)
		}
		var got struct{ Rows []Figure }
		f.getJSON(RoleLead, "/api/figures?by="+strings.Join(by, ","), &got)
		if len(got.Rows) != len(want.Rows) {
			t.Fatalf("by=%v: %d rows, query layer %d", by, len(got.Rows), len(want.Rows))
		}
		seen := map[string]int{}
		for _, r := range want.Rows {
			key := fmt.Sprint(r.Month, r.Measure, r.AgeBand, r.Sex, r.Practice)
			for i, g := range got.Rows {
				if fmt.Sprint(g.Month, g.Measure, g.AgeBand, g.Sex, g.Practice) != key {
					continue
				}
				seen[key]++
				if g.Lower != r.Lower || g.Upper != r.Upper || g.Status != r.Status || g.ListSize != r.ListSize || g.Practices != r.Practices {
					t.Errorf("by=%v row %d %s: got %+v, query layer %+v", by, i, key, g, r)
				}
				switch g.Status {
				case formats.StatusRounded:
					if g.Count == nil || r.Count == nil || *g.Count != *r.Count || g.EstimateMethod != EstimatePublished {
						t.Errorf("%s rounded: count %v, query %v", key, g.Count, r.Count)
					}
				case "partial":
					if g.Count != nil || g.Estimate == nil || *g.Estimate != float64(g.Lower+g.Upper)/2 || g.EstimateMethod != EstimateMidpoint {
						t.Errorf("%s partial: count %v estimate %v method %q; want no count, the midpoint", key, g.Count, g.Estimate, g.EstimateMethod)
					}
				case formats.StatusSuppressed:
					if g.Count != nil || g.Estimate != nil {
						t.Errorf("%s suppressed but has a count or estimate", key)
					}
				}
			}
		}
		if len(seen) != len(want.Rows) {
			t.Errorf("by=%v: %d of %d query-layer rows found", by, len(seen), len(want.Rows))
		}
	}
	var all struct{ Rows []Figure }
	f.getJSON(RoleLead, "/api/figures?by=practice&measure=admissions_emergency,bed_days", &all)
	partial, dsr := 0, 0
	for _, r := range all.Rows {
		if r.Status == "partial" {
			partial++
		}
		if r.DSR != nil {
			dsr++
			if r.DSRCILower == nil || !(*r.DSRCILower <= *r.DSR && *r.DSR <= *r.DSRCIUpper) || !(*r.DSRAtLower <= *r.DSRAtUpper) {
				t.Errorf("%s %s %s: DSR %v not within its interval %v-%v", r.Practice, r.Month, r.Measure, *r.DSR, r.DSRCILower, r.DSRCIUpper)
			}
		}
	}
	if partial == 0 || dsr == 0 {
		t.Errorf("generated data gave %d partial rows and %d standardised rates; the test needs both", partial, dsr)
	}
}

func TestFormats(t *testing.T) {
	f := newFixture(t, 3, 2)
	var js struct{ Rows []Figure }
	f.getJSON(RoleLead, "/api/figures?by=sex&measure=admissions", &js)
	code, csvBody := f.get(RoleLead, "/api/figures?by=sex&measure=admissions&format=csv")
	lines := strings.Split(strings.TrimSpace(string(csvBody)), "\n")
	if code != 200 || len(lines) != len(js.Rows)+1 || !strings.HasPrefix(lines[0], "month,measure,age_band,sex,practice,status,count,lower,upper,estimate,estimate_method") {
		t.Errorf("CSV: %d, %d lines for %d rows; header %q", code, len(lines), len(js.Rows), lines[0])
	}
	code, arrowBody := f.get(RoleLead, "/api/figures?by=sex&measure=admissions&format=arrow")
	if code != 200 {
		t.Fatalf("arrow: %d", code)
	}
	rdr, err := ipc.NewReader(bytes.NewReader(arrowBody))
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()
	n := 0
	for rdr.Next() {
		n += int(rdr.Record().NumRows())
	}
	if n != len(js.Rows) || rdr.Schema().Field(0).Name != "month" {
		t.Errorf("arrow: %d rows, want %d", n, len(js.Rows))
	}
	for _, p := range []string{"/api/figures?format=xml", "/api/figures?measure=nope", "/api/figures?by=colour", "/api/figures?from=2024-13",
		"/api/figures?from=2024-03&to=2024-01", "/api/figures?age_band=3-7", "/api/figures?sex=x", "/api/figures?colour=red", "/api/compare"} {
		code, body := f.get(RoleLead, p)
		if code != http.StatusBadRequest || !bytes.Contains(body, []byte(`"error"`)) {
			t.Errorf("GET %s: %d %s, want 400 with a message", p, code, body)
		}
	}
}

// The OpenAPI document parses, describes every route, and every field the answers carry.
func TestOpenAPIDocument(t *testing.T) {
	var doc struct {
		OpenAPI    string
		Paths      map[string]map[string]any
		Components struct {
			Schemas map[string]struct{ Properties map[string]any }
		}
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil || !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi.json: %v, version %q", err, doc.OpenAPI)
	}
	for _, p := range []string{"/api/meta", "/api/status", "/api/figures", "/api/compare", "/api/completeness", "/api/revisions", "/api/tokens", "/api/tokens/{id}", "/api/openapi.json"} {
		if doc.Paths[p] == nil {
			t.Errorf("openapi.json does not describe %s", p)
		}
	}
	for name, typ := range map[string]reflect.Type{"Figure": reflect.TypeFor[Figure](), "PracticeRatio": reflect.TypeFor[PracticeRatio](),
		"CompletenessRow": reflect.TypeFor[CompletenessRow](), "FigureRevision": reflect.TypeFor[FigureRevision](),
		"FileRevision": reflect.TypeFor[FileRevision](), "Meta": reflect.TypeFor[Meta](), "Status": reflect.TypeFor[Status]()} {
		props := doc.Components.Schemas[name].Properties
		for _, c := range columnsOf(typ) {
			if props[c.name] == nil {
				t.Errorf("openapi.json schema %s lacks field %s", name, c.name)
			}
		}
	}
}

// A failed combine keeps the good figures; new submissions are read incrementally.
func TestRefreshKeepsGoodFiguresAndIsIncremental(t *testing.T) {
	f := newFixture(t, 3, 4)
	before := f.srv.snap.Load().ptr.ID
	if st := f.srv.Status(); st.FilesRead != 12 || st.FilesCached != 0 {
		t.Errorf("first combine read %d, cached %d; want 12, 0", st.FilesRead, st.FilesCached)
	}
	// A new run of one practice-month.
	p := f.fed.Practices[2]
	sub := f.fed.Submission(2, f.fed.Start+1)
	sub.RunID = "20260401T000000Z-0000cafe"
	if _, err := fedgen.WriteSubmissions(f.ctx, f.st, p.Key, p.Created.Add(time.Hour), sub); err != nil {
		t.Fatal(err)
	}
	if err := f.srv.Refresh(f.ctx); err != nil {
		t.Fatal(err)
	}
	if st := f.srv.Status(); st.FilesRead != 1 || st.FilesCached != 11 || st.Combined == before {
		t.Errorf("after one new file: read %d, cached %d, combined %s (before %s)", st.FilesRead, st.FilesCached, st.Combined, before)
	}
	var revs struct{ Rows []FileRevision }
	f.getJSON(RoleLead, "/api/revisions?practice="+p.ID+"&month="+(f.fed.Start+1).String(), &revs)
	if len(revs.Rows) != 2 || revs.Rows[0].RunID != sub.RunID || revs.Rows[0].Use != "combined" || revs.Rows[1].Use != "revision" {
		t.Errorf("revisions after a resubmission: %+v", revs.Rows)
	}
	var fig struct{ Rows []FigureRevision }
	f.getJSON(RoleLead, "/api/revisions?measure=admissions&month="+(f.fed.Start+1).String(), &fig)
	if len(fig.Rows) != 2 || !fig.Rows[0].Current {
		t.Errorf("federation figure history: %+v", fig.Rows)
	}
	good := f.srv.snap.Load().ptr.ID
	// A registry that no longer verifies makes the combine fail: the figures stay.
	if _, err := f.st.Put(f.ctx, formats.RegistryKey, []byte("not a registry")); err != nil {
		t.Fatal(err)
	}
	if err := f.srv.Refresh(f.ctx); err == nil {
		t.Fatal("a combine over a broken registry succeeded")
	}
	var st Status
	f.getJSON(RoleLead, "/api/status", &st)
	if st.Combined != good || st.LastError == "" {
		t.Errorf("after a failed combine: serving %s (want %s), last error %q", st.Combined, good, st.LastError)
	}
	if code, _ := f.get(RoleLead, "/api/figures?measure=admissions"); code != http.StatusOK {
		t.Errorf("figures after a failed combine: %d", code)
	}
}
