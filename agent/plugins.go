package agent

import (
	"context"
	"fmt"
	"strings"

	"github.com/tributary-health/tributary/agent/aggregate"
	"github.com/tributary-health/tributary/agent/config"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// SupplySource is a Source that checks a configuration and says what it supplies with it
// (plugins/host's Plugin.Supplies; sdk.ValidateConfig in process). A Source that is not one is
// taken to supply what its Describe lists.
type SupplySource interface {
	Supplies(ctx context.Context, config map[string]string) (sdk.Supplies, error)
}

// Supplies implements SupplySource for plugins run through plugins/host.
func (h *hostSource) Supplies(ctx context.Context, config map[string]string) (sdk.Supplies, error) {
	return h.p.Supplies(ctx, config)
}

// prepared is a source ready to extract: what it is, the configuration to send it, and what
// it supplies with that configuration.
type prepared struct {
	desc     sdk.Description
	config   map[string]string
	supplies sdk.Supplies
}

// prepare describes s, resolves the relative paths of p's configuration against the
// configuration file's folder (for the keys the plugin marks as paths), and has s check the
// result and say what it supplies with it. A measure the source does not supply with its
// configuration is then absent from the figures rather than zero: a GP export without
// hospital data gives no admissions, not zero admissions.
func prepare(ctx context.Context, s Source, p config.Plugin) (prepared, error) {
	desc, err := s.Describe(ctx)
	if err != nil {
		return prepared{}, err
	}
	pr := prepared{desc: desc, config: p.PluginConfig(desc.PathKeys()), supplies: desc.Supplies().Clean()}
	if ss, ok := s.(SupplySource); ok {
		if pr.supplies, err = ss.Supplies(ctx, pr.config); err != nil {
			return pr, err
		}
	}
	return pr, nil
}

// aggregate is what the aggregator needs to know of the supplies.
func (pr prepared) aggregate() aggregate.Supplies {
	s := aggregate.Supplies{EventKinds: map[string]bool{}, Methods: pr.supplies.Methods, Diagnoses: map[string]bool{}, Discharges: pr.supplies.Discharges}
	for _, d := range pr.supplies.Diagnoses {
		s.Diagnoses[d] = true
	}
	for _, k := range pr.supplies.RowKinds {
		if k == formats.RowRegistrations {
			s.Registrations = true
		}
	}
	for _, k := range pr.supplies.EventKinds {
		s.EventKinds[k] = true
	}
	return s
}

// PluginCheck is what CheckPlugins found out about one configured plugin.
type PluginCheck struct {
	Name     string
	Version  string             // as the plugin describes itself; empty when it did not start
	Config   map[string]string  // the configuration sent to it, relative paths resolved
	Supplies sdk.Supplies       // what it supplies with that configuration
	Measures []string           // the measures the practice's figures get from it
	Absent   []aggregate.Absent // the measures it cannot supply, and why
	Err      error              // nil when it started and accepted its configuration
}

// String is one line for the practice manager.
func (c PluginCheck) String() string {
	name := c.Name
	if c.Version != "" {
		name += " " + c.Version
	}
	if c.Err != nil {
		return fmt.Sprintf("plugin %s: FAILED: %v", name, c.Err)
	}
	measures := "no measure"
	if len(c.Measures) > 0 {
		measures = strings.Join(c.Measures, ", ")
	}
	return fmt.Sprintf("plugin %s: configuration accepted; supplies %s", name, measures)
}

// CheckPlugins starts every configured plugin as a run does (launch is HostLauncher in the
// service: the binary is checked against its pinned SHA-256 before it starts), has it check
// its configuration with relative paths resolved as a run resolves them, and says what it
// would supply, without extracting anything. It finds, before the first run, a missing or
// replaced binary, a wrong or placeholder checksum, a misspelt or missing key, a folder that
// is not there. Every plugin is checked, whatever the others gave; each is closed before the
// next starts.
func CheckPlugins(ctx context.Context, cfg *config.Config, launch Launcher) []PluginCheck {
	out := make([]PluginCheck, 0, len(cfg.Plugins))
	for _, p := range cfg.Plugins {
		out = append(out, checkPlugin(ctx, p, launch))
		if ctx.Err() != nil {
			break
		}
	}
	return out
}

func checkPlugin(ctx context.Context, p config.Plugin, launch Launcher) (c PluginCheck) {
	c.Name = p.Name
	s, err := launch(ctx, p)
	if err != nil {
		c.Err = err
		return c
	}
	defer s.Close()
	pr, err := prepare(ctx, s, p)
	c.Version, c.Config, c.Supplies, c.Err = pr.desc.Version, pr.config, pr.supplies, err
	if err == nil {
		c.Measures, c.Absent = pr.aggregate().Measures(formats.BuiltinDefinitions())
	}
	return c
}
