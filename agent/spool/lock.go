package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// LockName is the lock file in the spool folder.
const LockName = "agent.lock"

// ErrLocked: another agent process holds the spool.
var ErrLocked = errors.New("another tributary-agent is running over this spool")

// Lock takes the spool folder for this process, so that two agents (the service and a
// one-off run, say) never work over the same spool: one of them would discard the run the
// other is writing. The operating system drops the lock when the process ends, however it
// ends, so a killed agent never leaves the spool locked. unlock releases it early.
func Lock(dir string) (unlock func() error, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: cannot create %s: %w; check the spool setting and the folder's permissions", dir, err)
	}
	path := filepath.Join(dir, LockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, ErrLocked) {
			return nil, fmt.Errorf("%w (%s): if it is the service, it runs on its schedule; to run now, stop it with 'tributary-agent service stop --config FILE' first", ErrLocked, dir)
		}
		return nil, fmt.Errorf("spool: lock %s: %w", path, err)
	}
	return f.Close, nil // closing the file releases the lock
}
