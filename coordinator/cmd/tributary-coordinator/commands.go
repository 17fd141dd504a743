package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/query"
	"github.com/tributary-health/tributary/coordinator/registry"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/cli"
)

func keysCmd() *cobra.Command {
	g := cli.Group("keys", "Make the coordinator's signing key pair", "")
	var out string
	initCmd := &cobra.Command{
		Use:   "init --out DIR",
		Short: "Make the coordinator's Ed25519 key pair (DIR/coordinator.key, DIR/coordinator.pub)",
		Long: `Init writes DIR/coordinator.key (private, mode 0600: it signs the registry) and
DIR/coordinator.pub (public: it verifies the registry, and can be given to anyone who combines
or queries). An existing key is never overwritten.`,
		Example: "  tributary-coordinator keys init --out /etc/tributary",
		Args:    cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return cli.Usagef("give the directory for the keys with --out DIR")
			}
			return initKeys(cmd.OutOrStdout(), out)
		},
	}
	initCmd.Flags().StringVar(&out, "out", "", "directory for coordinator.key (private, mode 0600) and coordinator.pub")
	g.AddCommand(initCmd)
	return g
}

func initKeys(stdout io.Writer, out string) error {
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
	if err := os.MkdirAll(out, 0o700); err != nil {
		return err
	}
	privPath, pubPath := filepath.Join(out, "coordinator.key"), filepath.Join(out, "coordinator.pub")
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

func registryCmd() *cobra.Command {
	var store string
	var keys keyFlags
	g := cli.Group("registry", "Keep the signed list of practices and the keys their submissions must verify with",
		`Registry keeps federation/registry.json in the store: the practices and the public keys their
submissions must verify with, signed with the coordinator's key. Everything that reads it
verifies it first.`)
	addStoreFlag(g.PersistentFlags(), &store)
	g.PersistentFlags().StringVar(&keys.key, "key", "", "the coordinator's key: the private key (coordinator.key) to add or revoke; for list, the private or the public key")

	var pubPath string
	list := &cobra.Command{
		Use:     "list --store URL (--key COORDINATOR_KEY | --coordinator-pub PUB)",
		Short:   "List the registered practices and their keys",
		Example: "  tributary-coordinator registry list --store file:///srv/tributary --coordinator-pub coordinator.pub",
		Args:    cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			keys.pub = pubPath
			st, pub, err := keys.openStore(cmd.Context(), store)
			if err != nil {
				return err
			}
			reg, err := registry.Load(cmd.Context(), st, pub)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "PRACTICE\tNAME\tKEY ID\tADDED\tREVOKED")
			for _, e := range reg.Practices {
				revoked := "-"
				if e.Revoked != nil {
					revoked = e.Revoked.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.Practice, e.Name, e.KeyID, e.Added.Format(time.RFC3339), revoked)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&pubPath, "coordinator-pub", "", "the coordinator's public key (coordinator.pub), instead of --key")

	var practice, name, practicePub string
	add := &cobra.Command{
		Use:   "add --store URL --key COORDINATOR_KEY --practice ID --name NAME --public-key PRACTICE_PUB",
		Short: "Register a practice's public key (a practice may hold several)",
		Long: `Add registers a practice and the public key its submissions are signed with (the
practice.pub its 'tributary-agent keys init' wrote). Adding another key to a registered
practice keeps the old one: revoke it with 'registry revoke --key-id'.`,
		Example: "  tributary-coordinator registry add --store file:///srv/tributary --key coordinator.key --practice A81001 --name \"Riverside Surgery\" --public-key A81001.pub",
		Args:    cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if practice == "" || practicePub == "" {
				return cli.Usagef("give --practice and --public-key (and --name)")
			}
			priv, err := keys.private()
			if err != nil {
				return err
			}
			st, err := openStore(cmd.Context(), store)
			if err != nil {
				return err
			}
			data, err := os.ReadFile(practicePub)
			if err != nil {
				return fmt.Errorf("read the practice's public key: %w", err)
			}
			pub, err := formats.ParsePublicKey(data)
			if err != nil {
				return fmt.Errorf("%s: %w", practicePub, err)
			}
			e, err := registry.Add(cmd.Context(), st, priv, practice, name, pub, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "registered practice %s (%s) with key %s\n", e.Practice, e.Name, e.KeyID)
			return nil
		},
	}
	add.Flags().StringVar(&practice, "practice", "", "the practice id, e.g. its ODS code A81001")
	add.Flags().StringVar(&name, "name", "", "the practice's display name")
	add.Flags().StringVar(&practicePub, "public-key", "", "the practice's public key file (PEM, from 'tributary-agent keys init')")

	var revokePractice, keyID string
	revoke := &cobra.Command{
		Use:     "revoke --store URL --key COORDINATOR_KEY --practice ID [--key-id K]",
		Short:   "Revoke a practice's keys: the manifests they signed are quarantined from the next combine on",
		Example: "  tributary-coordinator registry revoke --store file:///srv/tributary --key coordinator.key --practice A81001 --key-id 0123456789abcdef",
		Args:    cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if revokePractice == "" {
				return cli.Usagef("give the practice with --practice")
			}
			priv, err := keys.private()
			if err != nil {
				return err
			}
			st, err := openStore(cmd.Context(), store)
			if err != nil {
				return err
			}
			done, err := registry.Revoke(cmd.Context(), st, priv, revokePractice, keyID, time.Now())
			if err != nil {
				return err
			}
			for _, e := range done {
				fmt.Fprintf(cmd.OutOrStdout(), "revoked key %s of practice %s; its manifests are quarantined from the next combine on\n", e.KeyID, e.Practice)
			}
			return nil
		},
	}
	revoke.Flags().StringVar(&revokePractice, "practice", "", "the practice id")
	revoke.Flags().StringVar(&keyID, "key-id", "", "revoke only this key (default: every key of the practice)")
	g.AddCommand(add, list, revoke)
	return g
}

