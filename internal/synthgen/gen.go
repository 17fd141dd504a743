package synthgen

import (
	"bufio"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

const (
	day  = 86400
	year = 365.25 * day
)

var patientHeader = []string{
	"Id", "BIRTHDATE", "DEATHDATE", "SSN", "DRIVERS", "PASSPORT", "PREFIX", "FIRST", "LAST",
	"SUFFIX", "MAIDEN", "MARITAL", "RACE", "ETHNICITY", "GENDER", "BIRTHPLACE", "ADDRESS", "CITY",
	"STATE", "COUNTY", "FIPS", "ZIP", "LAT", "LON", "HEALTHCARE_EXPENSES", "HEALTHCARE_COVERAGE",
	"INCOME",
}

var encounterHeader = []string{
	"Id", "START", "STOP", "PATIENT", "ORGANIZATION", "PROVIDER", "PAYER", "ENCOUNTERCLASS",
	"CODE", "DESCRIPTION", "BASE_ENCOUNTER_COST", "TOTAL_CLAIM_COST", "PAYER_COVERAGE",
	"REASONCODE", "REASONDESCRIPTION",
}

// kind is one encounter type: a class with its SNOMED code and description.
type kind struct{ class, code, desc string }

type classWeight struct {
	class  string
	weight float64
}

// classWeights is the share of each class among encounters, close to the Nebraska export.
var classWeights = []classWeight{
	{ClassAmbulatory, 0.40}, {ClassWellness, 0.28}, {ClassOutpatient, 0.155},
	{ClassUrgentCare, 0.07}, {ClassEmergency, 0.035}, {ClassInpatient, 0.012},
	{ClassVirtual, 0.04}, {ClassHospice, 0.003}, {ClassSNF, 0.005},
}

var kinds = map[string][]kind{
	ClassAmbulatory: {
		{ClassAmbulatory, "185345009", "Encounter for symptom"},
		{ClassAmbulatory, "185349003", "Encounter for check up (procedure)"},
		{ClassAmbulatory, "390906007", "Follow-up encounter (procedure)"},
	},
	ClassWellness: {
		{ClassWellness, "410620009", "Well child visit (procedure)"},
		{ClassWellness, "162673000", "General examination of patient (procedure)"},
	},
	ClassOutpatient: {
		{ClassOutpatient, "185347001", "Encounter for problem (procedure)"},
		{ClassOutpatient, "371883000", "Outpatient procedure (procedure)"},
	},
	ClassUrgentCare: {{ClassUrgentCare, "702927004", "Urgent care clinic (environment)"}},
	ClassEmergency: {
		{ClassEmergency, "50849002", "Emergency room admission (procedure)"},
		{ClassEmergency, "4525004", "Emergency department patient visit (procedure)"},
	},
	ClassInpatient: {
		{ClassInpatient, "305408004", "Admission to surgical department"},
		{ClassInpatient, "1505002", "Hospital admission for isolation (procedure)"},
		{ClassInpatient, "185347001", "Encounter for problem (procedure)"},
		{ClassInpatient, "183495009", "Non-urgent orthopedic admission"},
	},
	ClassHospice: {{ClassHospice, "305336008", "Admission to hospice (procedure)"}},
	ClassSNF:     {{ClassSNF, "449214001", "Admission to skilled nursing facility (procedure)"}},
	ClassVirtual: {{ClassVirtual, "185345009", "Encounter for symptom"}},
}

// emergencyAdmissions are the inpatient encounters that follow an emergency one.
var emergencyAdmissions = []kind{
	{ClassInpatient, "32485007", "Hospital admission (procedure)"},
	{ClassInpatient, "305351004", "Admission to intensive care unit (procedure)"},
	{ClassInpatient, "183452005", "Encounter Inpatient"},
}

var (
	deathCertification = kind{ClassWellness, DeathCertificationCode, "Death Certification"}
	cardiacArrest      = kind{ClassEmergency, "410429000", "Cardiac Arrest"}
)

// reasons: some have commas and quotes, so readers must handle quoted fields.
var reasons = []struct{ code, desc string }{
	{"10509002", "Acute bronchitis (disorder)"},
	{"65966004", "Fracture of forearm, closed (disorder)"},
	{"44465007", "Sprain of ankle"},
	{"88805009", "Chronic congestive heart failure (disorder)"},
	{"74400008", "Appendicitis"},
	{"65363002", "Otitis media"},
	{"444814009", "Viral sinusitis (disorder)"},
	{"399211009", `History of "myocardial infarction", old`},
}

var (
	femaleNames = []string{"Zoë", "Siobhán", "María José", "Chloé", "Amélie", "Olivia", "Amelia", "Isla", "Ava", "Priya", "Aoife", "Małgorzata", "Fatima", "Grace"}
	maleNames   = []string{"José", "Søren", "Łukasz", "Oliver", "George", "Noah", "Muhammad", "Seán", "Björn", "Jürgen", "François", "Harry", "Arjun", "Kwame"}
	lastNames   = []string{"Müller", "Ó Briain", "Nuñez", "Łukasiewicz", "O'Connor", "Smith", "Jones", "Patel", "Nguyễn", "Kowalski", "Brontë", "Williams", "Taylor", "Okafor", "García Márquez"}
	streets     = []string{"Kohler Camp", "Frami Passage", "Halvorson Alley", "Kunde Burg", "Church Lane", "High Street", "Station Road", "Mill Lane"}
	places      = []struct{ city, county string }{{"Leeds", "West Yorkshire"}, {"Bradford", "West Yorkshire"}, {"Sheffield", "South Yorkshire"}, {"York", "North Yorkshire"}, {"Hull", "East Riding of Yorkshire"}}
	races       = []string{"white", "white", "white", "asian", "black", "other"}
)

type generator struct {
	cfg      Config
	pw, ew   *bufio.Writer
	err      error
	buf      []byte
	stats    Stats
	clinic   string // organisation of primary care encounters
	hospital string // organisation of hospital encounters
	payer    string
	gps      []string // providers at the clinic
	doctors  []string // providers at the hospital
	lastID   string
	planted  int

	// rate is the encounters per patient-year before the age factor, drawn from weights.
	rate    float64
	weights []classWeight
	// rates is set when cfg.Rates is: admissions then follow its shares rather than the
	// fixed two in five (whose draws the files of a zero Rates depend on).
	rates bool
}

func newGenerator(cfg Config, pw, ew *bufio.Writer) *generator {
	g := &generator{
		cfg: cfg, pw: pw, ew: ew, buf: make([]byte, 0, 1024),
		stats: Stats{ByClass: map[string]int{}, Planted: map[string]int{}},
	}
	g.rate, g.weights = cfg.EncountersPerPatientYear, classWeights
	if !cfg.Rates.isZero() {
		g.rates = true
		g.weights = cfg.Rates.weights()
		total := 0.0
		for _, cw := range g.weights {
			total += cw.weight
		}
		for i := range g.weights {
			g.weights[i].weight /= total
		}
		g.rate = total / meanVisitFactor(cfg)
	}
	r := newRand(cfg.Seed, math.MaxUint64)
	g.clinic, g.hospital, g.payer = uuid(r), uuid(r), uuid(r)
	for range 4 {
		g.gps = append(g.gps, uuid(r))
		g.doctors = append(g.doctors, uuid(r))
	}
	return g
}

func (g *generator) write(w *bufio.Writer, b []byte) {
	if g.err == nil {
		_, g.err = w.Write(b)
	}
}

func (g *generator) run() {
	ph := patientHeader
	if g.cfg.Columns == ColumnsNoFIPS {
		ph = without(ph, "FIPS", "INCOME")
	}
	g.write(g.pw, []byte(strings.Join(ph, ",")+"\n"))
	g.write(g.ew, []byte(strings.Join(encounterHeader, ",")+"\n"))
	total := g.cfg.BadRows * len(Plants)
	for i := 0; i < g.cfg.Patients && g.err == nil; i++ {
		g.patient(i)
		for g.planted < total && g.planted*g.cfg.Patients < (i+1)*total {
			g.plant()
		}
	}
	for g.planted < total && g.err == nil {
		g.plant()
	}
}

func without(h []string, drop ...string) []string {
	var out []string
next:
	for _, c := range h {
		for _, d := range drop {
			if c == d {
				continue next
			}
		}
		out = append(out, c)
	}
	return out
}

// patient writes one patient and all their encounters.
func (g *generator) patient(i int) {
	r := newRand(g.cfg.Seed, uint64(i))
	from, to := g.cfg.From.Unix(), g.cfg.To.Unix()
	id := uuid(r)
	g.lastID = id
	female := r.IntN(2) == 0

	birthDay := floorDiv(from, day) - 90*365 + r.Int64N(90*365+(to-from)/day)
	birth := birthDay * day
	start := max(birth+8*3600, from) // 08:00Z is the same calendar day in every UK zone
	deathDay := int64(-1)
	if g.cfg.DeathsPerThousandYear > 0 && start < to {
		age := float64((start+to)/2-birth) / year
		years := float64(to-start) / year
		p := 1 - math.Exp(-g.cfg.DeathsPerThousandYear/1000*deathFactor(age)*years)
		if r.Float64() < p {
			deathDay = floorDiv(start+r.Int64N(to-start), day)
		}
	}
	end := to
	if deathDay >= 0 {
		end = min(deathDay*day+12*3600, to) // nothing after noon UTC on the day of death
	}
	g.patientRow(r, id, female, birthDay, deathDay)

	for t := start; ; {
		age := float64(t-birth) / year
		rate := g.rate * visitFactor(age)
		t += int64(r.ExpFloat64() / rate * year)
		if t >= end || t < start {
			break
		}
		g.encounter(r, id, t, age)
	}
	if deathDay >= 0 {
		next := (deathDay + 1) * day
		if r.IntN(8) == 0 {
			g.encounterRow(r, id, cardiacArrest, next+3600+r.Int64N(6*3600), 3600, true)
			g.stats.AfterDeath++
		}
		g.encounterRow(r, id, deathCertification, next+12*3600+r.Int64N(8*3600), 900, false)
		g.stats.DeathCertifications++
	}
}

// deathFactor scales the death rate by age.
func deathFactor(age float64) float64 {
	switch {
	case age < 1:
		return 0.5
	case age < 40:
		return 0.1
	case age < 60:
		return 0.5
	case age < 75:
		return 2
	}
	return 6
}

// visitFactors scale the encounter rate by age: the factor of the first band whose upper age
// (exclusive) is above the patient's.
var visitFactors = []struct{ below, factor float64 }{
	{5, 1.5}, {18, 0.6}, {65, 0.9}, {math.Inf(1), 1.6},
}

func visitFactor(age float64) float64 {
	for _, b := range visitFactors {
		if age < b.below {
			return b.factor
		}
	}
	return visitFactors[len(visitFactors)-1].factor
}

func (g *generator) encounter(r *rand.Rand, id string, t int64, age float64) {
	x := r.Float64()
	class := g.weights[len(g.weights)-1].class
	for _, cw := range g.weights {
		if x < cw.weight {
			class = cw.class
			break
		}
		x -= cw.weight
	}
	ks := kinds[class]
	k := ks[r.IntN(len(ks))]
	var dur int64
	switch class {
	case ClassWellness:
		if age >= 18 {
			k = ks[1]
		} else {
			k = ks[0]
		}
		dur = 900
	case ClassInpatient:
		if g.rates {
			k, dur = g.admission(r, id, t)
			break
		}
		dur = (1+int64(r.ExpFloat64()*3))*day + r.Int64N(day)
		if r.IntN(5) < 2 { // two in five admissions come through the emergency department
			em := kinds[ClassEmergency][0]
			g.encounterRow(r, id, em, t, 3600, false)
			k = emergencyAdmissions[r.IntN(len(emergencyAdmissions))]
			g.stats.EmergencyAdmissions++
		}
	case ClassHospice:
		dur = (7 + r.Int64N(80)) * day
	case ClassSNF:
		dur = (5 + r.Int64N(55)) * day
	case ClassEmergency, ClassUrgentCare:
		dur = 3600
	default:
		dur = 900 + 900*r.Int64N(4)
	}
	g.encounterRow(r, id, k, t, dur, r.IntN(3) == 0)
}

// admission draws an admission under cfg.Rates: an emergency one is written after its A&E
// attendance, at the same instant; a planned one may be a day case, out the same day.
func (g *generator) admission(r *rand.Rand, id string, t int64) (kind, int64) {
	if r.Float64() < g.cfg.Rates.EmergencyAdmissionShare {
		g.encounterRow(r, id, kinds[ClassEmergency][0], t, 3600, false)
		g.stats.EmergencyAdmissions++
		k := emergencyAdmissions[r.IntN(len(emergencyAdmissions))]
		return k, (1+int64(r.ExpFloat64()*4))*day + r.Int64N(day)
	}
	ks := kinds[ClassInpatient]
	k := ks[r.IntN(len(ks))]
	if r.Float64() < g.cfg.Rates.DayCaseShare {
		// Discharged before midnight UTC, so the stay counts no night in any UK zone but for
		// the rare late admission in summer time.
		left := day - (t - floorDiv(t, day)*day) - 60
		return k, max(60, min(2*3600+r.Int64N(6*3600), left))
	}
	return k, (1+int64(r.ExpFloat64()*3))*day + r.Int64N(day)
}

func (g *generator) encounterRow(r *rand.Rand, patient string, k kind, start, dur int64, reason bool) {
	b := g.buf[:0]
	b = appendUUID(b, r)
	b = append(b, ',')
	b = appendTime(b, start)
	b = append(b, ',')
	b = appendTime(b, start+dur)
	b = append(b, ',')
	b = append(b, patient...)
	b = g.appendEncounterTail(b, r, k, reason)
	g.write(g.ew, b)
	g.buf = b
	g.stats.Encounters++
	g.stats.ByClass[k.class]++
}

// appendEncounterTail appends ORGANIZATION to REASONDESCRIPTION and the newline.
func (g *generator) appendEncounterTail(b []byte, r *rand.Rand, k kind, reason bool) []byte {
	org, prov := g.clinic, g.gps[r.IntN(len(g.gps))]
	switch k.class {
	case ClassAmbulatory, ClassWellness, ClassVirtual, ClassUrgentCare:
	default:
		org, prov = g.hospital, g.doctors[r.IntN(len(g.doctors))]
	}
	b = append(b, ',')
	b = append(b, org...)
	b = append(b, ',')
	b = append(b, prov...)
	b = append(b, ',')
	b = append(b, g.payer...)
	b = append(b, ',')
	b = append(b, k.class...)
	b = append(b, ',')
	b = append(b, k.code...)
	b = append(b, ',')
	b = appendField(b, k.desc)
	base := 5000 + r.Int64N(20000)
	b = append(b, ',')
	b = appendCents(b, base)
	b = append(b, ',')
	b = appendCents(b, base+r.Int64N(100000))
	b = append(b, ',')
	b = appendCents(b, r.Int64N(base))
	if reason {
		rs := reasons[r.IntN(len(reasons))]
		b = append(b, ',')
		b = append(b, rs.code...)
		b = append(b, ',')
		b = appendField(b, rs.desc)
		b = append(b, '\n')
	} else {
		b = append(b, ",,\n"...)
	}
	return b
}

// plant writes the next deliberately broken row.
func (g *generator) plant() {
	n := g.planted
	g.planted++
	plant := Plants[n%len(Plants)]
	r := newRand(g.cfg.Seed, uint64(1)<<62+uint64(n))
	from, to := g.cfg.From.Unix(), g.cfg.To.Unix()
	t := floorDiv(from+r.Int64N(to-from), day)*day + 12*3600
	patient := g.lastID
	if patient == "" || plant == PlantMissingPatient {
		patient = uuid(r)
	}
	k := kinds[ClassAmbulatory][0]
	b := g.buf[:0]
	b = appendUUID(b, r)
	b = append(b, ',')
	switch plant {
	case PlantBadStart:
		b = append(b, "2020-13-45T25:61:00Z,2020-13-45T26:00:00Z"...)
	case PlantBadStop:
		k = kinds[ClassInpatient][0]
		b = appendTime(b, t)
		b = append(b, ",not a date"...)
	default:
		b = appendTime(b, t)
		b = append(b, ',')
		b = appendTime(b, t+900)
	}
	if plant == PlantUnknownClass {
		k = kind{"teleportation", "000000", "Encounter by teleport, experimental"}
	}
	b = append(b, ',')
	b = append(b, patient...)
	b = g.appendEncounterTail(b, r, k, false)
	g.write(g.ew, b)
	g.buf = b
	g.stats.Encounters++
	g.stats.Planted[plant]++
}

func (g *generator) patientRow(r *rand.Rand, id string, female bool, birthDay, deathDay int64) {
	g.stats.Patients++
	b := g.buf[:0]
	b = append(b, id...)
	b = append(b, ',')
	b = appendDate(b, birthDay)
	b = append(b, ',')
	if deathDay >= 0 {
		b = appendDate(b, deathDay)
		g.stats.Deaths++
	}
	b = append(b, ",999-"...)
	b = appendDigits(b, r.Int64N(100), 2)
	b = append(b, '-')
	b = appendDigits(b, r.Int64N(10000), 4)
	b = append(b, ",S999"...)
	b = appendDigits(b, r.Int64N(100000), 5)
	b = append(b, ",X"...)
	b = appendDigits(b, r.Int64N(100000000), 8)
	b = append(b, "X,"...)
	first, last := "", lastNames[r.IntN(len(lastNames))]
	if female {
		first = femaleNames[r.IntN(len(femaleNames))]
		b = append(b, "Mrs.,"...)
	} else {
		first = maleNames[r.IntN(len(maleNames))]
		b = append(b, "Mr.,"...)
	}
	b = appendField(b, first+strconv.Itoa(r.IntN(1000)))
	b = append(b, ',')
	b = appendField(b, last+strconv.Itoa(r.IntN(1000)))
	b = append(b, ",,,"...) // SUFFIX, MAIDEN
	b = append(b, "MSDW"[r.IntN(4)])
	b = append(b, ',')
	b = append(b, races[r.IntN(len(races))]...)
	b = append(b, ",nonhispanic,"...)
	if female {
		b = append(b, 'F')
	} else {
		b = append(b, 'M')
	}
	p := places[r.IntN(len(places))]
	b = append(b, ',')
	b = appendField(b, p.city+"  "+p.county+"  GB")
	b = append(b, ',')
	addr := strconv.Itoa(1+r.IntN(400)) + " " + streets[r.IntN(len(streets))]
	if r.IntN(4) == 0 {
		addr = "Flat " + strconv.Itoa(1+r.IntN(20)) + ", " + addr
	}
	b = appendField(b, addr)
	b = append(b, ',')
	b = append(b, p.city...)
	b = append(b, ',')
	b = append(b, p.county...)
	b = append(b, ',')
	b = append(b, p.county...)
	b = append(b, " County,"...)
	if g.cfg.Columns != ColumnsNoFIPS {
		b = appendDigits(b, 31000+r.Int64N(200), 5)
		b = append(b, ',')
	}
	b = appendDigits(b, r.Int64N(100000), 5)
	b = append(b, ',')
	b = strconv.AppendFloat(b, 53.5+r.Float64(), 'f', 10, 64)
	b = append(b, ',')
	b = strconv.AppendFloat(b, -2.0+r.Float64(), 'f', 10, 64)
	b = append(b, ',')
	b = appendCents(b, r.Int64N(100000000))
	b = append(b, ',')
	b = appendCents(b, r.Int64N(100000000))
	if g.cfg.Columns != ColumnsNoFIPS {
		b = append(b, ',')
		b = strconv.AppendInt(b, 10000+r.Int64N(200000), 10)
	}
	b = append(b, '\n')
	g.write(g.pw, b)
	g.buf = b
}

// appendField appends s as a CSV field, quoting it when it holds a comma, quote or newline.
func appendField(b []byte, s string) []byte {
	if !strings.ContainsAny(s, ",\"\r\n") {
		return append(b, s...)
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' {
			b = append(b, '"')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

func uuid(r *rand.Rand) string { return string(appendUUID(nil, r)) }

// appendUUID appends a random id in Synthea's 8-4-4-4-12 hex form.
func appendUUID(b []byte, r *rand.Rand) []byte {
	hi, lo := r.Uint64(), r.Uint64()
	for i := range 32 {
		if i == 8 || i == 12 || i == 16 || i == 20 {
			b = append(b, '-')
		}
		var nib uint64
		if i < 16 {
			nib = hi >> (60 - 4*i)
		} else {
			nib = lo >> (60 - 4*(i-16))
		}
		b = append(b, hexDigits[nib&15])
	}
	return b
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// appendDate appends a day number (days since 1970-01-01) as YYYY-MM-DD.
func appendDate(b []byte, d int64) []byte {
	y, m, dd := civil(d)
	b = appendDigits(b, y, 4)
	b = append(b, '-')
	b = appendDigits(b, m, 2)
	b = append(b, '-')
	return appendDigits(b, dd, 2)
}

// appendTime appends Unix seconds as Synthea's UTC timestamp, 2006-01-02T15:04:05Z.
func appendTime(b []byte, t int64) []byte {
	d := floorDiv(t, day)
	s := t - d*day
	b = appendDate(b, d)
	b = append(b, 'T')
	b = appendDigits(b, s/3600, 2)
	b = append(b, ':')
	b = appendDigits(b, s/60%60, 2)
	b = append(b, ':')
	b = appendDigits(b, s%60, 2)
	return append(b, 'Z')
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
// algorithm), far cheaper than time.Time for millions of rows.
func civil(z int64) (y, m, d int64) {
	z += 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

func appendDigits(b []byte, v int64, width int) []byte {
	var tmp [20]byte
	i := len(tmp)
	for v > 0 || i > len(tmp)-width {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
	}
	return append(b, tmp[i:]...)
}

func appendCents(b []byte, c int64) []byte {
	b = strconv.AppendInt(b, c/100, 10)
	b = append(b, '.')
	return appendDigits(b, c%100, 2)
}
