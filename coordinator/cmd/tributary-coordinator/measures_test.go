package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tributary-health/tributary/agent"
	"github.com/tributary-health/tributary/agent/config"
	"github.com/tributary-health/tributary/agent/spool"
	"github.com/tributary-health/tributary/coordinator/server"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/plugins/sdk"

	"github.com/apache/arrow/go/v17/arrow"
)

// gpSource is a practice's clinical system, in process: 100 patients registered, born 1940,
// and in every month 20 emergency admissions for a fall (W19) and 10 for asthma (J45.9), with
// discharge dates and ICD-10 primary diagnoses.
type gpSource struct{}

func (gpSource) Describe() sdk.Description {
	return sdk.Description{Name: "gp", Version: "1.0.0", RowKinds: []string{formats.RowRegistrations, formats.RowEvents},
		EventKinds: []string{formats.KindAdmission}, Methods: true, Diagnoses: []string{formats.DiagnosisICD10}, Discharges: true}
}

func (gpSource) Extract(ctx context.Context, req sdk.Request, w *sdk.Writer) error {
	for i := range 100 {
		key := "patient-" + string(rune('A'+i/26)) + string(rune('a'+i%26))
		if err := w.Registration(formats.Registration{PatientKey: key, Sex: []string{"female", "male"}[i%2], BirthMonth: formats.MonthFor(1940, 6),
			From: formats.DateOf(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)), To: formats.NoEnd}); err != nil {
			return err
		}
		for m := req.From; m <= req.To; m++ {
			day := formats.DateOf(m.Start().AddDate(0, 0, 4))
			var dx string
			switch {
			case i < 20:
				dx = "W19"
			case i < 30:
				dx = "J459"
			default:
				continue
			}
			if err := w.Event(formats.Event{PatientKey: key, Kind: formats.KindAdmission, Start: day, End: day + 2, Method: formats.MethodEmergency,
				DiagnosisCode: dx, DiagnosisSystem: formats.DiagnosisICD10}); err != nil {
				return err
			}
		}
	}
	return nil
}

type inProcess struct{ ex sdk.Extractor }

func (s inProcess) Describe(context.Context) (sdk.Description, error) { return s.ex.Describe(), nil }
func (s inProcess) Extract(ctx context.Context, req sdk.Request, emit func(string, arrow.Record) error) error {
	_, err := sdk.Run(ctx, s.ex, req, emit)
	return err
}
func (inProcess) Close() error { return nil }

const fallsTOML = `version = 1

[[measure]]
name = "falls_emergency_admissions"
version = 1
title = "Emergency admissions for falls"
description = "emergency admissions starting in the month whose primary diagnosis is a fall (ICD-10 W00-W19, R29.6)"
source = "Riverside federation board, 2024"
count = "events"
kind = "admission"
method = "emergency"

[[measure.codes]]
system = "icd10"
match = "prefix"
codes = ["W00", "W01", "W02", "W03", "W04", "W05", "W06", "W07", "W08", "W09", "W10", "W11", "W12", "W13", "W14", "W15", "W16", "W17", "W18", "W19", "R29.6"]
`

