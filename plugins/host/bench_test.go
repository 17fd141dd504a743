package host_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/host"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// BenchmarkExtract measures rows per second through the whole path: the good test plugin's
// Writer, Arrow IPC over gRPC with mutual TLS, and the host's contract checks.
//
//	go test -run '^$' -bench BenchmarkExtract -benchtime 3x ./plugins/host/
func BenchmarkExtract(b *testing.B) {
	const patients = 100_000 // 3 rows each
	sum, err := host.FileSHA256(bins["good"])
	if err != nil {
		b.Fatal(err)
	}
	p, err := host.Launch(context.Background(), host.Options{Path: bins["good"], SHA256: sum})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	req := sdk.Request{From: formats.MonthFor(2024, 1), To: formats.MonthFor(2024, 1), Config: map[string]string{"rows": strconv.Itoa(patients)}}
	var bytes int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := p.Extract(context.Background(), req, func(string, arrow.Record) error { return nil })
		if err != nil {
			b.Fatal(err)
		}
		bytes += s.Bytes
	}
	b.ReportMetric(float64(3*patients*b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(bytes)/float64(b.N)/(3*patients), "bytes/row")
}
