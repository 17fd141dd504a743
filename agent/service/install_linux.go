package service

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// DefaultUnitDir is where systemd looks for units the administrator installs.
const DefaultUnitDir = "/etc/systemd/system"

// UnitPath is where Install writes the unit.
func UnitPath(o Options) string {
	dir := o.UnitDir
	if dir == "" {
		dir = DefaultUnitDir
	}
	name := o.Name
	if name == "" {
		name = DefaultName
	}
	return filepath.Join(dir, name+".service")
}

// managed: systemctl is only run for units in systemd's own folder; a unit written
// elsewhere (a package build, a test) is left for the caller to enable.
func managed(o Options) bool { return o.UnitDir == "" || filepath.Clean(o.UnitDir) == DefaultUnitDir }

// Install writes the systemd unit and enables it, so the agent starts at every boot. It
// returns what it did, in words.
func Install(o Options) (string, error) {
	unit, err := Unit(o)
	if err != nil {
		return "", err
	}
	if managed(o) {
		if err := systemdRunning(); err != nil {
			return "", err
		}
	}
	path := UnitPath(o)
	if _, err := os.Stat(path); err == nil {
		return "", fmt.Errorf("%s already exists; to reinstall, run 'tributary-agent service uninstall' first", path)
	}
	if err := os.WriteFile(path, unit, 0o644); err != nil {
		if errors.Is(err, os.ErrPermission) {
			return "", fmt.Errorf("cannot write %s: run the install as root (sudo)", path)
		}
		return "", err
	}
	if !managed(o) {
		return fmt.Sprintf("wrote %s; copy it to %s, then run 'systemctl daemon-reload' and 'systemctl enable %s'", path, DefaultUnitDir, filepath.Base(path)), nil
	}
	if err := systemctl("daemon-reload"); err != nil {
		os.Remove(path) // no half-made install
		return "", err
	}
	if err := systemctl("enable", filepath.Base(path)); err != nil {
		os.Remove(path)
		_ = systemctl("daemon-reload")
		return "", err
	}
	return fmt.Sprintf("installed and enabled %s; it starts at every boot. Start it now with 'tributary-agent service start --config %s'", path, o.Config), nil
}

// Uninstall stops and disables the service and removes its unit. The spool, the release
// log and the keys stay.
func Uninstall(o Options) (string, error) {
	path := UnitPath(o)
	if managed(o) {
		_ = systemctl("disable", "--now", filepath.Base(path))
	}
	if err := os.Remove(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%s is not installed", path)
		}
		return "", err
	}
	if managed(o) {
		if err := systemctl("daemon-reload"); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("removed %s; the spool, the release log and the keys are kept", path), nil
}

// Start starts the installed service.
func Start(o Options) error {
	if err := systemdRunning(); err != nil {
		return err
	}
	return systemctl("start", filepath.Base(UnitPath(o)))
}

// Stop stops the service: the agent stops its plugins and exits; runs waiting in the spool
// are sent after the next start.
func Stop(o Options) error {
	if err := systemdRunning(); err != nil {
		return err
	}
	return systemctl("stop", filepath.Base(UnitPath(o)))
}

// systemdRunning says, in words, when this machine was not booted with systemd (a
// container, say), where systemctl cannot work.
func systemdRunning() error {
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		return errors.New("systemd is not running on this machine, so the agent cannot be installed as a systemd service here; run 'tributary-agent run --config FILE' under this machine's own service manager (or in a container, see deploy/compose.yaml), or write the unit elsewhere with --unit-dir DIR")
	}
	return nil
}

// State is the service manager's word for the service: active, inactive, failed...
func State(o Options) (string, error) {
	if err := systemdRunning(); err != nil {
		return "", err
	}
	out, err := exec.Command("systemctl", "is-active", filepath.Base(UnitPath(o))).Output()
	s := strings.TrimSpace(string(out))
	if s != "" {
		return s, nil // is-active exits non-zero for anything but active
	}
	return "", fmt.Errorf("systemctl is-active: %v", err)
}

func systemctl(args ...string) error {
	out, err := exec.Command("systemctl", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("systemctl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
