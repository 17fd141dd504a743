// Package synthgen writes synthetic general practices in the shape of Synthea's CSV export
// (patients.csv and encounters.csv with Synthea 3.x headers), at any size, for tests,
// demonstrations and benchmarks.
//
// Output is a pure function of the Config: the same seed gives byte-identical files. Rows are
// streamed to disk one patient at a time, so memory stays flat however many encounters are
// asked for.
package synthgen

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

// Columns picks the column set of the files written.
type Columns int

const (
	// ColumnsLatest is the newest Synthea 3.x set: patients.csv has FIPS and INCOME.
	ColumnsLatest Columns = iota
	// ColumnsNoFIPS is the older 3.x set (Synthea 3.0, 2022): patients.csv without FIPS and
	// INCOME.
	ColumnsNoFIPS
)

// Encounter classes Synthea writes in encounters.csv ENCOUNTERCLASS.
const (
	ClassAmbulatory = "ambulatory"
	ClassWellness   = "wellness"
	ClassOutpatient = "outpatient"
	ClassUrgentCare = "urgentcare"
	ClassEmergency  = "emergency"
	ClassInpatient  = "inpatient"
	ClassHospice    = "hospice"
	ClassSNF        = "snf"
	ClassVirtual    = "virtual"
)

// Classes lists every class the generator writes.
var Classes = []string{
	ClassAmbulatory, ClassWellness, ClassOutpatient, ClassUrgentCare, ClassEmergency,
	ClassInpatient, ClassHospice, ClassSNF, ClassVirtual,
}

// DeathCertificationCode is the SNOMED CT code of Synthea's "Death Certification" encounter.
const DeathCertificationCode = "308646001"

// Kinds of deliberately broken rows, the keys of Stats.Planted.
const (
	PlantBadStart       = "bad_start"       // START is not a timestamp
	PlantBadStop        = "bad_stop"        // an inpatient stay whose STOP is not a timestamp
	PlantUnknownClass   = "unknown_class"   // ENCOUNTERCLASS is not a Synthea class
	PlantMissingPatient = "missing_patient" // PATIENT is not in patients.csv
)

// Plants lists the kinds of broken rows BadRows plants, in the order they are planted.
var Plants = []string{PlantBadStart, PlantBadStop, PlantUnknownClass, PlantMissingPatient}

// Config says what to generate. The zero value of every field but Patients has a useful
// default.
type Config struct {
	// Seed makes the output: the same Config gives byte-identical files.
	Seed int64
	// Patients is the number of rows of patients.csv.
	Patients int
	// From and To bound the encounters written (To exclusive), apart from the Death
	// Certification and the occasional encounter Synthea dates after a death, which may fall
	// up to a day after To. Zero values mean 2015-01-01 and 2025-01-01.
	From, To time.Time
	// EncountersPerPatientYear is the mean encounter rate of a living patient, before an age
	// factor (more for infants and the old), in a fixed mix of classes close to Synthea's
	// Nebraska export. Zero means 6. It cannot be set together with Rates.
	EncountersPerPatientYear float64
	// Rates, when not zero, sets the rate of each class instead, as means over the whole list
	// (EnglandRates for England's). The zero value keeps EncountersPerPatientYear's mix, whose
	// hospital rates are far below England's (about 0.27 A&E attendances and 0.08 admissions
	// a patient-year) but whose files existing tests are written against.
	Rates Rates
	// DeathsPerThousandYear is the mean yearly death rate per 1,000 patients, before an age
	// factor. Zero means 10; negative means nobody dies.
	DeathsPerThousandYear float64
	// Columns picks the column set; the zero value is ColumnsLatest.
	Columns Columns
	// BadRows plants this many broken rows of each kind in Plants among the good ones, spread
	// through encounters.csv, with dates inside From..To. Zero plants none.
	BadRows int
}

// Stats says what Write wrote, so tests can predict what a reader must find.
type Stats struct {
	Patients int // rows of patients.csv
	Deaths   int // patients with a DEATHDATE
	// Encounters is the number of rows of encounters.csv, planted rows included.
	Encounters int
	// ByClass counts the well-formed encounter rows by ENCOUNTERCLASS, Death Certifications
	// and encounters dated after death included, planted rows not.
	ByClass map[string]int
	// DeathCertifications counts the "Death Certification" wellness encounters, one per death,
	// dated the day after it.
	DeathCertifications int
	// AfterDeath counts encounters other than the Death Certification dated after the
	// patient's death (Synthea writes a few: the emergency the patient died in).
	AfterDeath int
	// EmergencyAdmissions counts inpatient stays that begin with an emergency encounter of the
	// same patient starting at the same instant.
	EmergencyAdmissions int
	// Planted counts the deliberately broken rows by kind (see Plants).
	Planted map[string]int
	// Bytes is the size of both files together.
	Bytes int64
}

