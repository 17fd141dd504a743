package agent

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/host"
)

func TestFailureKind(t *testing.T) {
	hostErr := func(kind error) error {
		return fmt.Errorf("plugin x: %w", &host.Error{Op: "plugin extract", Subject: "/x", Kind: kind})
	}
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{hostErr(host.ErrCrashed), FailCrash},
		{hostErr(host.ErrTimeout), FailTimeout},
		{hostErr(host.ErrContract), FailBadRows},
		{fmt.Errorf("row 3: %w", formats.ErrValue), FailBadRows},
		{hostErr(host.ErrChecksum), FailChecksum},
		{hostErr(host.ErrNotPinned), FailChecksum},
		{hostErr(host.ErrProtocol), FailProtocol},
		{hostErr(host.ErrStart), FailStart},
		{hostErr(host.ErrPlugin), FailPlugin},
		{fmt.Errorf("%w: %w", host.ErrTimeout, hostErr(host.ErrPlugin)), FailTimeout},
		{context.Canceled, FailCancelled},
		{errors.New("disk full"), FailOther},
	}
	for _, tt := range tests {
		if got := FailureKind(tt.err); got != tt.want {
			t.Errorf("FailureKind(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
