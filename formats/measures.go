package formats

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Measure names of the first catalogue (README.md, "Measures": what each counts and in which
// month). A submission may carry further measures whose names match MeasureNamePattern;
// readers ignore measures they do not know.
const (
	RegisteredPatients        = "registered_patients"
	Consultations             = "consultations"
	OutpatientAttendances     = "outpatient_attendances"
	AEAttendances             = "ae_attendances"
	Admissions                = "admissions"
	AdmissionsEmergency       = "admissions_emergency"
	AdmissionsElective        = "admissions_elective"
	BedDays                   = "bed_days"
	PatientsAdmittedEmergency = "patients_admitted_emergency"
)

// Measures lists the catalogue in display order.
var Measures = []string{
	RegisteredPatients, Consultations, OutpatientAttendances, AEAttendances, Admissions,
	AdmissionsEmergency, AdmissionsElective, BedDays, PatientsAdmittedEmergency,
}

// MeasureDescriptions says in one line what each catalogue measure counts.
var MeasureDescriptions = map[string]string{
	RegisteredPatients:        "patients registered on the first day of the month (list size)",
	Consultations:             "primary-care contacts in the month",
	OutpatientAttendances:     "hospital outpatient attendances",
	AEAttendances:             "A&E (emergency department) attendances",
	Admissions:                "all inpatient admissions starting in the month",
	AdmissionsEmergency:       "emergency admissions (admission method 21-25, 2A-2D, 28) starting in the month",
	AdmissionsElective:        "elective admissions (admission method 11-13) starting in the month",
	BedDays:                   "inpatient days of admissions ending in the month",
	PatientsAdmittedEmergency: "distinct patients with at least one emergency admission in the month",
}

// MeasureNamePattern is what any measure name must look like.
var MeasureNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// IsKnownMeasure reports whether m is in the catalogue.
func IsKnownMeasure(m string) bool {
	_, ok := MeasureDescriptions[m]
	return ok
}

// Sexes are the sex categories of every row, in display order.
var Sexes = []string{"female", "male", "unknown"}

// ValidSex reports whether s is one of Sexes.
func ValidSex(s string) bool { return s == "female" || s == "male" || s == "unknown" }

// AgeBands are the 19 five-year bands that map onto the 2013 European Standard Population.
var AgeBands = []string{
	"0-4", "5-9", "10-14", "15-19", "20-24", "25-29", "30-34", "35-39", "40-44", "45-49",
	"50-54", "55-59", "60-64", "65-69", "70-74", "75-79", "80-84", "85-89", "90+",
}

// ESP2013 is the 2013 European Standard Population per age band (total 100,000), with the
// <1 and 1-4 bands joined as 0-4. Source: Eurostat, "Revision of the European Standard
// Population", 2013 edition, table 3.
var ESP2013 = map[string]float64{
	"0-4": 5000, "5-9": 5500, "10-14": 5500, "15-19": 5500, "20-24": 6000, "25-29": 6000,
	"30-34": 6500, "35-39": 7000, "40-44": 7000, "45-49": 7000, "50-54": 7000, "55-59": 6500,
	"60-64": 6000, "65-69": 5500, "70-74": 5000, "75-79": 4000, "80-84": 2500, "85-89": 1500,
	"90+": 1000,
}

var ageBandIndex = func() map[string]int {
	m := make(map[string]int, len(AgeBands))
	for i, b := range AgeBands {
		m[b] = i
	}
	return m
}()

// AgeBandIndex returns the position of band in AgeBands, or -1.
func AgeBandIndex(band string) int {
	if i, ok := ageBandIndex[band]; ok {
		return i
	}
	return -1
}

// AgeBandOf returns the index into AgeBands for an age in whole years; negative ages return
// -1 (an event before birth is a data error, not band 0).
func AgeBandOf(years int) int {
	switch {
	case years < 0:
		return -1
	case years >= 90:
		return len(AgeBands) - 1
	default:
		return years / 5
	}
}

// AgeInYears is the age in completed years on day at, for someone born in birthMonth (the
// canonical rows carry only the birth month, so the birthday is taken as its first day).
func AgeInYears(birthMonth Month, at time.Time) int {
	y, m, _ := at.Date()
	by, bm := birthMonth.Year(), birthMonth.MonthOfYear()
	age := y - by
	if m < bm {
		age--
	}
	return age
}

// Event kinds carried in the kind column of event rows.
const (
	KindConsultation = "consultation"
	KindOutpatient   = "outpatient_attendance"
	KindAE           = "ae_attendance"
	KindAdmission    = "admission"
)

// EventKinds lists the kinds the contract knows.
var EventKinds = []string{KindConsultation, KindOutpatient, KindAE, KindAdmission}

// ValidEventKind reports whether k is one of EventKinds.
func ValidEventKind(k string) bool {
	switch k {
	case KindConsultation, KindOutpatient, KindAE, KindAdmission:
		return true
	}
	return false
}

// Admission methods carried in the admission_method column of admission events.
const (
	MethodEmergency = "emergency"
	MethodElective  = "elective"
	MethodOther     = "other"   // known, but neither emergency nor elective (maternity, transfer)
	MethodUnknown   = "unknown" // the source cannot tell
)

// ValidAdmissionMethod reports whether m is one of the admission methods.
func ValidAdmissionMethod(m string) bool {
	switch m {
	case MethodEmergency, MethodElective, MethodOther, MethodUnknown:
		return true
	}
	return false
}

// AdmissionMethodFromNHS maps an NHS Data Dictionary admission method code (HES ADMIMETH)
// onto the contract's methods: 11-13 elective; 21-25, 2A-2D and 28 emergency; 31-32, 81-83
// and others "other"; blank, 99 and 98 unknown. Surrounding spaces and letter case are
// ignored, as extracts differ in both.
func AdmissionMethodFromNHS(code string) string {
	switch strings.ToUpper(strings.TrimSpace(code)) {
	case "11", "12", "13":
		return MethodElective
	case "21", "22", "23", "24", "25", "2A", "2B", "2C", "2D", "28":
		return MethodEmergency
	case "", "98", "99", "9":
		return MethodUnknown
	}
	return MethodOther
}

// Month is a calendar month, counted as year*12 + (month-1). Its zero value is 0000-01.
type Month int32

// MonthOf returns the month containing t.
func MonthOf(t time.Time) Month { return MonthFor(t.Year(), t.Month()) }

// MonthFor returns the month for a year and month of year.
func MonthFor(year int, m time.Month) Month { return Month(year*12 + int(m) - 1) }

// Year of the month.
func (m Month) Year() int { return int(m) / 12 }

// MonthOfYear of the month.
func (m Month) MonthOfYear() time.Month { return time.Month(int(m)%12 + 1) }

// Start is midnight UTC on the first day of the month.
func (m Month) Start() time.Time {
	return time.Date(m.Year(), m.MonthOfYear(), 1, 0, 0, 0, 0, time.UTC)
}

// String formats the month as YYYY-MM.
func (m Month) String() string {
	y, mo := m.Year(), int(m.MonthOfYear())
	if m < 0 || y > 9999 {
		return fmt.Sprintf("%04d-%02d", y, mo)
	}
	// Without fmt: the combine names the period of every row it writes.
	b := [7]byte{byte('0' + y/1000), byte('0' + y/100%10), byte('0' + y/10%10), byte('0' + y%10), '-', byte('0' + mo/10), byte('0' + mo%10)}
	return string(b[:])
}

// ParseMonth reads YYYY-MM. Its error does not repeat the input, which may be patient data.
func ParseMonth(s string) (Month, error) {
	if len(s) != 7 || s[4] != '-' || !isDigits(s[:4]) || !isDigits(s[5:]) {
		return 0, errorf("parse month", ErrValue, "not a month; write it as YYYY-MM, e.g. 2024-03")
	}
	y, err1 := strconv.Atoi(s[:4])
	mo, err2 := strconv.Atoi(s[5:])
	if err1 != nil || err2 != nil || mo < 1 || mo > 12 || y < 1800 || y > 9999 {
		return 0, errorf("parse month", ErrValue, "not a month; write it as YYYY-MM, e.g. 2024-03")
	}
	return MonthFor(y, time.Month(mo)), nil
}

// isDigits reports whether s is all ASCII digits; strconv.Atoi alone would take "+3" as 3.
func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Date is a calendar day as days since 1970-01-01, the same unit as Arrow's date32.
type Date int32

// DateOf returns the UTC calendar day of t.
func DateOf(t time.Time) Date {
	y, m, d := t.Date()
	return Date(time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix() / 86400)
}

// Time is midnight UTC of the day.
func (d Date) Time() time.Time { return time.Unix(int64(d)*86400, 0).UTC() }

// Month containing the day.
func (d Date) Month() Month { return MonthOf(d.Time()) }

// String formats the day as YYYY-MM-DD.
func (d Date) String() string { return d.Time().Format("2006-01-02") }

// ParseDate reads YYYY-MM-DD.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse("2006-01-02", s)
	if err != nil {
		return 0, errorf("parse date", ErrValue, "not a date; write it as YYYY-MM-DD")
	}
	return DateOf(t), nil
}
