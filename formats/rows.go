package formats

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// Canonical plugin rows. They are patient-level: they travel only from a plugin to the agent
// on the practice machine and are never written to a file, an object, a log or an error.

// Row kinds, as named in schema metadata and in errors.
const (
	RowRegistrations = "registrations"
	RowEvents        = "events"
)

// NoEnd marks an open registration or an event without an end date (null in Arrow).
const NoEnd Date = math.MaxInt32

// Registration is one spell of a patient's registration at the practice.
type Registration struct {
	PatientKey string // pseudonymous, stable within the practice
	Sex        string // one of Sexes
	BirthMonth Month
	From       Date // first day registered
	To         Date // first day no longer registered (exclusive), or NoEnd while registered
}

// Event is one contact or hospital episode of a patient.
type Event struct {
	PatientKey string
	Kind       string // one of EventKinds
	Start      Date
	End        Date   // discharge day for an admission; NoEnd when not known or not a stay
	Method     string // admission method for admissions (one of the Method constants), else ""

	// The primary diagnosis, where the source has one (rows version 2): a code in the
	// canonical form of its system (NormalizeDiagnosis) and the system, DiagnosisICD10 or
	// DiagnosisSNOMED; both "" when there is none. Like every row field it never leaves the
	// practice: no aggregate carries it.
	DiagnosisCode   string
	DiagnosisSystem string
}

// EventInMonths reports whether a run of the months from..to counts e, which is the rule for
// which events a plugin sends (plugins/README.md, "Which rows to send"): every event counts in
// the month it starts, and an admission also in the month it ends, because its bed days are
// counted in the month of discharge. So a plugin sends every event that starts in the months
// and every admission discharged in them, including a stay that began before them; a stay
// that neither starts nor ends in them counts in none of them and is not sent. The agent
// drops any other event it is sent.
func EventInMonths(e Event, from, to Month) bool {
	in := func(m Month) bool { return m >= from && m <= to }
	return in(e.Start.Month()) || (e.Kind == KindAdmission && e.End != NoEnd && in(e.End.Month()))
}

// Field names of the canonical row schemas.
const (
	FieldPatientKey      = "patient_key"
	FieldSex             = "sex"
	FieldBirthMonth      = "birth_month"
	FieldRegisteredFrom  = "registered_from"
	FieldRegisteredTo    = "registered_to"
	FieldKind            = "kind"
	FieldStart           = "start"
	FieldEnd             = "end"
	FieldAdmissionMethod = "admission_method"
	FieldDiagnosisCode   = "diagnosis_code"
	FieldDiagnosisSystem = "diagnosis_system"
)

// RowsVersion is the version of the canonical row schemas, written into their schema metadata
// under MetaRowsVersion. Version 2 added the events' optional primary diagnosis
// (diagnosis_code, diagnosis_system). Readers accept both: an events batch without the two
// columns (version 1, as plugins built before version 2 send) reads as events without a
// diagnosis. It is separate from FormatVersion, which versions what leaves the practice.
const RowsVersion = 2

// MetaRowsVersion is the schema metadata key of RowsVersion in plugin row batches.
const MetaRowsVersion = "tributary.rows_version"

func rowMetadata(kind string, version int) arrow.Metadata {
	return arrow.NewMetadata(
		[]string{MetaFormatVersion, MetaKind, MetaRowsVersion},
		[]string{fmt.Sprint(FormatVersion), kind, fmt.Sprint(version)},
	)
}

// RegistrationsSchema is the Arrow schema of registration rows.
var RegistrationsSchema = arrow.NewSchema([]arrow.Field{
	{Name: FieldPatientKey, Type: arrow.BinaryTypes.String},
	{Name: FieldSex, Type: arrow.BinaryTypes.String},
	{Name: FieldBirthMonth, Type: arrow.FixedWidthTypes.Date32},
	{Name: FieldRegisteredFrom, Type: arrow.FixedWidthTypes.Date32},
	{Name: FieldRegisteredTo, Type: arrow.FixedWidthTypes.Date32, Nullable: true},
}, ptr(rowMetadata(RowRegistrations, RowsVersion)))

