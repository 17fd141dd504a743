// Package config reads the agent's TOML configuration. The field comments here are the
// practice manager's reference; Sample prints a commented example.
package config

import (
	_ "embed"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/tributary-health/tributary/agent/schedule"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/sdk"
	"github.com/tributary-health/tributary/secagg"
)

//go:embed sample.toml
var sample string

// Sample returns the commented sample configuration.
func Sample() string { return sample }

// Config is the agent's configuration.
type Config struct {
	// Practice is the practice's id in the federation (its ODS code, e.g. "A81001").
	Practice string `toml:"practice"`
	// KeyFile is the practice's Ed25519 signing key, made by 'tributary-agent keys init'.
	KeyFile string `toml:"key_file"`
	// Store is where submissions go: "file:///path" or "s3://bucket?endpoint=host:port".
	Store string `toml:"store"`
	// Spool is the local folder where files wait until the store confirms them.
	Spool string `toml:"spool"`
	// Policy names the federation's disclosure policy (default uk-suppress-1-7-round-5).
	Policy string `toml:"policy"`
	// Months says which months each run extracts.
	Months Months `toml:"months"`
	// Plugins are the extractors to run, each pinned by SHA-256.
	Plugins []Plugin `toml:"plugins"`
	// S3 credentials, when Store is s3:// (else from TRIBUTARY_S3_ACCESS_KEY/_SECRET_KEY).
	S3 S3 `toml:"s3"`
	// Timeouts for plugins.
	PluginStartTimeout Duration `toml:"plugin_start_timeout"`
	PluginRunTimeout   Duration `toml:"plugin_run_timeout"`

	// Schedule says when the service runs: five cron fields in the machine's local time
	// (minute hour day-of-month month day-of-week), or @daily, @hourly, @every 6h. Default
	// "0 2 * * *", 02:00 every night.
	Schedule string `toml:"schedule"`
	// Jitter is the largest random delay added to each scheduled run, so the practices of a
	// federation do not reach the store in the same second. Default 1h; "0s" for none.
	Jitter Duration `toml:"jitter"`
	// Listen is the address of the local health and metrics endpoint (/healthz, /metrics).
	// Default "127.0.0.1:9464", reachable from this machine only; "off" for none.
	Listen string `toml:"listen"`
	// RetryMin and RetryMax bound the wait between upload attempts while the store cannot be
	// reached: it doubles from RetryMin up to RetryMax (defaults 5s and 15m), with jitter, for
	// as long as the store is down.
	RetryMin Duration `toml:"retry_min"`
	RetryMax Duration `toml:"retry_max"`
	// SpoolMaxMB and SpoolMaxAge raise an alarm (log, metric, status) when the files waiting
	// in the spool exceed this many megabytes, or the oldest has waited longer than this.
	// Nothing is ever dropped. Defaults 1024 MB and 72h.
	SpoolMaxMB  int64    `toml:"spool_max_mb"`
	SpoolMaxAge Duration `toml:"spool_max_age"`

	// SecureAggregation, when it names the federation's two holders, makes every run also
	// send each month's exact counts as secret shares, one encrypted to each holder, beside
	// the published figures (formats/README.md, "Secure aggregation shares").
	SecureAggregation SecureAggregation `toml:"secure_aggregation"`

	// CoordinatorPublicKey is the federation coordinator's Ed25519 public key (base64, or a
	// PEM file): with it each run reads the federation's own measure definitions, signed by
	// the coordinator (federation/measures.json), and refuses a file it did not sign. Empty:
	// the built-in definitions only.
	CoordinatorPublicKey string `toml:"coordinator_public_key"`

	dir string // folder of the config file, for relative paths
}

// SecureAggregation names the two holders of secret shares. Empty: no shares are sent.
type SecureAggregation struct {
	Holders []Holder `toml:"holders"`
}

// Holder is one holder of secret shares, as the federation lead sent it ('tributary-coordinator
// holder keys init' prints these lines).
type Holder struct {
	ID   string `toml:"id"`
	Role string `toml:"role"` // "leader" or "helper"
	// PublicKey is the holder's HPKE public key (X25519, base64): its share is encrypted to it.
	PublicKey string `toml:"public_key"`
}

