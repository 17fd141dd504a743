package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/dashboard"
	"github.com/tributary-health/tributary/coordinator/figures"
	"github.com/tributary-health/tributary/formats"
)

type ctxKey struct{}

// caller returns the token a request was authorised with.
func caller(r *http.Request) Token {
	t, _ := r.Context().Value(ctxKey{}).(Token)
	return t
}

// Handler serves the API under /api/ and the dashboard at /.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/openapi.json", serveOpenAPI)
	mux.HandleFunc("GET /api/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	figures := []string{RoleLead, RolePractice}
	mux.Handle("GET /api/meta", s.auth(s.handleMeta, RoleLead, RolePractice, RoleAdmin))
	mux.Handle("GET /api/status", s.auth(s.handleStatus, RoleLead, RolePractice, RoleAdmin))
	mux.Handle("GET /api/figures", s.auth(s.cached(s.handleFigures), figures...))
	mux.Handle("GET /api/compare", s.auth(s.cached(s.handleCompare), figures...))
	mux.Handle("GET /api/completeness", s.auth(s.cached(s.handleCompleteness), figures...))
	mux.Handle("GET /api/revisions", s.auth(s.cached(s.handleRevisions), figures...))
	mux.Handle("GET /api/tokens", s.auth(s.handleTokenList, RoleAdmin))
	mux.Handle("POST /api/tokens", s.auth(s.handleTokenAdd, RoleAdmin))
	mux.Handle("DELETE /api/tokens/{id}", s.auth(s.handleTokenRevoke, RoleAdmin))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint; see /api/openapi.json")
	})
	mux.Handle("/", dashboard.Handler())
	return securityHeaders(s.guard(mux))
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'")
		if strings.HasPrefix(r.URL.Path, "/api/") {
			hd.Set("Cache-Control", "no-store")
		}
		h.ServeHTTP(w, r)
	})
}

// auth admits requests that carry a live token ("Authorization: Bearer TOKEN") of one of
// the given roles.
func (s *Server) auth(h http.HandlerFunc, roles ...string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		presented, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || presented == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tributary"`)
			writeError(w, http.StatusUnauthorized, "this needs an API token: send 'Authorization: Bearer TOKEN'; the federation's admin makes tokens with 'tributary-coordinator tokens add'")
			return
		}
		tok, err := s.opts.Tokens.Lookup(strings.TrimSpace(presented))
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tributary", error="invalid_token"`)
			if errors.Is(err, ErrBadToken) {
				writeError(w, http.StatusUnauthorized, err.Error())
			} else {
				writeError(w, http.StatusInternalServerError, "the server cannot read its tokens file; see its log")
				s.opts.Logger.Error("tokens file", "error", err)
			}
			return
		}
		if !slices.Contains(roles, tok.Role) {
			writeError(w, http.StatusForbidden, fmt.Sprintf("a %s token cannot use %s", tok.Role, r.URL.Path))
			return
		}
		h(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, tok)))
	})
}

// badRequest is a mistake in the query string, with what to write instead.
type badRequest struct{ msg string }

func (e *badRequest) Error() string { return e.msg }

// forbidden is a request for figures the caller may not see.
type forbidden struct{ msg string }

func (e *forbidden) Error() string { return e.msg }

