package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tributary-health/tributary/internal/cli"
	"github.com/tributary-health/tributary/internal/testenv"
)

// TestConfigCheckMakesARunsChecks is the review's list: 'config check' said "configuration is
// valid" when 'run --once' would fail on a plugin path that is a folder, missing or not
// executable, a wrong SHA-256 pin, a missing key file or key_file naming the public key, a
// store of an unknown scheme, a misspelt plugin setting; it did not warn about metrics on
// 0.0.0.0; and a relative plugin data folder failed at run time. Each case runs the built
// binary: exit 1 and a line saying what to change, or for the good ones exit 0.
func TestConfigCheckMakesARunsChecks(t *testing.T) {
	synthea := testenv.Binary(t, "./plugins/synthea")
	data := testenv.SharedData(t, "synthea_csv_unmc_ne111/csv")
	notExec := filepath.Join(t.TempDir(), "plugin")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	type edit func(dir, text string) string
	replace := func(old, new string) edit {
		return func(dir, text string) string {
			if !strings.Contains(text, old) {
				t.Fatalf("the configuration has no %q", old)
			}
			return strings.Replace(text, old, new, 1)
		}
	}
	cases := []struct {
		name string
		edit edit
		code int
		says string
	}{
		{"good", func(_, text string) string { return text }, 0, "a run can start"},
		{"relative data folder", func(dir, text string) string {
			if err := os.Symlink(data, filepath.Join(dir, "export")); err != nil {
				t.Fatal(err)
			}
			return replace(data, "export")(dir, text)
		}, 0, "a run can start"},
		{"plugin path is a folder", func(dir, text string) string { return replace(synthea, dir)(dir, text) }, cli.ExitFailed, "plugin p"},
		{"plugin missing", func(dir, text string) string { return replace(synthea, filepath.Join(dir, "nope"))(dir, text) }, cli.ExitFailed, "plugin p"},
		{"plugin not executable", func(dir, text string) string { return replace(synthea, notExec)(dir, text) }, cli.ExitFailed, "plugin p"},
		{"wrong pin", func(dir, text string) string {
			i := strings.Index(text, "sha256 = \"")
			return text[:i] + "sha256 = \"" + strings.Repeat("0", 64) + text[i+10+64:]
		}, cli.ExitFailed, "SHA-256"},
		{"key file missing", func(dir, text string) string {
			os.Remove(filepath.Join(dir, "keys", "practice.key"))
			return text
		}, cli.ExitFailed, "keys init --out {dir}" + string(filepath.Separator) + "keys"},
		{"key_file names the public key", replace("practice.key", "practice.pub"), cli.ExitFailed, "is the public key"},
		{"store of an unknown scheme", func(dir, text string) string {
			i := strings.Index(text, "store = \"")
			j := strings.Index(text[i+9:], "\"")
			return text[:i] + "store = \"ftp://x\"" + text[i+9+j+1:]
		}, cli.ExitFailed, "unknown store scheme"},
		{"misspelt plugin setting", replace("  dir = ", "  dri = "), cli.ExitFailed, "dri"},
		{"metrics on every interface", replace("listen = \"off\"", "listen = \"0.0.0.0:9464\""), 0, "warning: listen"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, cfg := practiceDir(t, synthea, "from = \"2021-01\"\nto = \"2021-03\"", "  dir = \""+data+"\"")
			text, err := os.ReadFile(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(cfg, []byte(c.edit(dir, string(text))), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errs := agentBin(t, "config", "check", "--config", cfg)
			says := strings.ReplaceAll(c.says, "{dir}", dir)
			if code != c.code || !strings.Contains(out+errs, says) {
				t.Errorf("config check: exit %d (want %d), want it to say %q\n%s\n%s", code, c.code, says, out, errs)
			}
			if code == 0 && c.code == 0 && !strings.Contains(out, "a run can start") {
				t.Errorf("a good configuration: %s", out)
			}
		})
	}
}
