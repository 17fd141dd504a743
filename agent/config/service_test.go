package config

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

const minimal = `practice = "P1"
key_file = "k"
store = "file:///s"
spool = "sp"
%s
[[plugins]]
name = "x"
path = "/x"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
`

func TestServiceSettings(t *testing.T) {
	tests := []struct {
		extra   string
		check   func(*Config) bool
		wantErr string
	}{
		{"", func(c *Config) bool {
			return c.Schedule == "0 2 * * *" && c.Jitter.Duration == time.Hour && c.Listen == DefaultListen &&
				c.RetryMin.Duration == 5*time.Second && c.RetryMax.Duration == 15*time.Minute && c.SpoolMaxMB == 1024 && c.SpoolMaxAge.Duration == 72*time.Hour
		}, ""},
		{`jitter = "0s"`, func(c *Config) bool { return c.Jitter.Duration == 0 }, ""},
		{`schedule = "@every 2s"` + "\n" + `listen = "off"`, func(c *Config) bool { return c.Schedule == "@every 2s" && c.Listen == ListenOff }, ""},
		{`schedule = "nightly"`, nil, "schedule:"},
		{`listen = "9464"`, nil, "listen:"},
		{`retry_min = "1m"` + "\n" + `retry_max = "10s"`, nil, "retry_min/retry_max"},
		{`spool_max_mb = -1`, nil, "spool_max_mb"},
	}
	for _, tt := range tests {
		c, err := Parse([]byte(strings.Replace(minimal, "%s", tt.extra, 1)))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: error %v, want one naming %q", tt.extra, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", tt.extra, err)
			continue
		}
		if !tt.check(c) {
			t.Errorf("%q: got %+v", tt.extra, c)
		}
	}
}

// TestSampleTopLevelSettingsBeforeTables: a practice manager who uncomments a top-level
// setting in the sample must not find it inside a table (TOML puts every key after a
// [table] line in that table).
func TestSampleTopLevelSettingsBeforeTables(t *testing.T) {
	var uncommented []string
	inTables := false
	key := regexp.MustCompile(`^# ([a-z_]+) = `)
	for line := range strings.Lines(Sample()) {
		if strings.HasPrefix(line, "[") {
			inTables = true
		}
		if m := key.FindStringSubmatch(line); m != nil && !inTables {
			uncommented = append(uncommented, strings.TrimPrefix(line, "# "))
			continue
		}
		if m := key.FindStringSubmatch(line); m != nil && inTables {
			switch m[1] {
			case "from", "to", "access_key", "secret_key": // they belong to the table above them
			default:
				t.Errorf("top-level setting %s is commented out below a [table] line in the sample", m[1])
			}
		}
	}
	if len(uncommented) < 9 {
		t.Fatalf("found %d commented top-level settings, want the 9 service and timeout settings", len(uncommented))
	}
	s := Sample()
	i := strings.Index(s, "[months]")
	if _, err := Parse([]byte(s[:i] + strings.Join(uncommented, "") + s[i:])); err != nil {
		t.Fatalf("the sample with its settings uncommented does not parse: %v", err)
	}
}
