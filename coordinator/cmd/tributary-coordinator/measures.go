package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/BurntSushi/toml"
	"github.com/spf13/cobra"

	"github.com/tributary-health/tributary/coordinator/measures"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/cli"
)

func measuresCmd() *cobra.Command {
	var store string
	var keys keyFlags
	g := cli.Group("measures", "List, show, add and check the federation's measure definitions",
		`Measures keeps the federation's own measure definitions in federation/measures.json in the
store, signed with the coordinator's key like the registry. Every agent reads the file on each
run (with the coordinator's public key in its coordinator_public_key setting) and counts the
built-in measures and these; the combine adds a measure up only across practices whose agents
counted it by the federation's definition (the same digest). A definition is a TOML file
(formats/README.md, "Definitions"); 'measures show NAME' prints one to start from.`)
	addStoreFlag(g.PersistentFlags(), &store)

	load := func(cmd *cobra.Command) (*measures.Loaded, error) {
		st, pub, err := keys.openStore(cmd.Context(), store)
		if err != nil {
			return nil, err
		}
		return measures.Load(cmd.Context(), st, pub)
	}

	list := &cobra.Command{
		Use:     "list --store URL (--key COORDINATOR_KEY | --coordinator-pub PUB)",
		Short:   "List the federation's measures: built-in and its own, with their digests",
		Example: "  tributary-coordinator measures list --store file:///srv/tributary --coordinator-pub coordinator.pub",
		Args:    cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := load(cmd)
			if err != nil {
				return err
			}
			fed := map[string]bool{}
			for _, d := range l.Federation {
				fed[d.Name] = true
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "MEASURE\tFROM\tCOUNTS\tCODES\tRULE\tDIGEST\tTITLE")
			for _, d := range l.Defs {
				from := "built-in"
				if fed[d.Name] {
					from = "federation"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", d.Name, from, counts(d), codesSummary(d), ruleSummary(d), formats.ShortDigest(d.Digest()), d.Title)
			}
			return tw.Flush()
		},
	}
	keys.add(list.Flags(), false)

	show := &cobra.Command{
		Use:   "show NAME --store URL (--key COORDINATOR_KEY | --coordinator-pub PUB)",
		Short: "Print one definition as a TOML file, with its digest",
		Long: `Show prints the federation's definition of a measure as a definition file, which
'measures add' reads back: a starting point for a measure of the federation's own.`,
		Example: "  tributary-coordinator measures show acsc_chronic_emergency --store file:///srv/tributary --coordinator-pub coordinator.pub > falls.toml",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := load(cmd)
			if err != nil {
				return err
			}
			d, ok := l.Find(args[0])
			if !ok {
				return cli.Usagef("no measure %q; 'measures list' names them", args[0])
			}
			return writeDefinition(cmd.OutOrStdout(), d)
		},
	}
	keys.add(show.Flags(), false)

	var signKeys keyFlags
	add := &cobra.Command{
		Use:   "add FILE.toml --store URL --key COORDINATOR_KEY",
		Short: "Add (or replace) the federation's own definitions and sign the file agents read",
		Long: `Add reads a definition file, checks every definition, and stores federation/measures.json
with them added (a definition of a name already there replaces it), signed with the
coordinator's private key. Agents count the new definitions from their next run; the
combine then adds a measure up across the practices that counted it by this definition
(its digest), and says which did not. A first-catalogue measure cannot be redefined.`,
		Example: "  tributary-coordinator measures add falls.toml --store file:///srv/tributary --key coordinator.key",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			defs, err := readDefinitions(args[0])
			if err != nil {
				return err
			}
			priv, err := signKeys.private()
			if err != nil {
				return err
			}
			st, err := openStore(cmd.Context(), store)
			if err != nil {
				return err
			}
			if _, err := measures.Add(cmd.Context(), st, priv, defs, time.Now()); err != nil {
				return err
			}
			for _, d := range defs {
				fmt.Fprintf(cmd.OutOrStdout(), "added %s (digest %s): agents count it from their next run\n", d.Name, formats.ShortDigest(d.Digest()))
			}
			return nil
		},
	}
	signKeys.add(add.Flags(), true)

	var codes, system string
	check := &cobra.Command{
		Use:   "check (FILE.toml | NAME) --codes CODE,CODE... [--system icd10|snomedct]",
		Short: "Run a definition against sample diagnosis codes and say what it matches",
		Long: `Check reads a definition file (or, with --store and a key, the federation's definition of
a measure) and says, for each sample code, whether an event with that primary diagnosis would
be counted, and by which entry of which code list: a quick test of a code list before 'add'.
Codes are normalised as extractors normalise them (I21.9 becomes I219); --system says their
code system (default: SNOMED CT for all-digit codes, else ICD-10). It also says what else the
definition requires of an event (its kind, its admission method, its rule).`,
		Example: `  tributary-coordinator measures check falls.toml --codes W19,W01.0,R29.6,I10
  tributary-coordinator measures check acsc_chronic_emergency --store file:///srv/tributary --coordinator-pub coordinator.pub --codes J45.9,E11.9,195967001`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var defs []formats.Definition
			if _, err := os.Stat(args[0]); err == nil {
				if defs, err = readDefinitions(args[0]); err != nil {
					return err
				}
			} else if d, ok := formats.BuiltinDefinition(args[0]); ok && store == "" {
				defs = []formats.Definition{d}
			} else {
				l, err := load(cmd)
				if err != nil {
					return err
				}
				d, ok := l.Find(args[0])
				if !ok {
					return cli.Usagef("%s is neither a definition file nor a measure of the federation", args[0])
				}
				defs = []formats.Definition{d}
			}
			if strings.TrimSpace(codes) == "" {
				return cli.Usagef("give sample codes with --codes, e.g. --codes J45.9,E11.9,195967001")
			}
			out := cmd.OutOrStdout()
			for _, d := range defs {
				checkDefinition(out, d, strings.Split(codes, ","), system)
			}
			return nil
		},
	}
	check.Flags().StringVar(&codes, "codes", "", "sample diagnosis codes, comma-separated")
	check.Flags().StringVar(&system, "system", "", "the codes' system: icd10 or snomedct (default: by shape)")
	keys.add(check.Flags(), false)

	g.AddCommand(list, show, add, check)
	return g
}