// EventsSchema is the Arrow schema of event rows: EventsSchemaV1's fields, then the primary
// diagnosis (diagnosis_code, diagnosis_system; null when there is none).
var EventsSchema = arrow.NewSchema(append(EventsSchemaV1.Fields(),
	arrow.Field{Name: FieldDiagnosisCode, Type: arrow.BinaryTypes.String, Nullable: true},
	arrow.Field{Name: FieldDiagnosisSystem, Type: arrow.BinaryTypes.String, Nullable: true},
), ptr(rowMetadata(RowEvents, RowsVersion)))

// EventsSchemaV1 is the events schema of rows version 1, without the diagnosis columns. Readers
// accept it as events without a diagnosis: plugins built before rows version 2 send it, and
// the SDK's Writer sends it for a batch in which no event has a diagnosis, so that a plugin
// built with the current SDK still works with an agent that predates diagnoses.
var EventsSchemaV1 = arrow.NewSchema([]arrow.Field{
	{Name: FieldPatientKey, Type: arrow.BinaryTypes.String},
	{Name: FieldKind, Type: arrow.BinaryTypes.String},
	{Name: FieldStart, Type: arrow.FixedWidthTypes.Date32},
	{Name: FieldEnd, Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: FieldAdmissionMethod, Type: arrow.BinaryTypes.String, Nullable: true},
}, ptr(rowMetadata(RowEvents, 1)))

func ptr[T any](v T) *T { return &v }

// RowSchema returns the (current) schema for a row kind, or nil.
func RowSchema(kind string) *arrow.Schema {
	switch kind {
	case RowRegistrations:
		return RegistrationsSchema
	case RowEvents:
		return EventsSchema
	}
	return nil
}

// Dates in rows must fall in these years: anything else is a source error (a sentinel such as
// 0001-01-01, or a corrupt value) that would otherwise become a nonsense month downstream.
const (
	minYear = 1800
	maxYear = 9999
)

var (
	minDate = DateOf(time.Date(minYear, 1, 1, 0, 0, 0, 0, time.UTC))
	maxDate = DateOf(time.Date(maxYear, 12, 31, 0, 0, 0, 0, time.UTC))
)

func inRange(d Date) bool { return d >= minDate && d <= maxDate }

// ValidateRegistration checks one row; the error names the field, never its value.
func ValidateRegistration(r Registration) error {
	const op = "validate registrations row"
	switch {
	case r.PatientKey == "":
		return errorf(op, ErrValue, "field %s is empty", FieldPatientKey)
	case !ValidSex(r.Sex):
		return errorf(op, ErrValue, "field %s must be one of female, male, unknown", FieldSex)
	case r.From == NoEnd:
		return errorf(op, ErrValue, "field %s is missing", FieldRegisteredFrom)
	case r.BirthMonth < MonthFor(minYear, 1) || r.BirthMonth > MonthFor(maxYear, 12):
		return errorf(op, ErrValue, "field %s is outside the years %d-%d", FieldBirthMonth, minYear, maxYear)
	case !inRange(r.From) || r.To != NoEnd && !inRange(r.To):
		return errorf(op, ErrValue, "field %s or %s is outside the years %d-%d", FieldRegisteredFrom, FieldRegisteredTo, minYear, maxYear)
	case r.To != NoEnd && r.To < r.From:
		return errorf(op, ErrValue, "field %s is before %s", FieldRegisteredTo, FieldRegisteredFrom)
	case r.BirthMonth.Start().After(r.From.Time().AddDate(0, 1, 0)):
		return errorf(op, ErrValue, "field %s is after %s", FieldBirthMonth, FieldRegisteredFrom)
	}
	return nil
}

