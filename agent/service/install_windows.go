package service

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/windows"
	"golang.org/x/sys/windows/svc"
	"golang.org/x/sys/windows/svc/mgr"
)

// Install registers the agent with the Service Control Manager: started automatically at
// boot (delayed, after the network), restarted after a failure, logging to o.LogFile.
func Install(o Options) (string, error) {
	if err := o.defaults(); err != nil {
		return "", err
	}
	m, err := mgr.Connect()
	if err != nil {
		return "", fmt.Errorf("cannot reach the Service Control Manager (run the install from an Administrator prompt): %w", err)
	}
	defer m.Disconnect()
	if s, err := m.OpenService(o.Name); err == nil {
		s.Close()
		return "", fmt.Errorf("service %s is already installed; to reinstall, run 'tributary-agent service uninstall' first", o.Name)
	}
	args := []string{"run", "--config", o.Config, "--log-format", "json"}
	if o.LogFile != "" {
		args = append(args, "--log-file", o.LogFile)
	}
	s, err := m.CreateService(o.Name, o.Binary, mgr.Config{
		DisplayName:      "Tributary agent",
		Description:      "Extracts, protects, signs and uploads this practice's monthly figures for the federation.",
		StartType:        mgr.StartAutomatic,
		DelayedAutoStart: true,
	}, args...)
	if err != nil {
		return "", fmt.Errorf("create service %s: %w", o.Name, err)
	}
	defer s.Close()
	restart := mgr.RecoveryAction{Type: mgr.ServiceRestart, Delay: 30 * time.Second}
	if err := s.SetRecoveryActions([]mgr.RecoveryAction{restart, restart, restart}, uint32((24 * time.Hour).Seconds())); err != nil {
		return "", fmt.Errorf("set restart-on-failure for %s: %w", o.Name, err)
	}
	return fmt.Sprintf("installed service %s (automatic start, restarted on failure, log %s). Start it now with 'tributary-agent service start --config %s'", o.Name, o.LogFile, o.Config), nil
}

// Uninstall stops and removes the service. The spool, the release log and the keys stay.
func Uninstall(o Options) (string, error) {
	s, m, err := open(o)
	if err != nil {
		return "", err
	}
	defer m.Disconnect()
	defer s.Close()
	_ = stop(s)
	if err := s.Delete(); err != nil {
		return "", fmt.Errorf("remove service: %w", err)
	}
	return fmt.Sprintf("removed service %s; the spool, the release log and the keys are kept", s.Name), nil
}

// Start starts the installed service.
func Start(o Options) error {
	s, m, err := open(o)
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer s.Close()
	return s.Start()
}

// Stop stops the service and waits up to 30 seconds for it to exit.
func Stop(o Options) error {
	s, m, err := open(o)
	if err != nil {
		return err
	}
	defer m.Disconnect()
	defer s.Close()
	return stop(s)
}

func stop(s *mgr.Service) error {
	st, err := s.Control(svc.Stop)
	if err != nil {
		if errors.Is(err, windows.ERROR_SERVICE_NOT_ACTIVE) {
			return nil
		}
		return fmt.Errorf("stop service: %w", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for st.State != svc.Stopped {
		if time.Now().After(deadline) {
			return errors.New("the service did not stop within 30 seconds")
		}
		time.Sleep(300 * time.Millisecond)
		if st, err = s.Query(); err != nil {
			return err
		}
	}
	return nil
}

// State is the Service Control Manager's word for the service.
func State(o Options) (string, error) {
	s, m, err := open(o)
	if err != nil {
		return "", err
	}
	defer m.Disconnect()
	defer s.Close()
	st, err := s.Query()
	if err != nil {
		return "", err
	}
	switch st.State {
	case svc.Running:
		return "running", nil
	case svc.Stopped:
		return "stopped", nil
	case svc.StartPending:
		return "starting", nil
	case svc.StopPending:
		return "stopping", nil
	}
	return fmt.Sprintf("state %d", st.State), nil
}

func open(o Options) (*mgr.Service, *mgr.Mgr, error) {
	if o.Name == "" {
		o.Name = DefaultName
	}
	m, err := mgr.Connect()
	if err != nil {
		return nil, nil, fmt.Errorf("cannot reach the Service Control Manager (use an Administrator prompt): %w", err)
	}
	s, err := m.OpenService(o.Name)
	if err != nil {
		m.Disconnect()
		return nil, nil, fmt.Errorf("service %s is not installed ('tributary-agent service install --config FILE'): %w", o.Name, err)
	}
	return s, m, nil
}
