package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/holder"
	"github.com/tributary-health/tributary/coordinator/provision"
	"github.com/tributary-health/tributary/coordinator/query"
	"github.com/tributary-health/tributary/coordinator/secure"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/cli"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/secagg"
)

// holderCmd is the role of one of the two holders of secure aggregation.
func holderCmd() *cobra.Command {
	g := cli.Group("holder", "Act as one of the two holders of secure aggregation (exact federation totals)",
		`Holder is the role of one of the federation's two holders of secure aggregation: two
independent parties (say the federation and its ICB's analytics team) to whom every practice's
agent sends its exact monthly counts as secret shares, one encrypted to each. Together, and
only together, the holders verify every report (Prio3, messages exchanged through the store,
no network path between them), sum the valid ones, and publish the federation's totals
through the disclosure policy once. Neither holder, the store nor the coordinator sees a
practice's counts, and both refuse totals that would reveal one practice by difference.

Set up, once:
  holder keys init      at each holder: its keys (the private file never leaves it)
  holder register       at the coordinator: sign federation/holders.json with both public files
  holder user provision at the store's administrator: each holder's own store user (MinIO)
Each practice's agent.toml then names both holders ([secure_aggregation], printed by keys init).

Each publication round:
  holder run            at the helper first (it waits for the leader's plan), then at the leader
  combine               at the coordinator: the secure totals take the place of the summed ones
  holder figures        anyone with the coordinator's public key: the secure totals alone`)
	g.AddCommand(holderKeysCmd(), holderRegisterCmd(), holderRunCmd(), holderFiguresCmd(), holderUserCmd())
	return g
}

func holderKeysCmd() *cobra.Command {
	g := cli.Group("keys", "Make a holder's key pairs", "")
	var id, role, out string
	c := &cobra.Command{
		Use:   "init --id ID --role leader|helper --out DIR",
		Short: "Make a holder's HPKE and signing key pairs (DIR/ID.holder.key, DIR/ID.holder.json)",
		Long: `Init writes DIR/ID.holder.key (private, mode 0600: it decrypts the practices' shares
addressed to this holder and signs its messages; it never leaves the holder) and
DIR/ID.holder.json (public: give it to the other holder and to the coordinator). It prints the
lines each practice's agent.toml needs. An existing key is never overwritten. One holder is
the leader (it plans rounds and publishes), the other the helper.`,
		Example: "  tributary-coordinator holder keys init --id federation --role leader --out /etc/tributary/holder",
		Args:    cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id == "" || role == "" || out == "" {
				return cli.Usagef("give --id, --role (leader or helper) and --out DIR")
			}
			k, err := secagg.GenerateHolder(id, role)
			if err != nil {
				return &cli.ExitError{Code: cli.ExitUsage, Err: err}
			}
			if err := os.MkdirAll(out, 0o700); err != nil {
				return err
			}
			priv, pub := filepath.Join(out, id+".holder.key"), filepath.Join(out, id+".holder.json")
			if err := writeNew(priv, secagg.MarshalPrivate(k), 0o600); err != nil {
				return err
			}
			if err := writeNew(pub, secagg.MarshalPublic(k.Public()), 0o644); err != nil {
				return err
			}
			f := k.Public().File()
			fmt.Fprintf(cmd.OutOrStdout(), `wrote %s (keep it secret; it never leaves this holder)
wrote %s (give it to the other holder and the coordinator)
each practice's agent.toml names this holder with:
[[secure_aggregation.holders]]
  id = %q
  role = %q
  public_key = %q
`, priv, pub, f.Holder, f.Role, f.HPKEPublicKey)
			return nil
		},
	}
	c.Flags().StringVar(&id, "id", "", "the holder's id: 1-32 lower-case letters, digits or '-' (e.g. federation, icb)")
	c.Flags().StringVar(&role, "role", "", "leader (plans rounds and publishes) or helper")
	c.Flags().StringVar(&out, "out", "", "directory for the key files")
	g.AddCommand(c)
	return g
}

