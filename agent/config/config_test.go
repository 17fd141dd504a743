package config

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/sdk"
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
	m := formats.MonthFor
	day := func(y int, mo time.Month, d int) time.Time { return time.Date(y, mo, d, 12, 0, 0, 0, time.UTC) }
	// recent = N: the N complete months before now, from 1 January of the first of them,
	// so every run re-publishes whole calendar years.
	for _, c := range []struct {
		now      time.Time
		recent   int
		from, to formats.Month
	}{
		{day(2026, 11, 23), 3, m(2026, 1), m(2026, 10)},
		{day(2026, 1, 15), 3, m(2025, 1), m(2025, 12)},   // the whole of last year
		{day(2026, 2, 10), 3, m(2025, 1), m(2026, 1)},    // back into last year: all of it
		{day(2026, 2, 1), 1, m(2026, 1), m(2026, 1)},     // January alone
		{day(2026, 7, 31), 24, m(2024, 1), m(2026, 6)},   // two years and a half
		{day(2026, 1, 1), 12, m(2025, 1), m(2025, 12)},   // exactly a calendar year
		{day(2026, 12, 31), 12, m(2025, 1), m(2026, 11)}, // twelve months spanning two years
	} {
		from, to, err := Months{Recent: c.recent}.Range(c.now)
		if err != nil || from != c.from || to != c.to {
			t.Errorf("recent %d on %s = %s..%s, %v; want %s..%s", c.recent, c.now.Format("2006-01-02"), from, to, err, c.from, c.to)
		}
		if from.MonthOfYear() != time.January {
			t.Errorf("recent %d on %s starts in %s: runs must start on 1 January", c.recent, c.now.Format("2006-01-02"), from)
		}
	}
	now := day(2026, 11, 23)
	if _, _, err := (Months{From: "2024-05", To: "2024-01"}).Range(now); err == nil {
		t.Fatal("to before from must be refused")
	}
	// An explicit range is used as given, up to the current month; a month that has not
	// begun is refused, and the error says which month is the latest allowed.
	if from, to, err := (Months{From: "2024-05", To: "2026-11"}).Range(now); err != nil || from != m(2024, 5) || to != m(2026, 11) {
		t.Fatalf("explicit 2024-05..2026-11 on 2026-11-23 = %s..%s, %v", from, to, err)
	}
	_, _, err := (Months{From: "2026-01", To: "2026-12"}).Range(now)
	if err == nil || !strings.Contains(err.Error(), "after the current month") || !strings.Contains(err.Error(), "2026-11") {
		t.Fatalf("a month after the current one must be refused clearly, got %v", err)
	}
}

// TestPluginPathsRelativeToTheFile: a relative path in [plugins.config] is relative to the
// configuration file's folder, like every other path in it, for the keys the plugin marks as
// paths (and, for older plugins without types, by the naming convention).
func TestPluginPathsRelativeToTheFile(t *testing.T) {
	dir := t.TempDir()
	body := strings.Replace(Sample(), `dir = "/srv/practice-data/synthea/csv"`,
		"dir = \"export/csv\"\n  salt_file = \"secrets/salt\"\n  timezone = \"Europe/London\"\n  abs = \"/srv/x\"", 1)
	path := filepath.Join(dir, "agent.toml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	p := c.Plugins[0]
	if p.Dir != dir {
		t.Fatalf("Dir = %q, want %q", p.Dir, dir)
	}
	typed := sdk.Description{Config: []sdk.ConfigKey{
		{Name: "dir", Type: sdk.TypePath}, {Name: "salt_file", Type: sdk.TypeString}, {Name: "timezone"}, {Name: "abs", Type: sdk.TypePath},
	}}
	got := p.PluginConfig(typed.PathKeys())
	want := map[string]string{"dir": filepath.Join(dir, "export/csv"), "salt_file": "secrets/salt", "timezone": "Europe/London", "abs": "/srv/x"}
	if !maps.Equal(got, want) {
		t.Errorf("typed schema: %v, want %v", got, want)
	}
	if p.Config["dir"] != "export/csv" {
		t.Errorf("the configuration as written was changed: %v", p.Config)
	}
	// A plugin built before types: the convention names dir and salt_file as paths.
	untyped := sdk.Description{Config: []sdk.ConfigKey{{Name: "dir"}, {Name: "salt_file"}, {Name: "timezone"}}}
	if got := p.PluginConfig(untyped.PathKeys()); got["dir"] != filepath.Join(dir, "export/csv") || got["salt_file"] != filepath.Join(dir, "secrets/salt") || got["timezone"] != "Europe/London" {
		t.Errorf("convention: %v", got)
	}
	// Parsed from bytes, there is no file to be relative to.
	c2, err := Parse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if got := c2.Plugins[0].PluginConfig(typed.PathKeys()); got["dir"] != "export/csv" {
		t.Errorf("from bytes: %v", got)
	}
}

// TestPluginSettingsTakeTOMLValues: a practice manager writes max_skipped_fraction = 0.5 or
// include_unknown = true the way TOML writes numbers and booleans; the plugin receives the
// text it would have received in quotes. A list or a table is refused with its key.
func TestPluginSettingsTakeTOMLValues(t *testing.T) {
	base := Sample()
	const at = `dir = "/srv/practice-data/synthea/csv"`
	if !strings.Contains(base, at) {
		t.Fatal("the sample no longer has the plugin setting this test edits")
	}
	c, err := Parse([]byte(strings.Replace(base, at, at+"\nmax_skipped_fraction = 0.5\nbatch = 5000\nstrict = true\nsince = 2024-01-31\nrate = 1e-3", 1)))
	if err != nil {
		t.Fatalf("numbers, booleans and dates as plugin settings: %v", err)
	}
	got := c.Plugins[0].Config
	want := map[string]string{
		"dir": "/srv/practice-data/synthea/csv", "max_skipped_fraction": "0.5", "batch": "5000",
		"strict": "true", "since": "2024-01-31", "rate": "0.001",
	}
	if !maps.Equal(map[string]string(got), want) {
		t.Fatalf("plugin settings %v, want %v", got, want)
	}
	for _, tc := range []struct{ add, want string }{
		{`codes = ["A", "B"]`, `plugin setting "codes": is a list`},
		{"[plugins.config.nested]\nx = 1", `plugin setting "nested": is a table`},
	} {
		_, err := Parse([]byte(strings.Replace(base, at, at+"\n"+tc.add, 1)))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error containing %q", tc.add, err, tc.want)
		}
	}
	// Keys under [plugins.config] are the plugin's to judge (plugin check names unknown
	// ones); the agent's own unknown-setting check must not claim them.
	if _, err := Parse([]byte(strings.Replace(base, at, at+"\nanything_at_all = 3", 1))); err != nil {
		t.Fatalf("a plugin setting the agent does not know: %v", err)
	}
}
