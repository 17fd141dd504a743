// Command tributary-coordinator is the federation's side of Tributary: it keeps the registry of
// practices and their keys, combines the practices' signed submissions into federation figures,
// and answers queries on them.
//
//	tributary-coordinator keys init --out DIR
//	tributary-coordinator registry add|list|revoke ...
//	tributary-coordinator combine --store URL --key COORDINATOR_KEY
//	tributary-coordinator query --store URL [--measure M]... [--by month|age_band|sex|practice]...
//
// Run any subcommand with -h for its flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `tributary-coordinator: combine a federation's signed practice submissions and query them.

Usage:
  tributary-coordinator keys init --out DIR
      make the coordinator's Ed25519 key pair (DIR/coordinator.key, DIR/coordinator.pub)
  tributary-coordinator registry add --store URL --key COORDINATOR_KEY --practice ID --name NAME --public-key PRACTICE_PUB
  tributary-coordinator registry list --store URL (--key COORDINATOR_KEY | --coordinator-pub PUB)
  tributary-coordinator registry revoke --store URL --key COORDINATOR_KEY --practice ID [--key-id K]
      keep the signed list of practices and the keys their submissions must verify with
  tributary-coordinator combine --store URL (--key COORDINATOR_KEY | --coordinator-pub PUB) [--policy NAME]
      verify every practice's newest submissions and write federation figures under federation/
  tributary-coordinator query --store URL [--measure M]... [--from YYYY-MM] [--to YYYY-MM]
                              [--by month|age_band|sex|practice]... [--format table|csv|json]
      read the newest combined figures
  tributary-coordinator serve --store URL --key COORDINATOR_KEY --tokens FILE [--listen ADDR] [--tls-cert C --tls-key K]
      watch the store, re-combine as submissions arrive, serve the API and the dashboard
  tributary-coordinator tokens add|list|revoke --file FILE ...
      make, list and revoke the API tokens serve accepts
  tributary-coordinator practice provision|rotate|revoke|users --admin-url URL --practice ID [--out FILE]
  tributary-coordinator coordinator-user provision|rotate --admin-url URL --out FILE
      make, rotate and revoke least-privilege MinIO users: a practice writes only practices/ID/
  tributary-coordinator provenance --store URL --measure M --month YYYY-MM [--practice P]
      trace a combined figure to the signed files it came from, and re-verify their bytes
  tributary-coordinator demo --workdir DIR [--practices DIR] [--from YYYY-MM --to YYYY-MM]
      run a whole federation on this machine: every practice's agent, then combine

A store URL is file:///path/to/dir (a plain directory path works too) or
s3://bucket?endpoint=host:port; --store defaults to $TRIBUTARY_STORE.
Run a subcommand with -h for its flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// command is one subcommand: it parses its own flags from args.
type command func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// errUsage marks a mistake in the command line; its message has already been printed.
var errUsage = errors.New("usage")

// run dispatches to a subcommand and returns the process's exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var cmd command
	switch args[0] {
	case "keys":
		cmd = keysCmd
	case "registry":
		cmd = registryCmd
	case "combine":
		cmd = combineCmd
	case "query":
		cmd = queryCmd
	case "demo":
		cmd = demoCmd
	case "serve":
		cmd = serveCmd
	case "tokens":
		cmd = tokensCmd
	case "practice":
		cmd = practiceCmd
	case "coordinator-user":
		cmd = coordinatorUserCmd
	case "provenance":
		cmd = provenanceCmd
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "tributary-coordinator: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	err := cmd(ctx, args[1:], stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	fmt.Fprintf(stderr, "tributary-coordinator %s: %v\n", args[0], err)
	return 1
}

// newFlags makes a subcommand's flag set that reports errors instead of exiting.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("tributary-coordinator "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: tributary-coordinator %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args, turning flag errors and stray arguments into errUsage.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	return nil
}
