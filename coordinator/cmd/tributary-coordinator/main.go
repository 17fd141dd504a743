// Command tributary-coordinator is the federation's side of Tributary: it keeps the registry of
// practices and their keys, combines the practices' signed submissions into federation figures,
// and answers queries on them. Run it with -h for its commands.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tributary-health/tributary/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs a command line and returns the process's exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return cli.Execute(ctx, newRoot(), args, stdout, stderr)
}

// newRoot builds the whole command tree.
func newRoot() *cobra.Command {
	root := cli.NewRoot("tributary-coordinator", "Combine a federation's signed practice submissions and query them",
		`tributary-coordinator is the federation's side of Tributary: it keeps the signed registry of
practices and their keys, combines the practices' signed submissions into federation figures,
answers queries on them, and serves them to people with a token.

A store URL is file:///path/to/dir (a plain directory path works too) or
s3://bucket?endpoint=host:port; --store defaults to $TRIBUTARY_STORE.

First steps:
  tributary-coordinator keys init --out /etc/tributary
  tributary-coordinator registry add --store URL --key coordinator.key --practice A81001 --name NAME --public-key A81001.pub
  tributary-coordinator combine --store URL --key coordinator.key
  tributary-coordinator query --store URL --by month --measure admissions
`)
	root.AddCommand(keysCmd(), registryCmd(), combineCmd(), queryCmd(), serveCmd(), tokensCmd(),
		practiceCmd(), coordinatorUserCmd(), provenanceCmd(), holderCmd(), loadgenCmd(), measuresCmd())
	return root
}
