package fault_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/fault"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/plugins/host"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// TestOneErrorType: the store, the contract, the plugin host and the SDK return the same
// error type, so a caller branches on kinds and reads Op and Subject one way whichever layer
// failed. Each case is a real failure of the package, not a hand-made value.
func TestOneErrorType(t *testing.T) {
	ctx := context.Background()
	_, _, manifestErr := formats.ReadManifestUnverified([]byte("not a manifest"))
	_, hostErr := host.Launch(ctx, host.Options{Path: t.TempDir() + "/no-such-plugin", SHA256: strings.Repeat("ab", 32)})
	cases := []struct {
		name    string
		err     error
		kind    error
		op      string
		subject string
	}{
		{"formats", manifestErr, formats.ErrCorrupt, "read signed envelope", ""},
		{"objstore", objstore.CheckKey("/etc/passwd"), objstore.ErrBadKey, "store check key", `"/etc/passwd"`},
		{"host", hostErr, host.ErrStart, "plugin launch", "no-such-plugin"},
		{"sdk", &sdk.Error{Kind: sdk.ErrConfig, Detail: "dir is required"}, sdk.ErrConfig, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fe := fault.Of(c.err)
			if fe == nil {
				t.Fatalf("%v (%T) is not a *fault.Error", c.err, c.err)
			}
			if !errors.Is(c.err, c.kind) {
				t.Errorf("%v is not of kind %v", c.err, c.kind)
			}
			if fe.Op != c.op || !strings.Contains(fe.Subject, c.subject) {
				t.Errorf("op %q subject %q, want %q and a subject holding %q", fe.Op, fe.Subject, c.op, c.subject)
			}
			if !strings.HasPrefix(c.err.Error(), c.op) {
				t.Errorf("%q does not start with what was being done (%q)", c.err, c.op)
			}
		})
	}
}

// TestText: one bounded line, whatever the subject and cause hold; a cause that says nothing
// adds nothing; Is matches the kind only.
func TestText(t *testing.T) {
	kind := errors.New("object is corrupt")
	e := &fault.Error{Op: "read submission", Subject: "practices/A\n1" + strings.Repeat("k", 1000), Kind: kind, Detail: "read it again",
		Err: errors.New("line one\nline two\x00 \xff" + strings.Repeat("z", 1000))}
	msg := e.Error()
	if strings.ContainsAny(msg, "\n\x00") || len(msg) > 700 {
		t.Errorf("not one bounded line (%d bytes): %q", len(msg), msg)
	}
	for _, want := range []string{"read submission practices/A?1", ": object is corrupt: read it again: line one?line two?"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
	quiet := &fault.Error{Kind: kind, Err: errors.New("")}
	if got := quiet.Error(); got != "object is corrupt" {
		t.Errorf("an empty cause added text: %q", got)
	}
	if errors.Is(e, errors.New("object is corrupt")) || !errors.Is(e, kind) {
		t.Error("Is must match the kind itself and nothing else")
	}
	if fault.Of(errors.New("plain")) != nil {
		t.Error("Of found a fault in a plain error")
	}
}
