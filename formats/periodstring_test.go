package formats

import (
	"fmt"
	"testing"
)

// TestPeriodStringMatchesFmt: the fmt-free String of months, quarters and years writes what
// the fmt formats did, over every month of years 0 to 9999 and some outside.
func TestPeriodStringMatchesFmt(t *testing.T) {
	for m := Month(-24); m < Month(10001*12); m++ {
		y, mo := m.Year(), int(m.MonthOfYear())
		if got, want := m.String(), fmt.Sprintf("%04d-%02d", y, mo); got != want {
			t.Fatalf("Month(%d).String() = %q, want %q", m, got, want)
		}
		if got, want := QuarterOf(m).String(), fmt.Sprintf("%04d-Q%d", QuarterOf(m).Start.Year(), int(QuarterOf(m).Start.MonthOfYear()-1)/3+1); got != want {
			t.Fatalf("QuarterOf(%d).String() = %q, want %q", m, got, want)
		}
		if got, want := YearOf(m).String(), fmt.Sprintf("%04d", YearOf(m).Start.Year()); got != want {
			t.Fatalf("YearOf(%d).String() = %q, want %q", m, got, want)
		}
	}
}
