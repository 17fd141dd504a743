package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// runCLI runs the command in-process and returns its exit code, stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestWholeFlow runs keys init, registry add/list/revoke, combine and query as a federation
// lead would, on a directory store.
func TestWholeFlow(t *testing.T) {
	dir := t.TempDir()
	storeDir := filepath.Join(dir, "store")
	store := "file://" + filepath.ToSlash(storeDir)
	keys := filepath.Join(dir, "keys")
	if code, out, errs := runCLI(t, "keys", "init", "--out", keys); code != 0 || !strings.Contains(out, "coordinator.pub") {
		t.Fatalf("keys init: %d %s %s", code, out, errs)
	}
	if code, _, errs := runCLI(t, "keys", "init", "--out", keys); code != 1 || !strings.Contains(errs, "never overwritten") {
		t.Errorf("second keys init: %d %s", code, errs)
	}
	coordKey := filepath.Join(keys, "coordinator.key")

	st, err := objstore.NewDir(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	created := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	for i, p := range []string{"A81001", "B82002"} {
		pub, priv, _ := formats.GenerateKey()
		pem, _ := formats.MarshalPublicKey(pub)
		pubFile := filepath.Join(dir, p+".pub")
		if err := os.WriteFile(pubFile, pem, 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, errs := runCLI(t, "registry", "add", "--store", store, "--key", coordKey, "--practice", p, "--name", "Surgery "+p, "--public-key", pubFile)
		if code != 0 || !strings.Contains(out, "registered practice "+p) {
			t.Fatalf("registry add: %d %s %s", code, out, errs)
		}
		run := "20240301T000000Z-0000000" + string(rune('a'+i))
		// One run over January and February: consultations 40-44 female 40 (A) or 50 (B)
		// in each month, 1,000 registered in the band; every other value 0.
		sub := fedgen.Publish(formats.PolicyUK, p, run, formats.MonthFor(2024, time.January), formats.MonthFor(2024, time.February),
			[]string{formats.RegisteredPatients, formats.Consultations}, func(_ formats.Month, measure string, b, x int) int64 {
				if formats.AgeBands[b] != "40-44" || formats.Sexes[x] != "female" {
					return 0
				}
				if measure == formats.RegisteredPatients {
					return 1000
				}
				return int64(40 + 10*i)
			})
		if _, err := fedgen.WriteSubmission(ctx, st, priv, created, sub); err != nil {
			t.Fatal(err)
		}
	}
	if code, out, errs := runCLI(t, "registry", "list", "--store", store, "--coordinator-pub", filepath.Join(keys, "coordinator.pub")); code != 0 ||
		!strings.Contains(out, "Surgery A81001") || !strings.Contains(out, "B82002") {
		t.Fatalf("registry list: %d %s %s", code, out, errs)
	}
	code, out, errs := runCLI(t, "combine", "--store", store, "--key", coordKey)
	if code != 0 || !strings.Contains(out, "combined 2 practices, 4 practice-months (2024-01 to 2024-02) from 2 run files") {
		t.Fatalf("combine: %d %s %s", code, out, errs)
	}
	// Each month: A's 40 (38-42) and B's 50 (48-52); lists of 1,000 (998-1,002) each. The
	// directly standardised rate is the band's rate weighted by its share of the standard
	// population (7,000 of 100,000).
	const header = "period,measure,count,lower,upper,status,method,published_sum,list_size,rate_per_1000,rate_lower,rate_upper,dsr_per_1000,dsr_at_lower,dsr_at_upper,practices,note\n"
	code, out, errs = runCLI(t, "query", "--store", storeDir, "--measure", "consultations", "--by", "month", "--format", "csv")
	want := header +
		"2024-01,consultations,90,86,94,rounded,published,90,2000,45.000,42.914,47.094,3.150,3.004,3.297,2,\n" +
		"2024-02,consultations,90,86,94,rounded,published,90,2000,45.000,42.914,47.094,3.150,3.004,3.297,2,\n"
	if code != 0 || out != want {
		t.Errorf("query: %d %s\n%s\nwant\n%s", code, errs, out, want)
	}
	// Without --by, the rows are by month too.
	if code, out, errs := runCLI(t, "query", "--store", storeDir, "--measure", "consultations", "--format", "csv"); code != 0 || out != want {
		t.Errorf("query without --by: %d %s\n%s\nwant\n%s", code, errs, out, want)
	}
	// By practice alone: one row per practice for the whole period; by month and practice,
	// one per month too.
	for _, tc := range []struct {
		by   string
		rows []string
	}{
		{"practice", []string{"2024-01..2024-02,consultations,A81001,80,", "2024-01..2024-02,consultations,B82002,100,"}},
		{"month,practice", []string{"2024-01,consultations,A81001,40,", "2024-02,consultations,A81001,40,", "2024-01,consultations,B82002,50,", "2024-02,consultations,B82002,50,"}},
	} {
		code, out, errs := runCLI(t, "query", "--store", store, "--measure", "consultations", "--by", tc.by, "--format", "csv")
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if code != 0 || len(lines) != 1+len(tc.rows) || !strings.HasPrefix(lines[0], "period,measure,practice,count,") {
			t.Errorf("query --by %s: %d %s\n%s", tc.by, code, errs, out)
			continue
		}
		for i, row := range tc.rows {
			if !strings.HasPrefix(lines[i+1], row) {
				t.Errorf("query --by %s: row %d is %q, want it to start %q", tc.by, i, lines[i+1], row)
			}
		}
	}
	code, out, errs = runCLI(t, "query", "--store", store, "--measure", "consultations", "--by", "age_band", "--by", "sex", "--from", "2024-02", "--format", "json")
	var res struct {
		Combined string
		By       []string
		Rows     []struct {
			Period  string `json:"period"`
			AgeBand string `json:"age_band"`
			Sex     string `json:"sex"`
			Count   *int64 `json:"count"`
		}
	}
	if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil || len(res.Rows) != formats.NumFine || strings.Join(res.By, ",") != "age_band,sex" {
		t.Fatalf("query --by age_band --by sex as JSON: %d %v %s\n%.300s", code, err, errs, out)
	}
	for _, r := range res.Rows {
		want := int64(0)
		if r.AgeBand == "40-44" && r.Sex == "female" {
			want = 90
		}
		if r.Period != "2024-02" || r.Count == nil || *r.Count != want {
			t.Errorf("February %s %s: %v in %s, want %d", r.AgeBand, r.Sex, r.Count, r.Period, want)
		}
	}
	if code, out, _ := runCLI(t, "query", "--store", store, "--measure", "consultations"); code != 0 || !strings.HasPrefix(strings.TrimSpace(out), "period") || strings.Count(out, "\n") != 3 {
		t.Errorf("query as a table: %d\n%s", code, out)
	}

	// Revoke B: the next combine quarantines its run and says so.
	if code, out, errs := runCLI(t, "registry", "revoke", "--store", store, "--key", coordKey, "--practice", "B82002"); code != 0 || !strings.Contains(out, "revoked key") {
		t.Fatalf("revoke: %d %s %s", code, out, errs)
	}
	code, out, errs = runCLI(t, "combine", "--store", store, "--coordinator-pub", filepath.Join(keys, "coordinator.pub"))
	if code != 0 || !strings.Contains(out, "combined 1 practices, 2 practice-months") || !strings.Contains(errs, "[revoked_key]") {
		t.Errorf("combine after revoke: %d %s %s", code, out, errs)
	}
	if code, out, errs := runCLI(t, "query", "--store", store, "--measure", "consultations", "--to", "2024-01", "--format", "csv"); code != 0 ||
		out != header+"2024-01,consultations,40,38,42,rounded,published,40,1000,40.000,37.924,42.084,2.800,2.655,2.946,1,\n" ||
		!strings.Contains(errs, "1 objects were quarantined") {
		t.Errorf("query after revoke: %d\n%s\n%s", code, out, errs)
	}
	// A combine under another policy than the practices' quarantines every run.
	code, out, errs = runCLI(t, "combine", "--store", store, "--key", coordKey, "--policy", formats.PolicyMidpoint6.Name)
	if code != 0 || !strings.Contains(out, "combined 0 practices, 0 practice-months (no months)") || strings.Count(errs, "[policy]") != 1 {
		t.Errorf("combine under another policy: %d %s %s", code, out, errs)
	}
	if code, _, errs := runCLI(t, "query", "--store", store, "--format", "csv"); code != 0 || !strings.Contains(errs, "no combined figures match") {
		t.Errorf("query of an empty combine: %d %s", code, errs)
	}
}

func TestCommandLineMistakes(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string // in stderr
	}{
		{nil, 2, "Usage:"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"query", "--store", "x", "--from", "2024-13"}, 2, "write it as YYYY-MM"},
		// A value the command does not accept is a usage error too (exit 2); exit 1 is for
		// what goes wrong when acting: files, keys, the store.
		{[]string{"query", "--store", "x", "--measure", "beds"}, 2, "choose one of: registered_patients"},
		{[]string{"query", "--store", "x", "--by", "ward"}, 2, "choose from: month, age_band, sex, practice"},
		{[]string{"query", "--store", "x", "--format", "xml"}, 2, "choose one of: table, csv, json"},
		{[]string{"query", "--store", "x", "--from", "2024-05", "--to", "2024-01"}, 2, "give the earlier month first"},
		{[]string{"combine", "--store", "x"}, 2, "no coordinator key given"},
		{[]string{"combine", "--store", "x", "--key", "/nonexistent/coordinator.key"}, 1, "read the coordinator key"},
		{[]string{"registry", "rename"}, 2, "use add, list or revoke"},
		{[]string{"registry"}, 2, "give a command: add, list or revoke"},
		{[]string{"tokens", "list"}, 2, "pass --file FILE"},
	}
	for _, tc := range tests {
		code, _, errs := runCLI(t, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errs, tc.code, tc.want)
		}
	}
}
