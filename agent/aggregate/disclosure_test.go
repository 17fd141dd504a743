package aggregate

import (
	"fmt"
	"testing"

	"github.com/tributary-health/tributary/formats"
)

// TestNoSuppressedCellDerivable attacks the practice file by brute force. For every small
// true table of admissions in one month, age band and sex — E elective, M emergency (by P
// distinct patients), O admissions of unknown method, each stay one night — it releases the
// practice's submission (writing and reading back the real file once per distinct
// publication), and groups the true tables by what the file
// publishes. An attacker who sees a file knows only that the truth is one of its group,
// and knows the relations between measures (admissions = E+M+O, bed days = admissions,
// P <= M). For every suppressed cell, the group must hold at least two different true
// values: no suppressed count can be derived from the other published figures.
func TestNoSuppressedCellDerivable(t *testing.T) {
	if testing.Short() {
		t.Skip("brute force over 8,000 files")
	}
	const top = 10
	measures := []string{formats.Admissions, formats.AdmissionsEmergency, formats.AdmissionsElective, formats.BedDays, formats.PatientsAdmittedEmergency}
	type truth map[string]int64
	groups := map[string][]truth{}
	jan := formats.MonthFor(2024, 1)
	day := formats.DateOf(jan.Start().AddDate(0, 0, 9))
	files := 0
	for e := int64(0); e <= top; e++ {
		for mm := int64(0); mm <= top; mm++ {
			for o := int64(0); o <= top; o++ {
				pMin, pMax := int64(1), mm
				if mm == 0 {
					pMin = 0
				}
				for p := pMin; p <= pMax; p++ {
					a := New(jan, jan)
					for i := int64(0); i < top+1; i++ {
						a.Registration(formats.Registration{PatientKey: fmt.Sprint(i), Sex: "female", BirthMonth: formats.MonthFor(1950, 1), From: 0, To: formats.NoEnd})
					}
					admit := func(patient int64, method string) {
						a.Event(formats.Event{PatientKey: fmt.Sprint(patient), Kind: formats.KindAdmission, Start: day, End: day + 1, Method: method})
					}
					for i := int64(0); i < mm; i++ {
						admit(i%max(p, 1), formats.MethodEmergency) // M admissions spread over P patients
					}
					for i := int64(0); i < e; i++ {
						admit(i, formats.MethodElective)
					}
					for i := int64(0); i < o; i++ {
						admit(i, formats.MethodUnknown)
					}
					res := a.Finish(all)
					subs, err := res.Release("P1", "20240101T000000Z-00000000", []string{"bf@1"}, formats.PolicyUK)
					if err != nil {
						t.Fatal(err)
					}
					sub := subs[0]
					files++
					sig := ""
					tr := truth{}
					for _, c := range sub.Cells {
						if c.AgeBand != "70-74" || c.Sex != "female" {
							continue
						}
						sig += fmt.Sprintf("%s=%s:%d[%d,%d] ", c.Measure, c.Status, c.Count, c.Lower, c.Upper)
						tr[c.Measure] = res.Count(jan, c.Measure, "70-74", "female")
					}
					if len(groups[sig]) == 0 {
						// What the file on disk publishes is what Release made.
						data, err := formats.MarshalSubmission(sub)
						if err != nil {
							t.Fatal(err)
						}
						back, err := formats.ReadSubmission(data, formats.DefaultLimits)
						if err != nil || len(back.Cells) != len(sub.Cells) {
							t.Fatalf("round trip: %v", err)
						}
					}
					groups[sig] = append(groups[sig], tr)
				}
			}
		}
	}
	suppressedSeen := 0
	for sig, tables := range groups {
		for _, m := range measures {
			values := map[int64]bool{}
			for _, tr := range tables {
				values[tr[m]] = true
			}
			suppressed := false
			for _, tr := range tables {
				if p := formats.PolicyUK.Apply(tr[m]); p.Status == formats.StatusSuppressed {
					suppressed = true
				}
			}
			if suppressed {
				suppressedSeen++
				if len(values) < 2 {
					t.Errorf("file %q reveals suppressed %s = %v", sig, m, values)
				}
			}
		}
	}
	if suppressedSeen == 0 {
		t.Fatal("no suppressed cell was tested")
	}
	t.Logf("%d files, %d distinct publications, %d suppressed cells checked: none derivable", files, len(groups), suppressedSeen)
}
