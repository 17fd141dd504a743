package main

import (
	"context"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/testenv"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// sharedData returns the shared Synthea set rel (e.g. "synthea_csv_unmc_ne111/csv").
func sharedData(t testing.TB, rel string) string { return testenv.SharedData(t, rel) }

// output is everything one extraction emitted.
type output struct {
	regs   []formats.Registration
	events []formats.Event
	stats  sdk.Stats
}

// collect returns an emit function that decodes batches into out, checking them against the
// contract as the agent does.
func collect(t testing.TB, out *output) func(string, arrow.Record) error {
	return func(kind string, rec arrow.Record) error {
		switch kind {
		case formats.RowRegistrations:
			return formats.DecodeRegistrations(rec, func(r formats.Registration) error {
				out.regs = append(out.regs, r)
				return nil
			})
		case formats.RowEvents:
			return formats.DecodeEvents(rec, func(e formats.Event) error {
				out.events = append(out.events, e)
				return nil
			})
		}
		t.Errorf("unexpected row kind %q", kind)
		return nil
	}
}

// extract runs the extractor in-process through the SDK, as the agent would through Serve.
func extract(t testing.TB, from, to formats.Month, config map[string]string) (output, error) {
	t.Helper()
	var out output
	st, err := sdk.Run(context.Background(), Extractor{}, sdk.Request{From: from, To: to, Config: config}, collect(t, &out))
	out.stats = st
	return out, err
}

func month(t testing.TB, s string) formats.Month {
	t.Helper()
	m, err := formats.ParseMonth(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