func readDefinitions(path string) ([]formats.Definition, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the definition file: %w", err)
	}
	defs, err := formats.ParseDefinitions(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(defs) == 0 {
		return nil, fmt.Errorf("%s defines no measure: write each under a [[measure]] line", path)
	}
	return defs, nil
}

func counts(d formats.Definition) string {
	s := d.Count
	if d.Kind != "" {
		s += " of " + d.Kind
	}
	if d.Method != "" {
		s += " (" + d.Method + ")"
	}
	return s
}

func codesSummary(d formats.Definition) string {
	if len(d.Codes) == 0 {
		return "-"
	}
	var parts []string
	for _, c := range d.Codes {
		parts = append(parts, fmt.Sprintf("%s %d %s", c.System, len(c.Codes), c.Match))
	}
	return strings.Join(parts, ", ")
}

func ruleSummary(d formats.Definition) string {
	r := d.Rule
	switch r.Type {
	case formats.RuleReadmission:
		return fmt.Sprintf("readmission within %d days", r.WithinDays)
	case formats.RuleFrequent:
		return fmt.Sprintf("%d+ in %d months", r.MinEvents, r.WindowMonths)
	case formats.RuleFirstPerPatient:
		return fmt.Sprintf("first per patient (%d months)", r.WindowMonths)
	case "":
		return "-"
	}
	return r.Type
}

// writeDefinition prints d as a definition file, with its digest as a comment.
func writeDefinition(w io.Writer, d formats.Definition) error {
	fmt.Fprintf(w, "# digest %s\n", d.Digest())
	return toml.NewEncoder(w).Encode(struct {
		Version  int                  `toml:"version"`
		Measures []formats.Definition `toml:"measure"`
	}{formats.DefinitionVersion, []formats.Definition{d}})
}

// checkDefinition says, for each sample code, whether d's code lists match it.
func checkDefinition(w io.Writer, d formats.Definition, codes []string, system string) {
	fmt.Fprintf(w, "%s (digest %s): counts %s", d.Name, formats.ShortDigest(d.Digest()), counts(d))
	if r := ruleSummary(d); r != "-" {
		fmt.Fprintf(w, ", rule %s", r)
	}
	fmt.Fprintln(w)
	if len(d.Codes) == 0 {
		fmt.Fprintln(w, "  no code lists: every event of that kind and method is counted, whatever its diagnosis")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  CODE\tSYSTEM\tCANONICAL\tRESULT")
	for _, raw := range codes {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		sys := system
		if sys == "" {
			sys = formats.DiagnosisICD10
			if strings.IndexFunc(raw, func(r rune) bool { return !unicode.IsDigit(r) }) < 0 {
				sys = formats.DiagnosisSNOMED
			}
		}
		code, ok := formats.NormalizeDiagnosis(sys, raw)
		if !ok {
			fmt.Fprintf(tw, "  %s\t%s\t-\tnot a %s code: an extractor sends no diagnosis for it\n", raw, sys, sys)
			continue
		}
		result := "no match"
		found := false
		for _, l := range d.Codes {
			if l.System != sys {
				continue
			}
			found = true
			if m := formats.MatchCode(l, code); m != "" {
				result = fmt.Sprintf("MATCHES %s (%s %s list)", m, l.Match, l.System)
			}
		}
		if !found {
			result = "no " + sys + " list in this definition"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", raw, sys, code, result)
	}
	tw.Flush()
}
