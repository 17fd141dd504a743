package agent

import (
	"context"
	"errors"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/host"
)

// Kinds of plugin failure, as counted in metrics and shown by status.
const (
	FailCrash     = "crash"     // the plugin process exited mid-run
	FailTimeout   = "timeout"   // it did not start or finish in the configured time
	FailBadRows   = "bad_rows"  // it sent rows that break the contract
	FailChecksum  = "checksum"  // the binary is not the one pinned, or not pinned
	FailProtocol  = "protocol"  // it speaks another protocol version
	FailStart     = "start"     // it could not be started
	FailPlugin    = "plugin"    // it reported a failure of its own (source data, config)
	FailCancelled = "cancelled" // the agent was stopping
	FailOther     = "other"
)

// FailureKind names the kind of a plugin's failure.
func FailureKind(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, host.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return FailTimeout
	case errors.Is(err, context.Canceled):
		return FailCancelled
	case errors.Is(err, host.ErrCrashed):
		return FailCrash
	case errors.Is(err, host.ErrContract), errors.Is(err, formats.ErrSchema), errors.Is(err, formats.ErrValue):
		return FailBadRows
	case errors.Is(err, host.ErrChecksum), errors.Is(err, host.ErrNotPinned):
		return FailChecksum
	case errors.Is(err, host.ErrProtocol):
		return FailProtocol
	case errors.Is(err, host.ErrStart):
		return FailStart
	case errors.Is(err, host.ErrPlugin):
		return FailPlugin
	}
	return FailOther
}
