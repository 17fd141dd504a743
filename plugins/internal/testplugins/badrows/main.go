// Command badrows is an extractor that sends a batch breaking the contract, bypassing the
// SDK's Writer. Config mode chooses how: type (field start is a string, the default), missing
// (no field end), value (a registration with an unknown sex), undeclared (an event kind its
// Describe does not list), unsupplied (an admission, which its Describe lists but which it says
// it does not supply with this configuration) or huge (one message of 2 MiB, over the
// protocol's limit). Except in mode unsupplied it answers ValidateConfig as a plugin built
// before supplies existed: without them.
package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/internal/testplugins"
	pluginv1 "github.com/tributary-health/tributary/plugins/proto/tributary/plugin/v1"
)

type server struct {
	pluginv1.UnimplementedExtractorServer
}

func (server) Describe(context.Context, *pluginv1.DescribeRequest) (*pluginv1.DescribeResponse, error) {
	return testplugins.DescribeResponse(), nil
}

func (server) ValidateConfig(_ context.Context, req *pluginv1.ValidateConfigRequest) (*pluginv1.ValidateConfigResponse, error) {
	switch req.GetConfig()["mode"] {
	case "", "type", "missing", "value", "undeclared", "huge":
		return &pluginv1.ValidateConfigResponse{}, nil
	case "unsupplied":
		return &pluginv1.ValidateConfigResponse{Supplies: &pluginv1.Supplies{
			RowKinds: []string{formats.RowEvents}, EventKinds: []string{formats.KindConsultation},
		}}, nil
	}
	return &pluginv1.ValidateConfigResponse{Errors: []string{"mode must be type, missing, value, undeclared, unsupplied or huge"}}, nil
}

func (server) Extract(req *pluginv1.ExtractRequest, stream pluginv1.Extractor_ExtractServer) error {
	kind, rec, err := batch(req.GetConfig()["mode"])
	if err != nil {
		return err
	}
	defer rec.Release()
	b, err := formats.EncodeBatch(rec)
	if err != nil {
		return err
	}
	if err := stream.Send(&pluginv1.ExtractResponse{Payload: &pluginv1.ExtractResponse_Chunk{Chunk: &pluginv1.Chunk{RowKind: kind, ArrowIpc: b}}}); err != nil {
		return err
	}
	return stream.Send(&pluginv1.ExtractResponse{Payload: &pluginv1.ExtractResponse_Summary{Summary: &pluginv1.Summary{
		Rows: map[string]int64{kind: rec.NumRows()}, Chunks: 1,
	}}})
}

func batch(mode string) (string, arrow.Record, error) {
	mem := memory.NewGoAllocator()
	switch mode {
	case "", "type", "missing":
		fields := []arrow.Field{
			{Name: formats.FieldPatientKey, Type: arrow.BinaryTypes.String},
			{Name: formats.FieldKind, Type: arrow.BinaryTypes.String},
			{Name: formats.FieldStart, Type: arrow.FixedWidthTypes.Date32},
			{Name: formats.FieldEnd, Type: arrow.FixedWidthTypes.Date32, Nullable: true},
			{Name: formats.FieldAdmissionMethod, Type: arrow.BinaryTypes.String, Nullable: true},
		}
		if mode == "missing" {
			fields = append(fields[:3], fields[4])
		} else {
			fields[2].Type = arrow.BinaryTypes.String
		}
		b := array.NewRecordBuilder(mem, arrow.NewSchema(fields, nil))
		defer b.Release()
		for i, f := range fields {
			switch f.Type.ID() {
			case arrow.STRING:
				b.Field(i).(*array.StringBuilder).Append(map[string]string{formats.FieldKind: formats.KindConsultation, formats.FieldAdmissionMethod: ""}[f.Name] + "x")
			case arrow.DATE32:
				b.Field(i).(*array.Date32Builder).Append(19000)
			}
		}
		return formats.RowEvents, b.NewRecord(), nil
	case "value":
		b := array.NewRecordBuilder(mem, formats.RegistrationsSchema)
		defer b.Release()
		b.Field(0).(*array.StringBuilder).Append("patient-1")
		b.Field(1).(*array.StringBuilder).Append("not-a-sex")
		b.Field(2).(*array.Date32Builder).Append(10000)
		b.Field(3).(*array.Date32Builder).Append(19000)
		b.Field(4).(*array.Date32Builder).AppendNull()
		return formats.RowRegistrations, b.NewRecord(), nil
	case "undeclared", "huge", "unsupplied":
		e := formats.Event{PatientKey: "patient-1", Kind: formats.KindAE, Start: 19000, End: formats.NoEnd}
		switch mode {
		case "huge":
			e.PatientKey, e.Kind = strings.Repeat("k", 2<<20), formats.KindConsultation
		case "unsupplied":
			e.Kind, e.End, e.Method = formats.KindAdmission, 19002, formats.MethodEmergency
		}
		b := formats.NewEventBuilder(mem)
		defer b.Release()
		if err := b.Append(e); err != nil {
			return "", nil, err
		}
		return formats.RowEvents, b.NewRecord(), nil
	}
	return "", nil, fmt.Errorf("unknown mode %q", mode)
}

func main() { testplugins.ServeRaw(pluginv1.ProtocolVersion, server{}) }