func holderRegisterCmd() *cobra.Command {
	var store, leader, helper string
	var keys keyFlags
	c := &cobra.Command{
		Use:   "register --store URL --key COORDINATOR_KEY --leader LEADER.holder.json --helper HELPER.holder.json",
		Short: "Name the federation's two holders in federation/holders.json, signed with the coordinator's key",
		Long: `Register writes federation/holders.json: the two holders' public keys, signed with the
coordinator's key. Combine then takes secure totals only from rounds the leader named there
signed.`,
		Example: "  tributary-coordinator holder register --store file:///srv/tributary --key coordinator.key --leader federation.holder.json --helper icb.holder.json",
		Args:    cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if leader == "" || helper == "" {
				return cli.Usagef("give both holders' public files with --leader and --helper")
			}
			priv, err := keys.private()
			if err != nil {
				return err
			}
			l, err := readHolderPublic(leader)
			if err != nil {
				return err
			}
			h, err := readHolderPublic(helper)
			if err != nil {
				return err
			}
			data, err := secure.SignHolders(l, h, priv, time.Now())
			if err != nil {
				return err
			}
			st, err := openStore(cmd.Context(), store)
			if err != nil {
				return err
			}
			if _, err := st.Put(cmd.Context(), secure.HoldersKey, data); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s: leader %s, helper %s\n", secure.HoldersKey, l.ID, h.ID)
			return nil
		},
	}
	addStoreFlag(c.Flags(), &store)
	keys.add(c.Flags(), true)
	c.Flags().StringVar(&leader, "leader", "", "the leader's public file (ID.holder.json)")
	c.Flags().StringVar(&helper, "helper", "", "the helper's public file (ID.holder.json)")
	return c
}

func readHolderPublic(path string) (secagg.Holder, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return secagg.Holder{}, err
	}
	h, err := secagg.ParsePublic(data)
	if err != nil {
		return secagg.Holder{}, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}