// Enabled reports whether runs send secret shares.
func (s SecureAggregation) Enabled() bool { return len(s.Holders) > 0 }

// Recipients returns the two holders, leader first.
func (s SecureAggregation) Recipients() ([2]secagg.Recipient, error) {
	var out [2]secagg.Recipient
	if len(s.Holders) != 2 {
		return out, fmt.Errorf("name exactly two holders, a leader and a helper; %d are named", len(s.Holders))
	}
	seen := [2]bool{}
	for i, h := range s.Holders {
		if err := formats.ValidateHolderID(h.ID); err != nil {
			return out, fmt.Errorf("holders[%d]: %w", i, err)
		}
		agg, err := secagg.AggregatorOf(h.Role)
		if err != nil {
			return out, fmt.Errorf("holders[%d] (%s): %w", i, h.ID, err)
		}
		if seen[agg] {
			return out, fmt.Errorf("holders[%d] (%s): two holders have the role %s; one is the leader, the other the helper", i, h.ID, h.Role)
		}
		seen[agg] = true
		key, err := secagg.ParseHPKEPublic(h.PublicKey)
		if err != nil {
			return out, fmt.Errorf("holders[%d] (%s): public_key: %w; copy it from the lines 'tributary-coordinator holder keys init' printed", i, h.ID, err)
		}
		out[agg] = secagg.Recipient{ID: h.ID, Role: h.Role, Key: key}
	}
	if out[0].ID == out[1].ID {
		return out, fmt.Errorf("the two holders have the same id %q", out[0].ID)
	}
	return out, nil
}

// Months selects the months of a run: either From..To, or the Recent months ending with the
// last complete month (hospital data arrives late, so recent months are re-extracted),
// extended back to 1 January of the first of them so that every run publishes whole
// calendar years (see Range).
type Months struct {
	From   string `toml:"from"`
	To     string `toml:"to"`
	Recent int    `toml:"recent"`
}

// Plugin is one extractor.
type Plugin struct {
	Name   string `toml:"name"`
	Path   string `toml:"path"`
	SHA256 string `toml:"sha256"`
	// Config is the plugin's own configuration, as written. Its relative paths are relative
	// to the configuration file: see PluginConfig.
	Config PluginValues `toml:"config"`
	// Dir is the folder of the configuration file the plugin was read from (set by Load),
	// against which the relative paths of Config are resolved. Empty for a configuration
	// that Parse read from bytes: relative paths then stay relative to the working
	// directory.
	Dir string `toml:"-"`
}

// PluginValues is a plugin's own settings. The plugin receives each as text, but the TOML may
// write a number, a true/false or a date the way TOML writes them (max_skipped_fraction =
// 0.5, include_unknown = true): a practice manager should not have to know that the plugin
// reads strings. A list or a table is refused with the key it is under.
type PluginValues map[string]string

// UnmarshalTOML implements toml.Unmarshaler.
func (v *PluginValues) UnmarshalTOML(data any) error {
	table, ok := data.(map[string]any)
	if !ok {
		return fmt.Errorf("[plugins.config] must be a table of settings (key = value), not %T", data)
	}
	out := make(PluginValues, len(table))
	for k, x := range table {
		s, err := pluginValue(x)
		if err != nil {
			return fmt.Errorf("plugin setting %q: %w", k, err)
		}
		out[k] = s
	}
	*v = out
	return nil
}

func pluginValue(x any) (string, error) {
	switch x := x.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case time.Time:
		// BurntSushi/toml marks TOML's local date, date-time and time by the zone's name.
		switch x.Location().String() {
		case "date-local":
			return x.Format("2006-01-02"), nil
		case "datetime-local":
			return x.Format("2006-01-02T15:04:05.999999999"), nil
		case "time-local":
			return x.Format("15:04:05.999999999"), nil
		}
		return x.Format(time.RFC3339Nano), nil
	case []any, []map[string]any:
		return "", fmt.Errorf("is a list; a plugin setting is one value (text, number or true/false): write a list as the plugin's guide says, usually text with commas")
	case map[string]any:
		return "", fmt.Errorf("is a table; a plugin setting is one value (text, number or true/false)")
	default:
		return "", fmt.Errorf("has a value of a kind a plugin cannot take (%T); write it as text in quotes", x)
	}
}

