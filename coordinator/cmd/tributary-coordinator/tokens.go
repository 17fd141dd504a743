package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/tributary-health/tributary/coordinator/server"
)

const tokensUsage = "tokens add --file FILE --name NAME --role lead|practice|admin [--practice ID] | tokens list --file FILE | tokens revoke --file FILE --id ID"

func tokensCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintf(stderr, "Usage: tributary-coordinator %s\n", tokensUsage)
		return errUsage
	}
	fs := newFlags("tokens "+args[0], tokensUsage, stderr)
	file := fs.String("file", "", "the tokens file the server reads (--tokens of serve)")
	var name, role, practice, id *string
	switch args[0] {
	case "add":
		name = fs.String("name", "", "who holds the token, e.g. 'Jo Bloggs, federation lead'")
		role = fs.String("role", "", "lead (every practice), practice (its own figures beside the federation's) or admin (manages tokens)")
		practice = fs.String("practice", "", "the practice id, for a practice token")
	case "list":
	case "revoke":
		id = fs.String("id", "", "the token's id as 'tokens list' shows it")
	default:
		fmt.Fprintf(stderr, "tributary-coordinator tokens: unknown subcommand %q\nUsage: tributary-coordinator %s\n", args[0], tokensUsage)
		return errUsage
	}
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *file == "" {
		return errors.New("no tokens file given; pass --file FILE (the file serve reads with --tokens)")
	}
	toks, err := server.OpenTokens(*file)
	if err != nil {
		return err
	}
	switch args[0] {
	case "add":
		secret, tok, err := toks.Add(*name, *role, *practice, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "made %s token %s for %q; it is shown only now: give it to its holder over a secure channel\n", tok.Role, tok.ID, tok.Name)
		fmt.Fprintln(stdout, secret)
	case "list":
		list, err := toks.List()
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
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
	case "revoke":
		tok, err := toks.Revoke(*id, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "revoked token %s (%s, %q); a running server refuses it within seconds\n", tok.ID, tok.Role, tok.Name)
	}
	return nil
}