// ValidateEvent checks one row; the error names the field, never its value.
func ValidateEvent(e Event) error {
	const op = "validate events row"
	switch {
	case e.PatientKey == "":
		return errorf(op, ErrValue, "field %s is empty", FieldPatientKey)
	case !ValidEventKind(e.Kind):
		return errorf(op, ErrValue, "field %s must be one of consultation, outpatient_attendance, ae_attendance, admission", FieldKind)
	case !inRange(e.Start) || e.End != NoEnd && !inRange(e.End):
		return errorf(op, ErrValue, "field %s or %s is outside the years %d-%d", FieldStart, FieldEnd, minYear, maxYear)
	case e.End != NoEnd && e.End < e.Start:
		return errorf(op, ErrValue, "field %s is before %s", FieldEnd, FieldStart)
	case e.Kind == KindAdmission && !ValidAdmissionMethod(e.Method):
		return errorf(op, ErrValue, "field %s must be emergency, elective, other or unknown for an admission", FieldAdmissionMethod)
	case e.Kind != KindAdmission && e.Method != "":
		return errorf(op, ErrValue, "field %s must be null for a %s", FieldAdmissionMethod, e.Kind)
	case e.DiagnosisCode == "" && e.DiagnosisSystem == "":
		return nil
	}
	return validateDiagnosis(op, e.DiagnosisSystem, e.DiagnosisCode)
}

// RegistrationBuilder accumulates registration rows into Arrow records.
type RegistrationBuilder struct{ b *array.RecordBuilder }

// NewRegistrationBuilder returns an empty builder; mem may be nil for the Go allocator.
func NewRegistrationBuilder(mem memory.Allocator) *RegistrationBuilder {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	return &RegistrationBuilder{array.NewRecordBuilder(mem, RegistrationsSchema)}
}

// Append adds a row after validating it.
func (rb *RegistrationBuilder) Append(r Registration) error {
	if err := ValidateRegistration(r); err != nil {
		return err
	}
	rb.b.Field(0).(*array.StringBuilder).Append(r.PatientKey)
	rb.b.Field(1).(*array.StringBuilder).Append(r.Sex)
	rb.b.Field(2).(*array.Date32Builder).Append(arrow.Date32(DateOf(r.BirthMonth.Start())))
	rb.b.Field(3).(*array.Date32Builder).Append(arrow.Date32(r.From))
	appendDate(rb.b.Field(4).(*array.Date32Builder), r.To)
	return nil
}

// Len is the number of rows not yet taken by NewRecord.
func (rb *RegistrationBuilder) Len() int { return rb.b.Field(0).Len() }

// NewRecord returns the rows appended so far and resets the builder. The caller releases it.
func (rb *RegistrationBuilder) NewRecord() arrow.Record { return rb.b.NewRecord() }

// Release frees the builder's memory.
func (rb *RegistrationBuilder) Release() { rb.b.Release() }

// EventBuilder accumulates event rows into Arrow records.
type EventBuilder struct{ b *array.RecordBuilder }

// NewEventBuilder returns an empty builder; mem may be nil for the Go allocator.
func NewEventBuilder(mem memory.Allocator) *EventBuilder {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	return &EventBuilder{array.NewRecordBuilder(mem, EventsSchema)}
}

// Append adds a row after validating it.
func (eb *EventBuilder) Append(e Event) error {
	if err := ValidateEvent(e); err != nil {
		return err
	}
	eb.b.Field(0).(*array.StringBuilder).Append(e.PatientKey)
	eb.b.Field(1).(*array.StringBuilder).Append(e.Kind)
	eb.b.Field(2).(*array.Date32Builder).Append(arrow.Date32(e.Start))
	appendDate(eb.b.Field(3).(*array.Date32Builder), e.End)
	appendString(eb.b.Field(4).(*array.StringBuilder), e.Method)
	appendString(eb.b.Field(5).(*array.StringBuilder), e.DiagnosisCode)
	appendString(eb.b.Field(6).(*array.StringBuilder), e.DiagnosisSystem)
	return nil
}

