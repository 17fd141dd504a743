package query_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/coordinator/query"
	"github.com/tributary-health/tributary/coordinator/registry"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// TestFederationRevealsNoSuppressedCell attacks the federation figures by brute force. Two
// practices have true counts x1 and x2 in one cell (0..9 each, every pair); each publishes
// its file through the policy (the cell, its band and sex margins and the total) and the
// coordinator combines them. The attacker is practice 1: it knows x1 exactly and sees every
// federation figure at every breakdown (counts, which include estimates, published sums and
// bounds) and practice 2's published values. For every such view in which practice 2's cell
// is suppressed, at least two values of x2 must remain possible.
func TestFederationRevealsNoSuppressedCell(t *testing.T) {
	if testing.Short() {
		t.Skip("100 combines")
	}
	ctx := context.Background()
	const top = 9
	_, coord, _ := formats.GenerateKey()
	keys := []ed25519.PrivateKey{}
	for i := 0; i < 2; i++ {
		_, k, _ := formats.GenerateKey()
		keys = append(keys, k)
	}
	jan := formats.MonthFor(2024, 1)
	views := map[string]map[int64]bool{}
	for x1 := int64(0); x1 <= top; x1++ {
		for x2 := int64(0); x2 <= top; x2++ {
			st, err := objstore.NewDir(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			for i, x := range []int64{x1, x2} {
				id := fmt.Sprintf("P%d", i+1)
				if _, err := registry.Add(ctx, st, coord, id, id, keys[i].Public().(ed25519.PublicKey), time.Unix(0, 0)); err != nil {
					t.Fatal(err)
				}
				band40, female := formats.AgeBandIndex("40-44"), 0
				s := fedgen.Publish(formats.PolicyUK, id, "20240201T000000Z-0000000"+fmt.Sprint(i), jan, jan, []string{formats.AEAttendances},
					func(_ formats.Month, _ string, b, sex int) int64 {
						if b == band40 && sex == female {
							return x
						}
						return 0
					})
				if _, err := fedgen.WriteSubmission(ctx, st, keys[i], time.Unix(1, 0), s); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := combine.Run(ctx, st, coord.Public().(ed25519.PublicKey), combine.Options{}); err != nil {
				t.Fatal(err)
			}
			c, err := query.Open(ctx, st)
			if err != nil {
				t.Fatal(err)
			}
			view := fmt.Sprintf("x1=%d", x1)
			for _, by := range [][]string{nil, {query.ByAgeBand}, {query.BySex}, {query.ByAgeBand, query.BySex}, {query.ByPractice}, {query.ByPractice, query.ByAgeBand, query.BySex}} {
				q, err := c.Run(query.Request{By: by})
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range q.Rows {
					if r.AgeBand != "" && r.AgeBand != "40-44" || r.Sex != "" && r.Sex != "female" {
						continue
					}
					count := "null"
					if r.Count != nil {
						count = fmt.Sprint(*r.Count)
					}
					view += fmt.Sprintf(" %v%s%s%s:%s(%d)[%d,%d]", by, r.AgeBand, r.Sex, r.Practice, count, r.PublishedSum, r.Lower, r.Upper)
				}
			}
			if formats.PolicyUK.Apply(x2).Status != formats.StatusSuppressed {
				continue
			}
			if views[view] == nil {
				views[view] = map[int64]bool{}
			}
			views[view][x2] = true
		}
	}
	if len(views) == 0 {
		t.Fatal("no view with a suppressed cell")
	}
	fewest := top + 1
	for v, xs := range views {
		fewest = min(fewest, len(xs))
		if len(xs) < 2 {
			t.Errorf("practice 1 can derive practice 2's suppressed count %v from: %s", xs, v)
		}
	}
	t.Logf("%d attacker views with practice 2's cell suppressed: in each, at least %d values of it remain possible", len(views), fewest)
}
