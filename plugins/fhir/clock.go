package main

import (
	"time"

	"github.com/tributary-health/tributary/formats"
)

// clock places FHIR instants in the practice's calendar: a dateTime with an offset
// (2021-06-30T19:30:00-04:00) is an instant, which becomes the calendar day in the practice's
// time zone. It caches the zone offset in effect, so most values cost no time-zone lookup.
type clock struct {
	loc            *time.Location
	zoneStart, end int64 // Unix seconds over which offset holds
	offset         int64
}

func newClock(loc *time.Location) *clock { return &clock{loc: loc, zoneStart: 1, end: 0} }

const (
	minTime = -1 << 62
	maxTime = 1 << 62
)

// day returns the local calendar day of Unix time sec.
func (c *clock) day(sec int64) formats.Date {
	if sec < c.zoneStart || sec >= c.end {
		t := time.Unix(sec, 0).In(c.loc)
		_, off := t.Zone()
		c.offset = int64(off)
		s, e := t.ZoneBounds()
		c.zoneStart, c.end = minTime, maxTime
		if !s.IsZero() {
			c.zoneStart = s.Unix()
		}
		if !e.IsZero() {
			c.end = e.Unix()
		}
	}
	return formats.Date(floorDiv(sec+c.offset, 86400))
}

// instant reads a FHIR date or dateTime that names a day: 2021-06-30T19:30:00-04:00 (any
// fraction of a second, Z or an offset) is that instant, placed in the practice's calendar;
// a date without a time, 2021-06-30, is that day as it is; a dateTime without an offset
// (which FHIR does not allow) is read as the practice's local time. It returns the Unix
// second (midnight UTC for a bare date) and the day; ok is false for a partial date (2021,
// 2021-06) or anything else.
func (c *clock) instant(b []byte) (sec int64, d formats.Date, ok bool) {
	day, ok := parseDay(b)
	if !ok {
		return 0, 0, false
	}
	if len(b) == 10 {
		return day * 86400, formats.Date(day), true
	}
	if len(b) < 19 || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return 0, 0, false
	}
	h, ok1 := digits(b[11:13])
	m, ok2 := digits(b[14:16])
	sc, ok3 := digits(b[17:19])
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || sc > 60 {
		return 0, 0, false
	}
	sec = day*86400 + h*3600 + m*60 + sc
	rest := b[19:]
	if len(rest) > 0 && rest[0] == '.' {
		j := 1
		for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		if j == 1 {
			return 0, 0, false
		}
		rest = rest[j:]
	}
	switch {
	case len(rest) == 1 && rest[0] == 'Z':
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, ok1 := digits(rest[1:3])
		om, ok2 := digits(rest[4:6])
		if !ok1 || !ok2 || oh > 14 || om > 59 {
			return 0, 0, false
		}
		off := oh*3600 + om*60
		if rest[0] == '+' {
			off = -off
		}
		sec += off
	case len(rest) == 0:
		// No offset: local wall time. Take the offset in force near it.
		lt := time.Unix(sec, 0).UTC()
		local := time.Date(lt.Year(), lt.Month(), lt.Day(), lt.Hour(), lt.Minute(), lt.Second(), 0, c.loc)
		sec = local.Unix()
	default:
		return 0, 0, false
	}
	return sec, c.day(sec), true
}

// civilDay reads the date part of a FHIR date or dateTime as it is written, ignoring any time
// and offset: the extractor reads birth and death dates this way (see the README). ok is false
// for a partial date.
func civilDay(b []byte) (formats.Date, bool) {
	if len(b) > 10 && b[10] != 'T' {
		return 0, false
	}
	if len(b) > 10 {
		b = b[:10]
	}
	d, ok := parseDay(b)
	return formats.Date(d), ok
}

// birthMonth reads a birthDate as its month: 1984-07-23 or 1984-07. ok is false for a bare
// year.
func birthMonth(b []byte) (formats.Month, formats.Date, bool) {
	if len(b) == 7 && b[4] == '-' {
		y, ok1 := digits(b[:4])
		m, ok2 := digits(b[5:7])
		if !ok1 || !ok2 || y < 1800 || m < 1 || m > 12 {
			return 0, 0, false
		}
		month := formats.MonthFor(int(y), time.Month(m))
		return month, formats.DateOf(month.Start()), true
	}
	d, ok := civilDay(b)
	if !ok {
		return 0, 0, false
	}
	return d.Month(), d, true
}

// parseDay reads the YYYY-MM-DD at the start of b as days since 1970-01-01, checking the day
// exists.
func parseDay(b []byte) (int64, bool) {
	if len(b) < 10 || b[4] != '-' || b[7] != '-' {
		return 0, false
	}
	y, ok1 := digits(b[0:4])
	m, ok2 := digits(b[5:7])
	d, ok3 := digits(b[8:10])
	if !ok1 || !ok2 || !ok3 || y < 1800 || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return 0, false
	}
	return daysFromCivil(y, m, d), true
}

func digits(b []byte) (int64, bool) {
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, len(b) > 0
}

func daysIn(y, m int64) int64 {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysFromCivil is Howard Hinnant's days_from_civil: days since 1970-01-01 of a proleptic
// Gregorian date.
func daysFromCivil(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := floorDiv(y, 400)
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
