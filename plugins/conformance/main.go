package conformance

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/hashicorp/go-hclog"

	"github.com/tributary-health/tributary/formats"
)

const usage = `usage: plugin check PATH [--config FILE] [--from YYYY-MM --to YYYY-MM] [--sha256 HEX] [--timeout DURATION] [-v]

Runs the extractor plugin at PATH against the contract and prints what it got wrong.

  --config FILE      the plugin's configuration, TOML key = "value" pairs; relative paths
                     in it are relative to FILE's folder
  --from, --to       the months to extract (default: the twelve months before this one)
  --sha256 HEX       the checksum the binary must have (default: compute and print it)
  --timeout DURATION how long the extraction may take (default 10m)
  -v                 show the plugin's own log lines on stderr

Exit status: 0 when every check passes, 1 when one fails, 2 for a usage error.
`

// Main implements "plugin check" for the agent's command line: args are what follows
// "plugin check", or what follows "plugin" (the word "check" first): the path and flags, in
// any order. It returns the exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	opts, err := parseArgs(args)
	if err != nil {
		fmt.Fprintf(stderr, "plugin check: %v\n\n%s", err, usage)
		return 2
	}
	if opts.verbose {
		opts.Logger = hclog.New(&hclog.LoggerOptions{Output: stderr, Level: hclog.Debug})
	} else {
		opts.Logger = hclog.New(&hclog.LoggerOptions{Output: stderr, Level: hclog.Warn})
	}
	r, err := Run(ctx, opts.Options, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "plugin check: %v\n", err)
		return 2
	}
	if !r.Passed() {
		return 1
	}
	return 0
}

type cliOptions struct {
	Options
	verbose bool
}

func parseArgs(args []string) (cliOptions, error) {
	var o cliOptions
	fs := flag.NewFlagSet("plugin check", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configFile := fs.String("config", "", "")
	from := fs.String("from", "", "")
	to := fs.String("to", "", "")
	fs.StringVar(&o.SHA256, "sha256", "", "")
	fs.DurationVar(&o.ExtractTimeout, "timeout", 10*time.Minute, "")
	fs.BoolVar(&o.verbose, "v", false, "")

	// Positional arguments may come before, between or after flags.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return o, err
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) > 0 && pos[0] == "plugin" {
		pos = pos[1:]
	}
	switch {
	case len(pos) > 0 && pos[0] == "check":
		pos = pos[1:]
	case len(pos) > 1:
		return o, fmt.Errorf("the only plugin command is check")
	}
	if len(pos) != 1 {
		return o, fmt.Errorf("give exactly one plugin path")
	}
	o.Path = pos[0]

	if (*from == "") != (*to == "") {
		return o, fmt.Errorf("give both --from and --to, or neither")
	}
	if *from != "" {
		var err error
		if o.From, err = formats.ParseMonth(*from); err != nil {
			return o, fmt.Errorf("--from: %v", err)
		}
		if o.To, err = formats.ParseMonth(*to); err != nil {
			return o, fmt.Errorf("--to: %v", err)
		}
		if o.To < o.From {
			return o, fmt.Errorf("--to %s is before --from %s", o.To, o.From)
		}
	}
	if *configFile != "" {
		if err := o.LoadConfig(*configFile); err != nil {
			return o, err
		}
	}
	return o, nil
}

// LoadConfig reads the plugin configuration file at path (ReadConfig) into o.Config, and sets
// o.ConfigDir to its folder, so that relative paths in it are relative to the file, as in the
// agent's own configuration. A command line's --config calls it.
func (o *Options) LoadConfig(path string) error {
	cfg, err := ReadConfig(path)
	if err != nil {
		return err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	o.Config, o.ConfigDir = cfg, filepath.Dir(abs)
	return nil
}

// ReadConfig reads a plugin configuration file of TOML key = "value" pairs. Numbers and
// booleans are taken as their text; tables and arrays are refused, since a plugin's
// configuration is flat.
func ReadConfig(path string) (map[string]string, error) {
	var raw map[string]any
	if _, err := toml.DecodeFile(path, &raw); err != nil {
		return nil, fmt.Errorf("read config %s: %v", path, err)
	}
	cfg := make(map[string]string, len(raw))
	var bad []string
	for k, v := range raw {
		switch v := v.(type) {
		case string:
			cfg[k] = v
		case int64, float64, bool:
			cfg[k] = fmt.Sprint(v)
		default:
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return nil, fmt.Errorf("config %s: %s must be plain values such as key = \"value\", not tables, arrays or dates", path, strings.Join(bad, ", "))
	}
	return cfg, nil
}
