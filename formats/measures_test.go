package formats

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseMonth(t *testing.T) {
	for _, s := range []string{"1800-01", "2024-03", "2024-12", "9999-12"} {
		m, err := ParseMonth(s)
		if err != nil {
			t.Errorf("ParseMonth(%q): %v", s, err)
			continue
		}
		if m.String() != s {
			t.Errorf("ParseMonth(%q).String() = %q", s, m)
		}
	}
	bad := []string{
		"", "2024-3", "2024-13", "2024-00", "1799-12", "10000-01", "2024/03", "2024-03-01",
		"2024-+3", "+024-03", "-024-03", " 2023-03", "2023-03 ", "２０２４-03", "2024-1a", "0x20-03",
	}
	for _, s := range bad {
		_, err := ParseMonth(s)
		if !errors.Is(err, ErrValue) {
			t.Errorf("ParseMonth(%q) = %v, want ErrValue", s, err)
			continue
		}
		// The input may be a patient's birth month; the error must not repeat it.
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("ParseMonth(%q): the error repeats the input: %v", s, err)
		}
	}
}

func TestMonthArithmetic(t *testing.T) {
	for y := 1800; y <= 2100; y++ {
		for mo := time.January; mo <= time.December; mo++ {
			m := MonthFor(y, mo)
			if m.Year() != y || m.MonthOfYear() != mo {
				t.Fatalf("MonthFor(%d, %d) = %d, which is %d-%d", y, mo, m, m.Year(), m.MonthOfYear())
			}
			if got := MonthOf(m.Start()); got != m {
				t.Fatalf("MonthOf(%v.Start()) = %v", m, got)
			}
			if got := MonthOf(m.Start().AddDate(0, 1, 0).Add(-time.Nanosecond)); got != m {
				t.Fatalf("the last instant of %v is in %v", m, got)
			}
			if next := MonthOf(m.Start().AddDate(0, 1, 0)); next != m+1 {
				t.Fatalf("the month after %v is %v, want %v", m, next, m+1)
			}
		}
	}
	if s := Month(0).String(); s != "0000-01" {
		t.Errorf("the zero Month is %q, its doc says 0000-01", s)
	}
}

func TestParseDate(t *testing.T) {
	cases := []struct {
		s    string
		want Date
	}{
		{"1970-01-01", 0},
		{"1970-01-02", 1},
		{"1969-12-31", -1},
		{"2024-02-29", Date(19782)},
		{"2000-03-01", Date(11017)},
	}
	for _, c := range cases {
		d, err := ParseDate(c.s)
		if err != nil || d != c.want {
			t.Errorf("ParseDate(%q) = %d, %v; want %d", c.s, d, err, c.want)
			continue
		}
		if d.String() != c.s {
			t.Errorf("Date(%d).String() = %q, want %q", d, d, c.s)
		}
	}
	for _, s := range []string{"", "2023-02-29", "2024-13-01", "2024-1-01", "24-01-01", "2024-01-01T00:00:00Z", "2024/01/01"} {
		_, err := ParseDate(s)
		if !errors.Is(err, ErrValue) {
			t.Errorf("ParseDate(%q) = %v, want ErrValue", s, err)
		} else if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("ParseDate(%q): the error repeats the input: %v", s, err)
		}
	}
	// DateOf takes the calendar day where t is, so 23:30 in New York on 1 March is 1 March.
	ny := time.FixedZone("EST", -5*3600)
	if got, want := DateOf(time.Date(2024, 3, 1, 23, 30, 0, 0, ny)), Date(19783); got != want {
		t.Errorf("DateOf(1 March 23:30 EST) = %v, want %v", got, want)
	}
	if got := Date(19783).Month(); got != MonthFor(2024, 3) {
		t.Errorf("the month of 2024-03-01 is %v", got)
	}
}

