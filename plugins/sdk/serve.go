package sdk

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tributary-health/tributary/formats"
	pluginv1 "github.com/tributary-health/tributary/plugins/proto/tributary/plugin/v1"
)

// Name identifies this SDK in Describe, so the agent's log says what built a plugin.
const Name = "tributary-sdk-go/v1"

// Handshake is the go-plugin handshake shared with the agent's host package. The protocol
// version is negotiated through VersionedPlugins, not set here.
var Handshake = plugin.HandshakeConfig{
	MagicCookieKey:   pluginv1.MagicCookieKey,
	MagicCookieValue: pluginv1.MagicCookieValue,
}

// Serve runs ex as a plugin for the agent and returns when the agent closes it. It is all a
// plugin's main function calls:
//
//	func main() { sdk.Serve(myExtractor{}) }
//
// Logs go to stderr as JSON, which the agent copies into its own log; nothing but go-plugin's
// handshake line is ever written to stdout. A binary run by hand prints a short explanation
// and exits with status 1.
func Serve(ex Extractor) {
	name := "extractor"
	if err := protect("Describe", func() error { name = ex.Describe().Name; return nil }); err != nil {
		name = "extractor"
	}
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Output:     os.Stderr,
		JSONFormat: true,
		Level:      hclog.Info,
	})
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{
			pluginv1.ProtocolVersion: {pluginv1.PluginName: &grpcPlugin{ex: ex, log: logger}},
		},
		GRPCServer: plugin.DefaultGRPCServer,
		Logger:     logger,
	})
}

// grpcPlugin is the server half of go-plugin's GRPCPlugin; the agent's host package has the
// client half.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	ex  Extractor
	log hclog.Logger
}

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pluginv1.RegisterExtractorServer(s, &server{ex: p.ex, log: p.log})
	return nil
}

func (p *grpcPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("the SDK serves extractors; the client is in plugins/host")
}

// server implements the protocol on top of an Extractor.
type server struct {
	pluginv1.UnimplementedExtractorServer
	ex  Extractor
	log hclog.Logger
}

func (s *server) Describe(context.Context, *pluginv1.DescribeRequest) (*pluginv1.DescribeResponse, error) {
	var d Description
	if err := protect("Describe", func() error { d = s.ex.Describe(); return nil }); err != nil {
		return nil, toStatus(err)
	}
	resp := &pluginv1.DescribeResponse{
		Name:             d.Name,
		Version:          d.Version,
		ProtocolVersions: []int32{pluginv1.ProtocolVersion},
		RowKinds:         d.RowKinds,
		EventKinds:       d.EventKinds,
		Methods:          d.Methods,
		Diagnoses:        d.Diagnoses,
		Discharges:       d.Discharges,
		Sdk:              Name,
	}
	for _, k := range append(append([]ConfigKey(nil), d.Config...), GenericConfig...) {
		resp.Config = append(resp.Config, &pluginv1.ConfigKey{
			Name: k.Name, Help: k.Help, Required: k.Required, DefaultValue: k.Default,
			Type: string(k.TypeOrString()), AllowedValues: k.Allowed,
		})
	}
	return resp, nil
}

func (s *server) ValidateConfig(_ context.Context, req *pluginv1.ValidateConfigRequest) (*pluginv1.ValidateConfigResponse, error) {
	c, err := checkConfig(s.ex, req.GetConfig())
	switch {
	case err == nil:
		return &pluginv1.ValidateConfigResponse{Supplies: &pluginv1.Supplies{
			RowKinds: c.supplies.RowKinds, EventKinds: c.supplies.EventKinds, Methods: c.supplies.Methods,
			Diagnoses: c.supplies.Diagnoses, Discharges: c.supplies.Discharges,
		}}, nil
	case errors.Is(err, ErrConfig):
		return &pluginv1.ValidateConfigResponse{Errors: []string{err.Error()}}, nil
	}
	return nil, toStatus(err)
}

func (s *server) Extract(req *pluginv1.ExtractRequest, stream pluginv1.Extractor_ExtractServer) error {
	from, err1 := formats.ParseMonth(req.GetFrom())
	to, err2 := formats.ParseMonth(req.GetTo())
	if err := errors.Join(err1, err2); err != nil {
		return toStatus(&Error{Kind: ErrRequest, Detail: "months must be written YYYY-MM", Err: err})
	}
	log := s.log.With("from", from.String(), "to", to.String())
	var chunks int64
	emit := func(kind string, rec arrow.Record) error {
		return sendChunks(kind, rec, MaxChunkBytes, func(c *pluginv1.Chunk) error {
			chunks++
			return stream.Send(&pluginv1.ExtractResponse{Payload: &pluginv1.ExtractResponse_Chunk{Chunk: c}})
		})
	}
	stats, err := Run(stream.Context(), s.ex, Request{From: from, To: to, Config: req.GetConfig(), Log: log}, emit)
	if err != nil {
		log.Error("extraction failed", "error", err)
		return toStatus(err)
	}
	log.Info("extraction done", "rows", stats.TotalRows(), "skipped", stats.TotalSkipped(), "chunks", chunks)
	return stream.Send(&pluginv1.ExtractResponse{Payload: &pluginv1.ExtractResponse_Summary{Summary: &pluginv1.Summary{
		Rows: stats.Rows, Skipped: stats.Skipped, Chunks: chunks,
	}}})
}

// sendChunks encodes rec and sends it, halving it until each half encodes within limit, so a
// batch of unusually long values still crosses as several messages rather than failing.
func sendChunks(kind string, rec arrow.Record, limit int, send func(*pluginv1.Chunk) error) error {
	b, err := formats.EncodeBatch(rec)
	if err != nil {
		return err
	}
	if len(b) <= limit {
		return send(&pluginv1.Chunk{RowKind: kind, ArrowIpc: b})
	}
	n := rec.NumRows()
	if n <= 1 {
		return fmt.Errorf("one %s row encodes to %d bytes, more than the protocol's %d; a field is far longer than any real value", kind, len(b), limit)
	}
	for _, r := range [][2]int64{{0, n / 2}, {n / 2, n}} {
		half := rec.NewSlice(r[0], r[1])
		err := sendChunks(kind, half, limit, send)
		half.Release()
		if err != nil {
			return err
		}
	}
	return nil
}

// Status codes carry the error kinds to the agent; the message is the error's sentence.
var kindCodes = []struct {
	kind error
	code codes.Code
}{
	{ErrConfig, codes.InvalidArgument},
	{ErrRequest, codes.OutOfRange},
	{ErrPanic, codes.Internal},
	{ErrBudget, codes.FailedPrecondition},
	{ErrExtract, codes.Aborted},
	{ErrDescribe, codes.Unimplemented},
	{context.Canceled, codes.Canceled},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
}

func toStatus(err error) error {
	for _, kc := range kindCodes {
		if errors.Is(err, kc.kind) {
			return status.Error(kc.code, err.Error())
		}
	}
	return status.Error(codes.Unknown, err.Error())
}

// KindOf maps a status code from a plugin back to the SDK's error kind, or nil.
func KindOf(c codes.Code) error {
	for _, kc := range kindCodes {
		if kc.code == c {
			return kc.kind
		}
	}
	return nil
}
