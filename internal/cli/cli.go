// Package cli is what Tributary's command lines share: the exit codes, the way errors are
// printed, --version, and the Markdown reference generated from each command tree. Each
// binary builds its own cobra tree and hands it to Execute.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes, the same in every Tributary binary.
const (
	ExitOK        = 0 // the command did what was asked
	ExitFailed    = 1 // it could not: the message on stderr says why and what to do
	ExitUsage     = 2 // the command line is wrong: a missing or unknown command, flag or argument
	ExitAttention = 3 // it worked, and found something a person must see to (tributary-agent status)
)

// ExitCodes documents the codes, in order, for the help text and the CLI reference.
var ExitCodes = []struct {
	Code    int
	Meaning string
}{
	{ExitOK, "success"},
	{ExitFailed, "the command failed; stderr says why and what to do"},
	{ExitUsage, "usage error: a missing or unknown command, flag or argument (nothing was done)"},
	{ExitAttention, "a person is needed: the command worked and found something to see to (today only `tributary-agent status` and `service status`)"},
}

// ExitCodesText is ExitCodes as plain text, for the root command's help.
func ExitCodesText() string {
	var b strings.Builder
	b.WriteString("Exit codes:\n")
	for _, c := range ExitCodes {
		fmt.Fprintf(&b, "  %d  %s\n", c.Code, strings.ReplaceAll(c.Meaning, "`", "'"))
	}
	return b.String()
}

// ExitError carries the exit code of a failed command. With a nil Err it is silent: the
// command has already said what there was to say (status's report, a plugin check's).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// Usagef is a usage error (exit 2): the command line is wrong.
func Usagef(format string, args ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}

// Exit is a silent error with the given code.
func Exit(code int) error { return &ExitError{Code: code} }

const wrapped = "tributary.cli.wrapped"

// Execute runs the command line args on root and returns the process's exit code. Help and
// data go to stdout; errors go to stderr as "COMMAND: message", and a usage error adds where
// to find the usage. With no arguments (unless the root itself runs), or a command group
// without its subcommand, it prints the usage on stderr and returns ExitUsage.
func Execute(ctx context.Context, root *cobra.Command, args []string, stdout, stderr io.Writer) int {
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SilenceErrors = true
	root.SilenceUsage = true
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &ExitError{Code: ExitUsage, Err: err}
	})
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	wrapRunE(root)

	if len(args) == 0 && !root.Runnable() {
		fmt.Fprintf(stderr, "%s: give a command\n\n%s", root.Name(), root.UsageString())
		return ExitUsage
	}
	// A group (registry, service, ...) runs nothing itself: without one of its commands the
	// command line is incomplete, and anything else after it is an unknown command.
	if c, rest, err := root.Find(args); err == nil && c != root && !c.Runnable() && !asksForHelp(args) {
		var names []string
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				names = append(names, sub.Name())
			}
		}
		if pos := positional(rest); len(pos) > 0 {
			fmt.Fprintf(stderr, "%s: unknown command %q; use %s\n\n%s", c.CommandPath(), pos[0], orList(names), c.UsageString())
		} else {
			fmt.Fprintf(stderr, "%s: give a command: %s\n\n%s", c.CommandPath(), orList(names), c.UsageString())
		}
		return ExitUsage
	}

	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return ExitOK
	}
	if cmd == nil {
		cmd = root
	}
	var ee *ExitError
	if !errors.As(err, &ee) {
		// Not from a command's own code: cobra refused the command line.
		ee = &ExitError{Code: ExitUsage, Err: err}
	}
	if ee.Err != nil && ctx.Err() != nil && errors.Is(ee.Err, context.Canceled) {
		// The command stopped because the process was asked to (SIGTERM, Ctrl-C).
		fmt.Fprintf(stderr, "%s: stopped by a signal before it finished; nothing half-done was published: run it again\n", cmd.CommandPath())
		return ee.Code
	}
	if ee.Err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", cmd.CommandPath(), ee.Err)
		if ee.Code == ExitUsage {
			fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
	}
	return ee.Code
}

// wrapRunE makes every error a command's own code returns an ExitError (ExitFailed unless
// it says otherwise), so Execute can tell them from cobra's usage errors.
func wrapRunE(c *cobra.Command) {
	if c.RunE != nil && c.Annotations[wrapped] == "" {
		run := c.RunE
		c.RunE = func(cmd *cobra.Command, args []string) error {
			err := run(cmd, args)
			var ee *ExitError
			if err == nil || errors.As(err, &ee) {
				return err
			}
			return &ExitError{Code: ExitFailed, Err: err}
		}
		if c.Annotations == nil {
			c.Annotations = map[string]string{}
		}
		c.Annotations[wrapped] = "yes"
	}
	for _, sub := range c.Commands() {
		wrapRunE(sub)
	}
}

func asksForHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "-h", "--help", "--version":
			return true
		case "--":
			return false
		}
	}
	return false
}

// positional returns the arguments that are not flags (a group has no flags with values).
func positional(args []string) []string {
	var out []string
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			out = append(out, a)
		}
	}
	return out
}

// orList writes "a, b or c".
func orList(names []string) string {
	switch len(names) {
	case 0:
		return ""
	case 1:
		return names[0]
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// NoArgs refuses positional arguments as a usage error that names the first.
func NoArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return Usagef("unexpected argument %q (flags are written --name value)", args[0])
	}
	return nil
}

// NewRoot makes a binary's root command: its help ends with the exit codes, and it has
// --version (BuildInfo). Commands are added to it; Execute runs it.
func NewRoot(name, short, long string) *cobra.Command {
	root := &cobra.Command{
		Use:   name,
		Short: short,
		Long:  strings.TrimRight(long, "\n") + "\n\n" + ExitCodesText(),
		// Completion and help come from cobra; shell completion of flags works with them.
		Version: BuildInfo().Version,
	}
	root.SetVersionTemplate(BuildInfo().String(name))
	return root
}

// Group makes a command that only holds subcommands; Execute refuses it on its own.
func Group(use, short, long string) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Long: long}
}
