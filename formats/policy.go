package formats

import "fmt"

// Cell statuses.
const (
	StatusRounded    = "rounded"    // the count is published, rounded by the policy
	StatusSuppressed = "suppressed" // the count is withheld (null); lower and upper bound it
	// StatusWithheld marks a margin the agent did not publish at all (count and bounds null):
	// secondary suppression, because publishing it beside the other values would pin down
	// a small count (see SECONDARY SUPPRESSION in formats/README.md). Readers rebuild it
	// from the finer values it sums.
	StatusWithheld = "withheld"
)

// Policy is a statistical disclosure control policy. Only the named policies below exist: a
// policy is chosen per federation by name and recorded in every file, and no caller can make a
// weaker one.
type Policy struct {
	Name        string
	Description string
	// SuppressMax: counts from 1 to SuppressMax are withheld. Zero means no suppression.
	SuppressMax int64
	// Rounding is "nearest5" or "midpoint6".
	Rounding string
	// ProtectMax: true counts 1..ProtectMax are the small counts the policy protects. No
	// combination of published values may pin one of them down to a single value; the
	// agent's disclosure audit withholds margins until none can.
	ProtectMax int64
}

// The policies a federation can choose from.
var (
	// PolicyUK is the default: the rule used by OpenSAFELY and NHS Digital's hospital
	// statistics. Counts 1-7 are suppressed; every other count is rounded to the nearest 5.
	PolicyUK = Policy{
		Name:        "uk-suppress-1-7-round-5",
		Description: "counts 1-7 suppressed; every other count rounded to the nearest 5",
		SuppressMax: 7,
		Rounding:    "nearest5",
		ProtectMax:  7,
	}
	// PolicyMidpoint6 is OpenSAFELY's midpoint-6 rounding: 0 stays 0, and any other count is
	// replaced by the midpoint of its block of six (1-6 -> 3, 7-12 -> 9, ...). Nothing is
	// suppressed, because no published value pins a count down to fewer than six values.
	PolicyMidpoint6 = Policy{
		Name:        "uk-midpoint-6",
		Description: "0 kept; every other count replaced by the midpoint of its block of six (1-6 as 3, 7-12 as 9, ...)",
		Rounding:    "midpoint6",
		ProtectMax:  6,
	}
)

// Policies lists every named policy.
var Policies = []Policy{PolicyUK, PolicyMidpoint6}

// DefaultPolicy is the policy used when a federation names none.
var DefaultPolicy = PolicyUK

// PolicyByName looks a policy up by name.
func PolicyByName(name string) (Policy, error) {
	for _, p := range Policies {
		if p.Name == name {
			return p, nil
		}
	}
	return Policy{}, errorf("policy", ErrValue, "unknown disclosure policy %s; choose %s (the default) or %s", shown(name), PolicyUK.Name, PolicyMidpoint6.Name)
}

// Protected is a count after disclosure control: what may leave the practice.
type Protected struct {
	Count  int64 // published value; 0 and meaningless when Status is StatusSuppressed
	Status string
	Lower  int64 // the true count is at least Lower
	Upper  int64 // and at most Upper
}

// Apply turns a true count into what the policy allows to be published.
func (p Policy) Apply(n int64) Protected {
	if n <= 0 {
		return Protected{Status: StatusRounded}
	}
	if n <= p.SuppressMax {
		return Protected{Status: StatusSuppressed, Lower: 1, Upper: p.SuppressMax}
	}
	switch p.Rounding {
	case "midpoint6":
		k := (n + 5) / 6
		return Protected{Count: 6*k - 3, Status: StatusRounded, Lower: 6*k - 5, Upper: 6 * k}
	default:
		v := (n + 2) / 5 * 5
		return Protected{Count: v, Status: StatusRounded, Lower: max(p.SuppressMax+1, v-2), Upper: v + 2}
	}
}

// Check reports whether a published cell is one the policy could have produced, with the
// bounds it implies. A file whose cells fail this was not made by the policy it names.
func (p Policy) Check(c Protected) error {
	const op = "check disclosure control"
	switch c.Status {
	case StatusSuppressed:
		if c.Count != 0 {
			return errorf(op, ErrValue, "a suppressed value carries a count; a suppressed count is never published")
		}
		if p.SuppressMax == 0 {
			return errorf(op, ErrValue, "policy %s suppresses nothing, but a cell is suppressed", p.Name)
		}
		if c.Lower != 1 || c.Upper != p.SuppressMax {
			return errorf(op, ErrValue, "a suppressed cell must have bounds 1-%d under %s", p.SuppressMax, p.Name)
		}
		return nil
	case StatusWithheld:
		if c.Count != 0 || c.Lower != 0 || c.Upper != 0 {
			return errorf(op, ErrValue, "a withheld value carries a count or bounds; it must carry none")
		}
		return nil
	case StatusRounded:
	default:
		return errorf(op, ErrValue, "unknown cell status; expected %s, %s or %s", StatusRounded, StatusSuppressed, StatusWithheld)
	}
	if c.Count < 0 {
		return errorf(op, ErrValue, "negative count")
	}
	want, ok := p.boundsOf(c.Count)
	if !ok {
		return errorf(op, ErrValue, "count %d cannot come from policy %s; the file was not made by the policy it names", c.Count, p.Name)
	}
	if c.Lower != want.Lower || c.Upper != want.Upper {
		return errorf(op, ErrValue, "bounds %d-%d do not match count %d under %s (want %d-%d)", c.Lower, c.Upper, c.Count, p.Name, want.Lower, want.Upper)
	}
	return nil
}

// boundsOf returns the range of true counts that publish as v.
func (p Policy) boundsOf(v int64) (Protected, bool) {
	if v == 0 {
		return Protected{Status: StatusRounded}, true
	}
	switch p.Rounding {
	case "midpoint6":
		if (v+3)%6 != 0 {
			return Protected{}, false
		}
		return Protected{Count: v, Status: StatusRounded, Lower: v - 2, Upper: v + 3}, true
	default:
		// v publishes some n > SuppressMax only if v+2 reaches past the suppressed range.
		if v%5 != 0 || v+2 <= p.SuppressMax {
			return Protected{}, false
		}
		lo := max(p.SuppressMax+1, v-2)
		return Protected{Count: v, Status: StatusRounded, Lower: lo, Upper: v + 2}, true
	}
}

// Protects reports whether a published value c is one of the small counts the policy
// protects: its bounds lie wholly within 1..ProtectMax.
func (p Policy) Protects(c Protected) bool {
	return c.Status != StatusWithheld && c.Lower >= 1 && c.Upper <= p.ProtectMax
}

func (p Policy) String() string { return fmt.Sprintf("%s (%s)", p.Name, p.Description) }
