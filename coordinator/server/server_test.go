package server

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"

	"github.com/tributary-health/tributary/coordinator/figures"
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
		"/api/revisions?measure=admissions&month=2024-01", // the federation's history: see TestPracticeSeesNoLoneOtherPractice
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
	// Practice rows are the practice's own: by=practice alone gives one row for the whole
	// period, by=month,practice one for each month.
	for _, tc := range []struct {
		by      string
		periods []string
	}{{"practice", []string{"2024-Q1"}}, {"month,practice", []string{"2024-01", "2024-02", "2024-03"}}} {
		var res struct{ Rows []Figure }
		f.getJSON(RolePractice, "/api/figures?by="+tc.by+"&measure=admissions", &res)
		var periods []string
		for _, r := range res.Rows {
			periods = append(periods, r.Period)
			if r.Practice != f.own || r.Measure != formats.Admissions {
				t.Errorf("by=%s: row of practice %q, measure %s", tc.by, r.Practice, r.Measure)
			}
		}
		if !slices.Equal(periods, tc.periods) {
			t.Errorf("by=%s for one measure over 3 months: periods %v, want %v", tc.by, periods, tc.periods)
		}
	}
	// Nor can federation=true with another practice's id, nor a practice's rows without it,
	// reach another practice.
	var res struct{ Rows []Figure }
	f.getJSON(RolePractice, "/api/figures?by=practice&federation=true&measure=admissions", &res)
	if len(res.Rows) != 2 || res.Rows[0].Practice != "" || res.Rows[1].Practice != f.own {
		t.Errorf("by=practice&federation=true as a practice: %+v, want the federation's row and its own", res.Rows)
	}
	var cmp figures.Comparison
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
	if len(revs.Rows) != 1 || revs.Rows[0].Use != "combined" || revs.Rows[0].From != "2024-01" || revs.Rows[0].To != "2024-03" ||
		revs.Rows[0].Combined != "2024-Q1" || revs.Rows[0].Key != formats.SubmissionKey(f.own, f.fed.Practices[1].RunID) {
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
	// An admin token cannot make a lead or admin token over the network: that is done on
	// the coordinator's machine.
	for _, role := range []string{RoleLead, RoleAdmin} {
		req, _ := http.NewRequest("POST", f.http.URL+"/api/tokens", strings.NewReader(`{"name":"new","role":"`+role+`"}`))
		req.Header.Set("Authorization", "Bearer "+f.tokens[RoleAdmin])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "tokens add --role "+role) {
			t.Errorf("POST a %s token as admin: %d %s, want 403 saying how", role, resp.StatusCode, body)
		}
	}
	// Make a practice token over the API, use it, revoke it, and it stops working.
	req, _ := http.NewRequest("POST", f.http.URL+"/api/tokens", strings.NewReader(`{"name":"new practice","role":"practice","practice":"`+f.own+`"}`))
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