// TestFederationMeasureReachesAgentsAndDashboard: a federation lead adds a measure with
// 'measures add'; each practice's agent picks it up on its next run (and refuses a forged
// file), the combine adds it up, and the dashboard shows it, in Chromium.
func TestFederationMeasureReachesAgentsAndDashboard(t *testing.T) {
	const falls = "falls_emergency_admissions"
	ctx := context.Background()
	dir := t.TempDir()
	storeDir := filepath.Join(dir, "store")
	store := "file://" + filepath.ToSlash(storeDir)
	st, err := objstore.NewDir(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(dir, "keys")
	if code, _, errs := runCLI(t, "keys", "init", "--out", keys); code != 0 {
		t.Fatalf("keys init: %s", errs)
	}
	coordKey, coordPubFile := filepath.Join(keys, "coordinator.key"), filepath.Join(keys, "coordinator.pub")
	pubPEM, err := os.ReadFile(coordPubFile)
	if err != nil {
		t.Fatal(err)
	}
	coordPub, err := formats.ParsePublicKey(pubPEM)
	if err != nil {
		t.Fatal(err)
	}

	practices := []string{"A81001", "B82002"}
	agents := map[string]*agent.Agent{}
	for _, p := range practices {
		priv, pub, err := agent.InitKeys(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if code, _, errs := runCLI(t, "registry", "add", "--store", store, "--key", coordKey, "--practice", p, "--name", "Surgery "+p, "--public-key", pub); code != 0 {
			t.Fatalf("registry add: %s", errs)
		}
		keyPEM, err := os.ReadFile(priv)
		if err != nil {
			t.Fatal(err)
		}
		key, err := formats.ParsePrivateKey(keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		cfg := &config.Config{Practice: p, KeyFile: priv, Store: store, Spool: filepath.Join(dir, p, "spool"), Policy: formats.PolicyUK.Name,
			Months: config.Months{From: "2024-01", To: "2024-06"}, CoordinatorPublicKey: coordPubFile,
			Plugins: []config.Plugin{{Name: "gp", Path: "/in/process", SHA256: strings.Repeat("0", 64)}}}
		cfg.PluginRunTimeout.Duration = time.Minute
		sp, _, err := spool.Open(cfg.Spool)
		if err != nil {
			t.Fatal(err)
		}
		agents[p] = &agent.Agent{Config: cfg, Key: key, Spool: sp, Uploader: &agent.Uploader{Spool: sp, Store: st, StoreURL: store},
			Launch: func(context.Context, config.Plugin) (agent.Source, error) { return inProcess{gpSource{}}, nil }}
	}
	runAll := func(at time.Time) map[string]*agent.RunReport {
		out := map[string]*agent.RunReport{}
		for _, p := range practices {
			a := agents[p]
			a.Now = func() time.Time { return at }
			rep, err := a.RunOnce(ctx)
			if err != nil || rep.UploadErr != nil {
				t.Fatalf("%s run: %v %v", p, err, rep.UploadErr)
			}
			out[p] = rep
		}
		return out
	}

	// Before the federation defines it, no agent counts it.
	reps := runAll(time.Date(2024, 7, 2, 3, 0, 0, 0, time.UTC))
	if slices.Contains(reps["A81001"].Measures, falls) {
		t.Fatal("an agent counted the falls measure before the federation defined it")
	}
	if !slices.Contains(reps["A81001"].Measures, "acsc_chronic_emergency") {
		t.Errorf("built-in ACSC measure not counted: absent %v", reps["A81001"].Absent)
	}

	// The lead checks the code list, then adds it.
	defFile := filepath.Join(dir, "falls.toml")
	if err := os.WriteFile(defFile, []byte(fallsTOML), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, "measures", "check", defFile, "--codes", "W19,W01.0,R29.6,I10,J45.9")
	if code != 0 || !strings.Contains(out, "MATCHES W19") || !strings.Contains(out, "MATCHES R296") || strings.Count(out, "no match") != 2 {
		t.Fatalf("measures check: %d\n%s%s", code, out, errs)
	}
	t.Logf("measures check:\n%s", out)
	code, out, errs = runCLI(t, "measures", "add", defFile, "--store", store, "--key", coordKey)
	if code != 0 || !strings.Contains(out, "added "+falls) {
		t.Fatalf("measures add: %d %s %s", code, out, errs)
	}
	code, out, _ = runCLI(t, "measures", "list", "--store", store, "--coordinator-pub", coordPubFile)
	if code != 0 || !strings.Contains(out, falls) || !strings.Contains(out, "federation") {
		t.Fatalf("measures list: %d\n%s", code, out)
	}
	t.Logf("measures list:\n%s", out)
	code, out, _ = runCLI(t, "measures", "show", falls, "--store", store, "--coordinator-pub", coordPubFile)
	if code != 0 || !strings.Contains(out, `name = "falls_emergency_admissions"`) {
		t.Fatalf("measures show: %d\n%s", code, out)
	}

	// The agents' next run counts it, and records the definition's digest.
	reps = runAll(time.Date(2024, 7, 3, 3, 0, 0, 0, time.UTC))
	defs, err := formats.ParseDefinitions([]byte(fallsTOML))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range practices {
		if !slices.Contains(reps[p].Measures, falls) || reps[p].DefinitionsErr != nil {
			t.Fatalf("%s's next run did not count the federation's measure: %v %v", p, reps[p].Measures, reps[p].DefinitionsErr)
		}
		raw, _, err := st.Get(ctx, formats.ManifestKey(p, reps[p].RunID), formats.MaxEnvelopeBytes)
		if err != nil {
			t.Fatal(err)
		}
		env, err := formats.ParseEnvelope(raw)
		if err != nil {
			t.Fatal(err)
		}
		var m formats.Manifest
		if err := json.Unmarshal(env.Payload, &m); err != nil {
			t.Fatal(err)
		}
		if m.Definitions[falls] != defs[0].Digest() {
			t.Errorf("%s's manifest records %q for %s, want %s", p, m.Definitions[falls], falls, defs[0].Digest())
		}
	}

	// Served and shown: the server combines, the dashboard draws the new measure.
	toks, err := server.OpenTokens(filepath.Join(dir, "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	lead, _, err := toks.Add("lead", server.RoleLead, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Options{Store: st, Coordinator: coordPub, Tokens: toks, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	// The completeness view says which measures each practice's sources cannot supply.
	req, _ := http.NewRequest("GET", hs.URL+"/api/completeness?practice=A81001", nil)
	req.Header.Set("Authorization", "Bearer "+lead)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var comp struct{ Rows []server.CompletenessRow }
	err = json.NewDecoder(resp.Body).Decode(&comp)
	resp.Body.Close()
	if err != nil || len(comp.Rows) == 0 {
		t.Fatalf("completeness: %v %+v", err, comp)
	}
	if last := comp.Rows[len(comp.Rows)-1]; !strings.Contains(last.Absent, "ae_frequent_attenders: no source supplies ae_attendance events") {
		t.Errorf("completeness of A81001 %s says absent %q", last.Month, last.Absent)
	} else {
		t.Logf("completeness of A81001 %s: absent %q", last.Month, last.Absent)
	}
	code, out, errs = runCLI(t, "query", "--store", store, "--measure", falls, "--format", "csv")
	if code != 0 {
		t.Fatalf("query: %d %s", code, errs)
	}
	// 20 admissions a month at each practice, published as 20: the federation 40 a month.
	if n := strings.Count(out, ","+falls+","); n < 6 || !strings.Contains(out, ",40,") {
		t.Errorf("query of the federation's measure:\n%s", out)
	}

	// A forged file (signed by another key) is refused by the agent, which keeps counting
	// the last good copy and says so.
	_, other, _ := formats.GenerateKey()
	forged, err := formats.SignFederationMeasures(&formats.FederationMeasures{FormatVersion: formats.DefinitionVersion, Measures: defs}, other)
	if err != nil {
		t.Fatal(err)
	}
	good, _, _ := st.Get(ctx, formats.FederationMeasuresKey, formats.MaxEnvelopeBytes)
	if _, err := st.Put(ctx, formats.FederationMeasuresKey, forged); err != nil {
		t.Fatal(err)
	}
	a := agents["A81001"]
	a.Now = func() time.Time { return time.Date(2024, 7, 4, 3, 0, 0, 0, time.UTC) }
	rep, err := a.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.DefinitionsErr == nil || !strings.Contains(rep.DefinitionsErr.Error(), "refused") || !slices.Contains(rep.Measures, falls) {
		t.Errorf("forged measures file: err %v, measures %v (want refused, the cached copy still counted)", rep.DefinitionsErr, rep.Measures)
	}
	if _, err := st.Put(ctx, formats.FederationMeasuresKey, good); err != nil {
		t.Fatal(err)
	}

	exe := chromiumPath(t)
	actx, cancel := chromedp.NewExecAllocator(ctx, chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1366, 900))
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	bctx, cancel = context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()
	var title, desc string
	var points int
	err = chromedp.Run(bctx,
		chromedp.Navigate(hs.URL+"/"), chromedp.WaitVisible("#token", chromedp.ByID),
		chromedp.SendKeys("#token", lead, chromedp.ByID), chromedp.Click("#login-button", chromedp.ByID),
		chromedp.WaitVisible(`#trend-charts figure[data-measure="`+falls+`"]`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelector('#trend-charts figure[data-measure="`+falls+`"]').scrollIntoView()`, nil),
		chromedp.Text(`#trend-charts figure[data-measure="`+falls+`"] h3`, &title, chromedp.ByQuery),
		chromedp.Text(`#trend-charts figure[data-measure="`+falls+`"] p.desc`, &desc, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll('#trend-charts g.pt[data-measure="`+falls+`"]').length`, &points),
	)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(title, "falls emergency admissions") || !strings.Contains(desc, "Riverside federation board") || points != 6 {
		t.Errorf("the dashboard's chart of the federation's measure: title %q, description %q, %d points (want 6 months)", title, desc, points)
	}
	var png []byte
	if err := chromedp.Run(bctx, chromedp.Screenshot(`#trend-charts figure[data-measure="`+falls+`"]`, &png, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	shots := t.TempDir()
	if d := os.Getenv("TRIBUTARY_ARTIFACTS"); d != "" {
		shots = filepath.Join(d, "dashboard")
		if err := os.MkdirAll(shots, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(shots, "federation-measure.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("dashboard chart of %s: %q, %q, %d points; screenshot %s", falls, title, desc, points, path)

	// The lead widens the code list (X59, exposure to an unspecified factor): a new digest.
	// Only A81001's agent runs again; B82002's figures were counted by the old definition, and
	// the combine does not add the two up: B82002 is left out of that measure, and says why.
	wider := strings.Replace(strings.Replace(fallsTOML, `"R29.6"]`, `"R29.6", "X59"]`, 1), "version = 1\ntitle", "version = 2\ntitle", 1)
	if err := os.WriteFile(defFile, []byte(wider), 0o644); err != nil {
		t.Fatal(err)
	}
	widerDefs, err := formats.ParseDefinitions([]byte(wider))
	if err != nil {
		t.Fatal(err)
	}
	if widerDefs[0].Digest() == defs[0].Digest() {
		t.Fatal("a wider code list kept the digest")
	}
	if code, out, errs := runCLI(t, "measures", "add", defFile, "--store", store, "--key", coordKey); code != 0 || !strings.Contains(out, formats.ShortDigest(widerDefs[0].Digest())) {
		t.Fatalf("measures add of the wider list: %d %s %s", code, out, errs)
	}
	a.Now = func() time.Time { return time.Date(2024, 7, 5, 3, 0, 0, 0, time.UTC) }
	if rep, err := a.RunOnce(ctx); err != nil || rep.DefinitionsErr != nil {
		t.Fatalf("A81001's run after the change: %v %v", err, rep.DefinitionsErr)
	}
	if err := srv.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCLI(t, "query", "--store", store, "--measure", falls, "--from", "2024-06", "--to", "2024-06", "--format", "csv")
	if code != 0 || !strings.Contains(out, ",20,") || strings.Contains(out, ",40,") {
		t.Errorf("after the code-list change the federation's %s for 2024-06 must be A81001's 20 alone:\n%s%s", falls, out, errs)
	}
	req, _ = http.NewRequest("GET", hs.URL+"/api/completeness?practice=B82002&from=2024-06&to=2024-06", nil)
	req.Header.Set("Authorization", "Bearer "+lead)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	comp.Rows = nil
	err = json.NewDecoder(resp.Body).Decode(&comp)
	resp.Body.Close()
	wantWhy := falls + ": used definition digest " + formats.ShortDigest(defs[0].Digest()) + ", federation's is " + formats.ShortDigest(widerDefs[0].Digest())
	if err != nil || len(comp.Rows) != 1 || comp.Rows[0].Excluded != wantWhy {
		t.Fatalf("completeness of B82002 after the change: %v %+v, want excluded %q", err, comp.Rows, wantWhy)
	}
	t.Logf("completeness of B82002 2024-06 after the code-list change: excluded %q", comp.Rows[0].Excluded)
	var excludedCells int
	err = chromedp.Run(bctx,
		chromedp.Click(`button[data-page=completeness]`, chromedp.ByQuery),
		chromedp.WaitVisible(`#completeness-grid svg`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelector('#page-completeness details').open = true`, nil),
		chromedp.Evaluate(`Array.from(document.querySelectorAll('#completeness-table td.excluded')).filter(td => td.textContent.includes('used definition digest')).length`, &excludedCells),
	)
	if err != nil {
		t.Fatal(err)
	}
	if excludedCells == 0 {
		t.Error("the dashboard's completeness table does not show the measure left out")
	}
	if err := chromedp.Run(bctx, chromedp.Screenshot(`#page-completeness`, &png, chromedp.ByQuery)); err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(shots, "federation-measure-completeness.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("completeness page: %d cells name a measure left out; screenshot %s", excludedCells, path)
}

// chromiumPath returns Debian's chromium, or skips (fails under CI=true) when it is missing.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium: the browser test needs Debian's chromium package")
	}
	t.Skip("no chromium")
	return ""
}