func combineCmd() *cobra.Command {
	var store string
	var policy policyFlag
	var keys keyFlags
	var workers, keep int
	c := &cobra.Command{
		Use:   "combine --store URL (--key COORDINATOR_KEY | --coordinator-pub PUB) [--policy NAME]",
		Short: "Verify every practice's newest submissions and write the federation's figures under federation/",
		Long: `Combine verifies every practice's manifests against the registry, then their files, keeps
the newest verified run of each practice-month, and writes the federation's figures, a report
and federation/current.json (last). Anything that fails verification is quarantined: listed
on stderr and in the report, and never combined.`,
		Example: "  tributary-coordinator combine --store file:///srv/tributary --key /etc/tributary/coordinator.pub",
		Args:    cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pol := policy.policy()
			st, pub, err := keys.openStore(cmd.Context(), store)
			if err != nil {
				return err
			}
			res, err := combine.Run(cmd.Context(), st, pub, combine.Options{Policy: pol, Workers: workers, Keep: keep})
			if err != nil {
				return err
			}
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			p, rep := res.Pointer, res.Report
			span := "no months"
			if p.FirstMonth != "" {
				span = p.FirstMonth + " to " + p.LastMonth
			}
			fmt.Fprintf(stdout, "combined %d practices, %d practice-months (%s) from %d run files into %s\n", rep.Practices, rep.MonthsCombined, span, rep.FilesCombined, p.Prefix)
			fmt.Fprintf(stdout, "report: %s; %s now names it\n", p.Objects[combine.ReportJSON].Key, combine.CurrentKey)
			if res.Pruned > 0 {
				fmt.Fprintf(stdout, "pruned %d objects of older or unpublished combines (--keep %d)\n", res.Pruned, keepOrDefault(keep))
			}
			if res.PruneErr != nil {
				fmt.Fprintf(stderr, "warning: the figures are published, but recording the history or pruning failed (the next combine tries again): %v\n", res.PruneErr)
			}
			if n := len(rep.Quarantined); n > 0 {
				fmt.Fprintf(stderr, "%d objects quarantined (not combined); fix them at the practice and run combine again:\n", n)
				for _, q := range rep.Quarantined {
					fmt.Fprintf(stderr, "  %s [%s] %s\n", q.Key, q.Kind, q.Reason)
				}
			}
			noteSecure(rep, stdout, stderr)
			return nil
		},
	}
	addStoreFlag(c.Flags(), &store)
	keys.add(c.Flags(), false)
	addPolicyFlag(c.Flags(), &policy)
	addKeepFlag(c.Flags(), &keep)
	c.Flags().IntVar(&workers, "workers", 0, "objects fetched and verified at once (default twice the CPUs)")
	return c
}

// addKeepFlag declares --keep, how many published combined outputs are kept.
func addKeepFlag(fs *pflag.FlagSet, keep *int) {
	fs.IntVar(keep, "keep", 0, fmt.Sprintf("published combined outputs to keep for the revision history; older ones, and what an interrupted combine left, are pruned (default %d)", combine.DefaultKeep))
}

func keepOrDefault(keep int) int {
	if keep <= 0 {
		return combine.DefaultKeep
	}
	return keep
}

// policyFlag is --policy, the federation's disclosure policy, checked as the flag is parsed so
// a misspelt name is a usage error before anything is read.
type policyFlag struct{ p formats.Policy }

func (f *policyFlag) String() string {
	if f.p.Name == "" {
		return formats.DefaultPolicy.Name
	}
	return f.p.Name
}

func (f *policyFlag) Type() string { return "NAME" }

func (f *policyFlag) Set(v string) error {
	p, err := formats.PolicyByName(v)
	if err != nil {
		return err
	}
	f.p = p
	return nil
}

