package combine_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"testing"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/coordinator/query"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/miniotest"
	"github.com/tributary-health/tributary/internal/objstore"
)

// TestCombineOnMinIO combines the same generated federation in a real MinIO bucket and in a
// directory store: the outputs must be the same bytes under the same names, quarantine
// included, and a query must read them back from S3.
func TestCombineOnMinIO(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a MinIO server")
	}
	ctx := context.Background()
	fed := fedgen.New(fedgen.Params{Practices: 4, Months: 3, Seed: 7})
	s3 := miniotest.Shared(t).Store(t, "")
	dir, err := objstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var results []*combine.Result
	for _, st := range []objstore.Store{s3, dir} {
		if err := fed.Write(ctx, st, 2); err != nil {
			t.Fatal(err)
		}
		// One practice's file changed after signing: quarantined on both.
		bad := formats.SubmissionKey(fed.Practices[2].ID, fed.Practices[2].RunID)
		data, _, err := st.Get(ctx, bad, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		data[len(data)/2] ^= 1
		if _, err := st.Put(ctx, bad, data); err != nil {
			t.Fatal(err)
		}
		res, err := combine.Run(ctx, st, fed.Coordinator.Public().(ed25519.PublicKey), combine.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Report.Quarantined) != 1 || res.Report.Quarantined[0].Key != bad || res.Report.FilesCombined != 3 || res.Report.MonthsCombined != 9 {
			t.Fatalf("combined %d files (%d practice-months), quarantined %+v; want 3 (9) and %s", res.Report.FilesCombined, res.Report.MonthsCombined, res.Report.Quarantined, bad)
		}
		results = append(results, res)
	}
	if results[0].Pointer.ID != results[1].Pointer.ID {
		t.Fatalf("MinIO output %s, directory output %s: the same inputs must give the same name", results[0].Pointer.ID, results[1].Pointer.ID)
	}
	for name, ref := range results[0].Pointer.Objects {
		a, _, err := s3.Get(ctx, ref.Key, ref.Size)
		if err != nil {
			t.Fatal(err)
		}
		b, _, err := dir.Get(ctx, ref.Key, ref.Size)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs between MinIO and the directory store", name)
		}
	}
	c, err := query.Open(ctx, s3)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		by   []string
		rows int
	}{
		{[]string{query.ByPractice}, 3},                // one row per practice combined, for the whole period
		{[]string{query.ByMonth, query.ByPractice}, 9}, // and by month
	} {
		res, err := c.Run(query.Request{Measures: []string{formats.Consultations}, By: tc.by})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Rows) != tc.rows {
			t.Errorf("by %v: %d rows, want %d", tc.by, len(res.Rows), tc.rows)
		}
		for _, r := range res.Rows {
			if r.Practice == fed.Practices[2].ID {
				t.Errorf("by %v: a row of the practice whose run was quarantined: %+v", tc.by, r)
			}
		}
	}
}
