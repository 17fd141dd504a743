package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/tributary-health/tributary/formats"
	pluginv1 "github.com/tributary-health/tributary/plugins/proto/tributary/plugin/v1"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// Summary is what one Extract received, as checked by the host.
type Summary struct {
	Rows          map[string]int64 // rows received and checked, by row kind
	Skipped       map[string]int64 // source rows the plugin skipped, by reason
	Chunks        int64            // messages received
	MaxChunkBytes int              // largest Arrow payload received
	Bytes         int64            // Arrow bytes received
	Supplies      sdk.Supplies     // what the plugin said it supplies with the run's configuration
}

// Extract asks the plugin for the rows of req.From..req.To and passes each batch to fn after
// checking it against the contract. It first asks the plugin what it supplies with req.Config
// (Supplies; a configuration the plugin refuses fails the run there, before any row), then
// checks every batch: the row kind is one the plugin supplies with this configuration, the
// schema is the contract's (formats.CheckSchema), and every row decodes and validates
// (formats.DecodeRegistrations, formats.DecodeEvents), with event kinds it supplies. A batch
// that fails fails the run with an error naming the row kind and the field, never a value; fn
// never sees it. fn must not keep rec after returning unless it calls rec.Retain.
//
// The run also fails when the plugin reports a failure (its error, a panic, too many skipped
// rows), exits, sends a stream without the closing summary, or runs past ExtractTimeout or
// ctx; in the last two cases the plugin is killed.
func (p *Plugin) Extract(ctx context.Context, req sdk.Request, fn func(kind string, rec arrow.Record) error) (Summary, error) {
	const op = "extract"
	sum := Summary{Rows: map[string]int64{}}
	if p.closed.Load() {
		return sum, &Error{Op: "plugin " + op, Subject: p.path, Kind: ErrClosed}
	}
	ctx, cancel := context.WithTimeout(ctx, p.opts.ExtractTimeout)
	defer cancel()
	supplies, err := p.Supplies(ctx, req.Config)
	if err != nil {
		return sum, err
	}
	sum.Supplies = supplies
	stream, err := p.rpc.Extract(ctx, &pluginv1.ExtractRequest{From: req.From.String(), To: req.To.String(), Config: req.Config})
	if err != nil {
		return sum, p.callError(ctx, op, err)
	}
	var final *pluginv1.Summary
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return sum, p.callError(ctx, op, err)
		}
		if final != nil {
			return sum, p.contractError(op, "it sent data after its summary; build it with the current SDK", nil)
		}
		switch m := msg.GetPayload().(type) {
		case *pluginv1.ExtractResponse_Chunk:
			sum.Chunks++
			if err := p.receive(m.Chunk, &sum, fn); err != nil {
				return sum, err
			}
		case *pluginv1.ExtractResponse_Summary:
			final = m.Summary
		default:
			return sum, p.contractError(op, "it sent an empty message; build it with the current SDK", nil)
		}
	}
	if final == nil {
		return sum, p.contractError(op, "the stream ended without a summary, so rows may be missing; build it with the current SDK", nil)
	}
	sum.Skipped = boundReasons(final.GetSkipped())
	for _, kind := range []string{formats.RowRegistrations, formats.RowEvents} {
		if final.GetRows()[kind] != sum.Rows[kind] {
			return sum, p.contractError(op, fmt.Sprintf("its summary says %d %s rows were sent, %d arrived", final.GetRows()[kind], kind, sum.Rows[kind]), nil)
		}
	}
	p.log.Info("extraction received", "rows", sum.Rows, "skipped", sum.Skipped, "chunks", sum.Chunks)
	return sum, nil
}

