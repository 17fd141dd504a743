package combine

import (
	"context"
	"reflect"
	"testing"

	"github.com/tributary-health/tributary/coordinator/figures"
	"github.com/tributary-health/tributary/formats"
)

func i64p(v int64) *int64     { return &v }
func f64p(v float64) *float64 { return &v }

// TestTableRoundTrip writes a federation table with its Parquet copy over more than one
// batch, checks the read-back totals and every field of every row, and checks that a
// damaged file is caught.
func TestTableRoundTrip(t *testing.T) {
	ctx := context.Background()
	tw, err := newTableWriter(KindFederation, map[string]string{formats.MetaKind: KindFederation, formats.MetaFormatVersion: itoa(Version)}, true)
	if err != nil {
		t.Fatal(err)
	}
	rows := []figures.Figure{
		{Period: "2024-01", From: "2024-01", To: "2024-01", Measure: formats.Admissions, AgeBand: "0-4", Sex: "female", Status: formats.StatusRounded, Count: i64p(10),
			Lower: 8, Upper: 12, PublishedSum: 10, Method: figures.MethodPublished, ListSize: i64p(100), ListLower: f64p(98), ListUpper: f64p(102),
			Rate: f64p(100), RateLower: f64p(8.0 / 102 * 1000), RateUpper: f64p(12.0 / 98 * 1000), Practices: 2},
		{Period: "2024-Q1", From: "2024-01", To: "2024-03", Measure: formats.Admissions, AgeBand: "0-4", Status: formats.StatusSuppressed,
			Lower: 1, Upper: 7, Method: figures.MethodEstimated, Practices: 2, Note: "partly from finer values"},
		{Period: "2024", From: "2024-01", To: "2024-12", Measure: formats.RegisteredPatients, Status: StatusPartial, Count: i64p(1200),
			Lower: 1190, Upper: 1210, PublishedSum: 1195, Method: figures.MethodEstimated, DSR: f64p(3.5), DSRCILower: f64p(3), DSRCIUpper: f64p(4),
			DSRAtLower: f64p(2.9), DSRAtUpper: f64p(4.2), Practices: 3},
	}
	n := batchRows + 5 // more than one batch
	for i := range n {
		if err := tw.appendFederation(&rows[i%len(rows)]); err != nil {
			t.Fatal(err)
		}
	}
	arrowData, pq, err := tw.finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var wantSums [3]int64
	for i := range n {
		r := rows[i%len(rows)]
		if r.Count != nil {
			wantSums[0] += *r.Count
		}
		wantSums[1] += r.Lower
		wantSums[2] += r.Upper
	}
	got, sums, err := parquetTotals(ctx, pq)
	if err != nil || got != int64(n) || sums != tw.sums || sums != wantSums {
		t.Errorf("parquet read back %d rows %v (%v), want %d rows %v", got, sums, err, n, wantSums)
	}
	i := 0
	if _, err := ReadFederationTable(arrowData, func(r *figures.Figure) error {
		if want := rows[i%len(rows)]; !reflect.DeepEqual(*r, want) {
			t.Fatalf("row %d read back as %+v, want %+v", i, *r, want)
		}
		i++
		return nil
	}); err != nil || i != n {
		t.Errorf("arrow read back %d rows (%v), want %d", i, err, n)
	}
	if _, err := ReadPracticeTable(arrowData, func(*PracticeRow) error { return nil }); err == nil {
		t.Error("a federation table read as a practice table")
	}
	if _, _, err := parquetTotals(ctx, pq[:len(pq)/2]); err == nil {
		t.Error("a truncated Parquet file read back without error")
	}
	if _, err := ReadFederationTable(arrowData[:len(arrowData)/2], func(*figures.Figure) error { return nil }); err == nil {
		t.Error("a truncated Arrow file read back without error")
	}
}

// TestPracticeTableRoundTrip writes every status a practice can publish, withheld values
// included, and reads them back as they were.
func TestPracticeTableRoundTrip(t *testing.T) {
	ctx := context.Background()
	tw, err := newTableWriter(KindPractices, map[string]string{formats.MetaKind: KindPractices, formats.MetaFormatVersion: itoa(Version)}, false)
	if err != nil {
		t.Fatal(err)
	}
	q1, _ := formats.ParsePeriod("2024-Q1")
	rows := []PracticeRow{
		{Practice: "A81001", RunID: "20240301T000000Z-0000000a", Period: formats.MonthPeriod(formats.MonthFor(2024, 1)), Measure: formats.Admissions,
			AgeBand: "0-4", Sex: "female", Protected: formats.PolicyUK.Apply(12)},
		{Practice: "A81001", RunID: "20240301T000000Z-0000000a", Period: q1, Measure: formats.Admissions,
			AgeBand: "0-4", Sex: formats.All, Protected: formats.PolicyUK.Apply(3)},
		{Practice: "A81001", RunID: "20240301T000000Z-0000000a", Period: q1, Measure: formats.Admissions,
			AgeBand: formats.All, Sex: formats.All, Protected: formats.Protected{Status: formats.StatusWithheld}},
	}
	for i := range rows {
		if err := tw.appendPractice(&rows[i]); err != nil {
			t.Fatal(err)
		}
	}
	data, pq, err := tw.finish(ctx)
	if err != nil || pq != nil {
		t.Fatalf("finish: %v, parquet %d bytes (want none)", err, len(pq))
	}
	i := 0
	md, err := ReadPracticeTable(data, func(r *PracticeRow) error {
		if *r != rows[i] {
			t.Errorf("row %d read back as %+v, want %+v", i, *r, rows[i])
		}
		i++
		return nil
	})
	if err != nil || i != len(rows) || md[formats.MetaKind] != KindPractices {
		t.Errorf("read back %d rows, metadata %v (%v)", i, md, err)
	}
	if _, err := ReadFederationTable(data, func(*figures.Figure) error { return nil }); err == nil {
		t.Error("a practice table read as the federation table")
	}
}