// appendString appends s, or null for "".
func appendString(b *array.StringBuilder, s string) {
	if s == "" {
		b.AppendNull()
	} else {
		b.Append(s)
	}
}

// Len is the number of rows not yet taken by NewRecord.
func (eb *EventBuilder) Len() int { return eb.b.Field(0).Len() }

// NewRecord returns the rows appended so far and resets the builder. The caller releases it.
func (eb *EventBuilder) NewRecord() arrow.Record { return eb.b.NewRecord() }

// Release frees the builder's memory.
func (eb *EventBuilder) Release() { eb.b.Release() }

func appendDate(b *array.Date32Builder, d Date) {
	if d == NoEnd {
		b.AppendNull()
	} else {
		b.Append(arrow.Date32(d))
	}
}

// CheckSchema compares a record schema with the contract's schema for kind
// (ContractSchema), field by field, and says which field is missing or of the wrong type.
func CheckSchema(kind string, got *arrow.Schema) error {
	op := "check " + kind + " schema"
	want := ContractSchema(kind, got)
	if want == nil {
		return errorf(op, ErrSchema, "unknown row kind %s; expected %s or %s", shown(kind), RowRegistrations, RowEvents)
	}
	return compareFields(op, kind, want, got)
}

// ContractSchema is the schema a batch of row kind kind with schema got is checked against:
// RowSchema(kind), except that an events batch with neither diagnosis column is checked
// against EventsSchemaV1 (rows version 1: events without a diagnosis). Nil for an unknown
// kind.
func ContractSchema(kind string, got *arrow.Schema) *arrow.Schema {
	if kind == RowEvents && got != nil && !got.HasField(FieldDiagnosisCode) && !got.HasField(FieldDiagnosisSystem) {
		return EventsSchemaV1
	}
	return RowSchema(kind)
}

func compareFields(op, kind string, want, got *arrow.Schema) error {
	if got == nil {
		return errorf(op, ErrSchema, "%s: no schema", kind)
	}
	if got.NumFields() != want.NumFields() {
		also := ""
		if want == EventsSchemaV1 {
			also = fmt.Sprintf(", or %d with the optional %s and %s", EventsSchema.NumFields(), FieldDiagnosisCode, FieldDiagnosisSystem)
		}
		return errorf(op, ErrSchema, "%s: %d fields, the contract has %d (%s)%s%s", kind, got.NumFields(), want.NumFields(), fieldNames(want), also, fieldDiff(want, got))
	}
	for i, wf := range want.Fields() {
		gf := got.Field(i)
		switch {
		case gf.Name != wf.Name:
			return errorf(op, ErrSchema, "%s: field %d is %s, the contract has %s", kind, i, shown(gf.Name), wf.Name)
		case !arrow.TypeEqual(gf.Type, wf.Type):
			return errorf(op, ErrSchema, "%s: field %s has type %s, the contract has %s", kind, wf.Name, gf.Type, wf.Type)
		case gf.Nullable && !wf.Nullable:
			return errorf(op, ErrSchema, "%s: field %s is nullable, the contract requires a value", kind, wf.Name)
		}
	}
	return nil
}

// fieldDiff names the fields one schema has and the other lacks, for an error message. A
// long list is cut after a few names and counted, so the message stays short whatever was
// uploaded.
func fieldDiff(want, got *arrow.Schema) string {
	var missing, unexpected []string
	for _, f := range want.Fields() {
		if !got.HasField(f.Name) {
			missing = append(missing, f.Name)
		}
	}
	for _, f := range got.Fields() {
		if !want.HasField(f.Name) {
			unexpected = append(unexpected, shown(f.Name))
		}
	}
	return clean(listed("; missing field ", missing)+listed("; unexpected field ", unexpected), 300)
}

