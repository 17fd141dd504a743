package testplugins

import (
	"context"
	"errors"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pluginv1 "github.com/tributary-health/tributary/plugins/proto/tributary/plugin/v1"
)

type rawPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	srv pluginv1.ExtractorServer
}

func (p *rawPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	pluginv1.RegisterExtractorServer(s, p.srv)
	return nil
}

func (p *rawPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, errors.New("server only")
}
