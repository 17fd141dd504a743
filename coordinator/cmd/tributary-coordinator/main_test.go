package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// cli runs the command in-process and returns its exit code, stdout and stderr.
func cli(t *testing.T, args ...string) (int, string, string) {
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
	if code, out, errs := cli(t, "keys", "init", "--out", keys); code != 0 || !strings.Contains(out, "coordinator.pub") {
		t.Fatalf("keys init: %d %s %s", code, out, errs)
	}
	if code, _, errs := cli(t, "keys", "init", "--out", keys); code != 1 || !strings.Contains(errs, "never overwritten") {
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
		code, out, errs := cli(t, "registry", "add", "--store", store, "--key", coordKey, "--practice", p, "--name", "Surgery "+p, "--public-key", pubFile)
		if code != 0 || !strings.Contains(out, "registered practice "+p) {
			t.Fatalf("registry add: %d %s %s", code, out, errs)
		}
		run := "20240301T000000Z-0000000" + string(rune('a'+i))
		var subs []*formats.Submission
		for _, m := range []string{"2024-01", "2024-02"} {
			month, _ := formats.ParseMonth(m)
			subs = append(subs, &formats.Submission{Practice: p, Period: month, RunID: run, Policy: formats.PolicyUK.Name,
				Extractors: []string{"hand@1"}, Cells: []formats.Cell{
					{Measure: formats.Consultations, AgeBand: "40-44", Sex: "female", Protected: formats.PolicyUK.Apply(int64(40 + 10*i))},
					{Measure: formats.RegisteredPatients, AgeBand: "40-44", Sex: "female", Protected: formats.PolicyUK.Apply(1000)},
				}})
		}
		if _, err := fedgen.WriteSubmissions(ctx, st, priv, created, subs...); err != nil {
			t.Fatal(err)
		}
	}
	if code, out, errs := cli(t, "registry", "list", "--store", store, "--coordinator-pub", filepath.Join(keys, "coordinator.pub")); code != 0 ||
		!strings.Contains(out, "Surgery A81001") || !strings.Contains(out, "B82002") {
		t.Fatalf("registry list: %d %s %s", code, out, errs)
	}
	code, out, errs := cli(t, "combine", "--store", store, "--key", coordKey)
	if code != 0 || !strings.Contains(out, "combined 2 practices, 4 practice-months (2024-01 to 2024-02)") {
		t.Fatalf("combine: %d %s %s", code, out, errs)
	}
	code, out, errs = cli(t, "query", "--store", storeDir, "--measure", "consultations", "--by", "month", "--format", "csv")
	want := `month,measure,count,lower,upper,estimate,status,list_size,rate_per_1000,rate_lower,rate_upper,practices
2024-01,consultations,90,86,94,90.0,rounded,2000,45.000,43.000,47.000,2
2024-02,consultations,90,86,94,90.0,rounded,2000,45.000,43.000,47.000,2
`
	if code != 0 || out != want {
		t.Errorf("query: %d %s\n%s\nwant\n%s", code, errs, out, want)
	}

	// Revoke B: the next combine quarantines its run and says so.
	if code, out, errs := cli(t, "registry", "revoke", "--store", store, "--key", coordKey, "--practice", "B82002"); code != 0 || !strings.Contains(out, "revoked key") {
		t.Fatalf("revoke: %d %s %s", code, out, errs)
	}
	code, out, errs = cli(t, "combine", "--store", store, "--coordinator-pub", filepath.Join(keys, "coordinator.pub"))
	if code != 0 || !strings.Contains(out, "combined 1 practices") || !strings.Contains(errs, "[revoked_key]") {
		t.Errorf("combine after revoke: %d %s %s", code, out, errs)
	}
	if code, out, errs := cli(t, "query", "--store", store, "--measure", "consultations", "--to", "2024-01", "--format", "csv"); code != 0 ||
		!strings.Contains(out, "2024-01,consultations,40,38,42,40.0,rounded,1000,40.000,38.000,42.000,1\n") ||
		!strings.Contains(errs, "1 objects were quarantined") {
		t.Errorf("query after revoke: %d\n%s\n%s", code, out, errs)
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
		{[]string{"query", "--store", "x", "--measure", "beds"}, 1, "choose one of: registered_patients"},
		{[]string{"query", "--store", "x", "--by", "ward"}, 1, "choose from: month, age_band, sex, practice"},
		{[]string{"query", "--store", "x", "--format", "xml"}, 1, "choose one of: table, csv, json"},
		{[]string{"query", "--store", "x", "--from", "2024-05", "--to", "2024-01"}, 1, "give the earlier month first"},
		{[]string{"combine", "--store", "x"}, 1, "no coordinator key given"},
		{[]string{"registry", "rename"}, 2, "use add, list or revoke"},
	}
	for _, tc := range tests {
		code, _, errs := cli(t, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errs, tc.code, tc.want)
		}
	}
}