// listed writes up to four names, each after prefix, and counts the rest.
func listed(prefix string, names []string) string {
	const most = 4
	out := ""
	for i, n := range names {
		if i == most {
			out += fmt.Sprintf("%s… and %d more", prefix, len(names)-most)
			break
		}
		out += prefix + n
	}
	return out
}

// fieldNames lists a schema's field names for an error message; a wide schema (the compact
// submission has 82 fields) is shown by its first and last few names and its width.
func fieldNames(s *arrow.Schema) string {
	names := make([]string, 0, s.NumFields())
	for _, f := range s.Fields() {
		names = append(names, f.Name)
	}
	if len(names) > 8 {
		return strings.Join(names[:4], ", ") + fmt.Sprintf(", … %d more …, ", len(names)-6) + strings.Join(names[len(names)-2:], ", ")
	}
	return strings.Join(names, ", ")
}

// DecodeRegistrations validates rec against the contract and calls fn for each row. Errors
// name the row kind, the field and the row number within the batch, never a value.
func DecodeRegistrations(rec arrow.Record, fn func(Registration) error) error {
	if err := CheckSchema(RowRegistrations, rec.Schema()); err != nil {
		return err
	}
	keys := rec.Column(0).(*array.String)
	sex := rec.Column(1).(*array.String)
	birth := rec.Column(2).(*array.Date32)
	from := rec.Column(3).(*array.Date32)
	to := rec.Column(4).(*array.Date32)
	for i := 0; i < int(rec.NumRows()); i++ {
		for c, col := range []arrow.Array{keys, sex, birth, from} {
			if col.IsNull(i) {
				return errorf("decode registrations", ErrValue, "row %d: field %s is null", i, RegistrationsSchema.Field(c).Name)
			}
		}
		r := Registration{
			PatientKey: keys.Value(i),
			Sex:        sex.Value(i),
			BirthMonth: DateOf(birth.Value(i).ToTime()).Month(),
			From:       Date(from.Value(i)),
			To:         NoEnd,
		}
		if to.IsValid(i) {
			r.To = Date(to.Value(i))
		}
		if err := ValidateRegistration(r); err != nil {
			return at("decode "+RowRegistrations, fmt.Sprintf("row %d", i), err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// DecodeEvents validates rec against the contract and calls fn for each row. Errors name the
// row kind, the field and the row number within the batch, never a value.
func DecodeEvents(rec arrow.Record, fn func(Event) error) error {
	if err := CheckSchema(RowEvents, rec.Schema()); err != nil {
		return err
	}
	keys := rec.Column(0).(*array.String)
	kind := rec.Column(1).(*array.String)
	start := rec.Column(2).(*array.Date32)
	end := rec.Column(3).(*array.Date32)
	method := rec.Column(4).(*array.String)
	var code, system *array.String // nil in a batch of rows version 1
	if rec.NumCols() == int64(EventsSchema.NumFields()) {
		code, system = rec.Column(5).(*array.String), rec.Column(6).(*array.String)
	}
	for i := 0; i < int(rec.NumRows()); i++ {
		for c, col := range []arrow.Array{keys, kind, start} {
			if col.IsNull(i) {
				return errorf("decode events", ErrValue, "row %d: field %s is null", i, EventsSchema.Field(c).Name)
			}
		}
		e := Event{PatientKey: keys.Value(i), Kind: kind.Value(i), Start: Date(start.Value(i)), End: NoEnd}
		if end.IsValid(i) {
			e.End = Date(end.Value(i))
		}
		if method.IsValid(i) {
			e.Method = method.Value(i)
		}
		if code != nil {
			if code.IsValid(i) {
				e.DiagnosisCode = code.Value(i)
			}
			if system.IsValid(i) {
				e.DiagnosisSystem = system.Value(i)
			}
		}
		if err := ValidateEvent(e); err != nil {
			return at("decode "+RowEvents, fmt.Sprintf("row %d", i), err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}
