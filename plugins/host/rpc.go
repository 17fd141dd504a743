package host

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tributary-health/tributary/formats"
	pluginv1 "github.com/tributary-health/tributary/plugins/proto/tributary/plugin/v1"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// grpcPlugin is the client half of go-plugin's GRPCPlugin; the SDK has the server half.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

func (grpcPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return errors.New("the host only calls extractors; plugins serve them with plugins/sdk")
}

func (grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return pluginv1.NewExtractorClient(c), nil
}

// callError classifies a failed call. A call that ran out of time kills the plugin, since
// whatever it is stuck in may never end; a plugin that died is reported with how it ended.
func (p *Plugin) callError(ctx context.Context, op string, err error) error {
	if p.closed.Load() {
		return &Error{Op: "plugin " + op, Subject: p.path, Kind: ErrClosed, Detail: "the plugin was closed during the call", Err: err}
	}
	if why := ended(ctx); why != nil {
		p.kill()
		if errors.Is(why, context.DeadlineExceeded) {
			return &Error{Op: "plugin " + op, Subject: p.path, Kind: ErrTimeout, Detail: "no answer in time; the plugin was killed. Check the data source it reads is reachable, or raise the timeout"}
		}
		return &Error{Op: "plugin " + op, Subject: p.path, Kind: ErrClosed, Detail: "the call was cancelled and the plugin killed", Err: why}
	}
	st, ok := status.FromError(err)
	if ok {
		if kind := sdk.KindOf(st.Code()); kind != nil && kind != context.Canceled && kind != context.DeadlineExceeded {
			return &Error{Op: "plugin " + op, Subject: p.path, Kind: ErrPlugin, Detail: st.Message(), Err: silent{kind}}
		}
		switch st.Code() {
		case codes.Unknown:
			return &Error{Op: "plugin " + op, Subject: p.path, Kind: ErrPlugin, Detail: st.Message()}
		case codes.ResourceExhausted:
			p.kill()
			return &Error{Op: "plugin " + op, Subject: p.path, Kind: ErrContract, Detail: fmt.Sprintf("it sent a message larger than the protocol allows (%d bytes of Arrow data per chunk); build it with the current SDK", pluginv1.MaxChunkBytes), Err: err}
		}
	}
	if status := p.exitStatus(); p.client.Exited() {
		return &Error{Op: "plugin " + op, Subject: p.path, Kind: ErrCrashed, Detail: "the process ended during the call" + status + "; its stderr is in the agent log"}
	}
	return &Error{Op: "plugin " + op, Subject: p.path, Kind: ErrPlugin, Err: err}
}

// ended says why the host's side of a call is over, or nil while it is not: its context is
// done, or its deadline has passed although the context has not noticed yet. The second case
// is not rare: a context learns of its deadline from a timer, which on a loaded machine fires
// late, while the plugin's copy of the same deadline (gRPC sends it along) or gRPC's own
// clock check can end the stream first. The stream then fails with DeadlineExceeded as if
// the plugin had reported it, and only the deadline tells it is the host's timeout.
func ended(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

// describeFromProto converts and checks a plugin's self-description.
func describeFromProto(r *pluginv1.DescribeResponse) (Description, error) {
	d := Description{
		Description: sdk.Description{
			Name:       r.GetName(),
			Version:    r.GetVersion(),
			RowKinds:   r.GetRowKinds(),
			EventKinds: r.GetEventKinds(),
			Methods:    r.GetMethods(),
			Diagnoses:  r.GetDiagnoses(),
			Discharges: r.GetDischarges(),
		},
		SDK: r.GetSdk(),
	}
	for _, v := range r.GetProtocolVersions() {
		d.ProtocolVersions = append(d.ProtocolVersions, int(v))
	}
	for _, k := range r.GetConfig() {
		d.Config = append(d.Config, sdk.ConfigKey{
			Name: k.GetName(), Help: k.GetHelp(), Required: k.GetRequired(), Default: k.GetDefaultValue(),
			Type: sdk.ConfigType(k.GetType()), Allowed: k.GetAllowedValues(),
		})
	}
	return d, checkDescription(d)
}

func checkDescription(d Description) error {
	if d.Name == "" {
		return errors.New("the plugin's Describe gave no name; set Description.Name")
	}
	if d.Version == "" {
		return errors.New("the plugin's Describe gave no version; set Description.Version")
	}
	if len(d.RowKinds) == 0 {
		return errors.New("the plugin's Describe lists no row kinds; set Description.RowKinds")
	}
	for _, k := range d.RowKinds {
		if formats.RowSchema(k) == nil {
			return fmt.Errorf("the plugin's Describe lists row kind %q; the contract has %s and %s", k, formats.RowRegistrations, formats.RowEvents)
		}
	}
	for _, k := range d.EventKinds {
		if !formats.ValidEventKind(k) {
			return fmt.Errorf("the plugin's Describe lists event kind %q, which the contract does not have (formats.EventKinds)", k)
		}
	}
	return nil
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