// PluginConfig is the configuration to send the plugin: Config with the values of pathKeys
// that are relative paths made absolute against Dir, the configuration file's folder, as the
// sample promises. pathKeys names the keys the plugin's schema marks as paths, or that follow
// the naming convention for plugins built before the schema had types (sdk.Description's
// PathKeys says which). Without this a relative path would be read against the plugin
// binary's folder, its working directory, which is never what the practice manager meant.
func (p Plugin) PluginConfig(pathKeys []string) map[string]string {
	return sdk.ResolvePaths(p.Config, pathKeys, p.Dir)
}

// S3 holds store credentials.
type S3 struct {
	AccessKey string `toml:"access_key"`
	SecretKey string `toml:"secret_key"`
}

// Duration is a time.Duration written as "30s" or "10m".
type Duration struct{ time.Duration }

// UnmarshalText reads a Go duration string.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration; write e.g. \"30s\" or \"10m\"", b)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as a Go duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Defaults of the service settings.
const (
	DefaultJitter = time.Hour
	DefaultListen = "127.0.0.1:9464"
	ListenOff     = "off" // Listen value that turns the endpoint off
)

// Load reads and validates a configuration file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	abs, _ := filepath.Abs(path)
	c.dir = filepath.Dir(abs)
	c.resolve()
	return c, nil
}

// Parse reads a configuration from TOML and validates it. Relative paths stay relative to
// the working directory; Load makes them relative to the file.
func Parse(data []byte) (*Config, error) {
	c := &Config{}
	md, err := toml.Decode(string(data), c)
	if err != nil {
		return nil, fmt.Errorf("not valid TOML: %w", err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		var keys []string
		for _, k := range und {
			keys = append(keys, k.String())
		}
		return nil, fmt.Errorf("unknown setting(s) %s; see 'tributary-agent config sample' for the settings there are", strings.Join(keys, ", "))
	}
	c.Defaults()
	if !md.IsDefined("jitter") {
		c.Jitter.Duration = DefaultJitter
	}
	return c, c.Validate()
}

// Defaults fills every unset setting with its default, as Parse does; a program that builds
// a Config itself calls it before Validate. Jitter stays as set (zero is a valid choice).
func (c *Config) Defaults() {
	if c.Policy == "" {
		c.Policy = formats.DefaultPolicy.Name
	}
	if c.PluginStartTimeout.Duration == 0 {
		c.PluginStartTimeout.Duration = 30 * time.Second
	}
	if c.PluginRunTimeout.Duration == 0 {
		c.PluginRunTimeout.Duration = 2 * time.Hour
	}
	if c.Schedule == "" {
		c.Schedule = schedule.Default
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.RetryMin.Duration == 0 {
		c.RetryMin.Duration = 5 * time.Second
	}
	if c.RetryMax.Duration == 0 {
		c.RetryMax.Duration = 15 * time.Minute
	}
	if c.SpoolMaxMB == 0 {
		c.SpoolMaxMB = 1024
	}
	if c.SpoolMaxAge.Duration == 0 {
		c.SpoolMaxAge.Duration = 72 * time.Hour
	}
	if c.Months.From == "" && c.Months.To == "" && c.Months.Recent == 0 {
		c.Months.Recent = 3
	}
}

// Dir is the folder of the configuration file, for relative paths ("" when not read from one).
func (c *Config) Dir() string { return c.dir }

func (c *Config) resolve() {
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(c.dir, p)
	}
	c.KeyFile = abs(c.KeyFile)
	c.Spool = abs(c.Spool)
	for i := range c.Plugins {
		c.Plugins[i].Path = abs(c.Plugins[i].Path)
		c.Plugins[i].Dir = c.dir
	}
}

// Validate checks every setting and says which one is wrong and how to fix it.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if err := formats.ValidatePracticeID(c.Practice); err != nil {
		bad("practice: %v", err)
	}
	if c.KeyFile == "" {
		bad("key_file: missing; create a key with 'tributary-agent keys init --out DIR' and name its private key file")
	}
	if c.Store == "" {
		bad("store: missing; e.g. \"file:///var/lib/tributary/store\" or \"s3://bucket?endpoint=minio.example.nhs.uk:9000\"")
	}
	if c.Spool == "" {
		bad("spool: missing; name a local folder the agent can write, e.g. \"/var/lib/tributary/spool\"")
	}
	if _, err := formats.PolicyByName(c.Policy); err != nil {
		bad("policy: %v", err)
	}
	if _, _, err := c.Months.Range(time.Now()); err != nil {
		bad("months: %v", err)
	}
	if _, err := schedule.Parse(c.Schedule, c.Jitter.Duration); err != nil {
		bad("schedule: %v", err)
	}
	if c.Listen != ListenOff {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			bad("listen: %q is not host:port; write e.g. \"127.0.0.1:9464\", or \"off\"", c.Listen)
		}
	}
	if c.RetryMin.Duration < 0 || c.RetryMax.Duration < c.RetryMin.Duration {
		bad("retry_min/retry_max: need 0 < retry_min <= retry_max, e.g. \"5s\" and \"15m\"")
	}
	if c.SpoolMaxMB < 0 || c.SpoolMaxAge.Duration < 0 {
		bad("spool_max_mb/spool_max_age: must be positive")
	}
	if c.SecureAggregation.Enabled() {
		if _, err := c.SecureAggregation.Recipients(); err != nil {
			bad("secure_aggregation: %v", err)
		}
	}
	if len(c.Plugins) == 0 {
		bad("plugins: none configured; add a [[plugins]] section (see 'tributary-agent config sample')")
	}
	names := map[string]bool{}
	for i, p := range c.Plugins {
		switch {
		case p.Name == "":
			bad("plugins[%d]: name is missing", i)
		case names[p.Name]:
			bad("plugins[%d]: name %q is used twice", i, p.Name)
		}
		names[p.Name] = true
		if p.Path == "" {
			bad("plugins[%d] (%s): path is missing", i, p.Name)
		}
		if len(p.SHA256) != 64 || strings.ToLower(p.SHA256) != p.SHA256 {
			bad("plugins[%d] (%s): sha256 must be the 64 lower-case hex digits of the plugin binary; print it with 'sha256sum %s'", i, p.Name, p.Path)
		}
	}
	return errors.Join(errs...)
}

