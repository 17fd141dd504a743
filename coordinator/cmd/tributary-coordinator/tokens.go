package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tributary-health/tributary/coordinator/registry"
	"github.com/tributary-health/tributary/coordinator/server"
	"github.com/tributary-health/tributary/internal/cli"
)

func tokensCmd() *cobra.Command {
	var file string
	g := cli.Group("tokens", "Make, list and revoke the API tokens serve accepts",
		`Tokens keeps the file of API tokens 'tributary-coordinator serve --tokens FILE' accepts. A
token is shown once, when it is made; the file keeps only its hash. Roles: lead (every
practice's figures), practice (its own figures beside the federation's) and admin (manages
tokens).`)
	g.PersistentFlags().StringVar(&file, "file", "", "the tokens file the server reads (--tokens of serve)")
	open := func() (*server.Tokens, error) {
		if file == "" {
			return nil, cli.Usagef("no tokens file given; pass --file FILE (the file serve reads with --tokens)")
		}
		return server.OpenTokens(file)
	}

	var name, role, practice, store string
	var keys keyFlags
	add := &cobra.Command{
		Use:   "add --file FILE --name NAME --role lead|practice|admin [--practice ID [--store URL --coordinator-pub PUB]]",
		Short: "Make a token and print it (only now) on stdout",
		Long: `Add makes a token and prints it on stdout, once: the file keeps only its hash. A practice
token names its practice, which must be in the federation's registry: with --store (or
$TRIBUTARY_STORE) and the coordinator's key, add reads the registry and refuses a practice
that is not in it; without them it says it could not check.`,
		Example: `  tributary-coordinator tokens add --file /etc/tributary/tokens.json --name "Jo Bloggs, federation lead" --role lead
  tributary-coordinator tokens add --file /etc/tributary/tokens.json --name "Riverside" --role practice --practice A81001`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			toks, err := open()
			if err != nil {
				return err
			}
			if role == server.RolePractice && practice != "" {
				if err := checkRegistered(cmd.Context(), store, &keys, practice, cmd.ErrOrStderr()); err != nil {
					return err
				}
			}
			secret, tok, err := toks.Add(name, role, practice, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "made %s token %s for %q; it is shown only now: give it to its holder over a secure channel\n", tok.Role, tok.ID, tok.Name)
			fmt.Fprintln(cmd.OutOrStdout(), secret)
			return nil
		},
	}
	add.Flags().StringVar(&name, "name", "", "who holds the token, e.g. 'Jo Bloggs, federation lead'")
	add.Flags().StringVar(&role, "role", "", "lead (every practice), practice (its own figures beside the federation's) or admin (manages tokens)")
	add.Flags().StringVar(&practice, "practice", "", "the practice id, for a practice token")
	addStoreFlag(add.Flags(), &store)
	keys.add(add.Flags(), false)

	list := &cobra.Command{
		Use:   "list --file FILE",
		Short: "List the tokens (never the secrets)",
		Args:  cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			toks, err := open()
			if err != nil {
				return err
			}
			list, err := toks.List()
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tROLE\tPRACTICE\tNAME\tCREATED\tREVOKED")
			for _, t := range list {
				revoked := "-"
				if t.Revoked != nil {
					revoked = t.Revoked.Format(time.RFC3339)
				}
				practice := t.Practice
				if practice == "" {
					practice = "-"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Role, practice, t.Name, t.Created.Format(time.RFC3339), revoked)
			}
			return tw.Flush()
		},
	}

	var id string
	revoke := &cobra.Command{
		Use:   "revoke --file FILE --id ID",
		Short: "Revoke a token: a running server refuses it within seconds",
		Args:  cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id == "" {
				return cli.Usagef("give the token's id with --id (as 'tokens list' shows it)")
			}
			toks, err := open()
			if err != nil {
				return err
			}
			tok, err := toks.Revoke(id, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked token %s (%s, %q); a running server refuses it within seconds\n", tok.ID, tok.Role, tok.Name)
			return nil
		},
	}
	revoke.Flags().StringVar(&id, "id", "", "the token's id as 'tokens list' shows it")
	g.AddCommand(add, list, revoke)
	return g
}

// checkRegistered refuses a practice the federation's registry does not name. When the
// registry cannot be read it says so on stderr and lets the token be made.
func checkRegistered(ctx context.Context, store string, keys *keyFlags, practice string, stderr io.Writer) error {
	couldNot := func(why string) error {
		fmt.Fprintf(stderr, "could not check that practice %s is in the federation's registry (%s); making the token anyway\n", practice, why)
		return nil
	}
	if storeURL(store) == "" || !keys.given() {
		return couldNot("give --store and --coordinator-pub, or --key, to check")
	}
	pub, err := keys.public()
	if err != nil {
		return couldNot(err.Error())
	}
	st, err := openStore(ctx, store)
	if err != nil {
		return couldNot(err.Error())
	}
	reg, err := registry.Load(ctx, st, pub)
	if errors.Is(err, registry.ErrNoRegistry) {
		return fmt.Errorf("practice %s is not in the federation's registry, which has no practice yet; register it first with 'tributary-coordinator registry add'", practice)
	}
	if err != nil {
		return couldNot(err.Error())
	}
	for _, e := range reg.Practices {
		if e.Practice == practice {
			return nil
		}
	}
	return fmt.Errorf("practice %s is not in the federation's registry; check the id ('tributary-coordinator registry list'), or register the practice first with 'tributary-coordinator registry add'", practice)
}
