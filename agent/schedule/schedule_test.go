package schedule

import (
	"strings"
	"testing"
	"time"
)

func TestNext(t *testing.T) {
	now := time.Date(2025, 3, 10, 14, 30, 0, 0, time.Local)
	tests := []struct {
		expr   string
		jitter time.Duration
		base   time.Time
	}{
		{Default, 0, time.Date(2025, 3, 11, 2, 0, 0, 0, time.Local)},
		{Default, time.Hour, time.Date(2025, 3, 11, 2, 0, 0, 0, time.Local)},
		{"@every 2s", 0, now.Add(2 * time.Second)},
		{"@every 2s", 500 * time.Millisecond, now.Add(2 * time.Second)},
		{"*/15 * * * *", 0, time.Date(2025, 3, 10, 14, 45, 0, 0, time.Local)},
		{"@daily", 0, time.Date(2025, 3, 11, 0, 0, 0, 0, time.Local)},
	}
	for _, tt := range tests {
		s, err := Parse(tt.expr, tt.jitter)
		if err != nil {
			t.Fatalf("%s: %v", tt.expr, err)
		}
		spread := map[time.Time]bool{}
		for range 50 {
			got := s.Next(now)
			if got.Before(tt.base) || (tt.jitter == 0 && !got.Equal(tt.base)) || (tt.jitter > 0 && !got.Before(tt.base.Add(tt.jitter))) {
				t.Fatalf("%s jitter %s: next %s, want in [%s, %s]", tt.expr, tt.jitter, got, tt.base, tt.base.Add(tt.jitter))
			}
			spread[got] = true
		}
		if tt.jitter > 0 && len(spread) < 10 {
			t.Errorf("%s: jitter %s gave only %d distinct times in 50", tt.expr, tt.jitter, len(spread))
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		expr   string
		jitter time.Duration
		want   string
	}{
		{"", 0, "empty schedule"},
		{"every night", 0, "is not a schedule"},
		{"0 2 * *", 0, "five fields"},
		{"61 * * * *", 0, "is not a schedule"},
		{Default, -time.Second, "negative"},
	}
	for _, tt := range tests {
		_, err := Parse(tt.expr, tt.jitter)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q, %s) = %v, want an error saying %q", tt.expr, tt.jitter, err, tt.want)
		}
	}
}
