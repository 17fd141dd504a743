// Command oldproto is an extractor that speaks protocol version 0, which no agent supports.
package main

import (
	"context"

	"github.com/tributary-health/tributary/plugins/internal/testplugins"
	pluginv1 "github.com/tributary-health/tributary/plugins/proto/tributary/plugin/v1"
)

type server struct {
	pluginv1.UnimplementedExtractorServer
}

func (server) Describe(context.Context, *pluginv1.DescribeRequest) (*pluginv1.DescribeResponse, error) {
	r := testplugins.DescribeResponse()
	r.ProtocolVersions = []int32{0}
	return r, nil
}

func main() { testplugins.ServeRaw(0, server{}) }
