// Command crashes is an extractor that sends one batch and then exits with status 2.
package main

import (
	"context"
	"os"

	"github.com/tributary-health/tributary/plugins/internal/testplugins"
	"github.com/tributary-health/tributary/plugins/sdk"
)

type crashes struct{}

func (crashes) Describe() sdk.Description { return testplugins.Description }

func (crashes) Extract(ctx context.Context, req sdk.Request, w *sdk.Writer) error {
	if err := testplugins.Emit(req, w, 5); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	os.Exit(2)
	return nil
}

func main() { sdk.Serve(crashes{}) }
