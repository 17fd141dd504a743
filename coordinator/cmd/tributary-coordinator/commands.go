package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/query"
	"github.com/tributary-health/tributary/coordinator/registry"
	"github.com/tributary-health/tributary/formats"
)

func keysCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "init" {
		fmt.Fprintln(stderr, "Usage: tributary-coordinator keys init --out DIR")
		return errUsage
	}
	fs := newFlags("keys init", "keys init --out DIR", stderr)
	out := fs.String("out", "", "directory for coordinator.key (private, mode 0600) and coordinator.pub")
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *out == "" {
		fmt.Fprintln(stderr, "keys init: give the directory for the keys with --out")
		return errUsage
	}
	pub, priv, err := formats.GenerateKey()
	if err != nil {
		return err
	}
	privPEM, err := formats.MarshalPrivateKey(priv)
	if err != nil {
		return err
	}
	pubPEM, err := formats.MarshalPublicKey(pub)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return err
	}
	privPath, pubPath := filepath.Join(*out, "coordinator.key"), filepath.Join(*out, "coordinator.pub")
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{{privPath, privPEM, 0o600}, {pubPath, pubPEM, 0o644}} {
		if err := writeNew(f.path, f.data, f.mode); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "wrote %s (keep it secret; it signs the registry)\nwrote %s (key id %s)\n", privPath, pubPath, formats.KeyID(pub))
	return nil
}

// writeNew writes a file that must not exist yet: a coordinator key is never overwritten.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s already exists; a key is never overwritten: move it away first if you really mean to replace it", path)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func registryCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "Usage: tributary-coordinator registry add|list|revoke [flags]; run with -h for the flags")
		return errUsage
	}
	sub, args := args[0], args[1:]
	var synopsis string
	switch sub {
	case "add":
		synopsis = "registry add --store URL --key COORDINATOR_KEY --practice ID --name NAME --public-key PRACTICE_PUB"
	case "list":
		synopsis = "registry list --store URL (--key COORDINATOR_KEY | --coordinator-pub PUB)"
	case "revoke":
		synopsis = "registry revoke --store URL --key COORDINATOR_KEY --practice ID [--key-id K]"
	default:
		fmt.Fprintf(stderr, "registry: unknown subcommand %q; use add, list or revoke\n", sub)
		return errUsage
	}
	fs := newFlags("registry "+sub, synopsis, stderr)
	storeURL := fs.String("store", storeFlag(), "the federation's store: file:///dir or s3://bucket?endpoint=host:port")
	keyPath := fs.String("key", "", "the coordinator's private key (coordinator.key)")
	var pubPath, practice, name, practicePub, keyID *string
	switch sub {
	case "add":
		practice = fs.String("practice", "", "the practice id, e.g. its ODS code A81001")
		name = fs.String("name", "", "the practice's display name")
		practicePub = fs.String("public-key", "", "the practice's public key file (PEM, from 'tributary-agent keys init')")
	case "list":
		pubPath = fs.String("coordinator-pub", "", "the coordinator's public key, instead of --key")
	case "revoke":
		practice = fs.String("practice", "", "the practice id")
		keyID = fs.String("key-id", "", "revoke only this key (default: every key of the practice)")
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	st, err := openStore(ctx, *storeURL)
	if err != nil {
		return err
	}
	switch sub {
	case "list":
		pub, err := publicKey(*keyPath, *pubPath)
		if err != nil {
			return err
		}
		reg, err := registry.Load(ctx, st, pub)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "PRACTICE\tNAME\tKEY ID\tADDED\tREVOKED")
		for _, e := range reg.Practices {
			revoked := "-"
			if e.Revoked != nil {
				revoked = e.Revoked.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Practice, e.Name, e.KeyID, e.Added.Format(time.RFC3339), revoked)
		}
		return tw.Flush()
	case "add":
		if *practice == "" || *practicePub == "" {
			fmt.Fprintln(stderr, "registry add: give --practice and --public-key (and --name)")
			return errUsage
		}
		priv, err := privateKey(*keyPath)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(*practicePub)
		if err != nil {
			return fmt.Errorf("read the practice's public key: %w", err)
		}
		pub, err := formats.ParsePublicKey(data)
		if err != nil {
			return fmt.Errorf("%s: %w", *practicePub, err)
		}
		e, err := registry.Add(ctx, st, priv, *practice, *name, pub, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "registered practice %s (%s) with key %s\n", e.Practice, e.Name, e.KeyID)
		return nil
	default: // revoke
		if *practice == "" {
			fmt.Fprintln(stderr, "registry revoke: give --practice")
			return errUsage
		}
		priv, err := privateKey(*keyPath)
		if err != nil {
			return err
		}
		done, err := registry.Revoke(ctx, st, priv, *practice, *keyID, time.Now())
		if err != nil {
			return err
		}
		for _, e := range done {
			fmt.Fprintf(stdout, "revoked key %s of practice %s; its manifests are quarantined from the next combine on\n", e.KeyID, e.Practice)
		}
		return nil
	}
}

func combineCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("combine", "combine --store URL (--key COORDINATOR_KEY | --coordinator-pub PUB) [--policy NAME] [--workers N]", stderr)
	storeURL := fs.String("store", storeFlag(), "the federation's store: file:///dir or s3://bucket?endpoint=host:port")
	keyPath := fs.String("key", "", "the coordinator's key, private or public: it verifies the registry")
	pubPath := fs.String("coordinator-pub", "", "the coordinator's public key, instead of --key")
	policy := fs.String("policy", formats.DefaultPolicy.Name, "the federation's disclosure policy: "+policyNames())
	workers := fs.Int("workers", 0, "objects fetched and verified at once (default twice the CPUs)")
	if err := parse(fs, args); err != nil {
		return err
	}
	pol, err := formats.PolicyByName(*policy)
	if err != nil {
		return err
	}
	pub, err := publicKey(*keyPath, *pubPath)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, *storeURL)
	if err != nil {
		return err
	}
	res, err := combine.Run(ctx, st, pub, combine.Options{Policy: pol, Workers: *workers})
	if err != nil {
		return err
	}
	p, rep := res.Pointer, res.Report
	span := "no months"
	if p.FirstMonth != "" {
		span = p.FirstMonth + " to " + p.LastMonth
	}
	fmt.Fprintf(stdout, "combined %d practices, %d practice-months (%s) from %d run files into %s\n", rep.Practices, rep.MonthsCombined, span, rep.FilesCombined, p.Prefix)
	fmt.Fprintf(stdout, "report: %s; %s now names it\n", p.Objects[combine.ReportJSON].Key, combine.CurrentKey)
	if n := len(rep.Quarantined); n > 0 {
		fmt.Fprintf(stderr, "%d objects quarantined (not combined); fix them at the practice and run combine again:\n", n)
		for _, q := range rep.Quarantined {
			fmt.Fprintf(stderr, "  %s [%s] %s\n", q.Key, q.Kind, q.Reason)
		}
	}
	return nil
}

func policyNames() string {
	var names []string
	for _, p := range formats.Policies {
		names = append(names, p.Name)
	}
	return strings.Join(names, " or ")
}

// listFlag collects a repeatable flag; each value may also be a comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// monthFlag is an optional YYYY-MM.
type monthFlag struct {
	name string
	m    formats.Month
}

func (f *monthFlag) String() string {
	if f.m == 0 {
		return ""
	}
	return f.m.String()
}

func (f *monthFlag) Set(v string) error {
	m, err := formats.ParseMonth(v)
	if err != nil {
		return fmt.Errorf("--%s %q is not a month; write it as YYYY-MM, e.g. 2024-03", f.name, v)
	}
	f.m = m
	return nil
}

func queryCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("query", "query --store URL [--measure M]... [--from YYYY-MM] [--to YYYY-MM] [--by month|age_band|sex|practice]... [--format table|csv|json]", stderr)
	storeURL := fs.String("store", storeFlag(), "the federation's store: file:///dir or s3://bucket?endpoint=host:port")
	var measures, by listFlag
	from, to := &monthFlag{name: "from"}, &monthFlag{name: "to"}
	fs.Var(&measures, "measure", "a measure to show, repeatable (default all): "+strings.Join(formats.Measures, ", "))
	fs.Var(from, "from", "first month, YYYY-MM")
	fs.Var(to, "to", "last month, YYYY-MM")
	fs.Var(&by, "by", "break down by month, age_band, sex or practice; repeatable or comma-separated (default month; without month a row covers the whole of --from..--to)")
	format := fs.String("format", query.FormatTable, "output: "+strings.Join(query.Formats, ", "))
	if err := parse(fs, args); err != nil {
		return err
	}
	var breakdowns []string
	for _, b := range by {
		breakdowns = append(breakdowns, strings.Split(b, ",")...)
	}
	if len(breakdowns) == 0 {
		breakdowns = []string{query.ByMonth}
	}
	req := query.Request{Measures: measures, From: from.m, To: to.m, By: breakdowns}
	if err := req.Validate(); err != nil {
		return err
	}
	switch *format {
	case query.FormatTable, query.FormatCSV, query.FormatJSON:
	default:
		return fmt.Errorf("unknown --format %q; choose one of: %s", *format, strings.Join(query.Formats, ", "))
	}
	st, err := openStore(ctx, *storeURL)
	if err != nil {
		return err
	}
	c, err := query.Open(ctx, st)
	if err != nil {
		return err
	}
	res, err := c.Run(req)
	if err != nil {
		return err
	}
	if len(res.Rows) == 0 {
		fmt.Fprintf(stderr, "no combined figures match; the combined figures (%s) cover %s to %s\n", c.Pointer.ID, c.Pointer.FirstMonth, c.Pointer.LastMonth)
	}
	if n := c.Pointer.Quarantined; n > 0 {
		fmt.Fprintf(stderr, "note: %d objects were quarantined by the combine and are not in these figures; see %s\n", n, c.Pointer.Objects[combine.ReportJSON].Key)
	}
	return res.Write(stdout, *format)
}
