package e2e

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/coordinator/query"
	"github.com/tributary-health/tributary/demo"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/internal/synthgen"
	"github.com/tributary-health/tributary/internal/testenv"
)

// TestRevision: a practice resubmits a month with corrected data. The combined figures follow
// the newest revision, both revisions stay in the store, and query reports the newest.
func TestRevision(t *testing.T) {
	ctx := context.Background()
	plugin := testenv.Binary(t, "./plugins/synthea")
	practices, work := t.TempDir(), t.TempDir()
	from, to := formats.MonthFor(2024, 1), formats.MonthFor(2024, 3)
	if _, err := synthgen.WriteFederation(practices, 3, synthgen.Config{Seed: 7, Patients: 1500,
		From: time.Date(2023, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2024, 4, 1, 0, 0, 0, 0, time.UTC)}); err != nil {
		t.Fatal(err)
	}
	opts := demo.Options{Practices: practices, Workdir: work, Plugin: plugin, From: from, To: to}
	if _, err := demo.Run(ctx, opts); err != nil {
		t.Fatal(err)
	}
	st, err := objstore.Open(ctx, "file://"+filepath.Join(work, "store"), objstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	feb := formats.MonthFor(2024, 2)
	before := consultations(t, ctx, st, feb)
	if before["P002"] <= 0 || before[""] <= before["P002"] {
		t.Fatalf("need P002 consultations in February to correct: %v", before)
	}

	// The correction: P002's system had recorded February's consultations twice over; the
	// corrected export has none in February at all.
	p2 := filepath.Join(t.TempDir(), "P002")
	copyDir(t, filepath.Join(practices, "P002"), p2)
	dropMonth(t, filepath.Join(p2, "encounters.csv"), "2024-02", "ambulatory", "wellness", "virtual", "urgentcare")
	opts.Practices = filepath.Dir(p2)
	if _, err := demo.Run(ctx, opts); err != nil {
		t.Fatal(err)
	}
	after := consultations(t, ctx, st, feb)
	if after["P002"] != 0 {
		t.Errorf("P002's February consultations after the correction = %d, want 0", after["P002"])
	}
	if want := before[""] - before["P002"]; after[""] != want {
		t.Errorf("federation February consultations = %d after the correction, want %d (before %d, less P002's %d)", after[""], want, before[""], before["P002"])
	}
	for _, p := range []string{"P001", "P003"} {
		if after[p] != before[p] {
			t.Errorf("%s changed from %d to %d though it did not resubmit", p, before[p], after[p])
		}
	}
	objs, err := st.List(ctx, formats.PracticePrefix("P002"))
	if err != nil {
		t.Fatal(err)
	}
	manifests := 0
	for _, o := range objs {
		if strings.HasSuffix(o.Key, formats.ManifestName) {
			manifests++
		}
	}
	if manifests != 2 {
		t.Errorf("P002 has %d runs in the store, want both revisions (2)", manifests)
	}
}

// consultations returns February's published consultations per practice and, under "", for
// the federation.
func consultations(t *testing.T, ctx context.Context, st objstore.Store, m formats.Month) map[string]int64 {
	t.Helper()
	c, err := query.Open(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, by := range [][]string{nil, {query.ByPractice}} {
		q, err := c.Run(query.Request{Measures: []string{formats.Consultations}, From: m, To: m, By: by})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range q.Rows {
			if r.Count == nil {
				t.Fatalf("%+v: a whole month's consultations should not be suppressed here", r)
			}
			out[r.Practice] = *r.Count
		}
	}
	return out
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	if err := os.MkdirAll(to, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// dropMonth removes the encounters of the given classes starting in month (YYYY-MM, UTC).
func dropMonth(t *testing.T, path, month string, classes ...string) {
	t.Helper()
	header, rows := readCSV(t, path)
	col := index(header)
	var kept [][]string
	dropped := 0
	for _, r := range rows {
		drop := strings.HasPrefix(r[col["START"]], month)
		if drop {
			drop = false
			for _, c := range classes {
				drop = drop || r[col["ENCOUNTERCLASS"]] == c
			}
		}
		if drop {
			dropped++
			continue
		}
		kept = append(kept, r)
	}
	if dropped == 0 {
		t.Fatal("nothing to drop")
	}
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write(header)
	w.WriteAll(kept)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