// The server's figures agree with the query layer's, which the CLI uses, field for field:
// without by= the server answers by month, with it exactly the breakdowns it names. Every
// count lies within its bounds, and status and method say what it is.
func TestFiguresMatchQueryLayer(t *testing.T) {
	f := newFixture(t, 5, 3)
	c, err := query.Open(f.ctx, f.st)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		params string
		by     []string
	}{
		{"", []string{"month"}},
		{"?by=month", []string{"month"}},
		{"?by=age_band", []string{"age_band"}},
		{"?by=sex&from=2024-02", []string{"sex"}},
		{"?by=practice", []string{"practice"}},
		{"?by=month,practice&to=2024-02", []string{"month", "practice"}},
		{"?by=month,age_band,sex", []string{"month", "age_band", "sex"}},
	} {
		req := query.Request{By: tc.by}
		if strings.Contains(tc.params, "from=") {
			req.From = formats.MonthFor(2024, time.February)
		}
		if strings.Contains(tc.params, "to=") {
			req.To = formats.MonthFor(2024, time.February)
		}
		want, err := c.Run(req)
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			Combined string
			Rows     []Figure
		}
		f.getJSON(RoleLead, "/api/figures"+tc.params, &got)
		if got.Combined != c.Pointer.ID || len(got.Rows) != len(want.Rows) || len(got.Rows) == 0 {
			t.Fatalf("%s: %d rows of %s, query layer %d of %s", tc.params, len(got.Rows), got.Combined, len(want.Rows), c.Pointer.ID)
		}
		if !reflect.DeepEqual(got.Rows, want.Rows) {
			for i := range got.Rows {
				if !reflect.DeepEqual(got.Rows[i], want.Rows[i]) {
					t.Fatalf("%s row %d: server %+v, query layer %+v", tc.params, i, got.Rows[i], want.Rows[i])
				}
			}
		}
		for _, r := range got.Rows {
			key := fmt.Sprint(r.Period, " ", r.Measure, " ", r.AgeBand, " ", r.Sex, " ", r.Practice)
			switch r.Status {
			case formats.StatusRounded:
				if r.Count == nil || *r.Count != r.PublishedSum || r.Method != figures.MethodPublished || r.Lower > *r.Count || *r.Count > r.Upper {
					t.Errorf("%s rounded: count %v, published %d, method %s, bounds %d-%d", key, r.Count, r.PublishedSum, r.Method, r.Lower, r.Upper)
				}
			case figures.StatusPartial:
				// The published values plus an estimate of at least 1 for each suppressed one.
				if r.Count == nil || *r.Count < r.Lower || *r.Count > r.Upper || *r.Count <= r.PublishedSum || r.Method != figures.MethodEstimated {
					t.Errorf("%s partial: count %v, published %d, method %s, bounds %d-%d", key, r.Count, r.PublishedSum, r.Method, r.Lower, r.Upper)
				}
			case formats.StatusSuppressed:
				if r.Count != nil || r.Lower < 1 || r.Upper > formats.PolicyUK.SuppressMax || r.Method != figures.MethodEstimated {
					t.Errorf("%s suppressed but has count %v, bounds %d-%d, method %s", key, r.Count, r.Lower, r.Upper, r.Method)
				}
			default:
				t.Errorf("%s: status %q", key, r.Status)
			}
		}
	}
	// A practice's month total is large; age band × sex values are often suppressed at a
	// practice, and so partly suppressed in the federation's sums.
	var all, cells struct{ Rows []Figure }
	f.getJSON(RoleLead, "/api/figures?by=month,practice&measure=admissions_emergency,bed_days", &all)
	f.getJSON(RoleLead, "/api/figures?by=month,age_band,sex&measure=admissions_emergency,bed_days", &cells)
	partial, suppressed, dsr := 0, 0, 0
	for _, r := range append(all.Rows, cells.Rows...) {
		switch r.Status {
		case figures.StatusPartial:
			partial++
		case formats.StatusSuppressed:
			suppressed++
		}
		if r.DSR != nil {
			dsr++
			if r.DSRCILower == nil || r.DSRCIUpper == nil || !(*r.DSRCILower <= *r.DSR && *r.DSR <= *r.DSRCIUpper) ||
				r.DSRAtLower == nil || *r.DSRAtLower > *r.DSR || (r.DSRAtUpper != nil && *r.DSRAtUpper < *r.DSR) {
				t.Errorf("%s %s %s: DSR %v not within its interval %v-%v and bounds %v-%v", r.Practice, r.Period, r.Measure, *r.DSR, r.DSRCILower, r.DSRCIUpper, r.DSRAtLower, r.DSRAtUpper)
			}
		}
		if r.Rate != nil && (r.RateLower == nil || *r.Rate < *r.RateLower || (r.RateUpper != nil && *r.Rate > *r.RateUpper)) {
			t.Errorf("%s %s %s: rate %v outside %v-%v", r.Practice, r.Period, r.Measure, *r.Rate, r.RateLower, r.RateUpper)
		}
	}
	if partial == 0 || suppressed == 0 || dsr == 0 {
		t.Errorf("generated data gave %d partial rows, %d suppressed and %d standardised rates; the test needs all three", partial, suppressed, dsr)
	}
}