func TestAgeInYears(t *testing.T) {
	born := MonthFor(2000, time.March)
	day := func(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }
	cases := []struct {
		at   time.Time
		want int
	}{
		{day(2000, 3, 1), 0},
		{day(2000, 2, 29), -1}, // before birth
		{day(2001, 2, 28), 0},
		{day(2001, 3, 1), 1}, // the birthday month counts as the birthday
		{day(2024, 2, 29), 23},
		{day(2024, 3, 1), 24},
		{day(2024, 3, 31), 24},
		{day(2024, 12, 31), 24},
		{day(2025, 1, 1), 24},
		{day(2090, 3, 1), 90},
	}
	for _, c := range cases {
		if got := AgeInYears(born, c.at); got != c.want {
			t.Errorf("AgeInYears(born %v, at %v) = %d, want %d", born, c.at.Format(time.DateOnly), got, c.want)
		}
	}
	// Born in January, the age changes on 1 January; born in December, on 1 December.
	if got := AgeInYears(MonthFor(2000, time.January), day(2010, 1, 1)); got != 10 {
		t.Errorf("born January 2000, on 1 January 2010: %d", got)
	}
	if got := AgeInYears(MonthFor(2000, time.December), day(2010, 11, 30)); got != 9 {
		t.Errorf("born December 2000, on 30 November 2010: %d", got)
	}
}

func TestAgeBandOf(t *testing.T) {
	cases := map[int]string{0: "0-4", 4: "0-4", 5: "5-9", 9: "5-9", 14: "10-14", 15: "15-19", 84: "80-84", 85: "85-89", 89: "85-89", 90: "90+", 91: "90+", 150: "90+"}
	for years, want := range cases {
		if i := AgeBandOf(years); i < 0 || AgeBands[i] != want {
			t.Errorf("AgeBandOf(%d) = %d, want %s", years, i, want)
		}
	}
	for _, years := range []int{-1, -100} {
		if i := AgeBandOf(years); i != -1 {
			t.Errorf("AgeBandOf(%d) = %d, want -1", years, i)
		}
	}
	for years := 0; years < 120; years++ {
		i := AgeBandOf(years)
		if AgeBandIndex(AgeBands[i]) != i {
			t.Fatalf("AgeBandIndex(AgeBands[%d]) != %d", i, i)
		}
	}
	if len(AgeBands) != 19 || len(ESP2013) != 19 {
		t.Fatalf("%d bands, %d ESP2013 weights; want 19 of each", len(AgeBands), len(ESP2013))
	}
	total := 0.0
	for _, b := range AgeBands {
		w, ok := ESP2013[b]
		if !ok {
			t.Errorf("no ESP2013 weight for band %s", b)
		}
		total += w
	}
	if total != 100000 {
		t.Errorf("ESP2013 sums to %v, want 100000", total)
	}
	if AgeBandIndex("90-94") != -1 || AgeBandIndex("") != -1 {
		t.Error("AgeBandIndex accepts a band that does not exist")
	}
}

func TestAdmissionMethodFromNHS(t *testing.T) {
	want := map[string][]string{
		MethodElective:  {"11", "12", "13"},
		MethodEmergency: {"21", "22", "23", "24", "25", "2A", "2B", "2C", "2D", "28", "2a", " 21 "},
		MethodOther:     {"31", "32", "81", "82", "83", "26", "27", "2E", "14", "00"},
		MethodUnknown:   {"", " ", "98", "99", "9"},
	}
	for method, codes := range want {
		for _, code := range codes {
			if got := AdmissionMethodFromNHS(code); got != method {
				t.Errorf("AdmissionMethodFromNHS(%q) = %q, want %q", code, got, method)
			}
		}
	}
	for _, m := range []string{MethodElective, MethodEmergency, MethodOther, MethodUnknown} {
		if !ValidAdmissionMethod(m) {
			t.Errorf("ValidAdmissionMethod(%q) is false", m)
		}
	}
}

func TestCatalogue(t *testing.T) {
	if len(Measures) != 9 || len(MeasureDescriptions) != 9 {
		t.Fatalf("%d measures, %d descriptions; README.md's catalogue has 9", len(Measures), len(MeasureDescriptions))
	}
	for _, m := range Measures {
		if !IsKnownMeasure(m) || !MeasureNamePattern.MatchString(m) {
			t.Errorf("measure %q is not known or not a valid name", m)
		}
	}
	for _, bad := range []string{"", "Bed_days", "1abc", "bed days", "bed-days", strings.Repeat("a", 64)} {
		if MeasureNamePattern.MatchString(bad) {
			t.Errorf("MeasureNamePattern accepts %q", bad)
		}
	}
}