// Range returns the first and last month a run extracts, as of now.
//
// With recent = N the run ends with the last complete month and begins at the start of the
// calendar year of the N-th month before it: every run re-publishes whole calendar years,
// so the quarter and year totals a practice publishes always come from its newest run for
// all their months, and agree with its newest month figures (the coordinator can only use
// a year total if the run that published it is the newest for every month of the year).
// An explicit from/to is used as given, but may not reach past the current month: a month
// that has not begun has no data, and publishing it as zeros would be wrong.
func (m Months) Range(now time.Time) (formats.Month, formats.Month, error) {
	current := formats.MonthOf(now)
	if m.Recent > 0 {
		if m.From != "" || m.To != "" {
			return 0, 0, errors.New("set either recent or from/to, not both")
		}
		last := current - 1 // the last complete month
		first := last - formats.Month(m.Recent) + 1
		first = formats.YearOf(first).Start // back to 1 January of that year
		if err := formats.ValidateRunMonths(first, last); err != nil {
			return 0, 0, fmt.Errorf("recent = %d: %w", m.Recent, err)
		}
		return first, last, nil
	}
	from, err := formats.ParseMonth(m.From)
	if err != nil {
		return 0, 0, fmt.Errorf("from: %w", err)
	}
	to, err := formats.ParseMonth(m.To)
	if err != nil {
		return 0, 0, fmt.Errorf("to: %w", err)
	}
	if to < from {
		return 0, 0, fmt.Errorf("to (%s) is before from (%s)", to, from)
	}
	if to > current {
		return 0, 0, fmt.Errorf("to (%s) is after the current month (%s): months that have not begun have no data; set to = %q or earlier", to, current, current.String())
	}
	if err := formats.ValidateRunMonths(from, to); err != nil {
		return 0, 0, err
	}
	return from, to, nil
}
