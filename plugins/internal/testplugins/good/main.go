// Command good is a correct extractor that makes up a few patients. With config
// print_to_stdout = "yes" it also writes to stdout, which a plugin must never do.
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"github.com/tributary-health/tributary/plugins/internal/testplugins"
	"github.com/tributary-health/tributary/plugins/sdk"
)

type good struct{}

func (good) Describe() sdk.Description {
	d := testplugins.Description
	d.Config = append(d.Config, sdk.ConfigKey{Name: "print_to_stdout", Help: "misbehave by writing to stdout (tests only)"})
	return d
}

func (good) ValidateConfig(config map[string]string) error {
	for k := range config {
		if k != "rows" && k != "print_to_stdout" {
			return fmt.Errorf("unknown key %s; the keys are rows and print_to_stdout", k)
		}
	}
	if v, ok := config["rows"]; ok {
		if n, err := strconv.Atoi(v); err != nil || n < 0 {
			return fmt.Errorf("rows must be a whole number, 0 or more")
		}
	}
	return nil
}

func (good) Extract(ctx context.Context, req sdk.Request, w *sdk.Writer) error {
	n := 10
	if v, ok := req.Config["rows"]; ok {
		n, _ = strconv.Atoi(v)
	}
	if req.Config["print_to_stdout"] == "yes" {
		fmt.Println("debugging output that should have gone to stderr")
	}
	req.Log.Info("making up patients", "count", n)
	req.Log.Warn("these patients are not real", "source", "testplugins")
	return testplugins.Emit(req, w, n)
}

func main() {
	if path := os.Getenv(testplugins.MarkerEnv); path != "" {
		_ = os.WriteFile(path, []byte("started\n"), 0o600)
	}
	sdk.Serve(good{})
}
