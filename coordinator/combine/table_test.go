package combine

import (
	"context"
	"testing"

	"github.com/tributary-health/tributary/formats"
)

// TestTableRoundTrip writes a table with its Parquet copy, checks the read-back totals, and
// checks that a damaged Parquet file is caught.
func TestTableRoundTrip(t *testing.T) {
	ctx := context.Background()
	tw, err := newTableWriter(KindFederation, map[string]string{formats.MetaKind: KindFederation}, true)
	if err != nil {
		t.Fatal(err)
	}
	rows := []Row{
		{Month: formats.MonthFor(2024, 1), Measure: formats.Admissions, AgeBand: "0-4", Sex: "female", Count: 10, Status: formats.StatusRounded, Lower: 8, Upper: 12, ListSize: 100, Practices: 2},
		{Month: formats.MonthFor(2024, 1), Measure: formats.Admissions, AgeBand: "0-4", Sex: "male", Status: formats.StatusSuppressed, Lower: 1, Upper: 7, Practices: 2},
	}
	for i := 0; i < batchRows+5; i++ { // more than one batch
		if err := tw.append(&rows[i%2]); err != nil {
			t.Fatal(err)
		}
	}
	arrowData, pq, err := tw.finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n, sums, err := parquetTotals(ctx, pq)
	if err != nil || n != batchRows+5 || sums != tw.sums || sums[0] != 10*int64((batchRows+5+1)/2) {
		t.Errorf("parquet read back %d rows %v (%v), want %d rows %v", n, sums, err, batchRows+5, tw.sums)
	}
	var got int
	var suppressedCount int64
	if _, err := ReadTable(arrowData, func(r *Row) error {
		got++
		if r.Status == formats.StatusSuppressed {
			suppressedCount += r.Count
		}
		return nil
	}); err != nil || got != batchRows+5 || suppressedCount != 0 {
		t.Errorf("arrow read back %d rows (%v), suppressed counts %d", got, err, suppressedCount)
	}
	if _, _, err := parquetTotals(ctx, pq[:len(pq)/2]); err == nil {
		t.Error("a truncated Parquet file read back without error")
	}
	if _, err := ReadTable(arrowData[:len(arrowData)/2], func(*Row) error { return nil }); err == nil {
		t.Error("a truncated Arrow file read back without error")
	}
}