func readHolderKey(path string) (*secagg.HolderKey, error) {
	if path == "" {
		return nil, cli.Usagef("give this holder's private key file with --holder-key (from 'holder keys init')")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k, err := secagg.ParsePrivate(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// holderRunOptions are the flags of 'holder run'.
type holderRunOptions struct {
	store, holderKey, peer, state, round string
	policy                               policyFlag
	keys                                 keyFlags
	minPractices                         int
	wait, poll                           time.Duration
	from, to                             *monthFlag
}

func holderRunCmd() *cobra.Command {
	o := holderRunOptions{from: &monthFlag{name: "from"}, to: &monthFlag{name: "to"}}
	c := &cobra.Command{
		Use:   "run --store URL --holder-key KEY --peer PEER.holder.json (--key COORDINATOR_KEY | --coordinator-pub PUB) --state DIR",
		Short: "Take part in one publication round: the leader plans and publishes, the helper answers",
		Long: `Run takes part in one round of secure aggregation and returns when it is done.

At the leader it reads every practice's newest run, verifies each report's manifest against
the registry and its own share, writes the round's plan and its prep shares, waits for the
helper's, combines them, sums the reports both holders found valid, combines its aggregate
share with the helper's into the exact federation cells (in memory only), applies the
federation's disclosure policy and publishes the protected totals under federation/secure/.

At the helper it waits for the leader's newest plan it has not answered (or --round), checks
it against its own rules (the differencing guard), prepares its shares, and releases its
aggregate shares, encrypted to the leader, only for totals its guard allows.

Every rejected report is printed with its practice, kind and reason, and named in the signed
round record. The store credentials are the holder's own (TRIBUTARY_S3_ACCESS_KEY and
TRIBUTARY_S3_SECRET_KEY, from 'holder user provision'). --state keeps the holder's ledger of
reports seen and totals released (never a count); keep it: the guard depends on it.`,
		Example: `  # at the helper, then at the leader
  tributary-coordinator holder run --store "$STORE" --holder-key icb.holder.key --peer federation.holder.json --coordinator-pub coordinator.pub --state /var/lib/tributary/holder
  tributary-coordinator holder run --store "$STORE" --holder-key federation.holder.key --peer icb.holder.json --coordinator-pub coordinator.pub --state /var/lib/tributary/holder`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runHolder(cmd.Context(), o, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	f := c.Flags()
	addStoreFlag(f, &o.store)
	o.keys.add(f, false)
	addPolicyFlag(f, &o.policy)
	f.StringVar(&o.holderKey, "holder-key", "", "this holder's private key file (ID.holder.key)")
	f.StringVar(&o.peer, "peer", "", "the other holder's public file (ID.holder.json)")
	f.StringVar(&o.state, "state", "", "this holder's state folder (its ledger and guard history)")
	f.StringVar(&o.round, "round", "", "the round's id (default: the leader makes a new one; the helper answers the leader's newest plan)")
	f.IntVar(&o.minPractices, "min-practices", holder.DefaultMinPractices, "the fewest practices behind any total this holder takes part in")
	f.DurationVar(&o.wait, "wait", 30*time.Minute, "how long to wait for the other holder's messages")
	f.DurationVar(&o.poll, "poll", 2*time.Second, "how often to look for them")
	f.Var(o.from, "from", "first month to aggregate (leader; default all)")
	f.Var(o.to, "to", "last month to aggregate (leader; default all)")
	return c
}

func runHolder(ctx context.Context, o holderRunOptions, stdout, stderr io.Writer) error {
	if o.peer == "" || o.state == "" {
		return cli.Usagef("give the other holder's public file with --peer and this holder's state folder with --state")
	}
	pol := o.policy.policy()
	key, err := readHolderKey(o.holderKey)
	if err != nil {
		return err
	}
	peer, err := readHolderPublic(o.peer)
	if err != nil {
		return err
	}
	st, coord, err := o.keys.openStore(ctx, o.store)
	if err != nil {
		return err
	}
	state, err := holder.OpenState(o.state, key.ID)
	if err != nil {
		return err
	}
	defer state.Close()
	h := &holder.Holder{Key: key, Peer: peer, Coordinator: coord, Store: st, State: state, Policy: pol,
		MinPractices: o.minPractices, Wait: o.wait, Poll: o.poll, Log: slog.New(slog.NewTextHandler(stderr, nil))}
	var res *holder.Result
	if key.Role == secagg.RoleLeader {
		res, err = h.Lead(ctx, holder.LeadOptions{Round: o.round, From: o.from.m, To: o.to.m})
	} else {
		res, err = h.Help(ctx, holder.HelpOptions{Round: o.round})
	}
	if res != nil {
		printResult(stdout, key, res)
	}
	if errors.Is(err, holder.ErrRefused) {
		return &cli.ExitError{Code: cli.ExitFailed, Err: err}
	}
	return err
}

// printResult prints what a round did: months, practice counts, rejections, timings. Never a
// value: the leader's published totals are read with 'holder figures' or 'query'.
func printResult(w io.Writer, key *secagg.HolderKey, res *holder.Result) {
	fmt.Fprintf(w, "round %s, holder %s (%s): %d report(s) prepared\n", res.Round, key.ID, key.Role, res.Reports)
	if res.Refused != "" {
		fmt.Fprintf(w, "the round was refused: %s\n", res.Refused)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(res.Months) > 0 {
		fmt.Fprintln(tw, "MONTH\tPRACTICES\tMEASURES RELEASED\tWITHHELD")
		for _, m := range res.Months {
			var names, withheld []string
			for _, me := range m.Measures {
				names = append(names, me.Measure)
			}
			for _, x := range m.Withheld {
				withheld = append(withheld, x.Measure+": "+x.Reason)
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%s\n", m.Month, len(m.Practices), len(names), orDash(strings.Join(withheld, "; ")))
		}
		tw.Flush()
	}
	if len(res.Rejected) > 0 {
		fmt.Fprintf(w, "%d report(s) rejected, not counted:\n", len(res.Rejected))
		for _, r := range res.Rejected {
			fmt.Fprintf(w, "  %s run %s %s [%s, by %s] %s\n", r.Practice, orDash(r.RunID), orDash(r.Month), r.Kind, r.Holder, r.Reason)
		}
	}
	for _, p := range res.Published {
		fmt.Fprintf(w, "published %s\n", p)
	}
	fmt.Fprintf(w, "took: preparation %s, verification and aggregation %s, publication %s\n",
		res.Prepare.Round(time.Millisecond), res.Aggregate.Round(time.Millisecond), res.Publish.Round(time.Millisecond))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func holderFiguresCmd() *cobra.Command {
	var store string
	var policy policyFlag
	var keys keyFlags
	from, to := &monthFlag{name: "from"}, &monthFlag{name: "to"}
	c := &cobra.Command{
		Use:   "figures --store URL (--key COORDINATOR_KEY | --coordinator-pub PUB) [--from YYYY-MM] [--to YYYY-MM]",
		Short: "Show the securely aggregated monthly federation totals the holders published",
		Long: `Figures reads the rounds the leader holder published (signed; federation/holders.json names
the leader) and prints, for each month and measure, the newest secure total: the exact sum of
the practices' counts, through the federation's disclosure policy once (rounded to 5, or
suppressed 1-7), with the bounds that rounding allows, and how many practices it covers.`,
		Example: "  tributary-coordinator holder figures --store file:///srv/tributary --coordinator-pub coordinator.pub",
		Args:    cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pol := policy.policy()
			st, pub, err := keys.openStore(cmd.Context(), store)
			if err != nil {
				return err
			}
			figs, err := secure.Load(cmd.Context(), st, pub, pol, formats.DefaultLimits)
			if err != nil {
				return err
			}
			return writeSecureFigures(cmd.OutOrStdout(), cmd.ErrOrStderr(), figs, nil, from.m, to.m)
		},
	}
	addStoreFlag(c.Flags(), &store)
	keys.add(c.Flags(), false)
	addPolicyFlag(c.Flags(), &policy)
	c.Flags().Var(from, "from", "first month")
	c.Flags().Var(to, "to", "last month")
	return c
}

// writeSecureFigures prints the monthly secure totals of measures (all when nil) in from..to
// (zero: no bound).
func writeSecureFigures(w, stderr io.Writer, figs *secure.Figures, measures []string, from, to formats.Month) error {
	if figs == nil {
		return errors.New("the federation has no holders of secure aggregation (no federation/holders.json; see 'holder register')")
	}
	for _, p := range figs.Problems {
		fmt.Fprintf(stderr, "not used: %s [%s] %s\n", p.Key, p.Kind, p.Reason)
	}
	if figs.Empty() {
		fmt.Fprintln(stderr, "the holders have published no secure totals yet (run 'holder run' at both)")
		return nil
	}
	if measures == nil {
		measures = formats.Measures
	}
	var months []formats.Month
	for per := range figs.Values {
		if per.Kind == formats.KindMonth && (from == 0 || per.Start >= from) && (to == 0 || per.Start <= to) {
			months = append(months, per.Start)
		}
	}
	slices.Sort(months)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "month\tmeasure\tcount\tlower\tupper\tstatus\tpractices\tmethod\t")
	for _, m := range months {
		for _, measure := range measures {
			vals := figs.Values[formats.MonthPeriod(m)][measure]
			if vals == nil {
				continue
			}
			v := vals[formats.TotalShape]
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%d\t%s\t\n", m, measure, v.Count, v.Lower, v.Upper, v.Status, figs.Practices[m][measure], secure.MethodSecure)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "method secure: the exact sum of the practices' counts, through the federation's disclosure policy once; the truth lies in [lower, upper]\n")
	return nil
}

func holderUserCmd() *cobra.Command {
	var adminURL, id, out string
	var leader bool
	g := cli.Group("user", "Make and rotate a holder's least-privilege store user (MinIO)",
		"User manages a holder's store user: it may read the practices' manifests and its own\nshares files (never the other holder's), the registry and both holders' messages, and write\nonly its own messages; the leader's may also publish under federation/secure/.\n\n"+accessLong)
	pf := g.PersistentFlags()
	addAdminURLFlag(pf, &adminURL)
	pf.StringVar(&id, "holder", "", "the holder's id")
	run := func(cmd *cobra.Command, verb string) error {
		if id == "" || out == "" {
			return cli.Usagef("give --holder ID and --out FILE (or --out - to print the keys)")
		}
		u := storeURL(adminURL)
		if !strings.HasPrefix(u, "s3://") {
			return cli.Usagef("give the store with --admin-url s3://bucket?endpoint=host:port (users are made on an S3 server, not a directory)")
		}
		admin, err := provision.Open(u, os.Getenv(envAdminAccessKey), os.Getenv(envAdminSecretKey))
		if err != nil {
			return err
		}
		var creds provision.Credentials
		if verb == "provision" {
			creds, err = admin.Holder(cmd.Context(), id, leader)
		} else {
			creds, _, err = admin.Rotate(cmd.Context(), admin.HolderPolicyName(id))
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "made store user %s for holder %s (policy %s)\n", creds.AccessKey, id, admin.HolderPolicyName(id))
		env := envFile("holder "+id, "holder user "+verb, creds)
		if out == "-" {
			_, err := io.WriteString(cmd.OutOrStdout(), env)
			return err
		}
		if err := writeNew(out, []byte(env), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (keep it secret; give it to holder %s only)\n", out, id)
		return nil
	}
	prov := &cobra.Command{
		Use:   "provision --admin-url URL --holder ID [--leader] --out FILE",
		Short: "Make the holder's store user and write its keys to FILE",
		Example: `  tributary-coordinator holder user provision --admin-url 's3://tributary?endpoint=minio.example.org:9000' --holder federation --leader --out federation.env
  tributary-coordinator holder user provision --admin-url 's3://tributary?endpoint=minio.example.org:9000' --holder icb --out icb.env`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return run(cmd, "provision") },
	}
	prov.Flags().BoolVar(&leader, "leader", false, "the holder is the leader: it may also publish under federation/secure/")
	prov.Flags().StringVar(&out, "out", "", `file for the new keys (mode 0600, must not exist); "-" for standard output`)
	rot := &cobra.Command{
		Use:   "rotate --admin-url URL --holder ID --out FILE",
		Short: "Replace the holder's store user with a new one (same role); the old keys stop working at once",
		Args:  cli.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return run(cmd, "rotate") },
	}
	rot.Flags().StringVar(&out, "out", "", `file for the new keys (mode 0600, must not exist); "-" for standard output`)
	g.AddCommand(prov, rot)
	return g
}

// querySecure prints, after a query's table, the holders' secure monthly totals of the same
// measures and months (a federation-wide figure by month only: a practice's or a band's are
// not securely aggregated).
func querySecure(ctx context.Context, st objstore.Store, keys keyFlags, pol formats.Policy, req query.Request, format string, stdout, stderr io.Writer) error {
	pub, err := keys.public()
	if err != nil {
		return err
	}
	figs, err := secure.Load(ctx, st, pub, pol, formats.DefaultLimits)
	if err != nil {
		return err
	}
	switch {
	case figs.Empty():
		fmt.Fprintln(stderr, "no secure totals: the federation has no holders of secure aggregation, or they have published none")
		return nil
	case format != query.FormatTable:
		fmt.Fprintln(stderr, "the secure totals are shown with --format table (or read them with 'holder figures')")
		return nil
	case !slices.Equal(req.By, []string{query.ByMonth}):
		fmt.Fprintln(stderr, "secure totals are federation totals by month: ask --by month to see them beside the table")
		return nil
	}
	fmt.Fprintf(stdout, "\nsecure totals of the same months (the holders' exact sums of every practice's counts, rounded once):\n")
	return writeSecureFigures(stdout, stderr, figs, req.Measures, req.From, req.To)
}

// noteSecure tells the person who combined what became of the holders' secure totals: how
// many month totals replaced the sums of the practices' published values (method secure in
// query, the API and the dashboard), which could not and why, and any round that does not
// verify. It never fails the combine.
func noteSecure(rep *combine.Report, stdout, stderr io.Writer) {
	s := rep.Secure
	if s == nil {
		return
	}
	for _, p := range s.Problems {
		fmt.Fprintf(stderr, "warning: secure aggregation: not used: %s [%s] %s\n", p.Key, p.Kind, p.Reason)
	}
	if len(s.Uses) == 0 {
		fmt.Fprintln(stdout, "secure aggregation: the holders have published no secure totals yet")
		return
	}
	months := map[string]bool{}
	var used int
	var rounds []string
	for _, r := range s.Rounds {
		rounds = append(rounds, r.Round)
	}
	for _, u := range s.Uses {
		if u.Used {
			used++
			months[u.Month] = true
		}
	}
	fmt.Fprintf(stdout, "secure aggregation: %d month total(s) of %d month(s) are the holders' secure totals (round(s) %s), method secure in query, the API and the dashboard\n",
		used, len(months), strings.Join(rounds, ", "))
	for _, u := range s.Uses {
		if !u.Used {
			fmt.Fprintf(stdout, "  not used: %s %s (round %s): %s\n", u.Month, u.Measure, u.Round, u.Reason)
		}
	}
}
