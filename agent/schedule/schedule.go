// Package schedule says when the agent runs next: a cron expression (the machine's local
// time) plus a random delay, so the practices of a federation do not all reach the store in
// the same second.
package schedule

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/robfig/cron/v3"
)

// Default is nightly at 02:00, when practice systems are quiet.
const Default = "0 2 * * *"

// parser reads the five standard fields (minute hour day-of-month month day-of-week) and
// the descriptors @daily, @hourly, @weekly, @monthly and @every DURATION.
var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Schedule is a parsed cron expression with a maximum jitter.
type Schedule struct {
	expr   string
	spec   cron.Schedule
	jitter time.Duration
}

// Parse reads expr and checks jitter, saying how to write them when they are wrong.
func Parse(expr string, jitter time.Duration) (*Schedule, error) {
	if expr == "" {
		return nil, errors.New("empty schedule; write five fields such as \"0 2 * * *\" (02:00 every night) or \"@every 6h\"")
	}
	spec, err := parser.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("%q is not a schedule (%v); write five fields minute hour day month weekday, e.g. \"0 2 * * *\" for 02:00 every night, or \"@daily\" or \"@every 6h\"", expr, err)
	}
	if jitter < 0 {
		return nil, fmt.Errorf("jitter %s is negative; write e.g. \"30m\", or \"0s\" for none", jitter)
	}
	return &Schedule{expr: expr, spec: spec, jitter: jitter}, nil
}

// String returns the expression.
func (s *Schedule) String() string { return s.expr }

// Jitter is the largest random delay added to each run.
func (s *Schedule) Jitter() time.Duration { return s.jitter }

// Next returns the time of the first run after now: the next time the expression names,
// plus a random delay of less than the jitter.
func (s *Schedule) Next(now time.Time) time.Time {
	t := s.spec.Next(now)
	if s.jitter > 0 {
		t = t.Add(rand.N(s.jitter))
	}
	return t
}
