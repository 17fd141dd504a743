package agent

import (
	"bytes"
	"context"
	"log/slog"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/hashicorp/go-hclog"
	"github.com/tributary-health/tributary/agent/config"
	"github.com/tributary-health/tributary/plugins/host"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// HostLauncher starts plugins as separate processes through plugins/host, pinned by the
// SHA-256 in the configuration, with the configured timeouts. The plugin's own log lines
// (its stderr) go to log, tagged with the plugin's name.
func HostLauncher(cfg *config.Config, log *slog.Logger) Launcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(ctx context.Context, p config.Plugin) (Source, error) {
		hl := hclog.New(&hclog.LoggerOptions{
			Name:        "plugin." + p.Name,
			Output:      &slogWriter{log: log.With("plugin", p.Name)},
			Level:       hclog.Info,
			DisableTime: true, // slog stamps the line
		})
		pl, err := host.Launch(ctx, host.Options{
			Path:           p.Path,
			SHA256:         p.SHA256,
			Logger:         hl,
			StartTimeout:   cfg.PluginStartTimeout.Duration,
			ExtractTimeout: cfg.PluginRunTimeout.Duration,
		})
		if err != nil {
			return nil, err
		}
		return hostSource{pl}, nil
	}
}

type hostSource struct{ p *host.Plugin }

func (h hostSource) Describe(context.Context) (sdk.Description, error) {
	return h.p.Describe().Description, nil
}

func (h hostSource) Extract(ctx context.Context, req sdk.Request, emit func(string, arrow.Record) error) error {
	_, err := h.p.Extract(ctx, req, emit)
	return err
}

func (h hostSource) Close() error { return h.p.Close() }

// slogWriter turns the lines hclog writes into slog records.
type slogWriter struct{ log *slog.Logger }

func (w *slogWriter) Write(b []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n")) {
		if s := strings.TrimSpace(string(line)); s != "" {
			w.log.Info(s)
		}
	}
	return len(b), nil
}
