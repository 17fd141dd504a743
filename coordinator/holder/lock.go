package holder

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// lockName is the lock file in a holder's state folder.
const lockName = "holder.lock"

// errLocked: another process acts for this holder.
var errLocked = errors.New("another 'tributary-coordinator holder run' is using this state folder")

// lockDir takes a holder's state folder for this process: two processes acting for one
// holder would each keep a ledger and guard history the other does not see. The operating
// system drops the lock when the process ends.
func lockDir(dir string) (unlock func() error, err error) {
	path := filepath.Join(dir, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, fmt.Errorf("%w (%s); wait for it to finish", errLocked, dir)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return f.Close, nil
}