// receive checks one chunk and hands its record to fn.
func (p *Plugin) receive(c *pluginv1.Chunk, sum *Summary, fn func(string, arrow.Record) error) error {
	const op = "extract"
	kind, b := c.GetRowKind(), c.GetArrowIpc()
	where := fmt.Sprintf("chunk %d", sum.Chunks)
	if len(b) > pluginv1.MaxChunkBytes {
		return p.contractError(op, fmt.Sprintf("%s holds %d bytes of Arrow data, more than the protocol's %d; build it with the current SDK", where, len(b), pluginv1.MaxChunkBytes), nil)
	}
	sum.Bytes += int64(len(b))
	sum.MaxChunkBytes = max(sum.MaxChunkBytes, len(b))
	if formats.RowSchema(kind) == nil {
		return p.contractError(op, fmt.Sprintf("%s has row kind %q; the contract has %s and %s", where, kind, formats.RowRegistrations, formats.RowEvents), nil)
	}
	if !contains(sum.Supplies.RowKinds, kind) {
		return p.contractError(op, fmt.Sprintf("%s holds %s rows, which it does not supply with this configuration (it supplies %s)", where, kind, strings.Join(sum.Supplies.RowKinds, ", ")), nil)
	}
	rec, err := formats.DecodeBatch(b, p.opts.MaxDecodedBytes)
	if err != nil {
		return p.contractError(op, fmt.Sprintf("%s of %s rows is not a readable Arrow batch", where, kind), err)
	}
	defer rec.Release()
	if err := CheckBatch(kind, rec, sum.Supplies.EventKinds); err != nil {
		return p.contractError(op, fmt.Sprintf("%s of %s rows", where, kind), err)
	}
	sum.Rows[kind] += rec.NumRows()
	return fn(kind, rec)
}

// CheckBatch checks a record of row kind against the contract: its schema (naming a missing,
// extra or mistyped field; an events batch may leave out both diagnosis columns, as plugins
// built before rows version 2 do, and its events then have no diagnosis), every row's values
// (a diagnosis's code and system included), and, for events, that each kind is in
// eventKinds (what the plugin supplies). Errors name the row kind, field and row number, never
// a value.
func CheckBatch(kind string, rec arrow.Record, eventKinds []string) error {
	if err := formats.CheckSchema(kind, rec.Schema()); err != nil {
		if d := fieldDiff(formats.ContractSchema(kind, rec.Schema()), rec.Schema()); d != "" {
			return fmt.Errorf("%w (%s)", err, d)
		}
		return err
	}
	switch kind {
	case formats.RowRegistrations:
		return formats.DecodeRegistrations(rec, func(formats.Registration) error { return nil })
	case formats.RowEvents:
		row := 0
		return formats.DecodeEvents(rec, func(e formats.Event) error {
			defer func() { row++ }()
			if !contains(eventKinds, e.Kind) {
				return fmt.Errorf("row %d: field %s holds an event kind the plugin does not supply with this configuration (it supplies %s)", row, formats.FieldKind, orNone(eventKinds))
			}
			return nil
		})
	}
	return nil
}

// fieldDiff names the fields one schema has and the other lacks, which CheckSchema's count
// comparison does not.
func fieldDiff(want, got *arrow.Schema) string {
	if want == nil || got == nil {
		return ""
	}
	var parts []string
	for _, f := range want.Fields() {
		if len(got.FieldIndices(f.Name)) == 0 {
			parts = append(parts, "missing field "+f.Name)
		}
	}
	for _, f := range got.Fields() {
		if len(want.FieldIndices(f.Name)) == 0 {
			parts = append(parts, fmt.Sprintf("unexpected field %q", f.Name))
		}
	}
	return strings.Join(parts, ", ")
}

// boundReasons keeps at most 64 skip reasons of at most 64 bytes: a plugin built without the
// SDK could otherwise send anything there, and the agent logs them.
func boundReasons(in map[string]int64) map[string]int64 {
	const maxReasons, maxLen, other = 64, 64, "other reasons"
	out := make(map[string]int64, min(len(in), maxReasons+1))
	for r, n := range in {
		if len(r) > maxLen {
			r = strings.ToValidUTF8(r[:maxLen], "")
		}
		if _, ok := out[r]; !ok && len(out) >= maxReasons {
			r = other
		}
		out[r] += n
	}
	return out
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, ", ")
}

func (p *Plugin) contractError(op, detail string, err error) error {
	return &Error{Op: "plugin " + op, Subject: p.path, Kind: ErrContract, Detail: detail, Err: err}
}