// policy is the policy named, or the default.
func (f *policyFlag) policy() formats.Policy {
	if f.p.Name == "" {
		return formats.DefaultPolicy
	}
	return f.p
}

// addPolicyFlag declares --policy, the federation's disclosure policy.
func addPolicyFlag(fs *pflag.FlagSet, policy *policyFlag) {
	fs.Var(policy, "policy", "the federation's disclosure policy: "+policyNames())
}

func policyNames() string {
	var names []string
	for _, p := range formats.Policies {
		names = append(names, p.Name)
	}
	return strings.Join(names, " or ")
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

func (f *monthFlag) Type() string { return "YYYY-MM" }

func (f *monthFlag) Set(v string) error {
	m, err := formats.ParseMonth(v)
	if err != nil {
		return fmt.Errorf("--%s %q is not a month; write it as YYYY-MM, e.g. 2024-03", f.name, v)
	}
	f.m = m
	return nil
}

func queryCmd() *cobra.Command {
	var store, format string
	var policy policyFlag
	var keys keyFlags
	var measures, by []string
	from, to := &monthFlag{name: "from"}, &monthFlag{name: "to"}
	c := &cobra.Command{
		Use:   "query --store URL [--measure M]... [--from YYYY-MM] [--to YYYY-MM] [--by month|age_band|sex|practice]... [--format table|csv|json]",
		Short: "Read the newest combined figures",
		Long: `Query reads the figures the newest combine wrote. count is the figure to read; the true
total lies between lower and upper. Rates are per 1,000 registered patients, with their
bounds; registered_patients itself, the denominator, has no rate.`,
		Example: `  tributary-coordinator query --store file:///srv/tributary --by month --measure admissions_emergency --format csv
  tributary-coordinator query --store file:///srv/tributary --by age_band --measure ae_attendances --from 2024-01 --to 2024-03`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var breakdowns []string
			for _, b := range by {
				breakdowns = append(breakdowns, strings.Split(b, ",")...)
			}
			if len(breakdowns) == 0 {
				breakdowns = []string{query.ByMonth}
			}
			req := query.Request{Measures: measures, From: from.m, To: to.m, By: breakdowns}
			if err := req.Validate(); err != nil {
				return &cli.ExitError{Code: cli.ExitUsage, Err: err}
			}
			switch format {
			case query.FormatTable, query.FormatCSV, query.FormatJSON:
			default:
				return cli.Usagef("unknown --format %q; choose one of: %s", format, strings.Join(query.Formats, ", "))
			}
			st, err := openStore(cmd.Context(), store)
			if err != nil {
				return err
			}
			c, err := query.Open(cmd.Context(), st)
			known := formats.MeasureNames(formats.BuiltinDefinitions())
			if err == nil {
				known = c.Engine.Measures
			}
			for _, m := range req.Measures {
				if !slices.Contains(known, m) {
					return cli.Usagef("unknown measure %q; choose one of: %s", m, strings.Join(known, ", "))
				}
			}
			if err != nil {
				return err
			}
			res, err := c.Run(req)
			if err != nil {
				return err
			}
			stderr := cmd.ErrOrStderr()
			if len(res.Rows) == 0 {
				fmt.Fprintf(stderr, "no combined figures match; the combined figures (%s) cover %s to %s\n", c.Pointer.ID, c.Pointer.FirstMonth, c.Pointer.LastMonth)
			}
			if n := c.Pointer.Quarantined; n > 0 {
				fmt.Fprintf(stderr, "note: %d objects were quarantined by the combine and are not in these figures; see %s\n", n, c.Pointer.Objects[combine.ReportJSON].Key)
			}
			if err := res.Write(cmd.OutOrStdout(), format); err != nil {
				return err
			}
			if keys.given() {
				return querySecure(cmd.Context(), st, keys, policy.policy(), req, format, cmd.OutOrStdout(), stderr)
			}
			return nil
		},
	}
	f := c.Flags()
	addStoreFlag(f, &store)
	f.StringVar(&keys.key, "key", "", "the coordinator's key, private or public: with it, the holders' secure totals of the same months follow the table")
	f.StringVar(&keys.pub, "coordinator-pub", "", "the coordinator's public key (coordinator.pub), instead of --key")
	addPolicyFlag(f, &policy)
	f.StringSliceVar(&measures, "measure", nil, "a measure to show, repeatable or comma-separated (default all; 'tributary-coordinator measures list' names them), e.g. "+strings.Join(formats.Measures[:3], ", "))
	f.Var(from, "from", "first month")
	f.Var(to, "to", "last month")
	f.StringSliceVar(&by, "by", nil, "break down by month, age_band, sex or practice; repeatable or comma-separated (default month; without month a row covers the whole of --from..--to)")
	f.StringVar(&format, "format", query.FormatTable, "output: "+strings.Join(query.Formats, ", "))
	return c
}
