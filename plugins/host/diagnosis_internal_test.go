package host

import (
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/memory"

	"github.com/tributary-health/tributary/formats"
)

// diagnosisBatch builds one events batch of a consultation with the given diagnosis columns
// (nil leaves the column out; "" is null).
func diagnosisBatch(t *testing.T, code, system *string) arrow.Record {
	t.Helper()
	fields := formats.EventsSchemaV1.Fields()
	if code != nil {
		fields = append(fields, formats.EventsSchema.Field(5))
	}
	if system != nil {
		fields = append(fields, formats.EventsSchema.Field(6))
	}
	b := array.NewRecordBuilder(memory.NewGoAllocator(), arrow.NewSchema(fields, nil))
	defer b.Release()
	b.Field(0).(*array.StringBuilder).Append("PK-secret-1")
	b.Field(1).(*array.StringBuilder).Append(formats.KindConsultation)
	b.Field(2).(*array.Date32Builder).Append(19000)
	b.Field(3).AppendNull()
	b.Field(4).AppendNull()
	for i, v := range []*string{code, system} {
		if v == nil {
			continue
		}
		f := b.Field(5 + i - boolInt(code == nil))
		if *v == "" {
			f.AppendNull()
		} else {
			f.(*array.StringBuilder).Append(*v)
		}
	}
	return b.NewRecord()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestCheckBatchDiagnoses: the host accepts events with and without the diagnosis columns (a
// plugin built before diagnoses sends none), and refuses a diagnosis that breaks the contract
// naming the field, never the code or the patient key.
func TestCheckBatchDiagnoses(t *testing.T) {
	s := func(v string) *string { return &v }
	kinds := []string{formats.KindConsultation}
	cases := []struct {
		name         string
		code, system *string
		want         string // "" means accepted
	}{
		{"rows version 1: no diagnosis columns", nil, nil, ""},
		{"no diagnosis", s(""), s(""), ""},
		{"ICD-10", s("J459"), s(formats.DiagnosisICD10), ""},
		{"SNOMED CT", s("195662009"), s(formats.DiagnosisSNOMED), ""},
		{"code without system", s("J459"), s(""), "fields diagnosis_code and diagnosis_system must both be set or both be null"},
		{"unknown system", s("J459"), s("read2"), "field diagnosis_system must be icd10 or snomedct"},
		{"ICD-10 with a dot", s("J45.9"), s(formats.DiagnosisICD10), "field diagnosis_code is not an ICD-10 code"},
		{"bad SNOMED CT check digit", s("195662008"), s(formats.DiagnosisSNOMED), "field diagnosis_code is not a SNOMED CT concept id"},
		{"only diagnosis_code", s(""), nil, "missing field diagnosis_system"},
		{"only diagnosis_system", nil, s(""), "missing field diagnosis_code"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec := diagnosisBatch(t, c.code, c.system)
			defer rec.Release()
			err := CheckBatch(formats.RowEvents, rec, kinds)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want == "":
				return
			case err == nil:
				t.Fatalf("accepted, want an error containing %q", c.want)
			case !strings.Contains(err.Error(), c.want):
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
			for _, v := range []string{"PK-secret-1", "J45", "19566200"} {
				if strings.Contains(err.Error(), v) {
					t.Errorf("the error carries the row's value %q: %v", v, err)
				}
			}
		})
	}
}
