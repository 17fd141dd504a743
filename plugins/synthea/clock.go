package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/sdk/csvread"
)

// openTable opens dir/name with csvread, which finds columns by header name, so a column set
// that differs between Synthea versions (FIPS, INCOME, extra columns) is read the same way. It
// fails when the file is missing or a required column is absent, because then nothing in it
// can be read, saying what to do about it in Synthea's terms.
func openTable(dir, name string, required ...string) (*csvread.File, error) {
	t, err := csvread.Open(filepath.Join(dir, name), csvread.Options{Required: required})
	var mc *csvread.MissingColumnError
	switch {
	case err == nil:
		return t, nil
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("%s is not in the folder set as dir; point dir at the csv folder of a Synthea export (the one holding patients.csv and encounters.csv)", name)
	case errors.Is(err, csvread.ErrEmpty):
		return nil, fmt.Errorf("%s is empty; it should start with Synthea's header row", name)
	case errors.As(err, &mc), strings.Contains(err.Error(), "header row"):
		return nil, fmt.Errorf("%w; is this a Synthea CSV export?", err)
	}
	return nil, err
}

// clock turns Synthea's UTC timestamps into calendar days in one time zone. It caches the
// zone offset in effect, so most rows cost no time-zone lookup.
type clock struct {
	loc            *time.Location
	zoneStart, end int64 // Unix seconds over which offset holds
	offset         int64
}

func newClock(loc *time.Location) *clock { return &clock{loc: loc, zoneStart: 1, end: 0} }

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

const (
	minTime = -1 << 62
	maxTime = 1 << 62
)

// instant reads a timestamp of encounters.csv: Synthea writes 2006-01-02T15:04:05Z; other
// RFC 3339 forms are accepted too, and a bare date (older exports) is taken as that local day.
// It returns the Unix second (midnight UTC for a bare date) and the local day.
func (c *clock) instant(s string) (sec int64, d formats.Date, ok bool) {
	if len(s) == 20 && s[10] == 'T' && s[19] == 'Z' && s[13] == ':' && s[16] == ':' {
		day, ok1 := parseDay(s[:10])
		h, ok2 := digits(s[11:13])
		m, ok3 := digits(s[14:16])
		sc, ok4 := digits(s[17:19])
		if !ok1 || !ok2 || !ok3 || !ok4 || h > 23 || m > 59 || sc > 60 {
			return 0, 0, false
		}
		sec = day*86400 + h*3600 + m*60 + sc
		return sec, c.day(sec), true
	}
	if len(s) == 10 {
		day, ok := parseDay(s)
		return day * 86400, formats.Date(day), ok
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return 0, 0, false
	}
	sec = t.Unix()
	return sec, c.day(sec), true
}

// parseDay reads YYYY-MM-DD as days since 1970-01-01, checking the day exists.
func parseDay(s string) (int64, bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return 0, false
	}
	y1, ok1 := digits(s[0:2])
	y2, ok2 := digits(s[2:4])
	m, ok3 := digits(s[5:7])
	d, ok4 := digits(s[8:10])
	y := y1*100 + y2
	if !ok1 || !ok2 || !ok3 || !ok4 || y < 1800 || m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return 0, false
	}
	return daysFromCivil(y, m, d), true
}

func digits(s string) (int64, bool) {
	var v int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
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
// Gregorian date, much cheaper than building a time.Time for every row.
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

// maxPatients bounds patients.csv, so positions fit the index's int32.
const maxPatients = 1<<31 - 1

// index finds a patient's position by Synthea Id. Synthea's ids are UUIDs, kept as 16 bytes
// in a map without pointers (small, and not scanned by the garbage collector); any other id
// goes to a map of strings.
type index struct {
	uuids map[[16]byte]int32
	other map[string]int32
}

func newIndex() index { return index{uuids: map[[16]byte]int32{}, other: map[string]int32{}} }

func (x index) lookup(id string) (int32, bool) {
	if u, ok := parseUUID(id); ok {
		i, ok := x.uuids[u]
		return i, ok
	}
	i, ok := x.other[id]
	return i, ok
}

func (x index) add(id string, i int32) {
	if u, ok := parseUUID(id); ok {
		x.uuids[u] = i
	} else {
		x.other[strings.Clone(id)] = i
	}
}

// parseUUID reads a lower-case 8-4-4-4-12 hex id. Upper case is left to the string map, so
// two ids that differ only in case stay two patients, as they are in the file.
func parseUUID(s string) (u [16]byte, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, false
	}
	j := 0
	for i := 0; i < 36; i += 2 {
		if s[i] == '-' {
			i--
			continue
		}
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return u, false
		}
		u[j] = hi<<4 | lo
		j++
	}
	return u, j == 16
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}
