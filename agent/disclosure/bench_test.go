package disclosure

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/tributary-health/tributary/formats"
)

// practiceShare is the share of a practice's list in each age band (England, roughly:
// ONS mid-year estimates, registered lists run a little older).
var practiceShare = [formats.NumBands]float64{
	5.4, 5.9, 6.0, 5.6, 5.9, 6.6, 7.0, 6.8, 6.4, 6.2, 6.8, 6.8, 5.9, 5.1, 5.0, 3.9, 2.6, 1.5, 0.9,
}

// ageFactor scales event rates by age band: the very young and the old use hospitals most.
var ageFactor = [formats.NumBands]float64{
	1.3, 0.5, 0.5, 0.7, 0.8, 0.8, 0.8, 0.8, 0.8, 0.9, 1.0, 1.1, 1.3, 1.5, 1.8, 2.3, 3.0, 3.6, 4.2,
}

func poisson(r *rand.Rand, mean float64) int64 {
	if mean <= 0 {
		return 0
	}
	if mean > 30 {
		return max(0, int64(math.Round(mean+math.Sqrt(mean)*r.NormFloat64())))
	}
	l, k, p := math.Exp(-mean), int64(0), 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func binomial(r *rand.Rand, n int64, p float64) int64 {
	var k int64
	for range n {
		if r.Float64() < p {
			k++
		}
	}
	return k
}

// syntheticPractice is a practice of the given list size over the months from..to, every
// catalogue measure drawn at realistic rates per person-year: consultations 5, outpatient
// attendances 1.5, A&E attendances 0.4, admissions 0.29 (40% emergency, 45% elective), with
// bed days at about 4 per admission; the relations between admission measures hold.
func syntheticPractice(seed uint64, patients int, from, to formats.Month) *Table {
	r := rand.New(rand.NewPCG(seed, 1))
	t := NewTable(from, to, formats.Measures)
	idx := map[string]int{}
	for i, m := range formats.Measures {
		idx[m] = i
	}
	var total float64
	for _, s := range practiceShare {
		total += s
	}
	for m := from; m <= to; m++ {
		for b := range formats.NumBands {
			for x := range formats.NumSexes {
				share := [formats.NumSexes]float64{0.495, 0.495, 0.01}[x]
				pop := float64(patients) * practiceShare[b] / total * share
				fine := formats.FineShape(b, x)
				months := 1.0 / 12
				list := max(0, int64(math.Round(pop)))
				t.Set(idx[formats.RegisteredPatients], m, fine, list)
				py := float64(list) * months * ageFactor[b]
				t.Set(idx[formats.Consultations], m, fine, poisson(r, 5*py))
				t.Set(idx[formats.OutpatientAttendances], m, fine, poisson(r, 1.5*py))
				t.Set(idx[formats.AEAttendances], m, fine, poisson(r, 0.4*py))
				adm := poisson(r, 0.29*py)
				em := binomial(r, adm, 0.40)
				el := binomial(r, adm-em, 0.45/0.60)
				pat := em - binomial(r, em, 0.1) // a few patients admitted twice
				t.Set(idx[formats.Admissions], m, fine, adm)
				t.Set(idx[formats.AdmissionsEmergency], m, fine, em)
				t.Set(idx[formats.AdmissionsElective], m, fine, el)
				t.Set(idx[formats.PatientsAdmittedEmergency], m, fine, pat)
				t.Set(idx[formats.BedDays], m, fine, poisson(r, 4*float64(adm)))
			}
		}
	}
	return t
}

// BenchmarkAudit audits a realistic practice's year run: 7,000 patients, all nine
// catalogue measures, 12 months, 4 quarters and the year (17 periods × 9 measures × 80
// shapes). It reports the values withheld and the protected values per run.
//
//	go test ./agent/disclosure -run '^$' -bench Audit -benchtime 5x
func BenchmarkAudit(b *testing.B) {
	for _, size := range []int{2000, 7000} {
		b.Run(map[int]string{2000: "patients=2000", 7000: "patients=7000"}[size], func(b *testing.B) {
			t := syntheticPractice(42, size, formats.MonthFor(2023, 1), formats.MonthFor(2023, 12))
			var st Stats
			b.ResetTimer()
			for range b.N {
				p, err := Audit(t, formats.PolicyUK)
				if err != nil {
					b.Fatal(err)
				}
				st = p.Stats
			}
			b.ReportMetric(float64(st.Values), "values")
			b.ReportMetric(float64(st.Protected), "protected")
			b.ReportMetric(float64(st.Withheld), "withheld")
			b.ReportMetric(float64(st.Decided), "decided")
			b.ReportMetric(float64(st.Searches), "searches")
		})
	}
}
