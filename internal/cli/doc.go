package cli

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// Regenerate is the command that rewrites every file under docs/cli from the command trees.
const Regenerate = "go test ./agent/cmd/tributary-agent ./coordinator/cmd/tributary-coordinator ./demo/cmd/tributary-demo -run TestCLIReference -args -update"

// Markdown renders the CLI reference of root's whole tree: the exit codes, then every
// command (its synopsis, description, flags, inherited flags and examples), in tree order.
// The output depends only on the tree, never on the machine or its environment.
func Markdown(root *cobra.Command) []byte {
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s\n\n", root.Name())
	fmt.Fprintf(&b, "<!-- Generated from the command tree; do not edit. Regenerate with:\n     %s -->\n\n", Regenerate)
	fmt.Fprintf(&b, "%s\n\n", root.Short)
	b.WriteString("## Exit codes\n\nThe same in every Tributary binary:\n\n| code | meaning |\n| --- | --- |\n")
	for _, c := range ExitCodes {
		fmt.Fprintf(&b, "| %d | %s |\n", c.Code, c.Meaning)
	}
	b.WriteString("\n## Commands\n\n")
	var all []*cobra.Command
	walk(root, func(c *cobra.Command) { all = append(all, c) })
	for _, c := range all {
		indent := strings.Repeat("  ", depth(c))
		fmt.Fprintf(&b, "%s- [`%s`](#%s) — %s\n", indent, c.CommandPath(), anchor(c.CommandPath()), c.Short)
	}
	for _, c := range all {
		writeCommand(&b, c)
	}
	return b.Bytes()
}

func walk(c *cobra.Command, fn func(*cobra.Command)) {
	if c.Hidden || c.Name() == "help" || c.Name() == cobra.ShellCompRequestCmd || c.Name() == cobra.ShellCompNoDescRequestCmd {
		return
	}
	fn(c)
	for _, sub := range c.Commands() {
		walk(sub, fn)
	}
}

func depth(c *cobra.Command) int {
	n := 0
	for p := c.Parent(); p != nil; p = p.Parent() {
		n++
	}
	return n
}

// anchor is the GitHub heading id of "## `path`".
func anchor(path string) string {
	return strings.ReplaceAll(strings.ToLower(path), " ", "-")
}

func writeCommand(w io.Writer, c *cobra.Command) {
	fmt.Fprintf(w, "\n## %s\n\n", c.CommandPath())
	long := c.Long
	if long == "" || c.HasParent() && c.Parent().Name() == "completion" {
		// cobra's own texts for each shell are written for a terminal, not for Markdown.
		long = c.Short + "."
	}
	fmt.Fprintf(w, "%s\n\n", fence(strings.TrimRight(long, "\n")))
	fmt.Fprintf(w, "```\n%s\n", c.UseLine())
	if c.HasAvailableSubCommands() {
		fmt.Fprintf(w, "%s COMMAND\n", c.CommandPath())
	}
	w.Write([]byte("```\n"))
	if c.HasAvailableSubCommands() {
		w.Write([]byte("\nCommands:\n\n"))
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				fmt.Fprintf(w, "- [`%s`](#%s) — %s\n", sub.Name(), anchor(sub.CommandPath()), sub.Short)
			}
		}
	}
	if c.Example != "" {
		fmt.Fprintf(w, "\nExamples:\n\n```\n%s\n```\n", strings.TrimRight(c.Example, "\n"))
	}
	if f := c.NonInheritedFlags(); f.HasAvailableFlags() {
		fmt.Fprintf(w, "\nFlags:\n\n```\n%s```\n", f.FlagUsages())
	}
	if f := c.InheritedFlags(); f.HasAvailableFlags() {
		fmt.Fprintf(w, "\nFlags inherited from the commands above:\n\n```\n%s```\n", f.FlagUsages())
	}
}

// fence keeps indented blocks of a help text (examples, tables of commands) as code, and
// the prose as prose.
func fence(text string) string {
	var out []string
	in := false
	closeBlock := func() {
		// Blank lines that ended the block go after it.
		i := len(out)
		for i > 0 && out[i-1] == "" {
			i--
		}
		blanks := len(out) - i
		out = append(out[:i], "```")
		for range blanks {
			out = append(out, "")
		}
		in = false
	}
	for _, line := range strings.Split(text, "\n") {
		indented := strings.HasPrefix(line, "  ") || strings.HasPrefix(line, "\t")
		switch {
		case indented && !in:
			out = append(out, "```")
			in = true
		case !indented && in && line != "":
			closeBlock()
		}
		out = append(out, line)
	}
	if in {
		closeBlock()
	}
	return strings.Join(out, "\n")
}
