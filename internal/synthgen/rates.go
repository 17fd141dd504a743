package synthgen

import (
	"errors"
	"fmt"
	"math"
)

// Rates sets the mean number of encounters of each class per patient-year, averaged over the
// generated list: each patient's rate still follows the age factor (more for infants and the
// old), scaled so that the list as a whole meets these means. The zero value means the
// fixed class mix of Config.EncountersPerPatientYear instead.
type Rates struct {
	// Primary care contacts: face-to-face, routine checks, and telephone or video.
	Ambulatory, Wellness, Virtual float64
	// UrgentCare is walk-in urgent care outside the emergency department.
	UrgentCare float64
	// Outpatient is outpatient attendances.
	Outpatient float64
	// Emergency is A&E attendances, including those that end in an emergency admission.
	Emergency float64
	// Inpatient is admissions, elective and emergency, day cases included.
	Inpatient float64
	// EmergencyAdmissionShare is the share of admissions that come through A&E: each is
	// written as an emergency encounter and an inpatient one starting at the same instant,
	// which is how Synthea, and the extractor, tell an emergency admission.
	EmergencyAdmissionShare float64
	// DayCaseShare is the share of the other (planned) admissions discharged the same day.
	DayCaseShare float64
	// Hospice and SNF stays, which no hospital measure counts.
	Hospice, SNF float64
}

// EnglandRates approximate England's activity per patient-year. The hospital figures are NHS
// Digital's (Hospital Episode Statistics) over England's population of about 56.5 M:
//
//   - Admissions, Admitted Patient Care 2022-23: about 16.4 M, elective and emergency, day
//     cases included, 0.29 a person; about two in five are emergency admissions, and most
//     planned ones are day cases.
//   - A&E, Hospital Accident & Emergency Activity 2022-23: about 25.2 M attendances at type 1-4
//     departments, 0.45 a resident. GP lists hold more people than live in England (about
//     62 M registrations), which makes it 0.40 a registered patient, the figure used here as
//     the generator's denominator is a practice list (per registration the admissions rate
//     would be 0.26). Urgent treatment centres are type 3 departments, already in the count,
//     so UrgentCare is zero rather than counting them twice.
//   - Outpatients, Hospital Outpatient Activity: about 96 M attendances in 2019-20, about 1.6
//     a person.
//   - Primary care: about 5 contacts a person, over a quarter of them by telephone or video
//     as in NHS Digital's Appointments in General Practice.
var EnglandRates = Rates{
	Ambulatory: 3.0, Wellness: 0.6, Virtual: 1.4,
	Outpatient:              1.6,
	Emergency:               0.40,
	Inpatient:               0.29,
	EmergencyAdmissionShare: 0.40,
	DayCaseShare:            0.75,
}

func (r Rates) isZero() bool { return r == Rates{} }

func (r Rates) check() error {
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"Ambulatory", r.Ambulatory}, {"Wellness", r.Wellness}, {"Virtual", r.Virtual},
		{"UrgentCare", r.UrgentCare}, {"Outpatient", r.Outpatient}, {"Emergency", r.Emergency},
		{"Inpatient", r.Inpatient}, {"EmergencyAdmissionShare", r.EmergencyAdmissionShare},
		{"DayCaseShare", r.DayCaseShare}, {"Hospice", r.Hospice}, {"SNF", r.SNF},
	} {
		if f.v < 0 || math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			return fmt.Errorf("synthgen: Rates.%s is %v; it must be a number, zero or more", f.name, f.v)
		}
	}
	if r.EmergencyAdmissionShare > 1 || r.DayCaseShare > 1 {
		return errors.New("synthgen: Rates.EmergencyAdmissionShare and DayCaseShare are shares, 0 to 1")
	}
	// Emergency admissions each bring their own A&E attendance, so they cannot outnumber
	// the attendances asked for.
	if r.Inpatient*r.EmergencyAdmissionShare > r.Emergency {
		return fmt.Errorf("synthgen: Rates: %.3g emergency admissions a patient-year need at least as many A&E attendances, but Emergency is %.3g",
			r.Inpatient*r.EmergencyAdmissionShare, r.Emergency)
	}
	if len(r.weights()) == 0 {
		return errors.New("synthgen: Rates: every rate is zero")
	}
	return nil
}

// weights are the classes drawn for each encounter, with their rates per patient-year.
// Emergency is only the attendances that do not end in admission: the others are written
// with their admission.
func (r Rates) weights() []classWeight {
	var out []classWeight
	for _, cw := range []classWeight{
		{ClassAmbulatory, r.Ambulatory}, {ClassWellness, r.Wellness}, {ClassOutpatient, r.Outpatient},
		{ClassUrgentCare, r.UrgentCare}, {ClassEmergency, r.Emergency - r.Inpatient*r.EmergencyAdmissionShare},
		{ClassInpatient, r.Inpatient}, {ClassVirtual, r.Virtual}, {ClassHospice, r.Hospice}, {ClassSNF, r.SNF},
	} {
		// A class with no weight is left out, so rounding cannot pick it as the fallback.
		if cw.weight > 0 {
			out = append(out, cw)
		}
	}
	return out
}

// meanVisitFactor is the mean of visitFactor over all the patient-time the generator writes
// for cfg: births uniform from 90 years before From to To, each patient followed from birth
// or From to To, less the time after the deaths drawn in patient. Dividing the rates by it
// makes them the list's means whatever its window, rather than those of some other list.
func meanVisitFactor(cfg Config) float64 {
	from, to := float64(cfg.From.Unix()), float64(cfg.To.Unix())
	first := float64(floorDiv(cfg.From.Unix(), day)-90*365) * day
	last := first + float64(90*365+(cfg.To.Unix()-cfg.From.Unix())/day)*day
	const steps = 4096
	var exposure, weighted float64
	for i := range steps {
		birth := first + (float64(i)+0.5)/steps*(last-first)
		start := max(birth, from)
		if start >= to {
			continue
		}
		span := to - start
		// patient draws a death with probability p, uniform over start..to: the chance of
		// still being alive falls linearly from 1 to 1-p.
		p := 0.0
		if cfg.DeathsPerThousandYear > 0 {
			age := ((start+to)/2 - birth) / year
			p = 1 - math.Exp(-cfg.DeathsPerThousandYear/1000*deathFactor(age)*span/year)
		}
		alive := func(t float64) float64 { return (t - start) - p*(t-start)*(t-start)/(2*span) }
		a := start
		for _, band := range visitFactors {
			c := min(to, birth+band.below*year)
			if c <= a {
				continue
			}
			w := alive(c) - alive(a)
			exposure += w
			weighted += w * band.factor
			a = c
			if a >= to {
				break
			}
		}
	}
	if exposure == 0 {
		return 1
	}
	return weighted / exposure
}
