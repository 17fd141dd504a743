package server

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/formats"
)

// TestRevisionsArePublishedOutputsOnly: after kill -9 mid-combine, never-published outputs
// appeared in /api/revisions, and one damaged old output made it answer 500 to every caller,
// naming an internal key. Revisions now come from the published history only, and an
// output that cannot be read is skipped and named.
func TestRevisionsArePublishedOutputsOnly(t *testing.T) {
	f := newFixture(t, 3, 2)
	first := f.srv.snap.Load().ptr.ID
	// A revision: practice 0 submits again, and the server combines again.
	p := f.fed.Practices[0]
	sub := f.fed.Submission(0)
	sub.RunID = formats.NewRunID(p.Created.Add(time.Hour))
	for i := range sub.Cells {
		if sub.Cells[i].Measure == formats.Admissions {
			sub.Cells[i].Protected = formats.PolicyUK.Apply(0)
		}
	}
	if _, err := fedgen.WriteSubmission(f.ctx, f.st, p.Key, p.Created.Add(time.Hour), sub); err != nil {
		t.Fatal(err)
	}
	if err := f.srv.Refresh(f.ctx); err != nil {
		t.Fatal(err)
	}
	second := f.srv.snap.Load().ptr.ID
	// An output a killed combine wrote and never published, and damage to the first one.
	unpublished := combine.CombinedPrefix + strings.Repeat("e", 32) + "/" + combine.FederationArrow
	if _, err := f.st.Put(f.ctx, unpublished, []byte("half")); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.Put(f.ctx, combine.CombinedPrefix+first+"/"+combine.FederationArrow, []byte("damaged")); err != nil {
		t.Fatal(err)
	}
	f.srv.hist = newHistory(f.st) // a server started afresh reads the outputs from the store
	code, body := f.get(RoleLead, "/api/revisions?measure=admissions&month=2024-01")
	if code != http.StatusOK {
		t.Fatalf("revisions with a damaged old output: %d %s", code, body)
	}
	var res struct {
		Rows    []FigureRevision
		Skipped []string
	}
	if err := json.Unmarshal(body, &res); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range res.Rows {
		ids = append(ids, r.Combined)
	}
	if !slices.Equal(ids, []string{second}) || !slices.Equal(res.Skipped, []string{first}) {
		t.Errorf("revisions from %v, skipped %v; want %s, with %s skipped (and never the unpublished output)", ids, res.Skipped, second, first)
	}
	if strings.Contains(string(body), strings.Repeat("e", 32)) {
		t.Error("an output that was never published is listed")
	}
}
