package agent

import (
	"context"
	"log/slog"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/tributary-health/tributary/agent/config"
	"github.com/tributary-health/tributary/plugins/host"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// HostLauncher starts plugins as separate processes through plugins/host, pinned by the
// SHA-256 in the configuration, with the configured timeouts. The plugin's own log lines
// (its stderr) go to log at their own level and with their fields (host.SlogLogger), tagged
// with the plugin's name.
func HostLauncher(cfg *config.Config, log *slog.Logger) Launcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context, p config.Plugin) (Source, error) {
		pl, err := host.Launch(ctx, host.Options{
			Path:           p.Path,
			SHA256:         p.SHA256,
			Logger:         host.SlogLogger(log.With("plugin", p.Name)),
			StartTimeout:   cfg.PluginStartTimeout.Duration,
			ExtractTimeout: cfg.PluginRunTimeout.Duration,
		})
		if err != nil {
			return nil, err
		}
		return &hostSource{p: pl}, nil
	}
}

type hostSource struct {
	p       *host.Plugin
	skipped map[string]int64 // from the last Extract's summary
}

func (h *hostSource) Describe(context.Context) (sdk.Description, error) {
	return h.p.Describe().Description, nil
}

func (h *hostSource) Extract(ctx context.Context, req sdk.Request, emit func(string, arrow.Record) error) error {
	sum, err := h.p.Extract(ctx, req, emit)
	h.skipped = sum.Skipped
	return err
}

// Skipped implements SkipReporter.
func (h *hostSource) Skipped() map[string]int64 { return h.skipped }

func (h *hostSource) Close() error { return h.p.Close() }
