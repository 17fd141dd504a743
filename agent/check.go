package agent

import (
	"context"
	"fmt"
	"net"
	"strings"

	"github.com/tributary-health/tributary/agent/config"
	"github.com/tributary-health/tributary/internal/objstore"
)

// Check is what CheckSetup found: problems that would stop a run, warnings that would not,
// and each plugin's answer.
type Check struct {
	Problems []string
	Warnings []string
	Plugins  []PluginCheck
}

// OK reports whether a run could start: no problem and every plugin accepted.
func (c *Check) OK() bool {
	if len(c.Problems) > 0 {
		return false
	}
	for _, p := range c.Plugins {
		if p.Err != nil {
			return false
		}
	}
	return true
}

// CheckSetup makes every check a run makes before it reads any data: the signing key can be
// read and is the private one, the store URL and its credentials are usable (nothing is
// written to it), and every plugin starts as a run starts it (its binary pinned by SHA-256)
// and accepts its configuration. It also warns about settings that work but expose
// something: metrics listening beyond this machine.
func CheckSetup(ctx context.Context, cfg *config.Config, launch Launcher) *Check {
	c := &Check{}
	if _, err := readKey(cfg.KeyFile); err != nil {
		c.Problems = append(c.Problems, err.Error())
	}
	if _, err := objstore.Open(ctx, cfg.Store, objstore.Options{AccessKey: cfg.S3.AccessKey, SecretKey: cfg.S3.SecretKey}); err != nil {
		c.Problems = append(c.Problems, fmt.Sprintf("store: %v", err))
	}
	if _, err := CoordinatorKey(cfg.CoordinatorPublicKey, cfg.Dir()); err != nil {
		// A run would count the built-in measures only and report the federation's refused.
		c.Problems = append(c.Problems, err.Error())
	}
	if cfg.Listen != config.ListenOff {
		if host, _, err := net.SplitHostPort(cfg.Listen); err == nil {
			if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) || (ip == nil && !strings.EqualFold(host, "localhost")) {
				c.Warnings = append(c.Warnings, fmt.Sprintf("listen = %q serves /metrics and /healthz to other machines too; they say when the agent runs and whether it fails, not figures — set 127.0.0.1:9464 unless a monitoring server elsewhere scrapes it", cfg.Listen))
			}
		}
	}
	c.Plugins = CheckPlugins(ctx, cfg, launch)
	return c
}
