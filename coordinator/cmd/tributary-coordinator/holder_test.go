package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/secagg"
)

// TestHolderCommands runs secure aggregation through the command line on a local store:
// 'holder keys init' at each holder, 'holder register' at the coordinator, four practices'
// runs with shares for both, 'holder run' at the helper and the leader at once, and 'holder
// figures', whose monthly totals are within 2 of the practices' true sums and marked secure.
func TestHolderCommands(t *testing.T) {
	dir := t.TempDir()
	store := filepath.Join(dir, "store")
	ctx := context.Background()
	cmd := func(args ...string) (string, string, int) {
		var out, errb bytes.Buffer
		code := run(ctx, args, &out, &errb)
		return out.String(), errb.String(), code
	}
	for _, h := range [][2]string{{"federation", "leader"}, {"icb", "helper"}} {
		out, errs, code := cmd("holder", "keys", "init", "--id", h[0], "--role", h[1], "--out", filepath.Join(dir, h[0]))
		if code != 0 || !strings.Contains(out, "[[secure_aggregation.holders]]") || !strings.Contains(out, `role = "`+h[1]+`"`) {
			t.Fatalf("keys init %s: %d %s %s", h[0], code, out, errs)
		}
	}
	if _, _, code := cmd("holder", "keys", "init", "--id", "federation", "--role", "leader", "--out", filepath.Join(dir, "federation")); code == 0 {
		t.Error("keys init overwrote a holder's key")
	}
	fed := fedgen.New(fedgen.Params{Practices: 4, Months: 2, Start: formats.MonthFor(2024, 1), Seed: 5, Realistic: true})
	coordKey := filepath.Join(dir, "coordinator.key")
	pem, err := formats.MarshalPrivateKey(fed.Coordinator)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(coordKey, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	leaderPub, helperPub := filepath.Join(dir, "federation", "federation.holder.json"), filepath.Join(dir, "icb", "icb.holder.json")
	if out, errs, code := cmd("holder", "register", "--store", store, "--key", coordKey, "--leader", leaderPub, "--helper", helperPub); code != 0 {
		t.Fatalf("register: %s %s", out, errs)
	}
	st, err := objstore.Open(ctx, "file://"+store, objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := formats.SignRegistry(fed.Registry(), fed.Coordinator)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(ctx, formats.RegistryKey, reg); err != nil {
		t.Fatal(err)
	}
	var to [2]secagg.Recipient
	for i, p := range []string{leaderPub, helperPub} {
		h, err := readHolderPublic(p)
		if err != nil {
			t.Fatal(err)
		}
		to[i] = h.Recipient()
	}
	for i := range fed.Practices {
		if err := fed.WriteSecureRun(ctx, st, i, to, nil); err != nil {
			t.Fatal(err)
		}
	}

	holderRun := func(id, peer string) []string {
		return []string{"holder", "run", "--store", store, "--key", coordKey, "--holder-key", filepath.Join(dir, id, id+".holder.key"),
			"--peer", peer, "--state", filepath.Join(dir, id, "state"), "--poll", "20ms", "--wait", "2m"}
	}
	var wg sync.WaitGroup
	var hout, herr string
	var hcode int
	wg.Add(1)
	go func() {
		defer wg.Done()
		hout, herr, hcode = cmd(holderRun("icb", leaderPub)...)
	}()
	lout, lerr, lcode := cmd(holderRun("federation", helperPub)...)
	wg.Wait()
	if lcode != 0 || hcode != 0 {
		t.Fatalf("holder run: leader %d\n%s%s\nhelper %d\n%s%s", lcode, lout, lerr, hcode, hout, herr)
	}
	if !strings.Contains(lout, "8 report(s) prepared") || !strings.Contains(lout, "published federation/secure/") || strings.Contains(lout, "rejected") {
		t.Errorf("leader's output:\n%s", lout)
	}
	if !strings.Contains(hout, "(helper): 8 report(s) prepared") {
		t.Errorf("helper's output:\n%s", hout)
	}

	out, errs, code := cmd("holder", "figures", "--store", store, "--key", coordKey)
	if code != 0 {
		t.Fatalf("figures: %s %s", out, errs)
	}
	for m := fed.Start; m < fed.Start+2; m++ {
		var truth int64
		for i := range fed.Practices {
			for fine := range formats.NumFine {
				b, x := formats.ShapeDims(fine)
				truth += fed.SecureTrue(i, m, formats.Admissions, b, x)
			}
		}
		row := regexp.MustCompile(m.String() + `\s+admissions\s+(\d+)\s+(\d+)\s+(\d+)\s+rounded\s+4\s+secure`).FindStringSubmatch(out)
		if row == nil {
			t.Fatalf("no secure admissions row for %s:\n%s", m, out)
		}
		count, _ := strconv.ParseInt(row[1], 10, 64)
		lower, _ := strconv.ParseInt(row[2], 10, 64)
		upper, _ := strconv.ParseInt(row[3], 10, 64)
		if count < truth-2 || count > truth+2 || lower > truth || upper < truth {
			t.Errorf("%s admissions: %d [%d, %d], the practices' true sum is %d", m, count, lower, upper, truth)
		}
	}

	// The combine verifies the secure totals and uses them for the federation's figures; query
	// with the coordinator's key also lists the holders' own after the table.
	if out, errs, code := cmd("combine", "--store", store, "--key", coordKey); code != 0 ||
		!regexp.MustCompile(`secure aggregation: \d+ month total\(s\) of 2 month\(s\) are the holders' secure totals`).MatchString(out) {
		t.Fatalf("combine: %s %s", out, errs)
	}
	out, errs, code = cmd("query", "--store", store, "--key", coordKey, "--measure", "admissions", "--by", "month")
	table, sec, ok := strings.Cut(out, "secure totals of the same months")
	if code != 0 || !ok || len(regexp.MustCompile(`(?m)^\s+2024-0[12]\s+admissions\s+\d+\s+\d+\s+\d+\s+rounded\s+4\s+secure`).FindAllString(sec, -1)) != 2 {
		t.Errorf("query --key: %d\n%s\n%s", code, out, errs)
	}
	// The combined table itself answers the months from the secure totals: the same counts.
	for _, m := range []string{"2024-01", "2024-02"} {
		inTable := regexp.MustCompile(`(?m)^\s*` + m + `\s+admissions\s+(\d+)\s+(\d+)\s+(\d+)\s+rounded\s+secure\s`).FindStringSubmatch(table)
		inSecure := regexp.MustCompile(`(?m)^\s+` + m + `\s+admissions\s+(\d+)\s+(\d+)\s+(\d+)\s`).FindStringSubmatch(sec)
		if inTable == nil || inSecure == nil || inTable[1] != inSecure[1] || inTable[2] != inSecure[2] || inTable[3] != inSecure[3] {
			t.Errorf("query's %s admissions row is not the secure total:\n%s", m, out)
		}
	}
	if out, _, _ := cmd("query", "--store", store, "--measure", "admissions", "--by", "practice"); strings.Contains(out, "secure") {
		t.Errorf("a breakdown by practice shows secure figures; practices' rows are their own releases:\n%s", out)
	}
}