func (s *Server) writeErr(w http.ResponseWriter, err error) {
	var br *badRequest
	var fb *forbidden
	switch {
	case errors.As(err, &br):
		writeError(w, http.StatusBadRequest, br.msg)
	case errors.As(err, &fb):
		writeError(w, http.StatusForbidden, fb.msg)
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

// list returns the values of a parameter given repeatedly or comma-separated.
func list(v url.Values, name string) []string {
	var out []string
	for _, s := range v[name] {
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

var knownParams = map[string]bool{"measure": true, "from": true, "to": true, "by": true, "age_band": true, "sex": true,
	"practice": true, "format": true, "month": true, "federation": true}

// parse reads the common parameters into a question and checks what the caller may see.
// Without by=, rows are by month; by= keeps exactly the breakdowns it names, so
// by=practice gives one row per practice for the whole of from..to.
func (s *Server) parse(r *http.Request, snap *snapshot) (*figures.Query, error) {
	v := r.URL.Query()
	for k := range v {
		if !knownParams[k] {
			return nil, &badRequest{fmt.Sprintf("unknown parameter %q; see /api/openapi.json", k)}
		}
	}
	q := &figures.Query{Federation: true}
	for _, m := range list(v, "measure") {
		i, ok := snap.engine.MeasureIndex(m)
		if !ok {
			return nil, &badRequest{fmt.Sprintf("unknown measure %q; choose from: %s", m, strings.Join(snap.engine.Measures, ", "))}
		}
		q.Measures = append(q.Measures, i)
	}
	for _, p := range []struct {
		name string
		m    *formats.Month
	}{{"from", &q.From}, {"to", &q.To}} {
		if s := v.Get(p.name); s != "" {
			m, err := formats.ParseMonth(s)
			if err != nil {
				return nil, &badRequest{fmt.Sprintf("%s=%q is not a month; write YYYY-MM", p.name, s)}
			}
			*p.m = m
		}
	}
	if q.From != 0 && q.To != 0 && q.From > q.To {
		return nil, &badRequest{fmt.Sprintf("from=%s is after to=%s; give the earlier month first", q.From, q.To)}
	}
	by := list(v, "by")
	if len(by) == 0 {
		by = []string{"month"}
	}
	byPractice := false
	for _, b := range by {
		switch b {
		case "month":
			q.ByMonth = true
		case "age_band":
			q.ByBand = true
		case "sex":
			q.BySex = true
		case "practice":
			byPractice = true
		default:
			return nil, &badRequest{fmt.Sprintf("cannot break down by %q; choose from: month, age_band, sex, practice", b)}
		}
	}
	bands, sexes := list(v, "age_band"), list(v, "sex")
	for _, b := range bands {
		i := formats.AgeBandIndex(b)
		if i < 0 {
			return nil, &badRequest{fmt.Sprintf("unknown age band %q; choose from: %s", b, strings.Join(formats.AgeBands, ", "))}
		}
		if !slices.Contains(q.Bands, i) {
			q.Bands = append(q.Bands, i)
		}
	}
	slices.Sort(q.Bands)
	if len(q.Bands) == formats.NumBands {
		q.Bands = nil // every band: the coarsest values answer
	}
	for _, x := range sexes {
		i := slices.Index(formats.Sexes, x)
		if i < 0 {
			return nil, &badRequest{fmt.Sprintf("unknown sex %q; choose from: %s", x, strings.Join(formats.Sexes, ", "))}
		}
		if !slices.Contains(q.Sexes, i) {
			q.Sexes = append(q.Sexes, i)
		}
	}
	slices.Sort(q.Sexes)
	if len(q.Sexes) == formats.NumSexes {
		q.Sexes = nil
	}
	practices := list(v, "practice")
	tok := caller(r)
	for _, p := range practices {
		if tok.Role == RolePractice && p != tok.Practice {
			return nil, &forbidden{fmt.Sprintf("a token of practice %s sees its own figures and the federation's only", tok.Practice)}
		}
		if err := formats.ValidatePracticeID(p); err != nil {
			return nil, &badRequest{fmt.Sprintf("practice=%q is not a practice id", p)}
		}
	}
	if len(practices) > 0 {
		byPractice = true
		q.Practices = practices
	}
	if byPractice {
		q.ByPractice = true
		if tok.Role == RolePractice {
			q.Practices = []string{tok.Practice}
		}
		q.Federation = v.Get("federation") == "true"
	}
	return q, nil
}

func (s *Server) current(w http.ResponseWriter) *snapshot {
	snap := s.snap.Load()
	if snap == nil {
		st := s.Status()
		msg := "the coordinator has no combined figures yet; it combines as soon as practices submit"
		if st.LastError != "" {
			msg += "; the last attempt failed: " + st.LastError
		}
		writeError(w, http.StatusServiceUnavailable, msg)
	}
	return snap
}

func envelope(snap *snapshot) map[string]any {
	return map[string]any{"combined": snap.ptr.ID, "policy": snap.ptr.Policy, "suppress_max": snap.ptr.SuppressMax,
		"loaded_at": snap.loaded.Format(time.RFC3339)}
}

func (s *Server) handleFigures(w http.ResponseWriter, r *http.Request) {
	snap := s.current(w)
	if snap == nil {
		return
	}
	q, err := s.parse(r, snap)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	if n := snap.engine.MaxRows(q); n > s.limits.MaxRows {
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the answer could hold %d rows; at most %d are given at once: narrow from/to, measure=, the breakdowns (by=) or practice=", n, s.limits.MaxRows))
		return
	}
	rows := snap.figures(q)
	env := envelope(snap)
	if tok := caller(r); tok.Role == RolePractice {
		rows, env["federation_rows_withheld"] = s.forPractice(rows)
	}
	writeTable(w, r.URL.Query().Get("format"), env, rows)
}

// forPractice drops the federation rows a practice token may not see: those made of fewer
// than MinOtherPractices practices besides its own, from which it could take its own figure
// away and read another practice's. It returns the rows kept and how many were dropped.
func (s *Server) forPractice(rows []Figure) ([]Figure, int) {
	kept := rows[:0]
	dropped := 0
	for _, f := range rows {
		if f.Practice == "" && f.Practices < int64(s.opts.MinOtherPractices)+1 {
			dropped++
			continue
		}
		kept = append(kept, f)
	}
	return kept, dropped
}

func (s *Server) handleCompare(w http.ResponseWriter, r *http.Request) {
	snap := s.current(w)
	if snap == nil {
		return
	}
	q, err := s.parse(r, snap)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	if len(q.Measures) != 1 || q.ByBand || q.BySex {
		s.writeErr(w, &badRequest{"compare needs exactly one measure=, and no by=; filter with age_band= and sex="})
		return
	}
	var practices []string
	if tok := caller(r); tok.Role == RolePractice {
		practices = []string{tok.Practice}
		// The federation's rates, which the comparison stands on, must include enough other
		// practices.
		whole := *q
		whole.ByMonth, whole.ByPractice, whole.Federation = false, false, true
		if fed := snap.figures(&whole); len(fed) == 1 && fed[0].Practices < int64(s.opts.MinOtherPractices)+1 {
			s.writeErr(w, &forbidden{fmt.Sprintf("the federation's figures for this comparison include fewer than %d practices besides yours; a practice token sees them only when they do", s.opts.MinOtherPractices)})
			return
		}
	} else if q.Practices != nil {
		practices = q.Practices
	}
	c := snap.compare(q, practices)
	if f := r.URL.Query().Get("format"); f != "" && f != FormatJSON {
		writeTable(w, f, nil, c.Practices)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) handleCompleteness(w http.ResponseWriter, r *http.Request) {
	snap := s.current(w)
	if snap == nil {
		return
	}
	q, err := s.parse(r, snap)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	var practices []string
	if tok := caller(r); tok.Role == RolePractice {
		practices = []string{tok.Practice}
	} else if q.Practices != nil {
		practices = q.Practices
	}
	env := envelope(snap)
	if caller(r).Role == RoleLead {
		env["quarantined"] = snap.report.Quarantined
	}
	writeTable(w, r.URL.Query().Get("format"), env, snap.completeness(practices, q.From, q.To))
}

func (s *Server) handleRevisions(w http.ResponseWriter, r *http.Request) {
	snap := s.current(w)
	if snap == nil {
		return
	}
	v := r.URL.Query()
	q, err := s.parse(r, snap)
	if err != nil {
		s.writeErr(w, err)
		return
	}
	var month formats.Month
	if m := v.Get("month"); m != "" {
		if month, err = formats.ParseMonth(m); err != nil {
			s.writeErr(w, &badRequest{fmt.Sprintf("month=%q is not a month; write YYYY-MM", m)})
			return
		}
	}
	if len(q.Practices) == 1 {
		writeTable(w, v.Get("format"), envelope(snap), snap.practiceRevisions(q.Practices[0], month))
		return
	}
	if len(q.Practices) > 1 || q.ByPractice {
		s.writeErr(w, &badRequest{"revisions take one practice= (the runs of that practice's files) or none (a federation figure)"})
		return
	}
	if caller(r).Role == RolePractice {
		// The difference between two combines is the practices that submitted in between:
		// a practice token sees its own runs, never the federation's history.
		s.writeErr(w, &forbidden{"a practice token sees the revisions of its own practice's runs (practice=), not of federation figures"})
		return
	}
	ms := list(v, "measure")
	if len(ms) != 1 || month == 0 {
		s.writeErr(w, &badRequest{"a federation figure's revisions need one measure= and one month=; a practice's runs need practice= (and optionally month=)"})
		return
	}
	revs, skipped, err := s.hist.figure(r.Context(), snap.ptr.ID, month, ms[0])
	if err != nil {
		s.writeErr(w, err)
		return
	}
	env := envelope(snap)
	if len(skipped) > 0 {
		env["skipped"] = skipped
		env["skipped_reason"] = "these published outputs could not be read (pruned or damaged since); their revisions are left out"
		s.opts.Logger.Warn("revision history: outputs could not be read", "outputs", skipped)
	}
	writeTable(w, v.Get("format"), env, revs)
}

// Meta is the answer of /api/meta: what the caller may ask about.
type Meta struct {
	Role         string            `json:"role"`
	Practice     string            `json:"practice,omitempty"`
	TokenName    string            `json:"token_name"`
	Combined     string            `json:"combined,omitempty"`
	Policy       string            `json:"policy,omitempty"`
	SuppressMax  int64             `json:"suppress_max"`
	Measures     []MeasureInfo     `json:"measures"`
	Months       []string          `json:"months"`
	AgeBands     []string          `json:"age_bands"`
	Sexes        []string          `json:"sexes"`
	Practices    []PracticeInfo    `json:"practices"`
	ESP2013      map[string]string `json:"esp2013_source"`
	Quarantined  int               `json:"quarantined"`
	LoadedAt     string            `json:"loaded_at,omitempty"`
	FederationOf int               `json:"federation_practices"` // practices with combined figures
}

// MeasureInfo names a measure: one of the federation's definitions.
type MeasureInfo struct {
	Name        string `json:"name"`
	Title       string `json:"title,omitempty"`
	Description string `json:"description"`
	Source      string `json:"source,omitempty"`
	Digest      string `json:"digest,omitempty"` // of the definition the federation combines it by
	// Rates says whether rates per 1,000 registered patients are offered: not for the list
	// size itself.
	Rates bool `json:"rates"`
}

// measureInfos lists the measures of a combine's report (the built-ins when there is none).
func measureInfos(rep *combine.Report) []MeasureInfo {
	var defs []combine.MeasureDef
	if rep != nil {
		defs = rep.Measures
	}
	if len(defs) == 0 {
		for _, d := range formats.BuiltinDefinitions() {
			if rep != nil && !slices.Contains(formats.Measures, d.Name) {
				continue // a report from before measures were data: the first catalogue
			}
			defs = append(defs, combine.MeasureDef{Definition: d, Digest: d.Digest()})
		}
	}
	out := make([]MeasureInfo, 0, len(defs))
	for _, d := range defs {
		out = append(out, MeasureInfo{Name: d.Name, Title: d.Title, Description: d.Description, Source: d.Source, Digest: d.Digest,
			Rates: d.Count != formats.CountRegistered})
	}
	return out
}

// PracticeInfo names a practice.
type PracticeInfo struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func (s *Server) handleMeta(w http.ResponseWriter, r *http.Request) {
	tok := caller(r)
	m := Meta{Role: tok.Role, Practice: tok.Practice, TokenName: tok.Name, AgeBands: formats.AgeBands, Sexes: formats.Sexes,
		Months: []string{}, Practices: []PracticeInfo{}, Measures: []MeasureInfo{},
		ESP2013: map[string]string{"source": "Eurostat, Revision of the European Standard Population, 2013 edition"}}
	snap := s.snap.Load()
	if snap != nil {
		m.Measures = measureInfos(snap.report)
	} else {
		m.Measures = measureInfos(nil)
	}
	if snap != nil && tok.Role != RoleAdmin {
		m.Combined, m.Policy, m.SuppressMax, m.LoadedAt = snap.ptr.ID, snap.ptr.Policy, snap.ptr.SuppressMax, snap.loaded.Format(time.RFC3339)
		m.FederationOf = len(snap.ids)
		for _, mo := range snap.months {
			m.Months = append(m.Months, mo.String())
		}
		for _, id := range snap.ids {
			if tok.Role == RoleLead || id == tok.Practice {
				m.Practices = append(m.Practices, PracticeInfo{id, snap.names[id]})
			}
		}
		if tok.Role == RoleLead {
			m.Quarantined = len(snap.report.Quarantined)
		}
	}
	writeJSON(w, http.StatusOK, m)
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Status())
}

func (s *Server) handleTokenList(w http.ResponseWriter, r *http.Request) {
	toks, err := s.opts.Tokens.List()
	if err != nil {
		s.writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": toks})
}

func (s *Server) handleTokenAdd(w http.ResponseWriter, r *http.Request) {
	var req struct{ Name, Role, Practice string }
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&req); err != nil {
		s.writeErr(w, &badRequest{`send JSON: {"name": "...", "role": "lead|practice|admin", "practice": "A81001"}`})
		return
	}
	if req.Role != RolePractice {
		// A token that sees every practice's figures, or mints tokens, is made only on the
		// coordinator's own machine: an admin token over the network cannot make itself a
		// lead.
		s.writeErr(w, &forbidden{fmt.Sprintf("the API makes practice tokens only; a %s token is made on the coordinator's machine with 'tributary-coordinator tokens add --role %s'", req.Role, req.Role)})
		return
	}
	secret, tok, err := s.opts.Tokens.Add(req.Name, req.Role, req.Practice, time.Now())
	if err != nil {
		s.writeErr(w, &badRequest{err.Error()})
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"token": secret, "entry": tok,
		"note": "this is the only time the token is shown; give it to its holder over a secure channel"})
}

func (s *Server) handleTokenRevoke(w http.ResponseWriter, r *http.Request) {
	tok, err := s.opts.Tokens.Revoke(r.PathValue("id"), time.Now())
	if err != nil {
		s.writeErr(w, &badRequest{err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"revoked": tok})
}
