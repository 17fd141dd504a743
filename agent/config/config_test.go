package config

import (
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/formats"
)

func TestSampleParses(t *testing.T) {
	c, err := Parse([]byte(Sample()))
	if err != nil {
		t.Fatalf("the sample must be a valid config: %v", err)
	}
	if c.Practice != "A81001" || len(c.Plugins) != 1 || c.Plugins[0].Config["dir"] == "" || c.Months.Recent != 3 {
		t.Fatalf("sample parsed to %+v", c)
	}
}

func TestRejects(t *testing.T) {
	base := Sample()
	cases := []struct{ name, from, to, want string }{
		{"bad practice", `practice = "A81001"`, `practice = "../B"`, "practice"},
		{"unknown key", `spool =`, "colour = \"blue\"\nspool =", "unknown setting(s) colour"},
		{"bad sha", `sha256 = "0000`, `sha256 = "ABCD`, "sha256 must be"},
		{"bad policy", `policy = "uk-suppress-1-7-round-5"`, `policy = "none"`, "unknown disclosure policy"},
		{"both month forms", `recent = 3`, "recent = 3\nfrom = \"2024-01\"", "either recent or from/to"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(strings.Replace(base, tc.from, tc.to, 1)))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestMonthsRange(t *testing.T) {
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	from, to, err := Months{Recent: 3}.Range(now)
	if err != nil || from != formats.MonthFor(2026, 8) || to != formats.MonthFor(2026, 10) {
		t.Fatalf("recent 3 on 2026-11-23 = %s..%s, %v; want 2026-08..2026-10", from, to, err)
	}
	if _, _, err := (Months{From: "2024-05", To: "2024-01"}).Range(now); err == nil {
		t.Fatal("to before from must be refused")
	}
}
