package formats

import (
	"errors"
	"testing"
)

// TestPolicyProperties checks every named policy on every count up to 10,000: what Apply
// publishes passes Check and bounds the true count, and the bounds of a published value are
// exactly the counts that publish as it, no wider and no narrower.
func TestPolicyProperties(t *testing.T) {
	const top = 10000
	for _, p := range Policies {
		t.Run(p.Name, func(t *testing.T) {
			type group struct {
				first, last, n int64
				pub            Protected
			}
			groups := map[Protected]*group{}
			published := map[int64]bool{}
			for n := int64(0); n <= top; n++ {
				got := p.Apply(n)
				if err := p.Check(got); err != nil {
					t.Fatalf("Check(Apply(%d) = %+v): %v", n, got, err)
				}
				if got.Lower > n || n > got.Upper {
					t.Fatalf("Apply(%d) = %+v does not bound %d", n, got, n)
				}
				if got.Status == StatusSuppressed && got.Count != 0 {
					t.Fatalf("Apply(%d) = %+v: a suppressed cell carries a value", n, got)
				}
				if got.Status == StatusRounded {
					published[got.Count] = true
				}
				g := groups[got]
				if g == nil {
					g = &group{first: n, pub: got}
					groups[got] = g
				}
				if g.last != 0 && g.last != n-1 {
					t.Fatalf("%+v is published for %d and %d but not between", got, g.last, n)
				}
				g.last, g.n = n, g.n+1
			}
			for _, g := range groups {
				if g.pub.Lower != g.first {
					t.Errorf("%+v: lower bound %d, but the smallest count publishing it is %d", g.pub, g.pub.Lower, g.first)
				}
				// The group holding top may continue beyond it.
				if g.last < top && g.pub.Upper != g.last {
					t.Errorf("%+v: upper bound %d, but the largest count publishing it is %d", g.pub, g.pub.Upper, g.last)
				}
				if g.last == top && g.pub.Upper < top {
					t.Errorf("%+v: upper bound %d is below %d, which publishes it", g.pub, g.pub.Upper, top)
				}
			}
			// A rounded value the policy never publishes fails Check whatever its bounds.
			for v := int64(0); v <= top-10; v++ {
				if published[v] {
					continue
				}
				for _, b := range [][2]int64{{v - 2, v + 2}, {v - 2, v + 3}, {v, v}, {1, p.SuppressMax}} {
					c := Protected{Count: v, Status: StatusRounded, Lower: b[0], Upper: b[1]}
					if err := p.Check(c); !errors.Is(err, ErrValue) {
						t.Fatalf("Check(%+v) = %v, want ErrValue: %d is never published", c, err, v)
					}
				}
			}
		})
	}
}

func TestPolicyExamples(t *testing.T) {
	cases := []struct {
		p    Policy
		n    int64
		want Protected
	}{
		{PolicyUK, -3, Protected{Status: StatusRounded}},
		{PolicyUK, 0, Protected{Status: StatusRounded}},
		{PolicyUK, 1, Protected{Status: StatusSuppressed, Lower: 1, Upper: 7}},
		{PolicyUK, 7, Protected{Status: StatusSuppressed, Lower: 1, Upper: 7}},
		{PolicyUK, 8, Protected{Count: 10, Status: StatusRounded, Lower: 8, Upper: 12}},
		{PolicyUK, 12, Protected{Count: 10, Status: StatusRounded, Lower: 8, Upper: 12}},
		{PolicyUK, 13, Protected{Count: 15, Status: StatusRounded, Lower: 13, Upper: 17}},
		{PolicyUK, 123, Protected{Count: 125, Status: StatusRounded, Lower: 123, Upper: 127}},
		{PolicyMidpoint6, 0, Protected{Status: StatusRounded}},
		{PolicyMidpoint6, 1, Protected{Count: 3, Status: StatusRounded, Lower: 1, Upper: 6}},
		{PolicyMidpoint6, 6, Protected{Count: 3, Status: StatusRounded, Lower: 1, Upper: 6}},
		{PolicyMidpoint6, 7, Protected{Count: 9, Status: StatusRounded, Lower: 7, Upper: 12}},
	}
	for _, c := range cases {
		if got := c.p.Apply(c.n); got != c.want {
			t.Errorf("%s.Apply(%d) = %+v, want %+v", c.p.Name, c.n, got, c.want)
		}
	}
}

func TestPolicyCheckRejects(t *testing.T) {
	cases := []struct {
		name string
		p    Policy
		c    Protected
		want string
	}{
		{"12 under round-to-5", PolicyUK, Protected{Count: 12, Status: StatusRounded, Lower: 10, Upper: 14}, "count 12 cannot come from"},
		{"5 is never published", PolicyUK, Protected{Count: 5, Status: StatusRounded, Lower: 3, Upper: 7}, "count 5 cannot come from"},
		{"negative", PolicyUK, Protected{Count: -5, Status: StatusRounded}, "negative count"},
		{"bounds too wide", PolicyUK, Protected{Count: 10, Status: StatusRounded, Lower: 6, Upper: 12}, "want 8-12"},
		{"suppressed under midpoint-6", PolicyMidpoint6, Protected{Status: StatusSuppressed, Lower: 1, Upper: 7}, "suppresses nothing"},
		{"suppressed bounds", PolicyUK, Protected{Status: StatusSuppressed, Lower: 0, Upper: 7}, "bounds 1-7"},
		{"4 under midpoint-6", PolicyMidpoint6, Protected{Count: 4, Status: StatusRounded, Lower: 2, Upper: 7}, "count 4 cannot come from"},
		{"no status", PolicyUK, Protected{Count: 10, Lower: 8, Upper: 12}, "unknown cell status"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { checkError(t, c.p.Check(c.c), ErrValue, c.want) })
	}
}

func TestPolicyByName(t *testing.T) {
	for _, p := range Policies {
		got, err := PolicyByName(p.Name)
		if err != nil || got != p {
			t.Errorf("PolicyByName(%q) = %v, %v", p.Name, got, err)
		}
	}
	_, err := PolicyByName("none")
	checkError(t, err, ErrValue, "policy none;", PolicyUK.Name, PolicyMidpoint6.Name)
	if DefaultPolicy != PolicyUK {
		t.Errorf("the default policy is %s, README.md says %s", DefaultPolicy.Name, PolicyUK.Name)
	}
}
