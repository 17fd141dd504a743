package formats

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// Schema metadata keys written into every file.
const (
	MetaFormatVersion = "tributary.format_version"
	MetaKind          = "tributary.kind"
	MetaPractice      = "tributary.practice"
	MetaPeriod        = "tributary.period"
	MetaRunID         = "tributary.run_id"
	MetaExtractors    = "tributary.extractors"
	MetaPolicy        = "tributary.policy"
)

// KindSubmission is the MetaKind of a practice's monthly submission file.
const KindSubmission = "submission"

// Cell is one published figure: a measure for an age band and sex, after disclosure control.
type Cell struct {
	Measure string
	AgeBand string
	Sex     string
	Protected
}

// label names a cell in an error message.
func (c Cell) label() string { return shown(c.Measure) + " " + shown(c.AgeBand) + " " + shown(c.Sex) }

// Submission is one practice's figures for one month from one run. It holds aggregate counts
// only, already through disclosure control: it is what may leave the practice.
type Submission struct {
	Practice   string
	Period     Month
	RunID      string
	Extractors []string // "name@version" of each extractor that contributed
	Policy     string   // disclosure policy name
	Cells      []Cell
}

// SubmissionSchema is the Arrow schema of a submission, without its file-specific metadata.
var SubmissionSchema = arrow.NewSchema([]arrow.Field{
	{Name: "measure", Type: arrow.BinaryTypes.String},
	{Name: "age_band", Type: arrow.BinaryTypes.String},
	{Name: "sex", Type: arrow.BinaryTypes.String},
	{Name: "count", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
	{Name: "status", Type: arrow.BinaryTypes.String},
	{Name: "lower", Type: arrow.PrimitiveTypes.Int64},
	{Name: "upper", Type: arrow.PrimitiveTypes.Int64},
}, nil)

// Validate checks a submission against the contract: identifiers, the policy it names, every
// cell's labels and that every cell is one the policy could have produced.
func (s *Submission) Validate() error {
	const op = "validate submission"
	if err := ValidatePracticeID(s.Practice); err != nil {
		return err
	}
	if err := ValidateRunID(s.RunID); err != nil {
		return err
	}
	if s.Period.Year() < 1900 || s.Period.Year() > 9999 {
		return errorf(op, ErrValue, "period %s is out of range", s.Period)
	}
	pol, err := PolicyByName(s.Policy)
	if err != nil {
		return err
	}
	for _, x := range s.Extractors {
		if !extractorPattern.MatchString(x) {
			return errorf(op, ErrValue, "extractor %s must be name@version", shown(x))
		}
	}
	seen := make(map[[3]string]bool, len(s.Cells))
	measures := map[string]bool{} // names already matched: a file repeats each 57 times
	for i, c := range s.Cells {
		if !measures[c.Measure] && !MeasureNamePattern.MatchString(c.Measure) {
			return errorf(op, ErrValue, "cell %d: measure name %s is not valid; a name is lower-case letters, digits and '_'", i, shown(c.Measure))
		}
		measures[c.Measure] = true
		if AgeBandIndex(c.AgeBand) < 0 {
			return errorf(op, ErrValue, "cell %d: unknown age band %s; expected one of %s … %s, %s", i, shown(c.AgeBand), AgeBands[0], AgeBands[len(AgeBands)-2], AgeBands[len(AgeBands)-1])
		}
		if !ValidSex(c.Sex) {
			return errorf(op, ErrValue, "cell %d: unknown sex %s; expected female, male or unknown", i, shown(c.Sex))
		}
		k := [3]string{c.Measure, c.AgeBand, c.Sex}
		if seen[k] {
			return errorf(op, ErrValue, "cell %d: %s appears twice; each measure, age band and sex may appear once", i, c.label())
		}
		seen[k] = true
		if c.Status == StatusSuppressed && c.Count != 0 {
			return errorf(op, ErrValue, "cell %d (%s): a suppressed cell carries a value; suppressed counts must be null", i, c.label())
		}
		if err := pol.Check(c.Protected); err != nil {
			return at(op, fmt.Sprintf("cell %d (%s)", i, c.label()), err)
		}
	}
	return nil
}

// Sort puts the cells in the canonical order: catalogue measures first in catalogue order,
// then others by name; then age band; then sex.
func (s *Submission) Sort() {
	slices.SortFunc(s.Cells, compareCells)
}

func compareCells(a, b Cell) int {
	if c := compareMeasures(a.Measure, b.Measure); c != 0 {
		return c
	}
	if c := AgeBandIndex(a.AgeBand) - AgeBandIndex(b.AgeBand); c != 0 {
		return c
	}
	return slices.Index(Sexes, a.Sex) - slices.Index(Sexes, b.Sex)
}

func compareMeasures(a, b string) int {
	ia, ib := slices.Index(Measures, a), slices.Index(Measures, b)
	switch {
	case ia >= 0 && ib >= 0:
		return ia - ib
	case ia >= 0:
		return -1
	case ib >= 0:
		return 1
	}
	return strings.Compare(a, b)
}

func (s *Submission) metadata() arrow.Metadata {
	return arrow.NewMetadata(
		[]string{MetaFormatVersion, MetaKind, MetaPractice, MetaPeriod, MetaRunID, MetaExtractors, MetaPolicy},
		[]string{strconv.Itoa(FormatVersion), KindSubmission, s.Practice, s.Period.String(), s.RunID, strings.Join(s.Extractors, ","), s.Policy},
	)
}

// WriteSubmission validates s and writes it as an Arrow IPC file (zstd) in canonical order.
// The same submission always gives the same bytes.
func WriteSubmission(w io.Writer, s *Submission) error {
	if err := s.Validate(); err != nil {
		return err
	}
	c := *s
	c.Cells = slices.Clone(s.Cells)
	c.Sort()
	md := c.metadata()
	schema := arrow.NewSchema(SubmissionSchema.Fields(), &md)
	b := array.NewRecordBuilder(memory.NewGoAllocator(), schema)
	defer b.Release()
	measure := b.Field(0).(*array.StringBuilder)
	band := b.Field(1).(*array.StringBuilder)
	sex := b.Field(2).(*array.StringBuilder)
	count := b.Field(3).(*array.Int64Builder)
	status := b.Field(4).(*array.StringBuilder)
	lower := b.Field(5).(*array.Int64Builder)
	upper := b.Field(6).(*array.Int64Builder)
	for _, cell := range c.Cells {
		measure.Append(cell.Measure)
		band.Append(cell.AgeBand)
		sex.Append(cell.Sex)
		if cell.Status == StatusSuppressed {
			count.AppendNull()
		} else {
			count.Append(cell.Count)
		}
		status.Append(cell.Status)
		lower.Append(cell.Lower)
		upper.Append(cell.Upper)
	}
	rec := b.NewRecord()
	defer rec.Release()
	return writeIPCFile(w, rec)
}

// MarshalSubmission is WriteSubmission into a byte slice.
func MarshalSubmission(s *Submission) ([]byte, error) {
	var buf bytes.Buffer
	if err := WriteSubmission(&buf, s); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// ReadSubmission parses and validates a submission file within lim. It never panics: bytes
// the Arrow library cannot read give ErrCorrupt, oversized ones ErrTooLarge.
func ReadSubmission(data []byte, lim Limits) (*Submission, error) {
	const op = "read submission"
	var s *Submission
	batches := 0
	err := readIPCFile(op, data, lim, func(schema *arrow.Schema) (err error) {
		s, err = submissionFromMetadata(schema)
		return err
	}, func(rec arrow.Record) error {
		batches++
		return appendCells(s, rec)
	})
	if err != nil {
		return nil, err
	}
	if batches == 0 {
		return nil, errorf(op, ErrCorrupt, "the file holds no record batch")
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

func submissionFromMetadata(schema *arrow.Schema) (*Submission, error) {
	const op = "read submission"
	md := schema.Metadata()
	get := func(k string) string {
		if i := md.FindKey(k); i >= 0 {
			return md.Values()[i]
		}
		return ""
	}
	v := get(MetaFormatVersion)
	if v != strconv.Itoa(FormatVersion) {
		if v == "" {
			return nil, errorf(op, ErrFormatVersion, "no %s in the schema metadata; this is not a Tributary file", MetaFormatVersion)
		}
		return nil, errorf(op, ErrFormatVersion, "format version %s, this coordinator reads version %d; upgrade the coordinator or the agent so they agree", shown(v), FormatVersion)
	}
	if k := get(MetaKind); k != KindSubmission {
		return nil, errorf(op, ErrSchema, "file kind %s, expected %s", shown(k), KindSubmission)
	}
	if err := compareFields(op, KindSubmission, SubmissionSchema, schema); err != nil {
		return nil, err
	}
	period, err := ParseMonth(get(MetaPeriod))
	if err != nil {
		return nil, errorf(op, ErrValue, "%s is not a month (YYYY-MM)", MetaPeriod)
	}
	s := &Submission{
		Practice: get(MetaPractice),
		Period:   period,
		RunID:    get(MetaRunID),
		Policy:   get(MetaPolicy),
	}
	if x := get(MetaExtractors); x != "" {
		s.Extractors = strings.Split(x, ",")
	}
	return s, nil
}

func appendCells(s *Submission, rec arrow.Record) error {
	measure := rec.Column(0).(*array.String)
	band := rec.Column(1).(*array.String)
	sex := rec.Column(2).(*array.String)
	count := rec.Column(3).(*array.Int64)
	status := rec.Column(4).(*array.String)
	lower := rec.Column(5).(*array.Int64)
	upper := rec.Column(6).(*array.Int64)
	for i := 0; i < int(rec.NumRows()); i++ {
		for c, col := range []arrow.Array{measure, band, sex, status, lower, upper} {
			if col.IsNull(i) {
				return errorf("read submission", ErrValue, "row %d: field %s is null", i, []string{"measure", "age_band", "sex", "status", "lower", "upper"}[c])
			}
		}
		c := Cell{Measure: measure.Value(i), AgeBand: band.Value(i), Sex: sex.Value(i)}
		c.Status = status.Value(i)
		c.Lower, c.Upper = lower.Value(i), upper.Value(i)
		if count.IsValid(i) {
			if c.Status == StatusSuppressed {
				return errorf("read submission", ErrValue, "row %d (%s): a suppressed cell carries a value; suppressed counts must be null", i, c.label())
			}
			c.Count = count.Value(i)
			if c.Count < 0 {
				return errorf("read submission", ErrValue, "row %d (%s): negative count; counts are zero or more, so the file was not written by a Tributary agent", i, c.label())
			}
		} else if c.Status != StatusSuppressed {
			return errorf("read submission", ErrValue, "row %d (%s): count is null but status is %s; only a suppressed cell has no count", i, c.label(), shown(c.Status))
		}
		s.Cells = append(s.Cells, c)
	}
	return nil
}
