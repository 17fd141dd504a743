package server

import (
	"context"
	"log/slog"
)

// StoreNotifications returns no channel and no error, and does nothing: a server now
// subscribes to its store's notifications itself, through objstore (see Status.Notifications),
// so a caller needs neither this nor Options.Notify. It stays only until serve's command
// stops calling it; then it goes.
func StoreNotifications(_ context.Context, _, _, _ string, _ *slog.Logger) (<-chan struct{}, error) {
	return nil, nil
}