func (c *Config) defaults() error {
	if c.Patients < 0 {
		return fmt.Errorf("synthgen: Patients is %d; it must be zero or more", c.Patients)
	}
	if c.From.IsZero() {
		c.From = time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if c.To.IsZero() {
		c.To = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	if !c.To.After(c.From) {
		return errors.New("synthgen: To must be after From")
	}
	if !c.Rates.isZero() {
		if c.EncountersPerPatientYear != 0 {
			return errors.New("synthgen: set EncountersPerPatientYear or Rates, not both")
		}
		if err := c.Rates.check(); err != nil {
			return err
		}
	} else if c.EncountersPerPatientYear == 0 {
		c.EncountersPerPatientYear = 6
	}
	if c.EncountersPerPatientYear < 0 || math.IsNaN(c.EncountersPerPatientYear) || math.IsInf(c.EncountersPerPatientYear, 0) {
		return errors.New("synthgen: EncountersPerPatientYear must be a positive number")
	}
	if c.DeathsPerThousandYear == 0 {
		c.DeathsPerThousandYear = 10
	}
	if c.BadRows < 0 {
		return errors.New("synthgen: BadRows must be zero or more")
	}
	return nil
}

// Write writes patients.csv and encounters.csv for one practice into dir, creating it.
func Write(dir string, cfg Config) (Stats, error) {
	if err := cfg.defaults(); err != nil {
		return Stats{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Stats{}, fmt.Errorf("synthgen: %w", err)
	}
	pf, err := newFile(filepath.Join(dir, "patients.csv"))
	if err != nil {
		return Stats{}, err
	}
	defer pf.abandon()
	ef, err := newFile(filepath.Join(dir, "encounters.csv"))
	if err != nil {
		return Stats{}, err
	}
	defer ef.abandon()

	g := newGenerator(cfg, pf.w, ef.w)
	g.run()
	if err := pf.close(); err != nil {
		return Stats{}, err
	}
	if err := ef.close(); err != nil {
		return Stats{}, err
	}
	g.stats.Bytes = pf.n + ef.n
	return g.stats, nil
}

// WriteFederation writes practices practices, each of cfg.Patients patients, into subfolders
// P001, P002, … of dir. Each practice gets its own seed derived from cfg.Seed, so practices
// differ but the whole federation is reproducible.
func WriteFederation(dir string, practices int, cfg Config) ([]Stats, error) {
	if practices < 1 || practices > 999 {
		return nil, fmt.Errorf("synthgen: practices is %d; it must be 1 to 999", practices)
	}
	sizes := make([]int, practices)
	for i := range sizes {
		sizes[i] = cfg.Patients
	}
	return WriteFederationSizes(dir, sizes, cfg)
}

// WriteFederationSizes is WriteFederation with a list size for each practice: practice i
// (from 1) has sizes[i-1] patients, whatever cfg.Patients says. Practice i's files are those
// WriteFederation writes for practice i when the sizes are equal.
func WriteFederationSizes(dir string, sizes []int, cfg Config) ([]Stats, error) {
	if len(sizes) < 1 || len(sizes) > 999 {
		return nil, fmt.Errorf("synthgen: %d practices; there must be 1 to 999", len(sizes))
	}
	out := make([]Stats, 0, len(sizes))
	for i := 1; i <= len(sizes); i++ {
		c := cfg
		c.Patients = sizes[i-1]
		c.Seed = int64(mix(uint64(cfg.Seed), uint64(i)))
		s, err := Write(filepath.Join(dir, PracticeDir(i)), c)
		if err != nil {
			return out, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Sizes draws n list sizes from lo to hi patients (both included) for WriteFederationSizes,
// the same for the same seed. They are uniform rather than England's skewed spread, so that
// benchmarks see the small and the large list equally often.
func Sizes(seed int64, n, lo, hi int) ([]int, error) {
	if n < 0 || lo < 0 || hi < lo {
		return nil, fmt.Errorf("synthgen: %d sizes from %d to %d: want n ≥ 0 and 0 ≤ lo ≤ hi", n, lo, hi)
	}
	// A stream no practice's seed or patient uses.
	r := newRand(seed, math.MaxUint64-1)
	out := make([]int, n)
	for i := range out {
		out[i] = lo + r.IntN(hi-lo+1)
	}
	return out, nil
}

// PracticeDir is the subfolder WriteFederation uses for practice i (from 1): P001, P002, …
func PracticeDir(i int) string { return fmt.Sprintf("P%03d", i) }

// mix is SplitMix64's finaliser over a and b: a seed for stream b that does not collide with
// the seeds of neighbouring streams.
func mix(a, b uint64) uint64 {
	z := a + 0x9e3779b97f4a7c15*(b+1)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// file is an output file with a counting buffered writer.
type file struct {
	f    *os.File
	w    *bufio.Writer
	n    int64
	done bool
}

func newFile(path string) (*file, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("synthgen: %w", err)
	}
	fl := &file{f: f}
	fl.w = bufio.NewWriterSize(countWriter{fl}, 1<<20)
	return fl, nil
}

type countWriter struct{ fl *file }

func (c countWriter) Write(b []byte) (int, error) {
	n, err := c.fl.f.Write(b)
	c.fl.n += int64(n)
	return n, err
}

func (fl *file) close() error {
	fl.done = true
	err := fl.w.Flush()
	if cerr := fl.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("synthgen: %w", err)
	}
	return nil
}

func (fl *file) abandon() {
	if !fl.done {
		fl.f.Close()
	}
}

// newRand returns the random stream number stream of a seed; PCG's output is specified, so
// the files do not change with the Go release.
func newRand(seed int64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), mix(uint64(seed), stream)))
}
