package formats

import (
	"math/rand/v2"
	"testing"
)

// Benchmarks for one practice's full history as the agent writes it: ten yearly runs, each
// one file with the year's 12 months, 4 quarters and the year, each with 12 measures (the 9
// of the catalogue and 3 extra) × 80 shapes (19 age bands × 3 sexes, and the margins by band,
// by sex and in total). Figures for the README:
//
//	go test ./formats -run '^$' -bench History -benchtime 3x
const historyYears = 10

var historyMeasures = append(append([]string(nil), Measures...), "flu_vaccinations", "nhs_health_checks", "smoking_cessation_referrals")

// history builds the submissions, with counts spread like a practice's: mostly small, so
// every status (zero, suppressed, rounded) occurs.
func history() []*Submission {
	r := rand.New(rand.NewPCG(7, 11))
	subs := make([]*Submission, 0, historyYears)
	for y := range historyYears {
		from := MonthFor(2015+y, 1)
		s := &Submission{
			Practice:   practiceA,
			From:       from,
			To:         from + 11,
			RunID:      fixedRunID,
			Extractors: []string{"synthea@1.0.0"},
			Policy:     PolicyUK.Name,
		}
		for _, p := range PeriodsOf(s.From, s.To) {
			for _, measure := range historyMeasures {
				for shape := range NumShapes {
					band, sex := ShapeLabels(shape)
					n := int64(r.ExpFloat64() * 40 * float64(p.Len()))
					s.Cells = append(s.Cells, Cell{Period: p, Measure: measure, AgeBand: band, Sex: sex, Protected: PolicyUK.Apply(n)})
				}
			}
		}
		subs = append(subs, s)
	}
	return subs
}

func reportHistory(b *testing.B, rows, bytes int) {
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(bytes)/float64(rows), "bytes/row")
	b.ReportMetric(float64(bytes)/historyYears, "bytes/file")
}

func BenchmarkWriteHistory(b *testing.B) {
	subs := history()
	rows, size := 0, 0
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rows, size = 0, 0
		for _, s := range subs {
			data, err := MarshalSubmission(s)
			if err != nil {
				b.Fatal(err)
			}
			rows += len(s.Cells)
			size += len(data)
		}
	}
	reportHistory(b, rows, size)
}

func BenchmarkReadHistory(b *testing.B) {
	var files [][]byte
	rows, size := 0, 0
	for _, s := range history() {
		data := mustMarshal(b, s)
		files = append(files, data)
		rows += len(s.Cells)
		size += len(data)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, data := range files {
			if _, err := ReadSubmission(data, DefaultLimits); err != nil {
				b.Fatal(err)
			}
		}
	}
	reportHistory(b, rows, size)
}

// BenchmarkReadBlocksHistory is BenchmarkReadHistory through ReadBlocks, as the coordinator
// reads: values by period and measure, without a Cell for each.
func BenchmarkReadBlocksHistory(b *testing.B) {
	var files [][]byte
	rows, size := 0, 0
	for _, s := range history() {
		data := mustMarshal(b, s)
		files = append(files, data)
		rows += len(s.Cells)
		size += len(data)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, data := range files {
			if _, _, err := ReadBlocks(data, DefaultLimits); err != nil {
				b.Fatal(err)
			}
		}
	}
	reportHistory(b, rows, size)
}
