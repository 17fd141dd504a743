// Command hangs is an extractor whose Extract never returns and ignores its context. With
// TESTPLUGIN_HANG=start it never even completes the handshake.
package main

import (
	"context"
	"os"
	"time"

	"github.com/tributary-health/tributary/plugins/internal/testplugins"
	"github.com/tributary-health/tributary/plugins/sdk"
)

type hangs struct{}

func (hangs) Describe() sdk.Description { return testplugins.Description }

func (hangs) Extract(context.Context, sdk.Request, *sdk.Writer) error {
	for {
		time.Sleep(time.Hour)
	}
}

func main() {
	if os.Getenv("TESTPLUGIN_HANG") == "start" {
		for {
			time.Sleep(time.Hour)
		}
	}
	sdk.Serve(hangs{})
}
