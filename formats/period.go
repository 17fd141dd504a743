package formats

import (
	"fmt"
	"strconv"
)

// PeriodKind says how long a Period is.
type PeriodKind uint8

// The kinds of period a published value can cover.
const (
	KindMonth PeriodKind = iota
	KindQuarter
	KindYear
)

// Period is the span of time a published value covers: a calendar month, quarter or year.
// Quarter and year values are sums of their months, for every measure (registered_patients
// included, which makes its quarter and year values patient-months), so any of them can stand
// in for its months.
type Period struct {
	Kind  PeriodKind
	Start Month // first month
}

// MonthPeriod, QuarterOf and YearOf return the month, calendar quarter and calendar year
// containing m.
func MonthPeriod(m Month) Period { return Period{KindMonth, m} }

// QuarterOf returns the calendar quarter containing m.
func QuarterOf(m Month) Period { return Period{KindQuarter, m - m%3} }

// YearOf returns the calendar year containing m.
func YearOf(m Month) Period { return Period{KindYear, m - m%12} }

// Len is the number of months in the period.
func (p Period) Len() int {
	switch p.Kind {
	case KindQuarter:
		return 3
	case KindYear:
		return 12
	}
	return 1
}

// End is the period's last month.
func (p Period) End() Month { return p.Start + Month(p.Len()) - 1 }

// Contains reports whether month m is in the period.
func (p Period) Contains(m Month) bool { return m >= p.Start && m <= p.End() }

// String is YYYY-MM, YYYY-Qn or YYYY.
func (p Period) String() string {
	switch p.Kind {
	case KindQuarter:
		if y := p.Start.Year(); p.Start < 0 || y > 9999 {
			return fmt.Sprintf("%04d-Q%d", y, int(p.Start.MonthOfYear()-1)/3+1)
		}
		return p.Start.String()[:5] + "Q" + string(rune('0'+int(p.Start.MonthOfYear()-1)/3+1))
	case KindYear:
		if y := p.Start.Year(); p.Start < 0 || y > 9999 {
			return fmt.Sprintf("%04d", y)
		}
		return p.Start.String()[:4]
	}
	return p.Start.String()
}

// ParsePeriod reads YYYY-MM, YYYY-Qn or YYYY. Its error does not repeat the input.
func ParsePeriod(s string) (Period, error) {
	bad := errorf("parse period", ErrValue, "not a period; write a month as YYYY-MM, a quarter as YYYY-Q1..YYYY-Q4, a year as YYYY")
	switch {
	case len(s) == 7 && s[4] == '-' && s[5] != 'Q':
		m, err := ParseMonth(s)
		if err != nil {
			return Period{}, bad
		}
		return MonthPeriod(m), nil
	case len(s) == 7 && s[4] == '-' && s[5] == 'Q':
		y, ok := parseYear(s[:4])
		if !ok || s[6] < '1' || s[6] > '4' {
			return Period{}, bad
		}
		return Period{KindQuarter, Month(y*12 + int(s[6]-'1')*3)}, nil
	case len(s) == 4:
		y, ok := parseYear(s)
		if !ok {
			return Period{}, bad
		}
		return Period{KindYear, Month(y * 12)}, nil
	}
	return Period{}, bad
}

func parseYear(s string) (int, bool) {
	if !isDigits(s) {
		return 0, false
	}
	y, err := strconv.Atoi(s)
	if err != nil || y < 1800 || y > 9999 {
		return 0, false
	}
	return y, true
}

// PeriodsOf lists the periods a run over the months from..to publishes, in canonical order:
// every month, then every calendar quarter wholly inside from..to, then every calendar year
// wholly inside it. A quarter or year a run covers only in part is not published: it would
// not be the sum of its months.
func PeriodsOf(from, to Month) []Period {
	if to < from {
		return nil
	}
	out := make([]Period, 0, int(to-from)+1+int(to-from)/3+int(to-from)/12+2)
	for m := from; m <= to; m++ {
		out = append(out, MonthPeriod(m))
	}
	for q := QuarterOf(from); q.Start <= to; q.Start += 3 {
		if q.Start >= from && q.End() <= to {
			out = append(out, q)
		}
	}
	for y := YearOf(from); y.Start <= to; y.Start += 12 {
		if y.Start >= from && y.End() <= to {
			out = append(out, y)
		}
	}
	return out
}

// ComparePeriods orders periods as PeriodsOf does: months, then quarters, then years, each by
// start.
func ComparePeriods(a, b Period) int {
	if a.Kind != b.Kind {
		return int(a.Kind) - int(b.Kind)
	}
	return int(a.Start - b.Start)
}
