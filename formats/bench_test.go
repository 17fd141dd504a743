package formats

import (
	"math/rand/v2"
	"testing"
)

// Benchmarks for one practice's full history as the agent writes it: one file per month for
// ten years, each with 12 measures (the 9 of the catalogue and 3 extra) × 19 age bands × 3
// sexes. Figures for the README:
//
//	go test ./formats -run '^$' -bench History -benchtime 3x
const historyMonths = 120

var historyMeasures = append(append([]string(nil), Measures...), "flu_vaccinations", "nhs_health_checks", "smoking_cessation_referrals")

// history builds the submissions, with counts spread like a practice's: mostly small, so
// every status (zero, suppressed, rounded) occurs.
func history() []*Submission {
	r := rand.New(rand.NewPCG(7, 11))
	subs := make([]*Submission, 0, historyMonths)
	for m := 0; m < historyMonths; m++ {
		s := &Submission{
			Practice:   practiceA,
			Period:     MonthFor(2015, 1) + Month(m),
			RunID:      fixedRunID,
			Extractors: []string{"synthea@1.0.0"},
			Policy:     PolicyUK.Name,
			Cells:      make([]Cell, 0, len(historyMeasures)*len(AgeBands)*len(Sexes)),
		}
		for _, measure := range historyMeasures {
			for _, band := range AgeBands {
				for _, sex := range Sexes {
					n := int64(r.ExpFloat64() * 40)
					s.Cells = append(s.Cells, Cell{Measure: measure, AgeBand: band, Sex: sex, Protected: PolicyUK.Apply(n)})
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
	b.ReportMetric(float64(bytes)/historyMonths, "bytes/file")
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
