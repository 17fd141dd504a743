package combine

import (
	"context"
	"reflect"
	"slices"
	"strings"
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
	tw, err := newTableWriter(KindFederation, map[string]string{formats.MetaKind: KindFederation, formats.MetaFormatVersion: itoa(Version)}, arrowAndParquet)
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
// included, under both policies, and reads them back as they were; a value the policy cannot
// have published is refused when written, never stored to read back as something else.
func TestPracticeTableRoundTrip(t *testing.T) {
	q1, _ := formats.ParsePeriod("2024-Q1")
	for _, pol := range formats.Policies {
		md := map[string]string{formats.MetaKind: KindPractices, formats.MetaFormatVersion: itoa(Version),
			formats.MetaPolicy: pol.Name, formats.MetaPractice: "A81001"}
		blocks := []PracticeBlock{
			{Practice: "A81001", RunID: "20240301T000000Z-0000000a", Period: formats.MonthPeriod(formats.MonthFor(2024, 1)), Measure: formats.Admissions},
			{Practice: "A81001", RunID: "20240401T000000Z-0000000b", Period: q1, Measure: formats.Admissions},
		}
		for bi := range blocks {
			for i := range blocks[bi].Values {
				switch (i + bi) % 4 {
				case 0:
					blocks[bi].Values[i] = pol.Apply(int64(12 + i))
				case 1:
					blocks[bi].Values[i] = pol.Apply(3)
				case 2:
					blocks[bi].Values[i] = formats.Protected{Status: formats.StatusWithheld}
				default:
					blocks[bi].Values[i] = pol.Apply(0)
				}
			}
		}
		data, err := writePracticeTable(md, blocks)
		if err != nil {
			t.Fatal(err)
		}
		i, values := 0, 0
		got, err := ReadPracticeBlocks(data, func(b *PracticeBlock) error {
			if *b != blocks[i] {
				t.Errorf("%s: block %d read back as %+v, want %+v", pol.Name, i, *b, blocks[i])
			}
			i++
			return nil
		})
		if err != nil || i != len(blocks) || got[formats.MetaKind] != KindPractices || got[formats.MetaPractice] != "A81001" {
			t.Errorf("%s: read back %d blocks, metadata %v (%v)", pol.Name, i, got, err)
		}
		if _, err := ReadPracticeTable(data, func(r *PracticeRow) error {
			b := blocks[values/formats.NumShapes]
			shape := values % formats.NumShapes
			if band, sex := formats.ShapeLabels(shape); r.Practice != "A81001" || r.RunID != b.RunID || r.Period != b.Period || r.AgeBand != band || r.Sex != sex || r.Protected != b.Values[shape] {
				t.Errorf("%s: value %d read back as %+v", pol.Name, values, *r)
			}
			values++
			return nil
		}); err != nil || values != len(blocks)*formats.NumShapes {
			t.Errorf("%s: read back %d values (%v)", pol.Name, values, err)
		}
		if _, err := ReadFederationTable(data, func(*figures.Figure) error { return nil }); err == nil {
			t.Errorf("%s: a practice table read as the federation table", pol.Name)
		}
		bad := slices.Clone(blocks)
		bad[1].Values[7] = formats.Protected{Count: 13, Lower: 11, Upper: 15, Status: formats.StatusRounded}
		if _, err := writePracticeTable(md, bad); err == nil || !strings.Contains(err.Error(), "is not one") {
			t.Errorf("%s: a value the policy cannot publish was written: %v", pol.Name, err)
		}
	}
}
