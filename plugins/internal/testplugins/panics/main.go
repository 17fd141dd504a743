// Command panics is an extractor whose Extract panics after emitting a few rows.
package main

import (
	"context"

	"github.com/tributary-health/tributary/plugins/internal/testplugins"
	"github.com/tributary-health/tributary/plugins/sdk"
)

type panics struct{}

func (panics) Describe() sdk.Description { return testplugins.Description }

func (panics) Extract(ctx context.Context, req sdk.Request, w *sdk.Writer) error {
	if err := testplugins.Emit(req, w, 3); err != nil {
		return err
	}
	months := []string{}
	req.Log.Info("about to fail", "month", months[len(req.Config)+1]) // index out of range
	return nil
}

func main() { sdk.Serve(panics{}) }
