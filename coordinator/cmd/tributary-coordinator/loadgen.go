package main

import (
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/tributary-health/tributary/coordinator/loadgen"
	"github.com/tributary-health/tributary/internal/cli"
)

func loadgenCmd() *cobra.Command {
	var store, workdir string
	var policy policyFlag
	var practices, months, workers int
	var seed uint64
	last := &monthFlag{name: "last"}
	c := &cobra.Command{
		Use:   "loadgen --store URL --practices N --months M [--seed S] --workdir DIR",
		Short: "Fill a store with a synthetic federation of any size, for capacity planning",
		Long: `Loadgen writes a synthetic federation into an empty store, as pgbench's initialisation does
for a database: a registry signed by a new coordinator key, and one signed run per practice
over --months months ending with --last, its values drawn at England's rates (list sizes of
2,000 to 20,000 patients, England's age structure and activity per patient-year) and
released through the agent's own disclosure control: every value through the federation's
policy (the agent's audit, which may withhold more margins, is not run).

The keys are left under --workdir as tributary-demo leaves them: DIR/coordinator/coordinator.key
(and .pub), and DIR/agents/<practice>/keys/practice.key (and .pub). So next:

  tributary-coordinator combine --store URL --key DIR/coordinator/coordinator.key

The same --seed gives the same keys and byte-identical objects. A store holding another
federation's registry is refused.`,
		Example: `  tributary-coordinator loadgen --store file:///tmp/scale/store --practices 1000 --months 60 --workdir /tmp/scale
  tributary-coordinator combine --store file:///tmp/scale/store --key /tmp/scale/coordinator/coordinator.key`,
		Args: cli.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pol := policy.policy()
			if workdir == "" {
				return cli.Usagef("no --workdir given: loadgen leaves the federation's keys there")
			}
			if practices < 1 || months < 1 {
				return cli.Usagef("--practices and --months must be at least 1")
			}
			st, err := openStore(cmd.Context(), store)
			if err != nil {
				return err
			}
			stdout := cmd.OutOrStdout()
			var mu sync.Mutex
			next := time.Now().Add(5 * time.Second)
			g, err := loadgen.New(loadgen.Options{Practices: practices, Months: months, Last: last.m, Seed: seed, Policy: pol, Workdir: workdir, Workers: workers,
				Progress: func(done int) {
					mu.Lock()
					defer mu.Unlock()
					if now := time.Now(); now.After(next) && done < practices {
						next = now.Add(5 * time.Second)
						fmt.Fprintf(stdout, "%d of %d practices written\n", done, practices)
					}
				}})
			if err != nil {
				return &cli.ExitError{Code: cli.ExitUsage, Err: err}
			}
			s, err := g.Write(cmd.Context(), st)
			if err != nil {
				return err
			}
			from, to := g.Span()
			secs := s.Elapsed.Seconds()
			fmt.Fprintf(stdout, "wrote a registry of %d practices and %d signed runs (%s to %s, %d months each): %d objects, %.1f MiB in %.1fs (%.0f practice-months/s); the policy suppressed %d values\n",
				s.Practices, s.Practices, from, to, s.Months, s.Objects, float64(s.Bytes)/(1<<20), secs, float64(s.Practices*s.Months)/max(secs, 1e-9), s.Protected)
			fmt.Fprintf(stdout, "keys under %s; next:\n  tributary-coordinator combine --store %s --key %s\n", workdir, storeURL(store),
				filepath.Join(workdir, filepath.FromSlash(loadgen.CoordinatorKeyFile)))
			return nil
		},
	}
	addStoreFlag(c.Flags(), &store)
	addPolicyFlag(c.Flags(), &policy)
	c.Flags().IntVar(&practices, "practices", 0, "practices in the federation (1 to 99,999)")
	c.Flags().IntVar(&months, "months", 0, "months each practice's run covers")
	c.Flags().Var(last, "last", "the last month of every run, YYYY-MM (default 2025-12)")
	c.Flags().Uint64Var(&seed, "seed", 1, "varies the keys and counts; the same seed gives the same store")
	c.Flags().StringVar(&workdir, "workdir", "", "folder for the federation's keys, laid out as tributary-demo lays them out")
	c.Flags().IntVar(&workers, "workers", 0, "practices generated, signed and written at once (default the CPUs)")
	return c
}