// CSV and Arrow carry the JSON's rows, a column per field, nulls as empty or null.
func TestFormats(t *testing.T) {
	f := newFixture(t, 3, 2)
	var js struct{ Rows []Figure }
	const path = "/api/figures?by=month,sex&measure=admissions"
	f.getJSON(RoleLead, path, &js)
	var names []string
	for _, c := range columnsOf(reflect.TypeFor[Figure]()) {
		names = append(names, c.name)
	}
	code, csvBody := f.get(RoleLead, path+"&format=csv")
	recs, err := csv.NewReader(bytes.NewReader(csvBody)).ReadAll()
	if err != nil || code != 200 || len(recs) != len(js.Rows)+1 || len(js.Rows) != 2*formats.NumSexes {
		t.Fatalf("CSV: %d, %d records for %d rows (%v)", code, len(recs), len(js.Rows), err)
	}
	if strings.Join(recs[0], ",") != strings.Join(names, ",") ||
		!strings.HasPrefix(strings.Join(recs[0], ","), "period,from,to,measure,age_band,sex,practice,status,count,lower,upper,published_sum,method,list_size") {
		t.Errorf("CSV header %q", strings.Join(recs[0], ","))
	}
	col := func(name string) int { return slices.Index(recs[0], name) }
	for i, r := range js.Rows {
		rec := recs[i+1]
		count := ""
		if r.Count != nil {
			count = fmt.Sprint(*r.Count)
		}
		if rec[col("period")] != r.Period || rec[col("sex")] != r.Sex || rec[col("count")] != count || rec[col("lower")] != fmt.Sprint(r.Lower) ||
			rec[col("upper")] != fmt.Sprint(r.Upper) || rec[col("status")] != r.Status || rec[col("method")] != r.Method ||
			rec[col("published_sum")] != fmt.Sprint(r.PublishedSum) {
			t.Errorf("CSV row %d %v, JSON %+v", i, rec, r)
		}
	}
	code, arrowBody := f.get(RoleLead, path+"&format=arrow")
	if code != 200 {
		t.Fatalf("arrow: %d", code)
	}
	rdr, err := ipc.NewReader(bytes.NewReader(arrowBody))
	if err != nil {
		t.Fatal(err)
	}
	defer rdr.Release()
	schema := rdr.Schema()
	if len(schema.Fields()) != len(names) || schema.Field(0).Name != "period" {
		t.Errorf("arrow schema %v", schema)
	}
	n := 0
	for rdr.Next() {
		rec := rdr.Record()
		count := rec.Column(schema.FieldIndices("count")[0]).(*array.Int64)
		lower := rec.Column(schema.FieldIndices("lower")[0]).(*array.Int64)
		status := rec.Column(schema.FieldIndices("status")[0]).(*array.String)
		for i := range int(rec.NumRows()) {
			r := js.Rows[n+i]
			if count.IsNull(i) != (r.Count == nil) || (r.Count != nil && count.Value(i) != *r.Count) || lower.Value(i) != r.Lower || status.Value(i) != r.Status {
				t.Errorf("arrow row %d: count %v lower %d status %s, JSON %+v", n+i, count.ValueStr(i), lower.Value(i), status.Value(i), r)
			}
		}
		n += int(rec.NumRows())
	}
	if n != len(js.Rows) {
		t.Errorf("arrow: %d rows, want %d", n, len(js.Rows))
	}
	for _, p := range []string{"/api/figures?format=xml", "/api/figures?measure=nope", "/api/figures?by=colour", "/api/figures?from=2024-13",
		"/api/figures?from=2024-03&to=2024-01", "/api/figures?age_band=3-7", "/api/figures?sex=x", "/api/figures?colour=red", "/api/compare",
		"/api/compare?measure=admissions&by=sex", "/api/revisions?measure=admissions", "/api/revisions?month=2024-01"} {
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
	for name, typ := range map[string]reflect.Type{"Figure": reflect.TypeFor[Figure](), "PracticeRatio": reflect.TypeFor[figures.PracticeRatio](),
		"CompletenessRow": reflect.TypeFor[CompletenessRow](), "FigureRevision": reflect.TypeFor[FigureRevision](),
		"FileRevision": reflect.TypeFor[FileRevision](), "Meta": reflect.TypeFor[Meta](), "Status": reflect.TypeFor[Status]()} {
		props := doc.Components.Schemas[name].Properties
		fields := map[string]bool{}
		for _, c := range columnsOf(typ) {
			fields[c.name] = true
			if props[c.name] == nil {
				t.Errorf("openapi.json schema %s lacks field %s", name, c.name)
			}
		}
		// Nor may it describe a field the answers no longer carry.
		for p := range props {
			if !fields[p] {
				t.Errorf("openapi.json schema %s describes field %s, which %s does not carry", name, p, typ)
			}
		}
	}
}

// A failed combine keeps the good figures; new submissions are read incrementally.
func TestRefreshKeepsGoodFiguresAndIsIncremental(t *testing.T) {
	f := newFixture(t, 3, 4)
	before := f.srv.snap.Load().ptr.ID
	if st := f.srv.Status(); st.FilesRead != 3 || st.FilesCached != 0 {
		t.Errorf("first combine read %d, cached %d; want one file per practice (3), 0", st.FilesRead, st.FilesCached)
	}
	// A new run of one practice-month: only its file is read; the practice's first run is
	// still combined for its other months.
	p := f.fed.Practices[2]
	revised := f.fed.Start + 1
	sub := fedgen.Publish(f.fed.Policy, p.ID, "20260401T000000Z-0000cafe", revised, revised, formats.Measures,
		func(m formats.Month, measure string, b, x int) int64 { return f.fed.True(2, m, measure, b, x) + 2 })
	if _, err := fedgen.WriteSubmission(f.ctx, f.st, p.Key, p.Created.Add(time.Hour), sub); err != nil {
		t.Fatal(err)
	}
	if err := f.srv.Refresh(f.ctx); err != nil {
		t.Fatal(err)
	}
	if st := f.srv.Status(); st.FilesRead != 1 || st.FilesCached != 3 || st.Combined == before {
		t.Errorf("after one new file: read %d, cached %d, combined %s (before %s)", st.FilesRead, st.FilesCached, st.Combined, before)
	}
	var revs struct{ Rows []FileRevision }
	f.getJSON(RoleLead, "/api/revisions?practice="+p.ID+"&month="+revised.String(), &revs)
	if len(revs.Rows) != 2 || revs.Rows[0].RunID != sub.RunID || revs.Rows[0].Use != "combined" || revs.Rows[0].Combined != "2024-02" ||
		revs.Rows[1].RunID != p.RunID || revs.Rows[1].Use != "combined" || revs.Rows[1].From != "2024-01" || revs.Rows[1].To != "2024-04" ||
		revs.Rows[1].Combined != "2024-01, 2024-03..2024-04" {
		t.Errorf("revisions after a resubmission: %+v", revs.Rows)
	}
	var comp struct{ Rows []CompletenessRow }
	f.getJSON(RoleLead, "/api/completeness?practice="+p.ID, &comp)
	for _, r := range comp.Rows {
		want := CompletenessRow{Practice: p.ID, Month: r.Month, Submitted: true, RunID: p.RunID, Created: "2026-01-02T03:04:05Z", Measures: int64(len(formats.Measures))}
		if r.Month == revised.String() {
			want.RunID, want.Created, want.Revisions = sub.RunID, "2026-01-02T04:04:05Z", 1
		}
		if !reflect.DeepEqual(r, want) {
			t.Errorf("completeness %+v, want %+v", r, want)
		}
	}
	if len(comp.Rows) != 4 {
		t.Errorf("%d completeness rows of one practice, want 4", len(comp.Rows))
	}
	var fig struct{ Rows []FigureRevision }
	f.getJSON(RoleLead, "/api/revisions?measure=admissions&month="+revised.String(), &fig)
	if len(fig.Rows) != 2 || !fig.Rows[0].Current || fig.Rows[1].Current || fig.Rows[0].Combined != f.srv.Status().Combined || fig.Rows[1].Combined != before ||
		fig.Rows[0].Month != revised.String() || fig.Rows[0].Lower == fig.Rows[1].Lower || fig.Rows[0].PublishedSum == fig.Rows[1].PublishedSum {
		t.Errorf("federation figure history: %+v; want the revised figure over the first", fig.Rows)
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

// /api/compare answers from the engine: the combined output it was made from, each
// practice's observed count within its bounds, and funnel limits that bracket a ratio of 1.
// Its JSON carries exactly the fields the OpenAPI document describes.
func TestCompare(t *testing.T) {
	f := newFixture(t, 6, 3)
	code, body := f.get(RoleLead, "/api/compare?measure=admissions_emergency&from=2024-02")
	if code != http.StatusOK {
		t.Fatalf("compare: %d %s", code, body)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]struct{ Properties map[string]any }
		}
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	var keys, documented []string
	for k := range raw {
		keys = append(keys, k)
	}
	for k := range doc.Components.Schemas["Comparison"].Properties {
		documented = append(documented, k)
	}
	slices.Sort(keys)
	slices.Sort(documented)
	if !slices.Equal(keys, documented) {
		t.Errorf("compare answers with fields %v; openapi.json documents %v", keys, documented)
	}
	var combined string
	json.Unmarshal(raw["combined"], &combined)
	if combined != f.srv.Status().Combined {
		t.Errorf("compare names combined output %q, the server serves %s", combined, f.srv.Status().Combined)
	}
	var c figures.Comparison
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	if c.Measure != formats.AdmissionsEmergency || c.From != "2024-02" || c.To != "2024-03" || len(c.Practices) != 6 || len(c.Limits) == 0 || c.FederationRate == nil {
		t.Fatalf("compare: %+v", c)
	}
	for _, p := range c.Practices {
		if p.Observed != nil && (*p.Observed < p.ObservedLower || *p.Observed > p.ObservedUpper) {
			t.Errorf("%s: observed %d outside %d-%d", p.Practice, *p.Observed, p.ObservedLower, p.ObservedUpper)
		}
		if p.Expected <= 0 || !(p.Limit998Lower <= p.Limit95Lower && p.Limit95Lower < 1 && 1 < p.Limit95Upper && p.Limit95Upper <= p.Limit998Upper) {
			t.Errorf("%s: expected %v, limits 99.8%% %v-%v, 95%% %v-%v", p.Practice, p.Expected, p.Limit998Lower, p.Limit998Upper, p.Limit95Lower, p.Limit95Upper)
		}
		if p.Name != "Practice "+p.Practice || p.Method == "" || p.Position == "" {
			t.Errorf("%s: name %q, method %q, position %q", p.Practice, p.Name, p.Method, p.Position)
		}
	}
	for i := 1; i < len(c.Limits); i++ {
		if c.Limits[i].Expected <= c.Limits[i-1].Expected {
			t.Fatalf("funnel points not in order of expected count: %+v", c.Limits)
		}
	}
}

// Answers are cached per combined output, role and practice: a repeated request is served
// from the cache, one caller's answer never reaches another, a refusal is never cached, and a
// new combine is answered afresh.
func TestResponseCache(t *testing.T) {
	f := newFixture(t, 3, 2)
	get := func(role, path string) (int, string, bool) {
		t.Helper()
		req, _ := http.NewRequest("GET", f.http.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+f.tokens[role])
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), resp.Header.Get("X-Tributary-Cache") == "hit"
	}
	const path = "/api/figures?by=practice&measure=admissions"
	code, lead, hit := get(RoleLead, path)
	if code != http.StatusOK || hit {
		t.Fatalf("first request: %d, hit %v", code, hit)
	}
	if _, again, hit := get(RoleLead, path); !hit || again != lead {
		t.Errorf("repeated request: hit %v, same answer %v", hit, again == lead)
	}
	_, own, hit := get(RolePractice, path)
	if hit || own == lead || strings.Contains(own, f.others[0]) {
		t.Errorf("a practice was served the lead's answer (hit %v)", hit)
	}
	if _, again, hit := get(RolePractice, path); !hit || again != own {
		t.Errorf("a practice's repeated request: hit %v, same answer %v", hit, again == own)
	}
	for range 2 {
		if code, _, hit := get(RoleLead, "/api/figures?measure=nope"); code != http.StatusBadRequest || hit {
			t.Errorf("a bad request: %d, hit %v", code, hit)
		}
	}
	// A new run: the next answer comes from the new combine.
	p := f.fed.Practices[0]
	sub := fedgen.Publish(f.fed.Policy, p.ID, "20260401T000000Z-0000cafe", f.fed.Start, f.fed.Start, formats.Measures,
		func(m formats.Month, measure string, b, x int) int64 { return f.fed.True(0, m, measure, b, x) + 5 })
	if _, err := fedgen.WriteSubmission(f.ctx, f.st, p.Key, p.Created.Add(time.Hour), sub); err != nil {
		t.Fatal(err)
	}
	if err := f.srv.Refresh(f.ctx); err != nil {
		t.Fatal(err)
	}
	code, fresh, hit := get(RoleLead, path)
	if code != http.StatusOK || hit || fresh == lead || !strings.Contains(fresh, f.srv.Status().Combined) {
		t.Errorf("after a new combine: %d, hit %v, changed %v", code, hit, fresh != lead)
	}
}
