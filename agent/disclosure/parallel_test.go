package disclosure

import (
	"slices"
	"testing"

	"github.com/tributary-health/tributary/formats"
)

// TestFamiliesSideBySide checks that auditing the families at the same time (Audit) publishes
// and withholds exactly what auditing them one after another does, with the same stats, under
// both policies: families share nothing, so the order they finish in must not matter.
func TestFamiliesSideBySide(t *testing.T) {
	for _, pol := range formats.Policies {
		for _, size := range []int{600, 2000} {
			tab := syntheticPractice(uint64(size), size, formats.MonthFor(2023, 1), formats.MonthFor(2023, 4))
			got, err := Audit(tab, pol)
			if err != nil {
				t.Fatal(err)
			}
			want := Apply(tab, pol)
			for _, meas := range families(tab.Measures) {
				if err := auditFamily(tab, pol, want, meas, &want.Stats); err != nil {
					t.Fatal(err)
				}
			}
			want.Stats.Protected = 0
			for _, v := range want.Values {
				if pol.Protects(v) {
					want.Stats.Protected++
				}
			}
			if !slices.Equal(got.Values, want.Values) {
				t.Errorf("%s, %d patients: the families audited side by side publish other values than one after another", pol.Name, size)
			}
			if got.Stats != want.Stats {
				t.Errorf("%s, %d patients: stats %+v side by side, %+v one after another", pol.Name, size, got.Stats, want.Stats)
			}
			if want.Stats.Withheld == 0 {
				t.Errorf("%s, %d patients: nothing withheld; the test shows nothing", pol.Name, size)
			}
			t.Logf("%s, %d patients: %+v", pol.Name, size, got.Stats)
		}
	}
}
