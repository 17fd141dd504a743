package service

import (
	"context"

	"golang.org/x/sys/windows/svc"
)

// RunManaged runs serve under the Windows Service Control Manager when the process was
// started by it, stopping serve's context on Stop or Shutdown; handled is false otherwise.
func RunManaged(name string, serve func(context.Context) error) (handled bool, err error) {
	is, err := svc.IsWindowsService()
	if err != nil || !is {
		return false, err
	}
	h := &scmHandler{serve: serve}
	if err := svc.Run(name, h); err != nil {
		return true, err
	}
	return true, h.err
}

type scmHandler struct {
	serve func(context.Context) error
	err   error
}

func (h *scmHandler) Execute(_ []string, req <-chan svc.ChangeRequest, st chan<- svc.Status) (bool, uint32) {
	st <- svc.Status{State: svc.StartPending}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.serve(ctx) }()
	st <- svc.Status{State: svc.Running, Accepts: svc.AcceptStop | svc.AcceptShutdown}
	for {
		select {
		case h.err = <-done:
			// serve ended by itself: report a failure so the recovery actions restart it
			if h.err != nil {
				return true, 1
			}
			return false, 0
		case c := <-req:
			switch c.Cmd {
			case svc.Interrogate:
				st <- c.CurrentStatus
			case svc.Stop, svc.Shutdown:
				st <- svc.Status{State: svc.StopPending}
				cancel()
				h.err = <-done
				return false, 0
			}
		}
	}
}
