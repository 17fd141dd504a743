package sdk

import (
	"testing"

	"github.com/apache/arrow/go/v17/arrow"

	"github.com/tributary-health/tributary/formats"
)

// TestWriterDiagnosisColumns: a batch in which some event has a diagnosis carries the
// diagnosis columns (rows version 2); a batch in which none has leaves them out
// (formats.EventsSchemaV1), so that an agent that predates diagnoses still reads it. Both
// decode to the events written.
func TestWriterDiagnosisColumns(t *testing.T) {
	var got []formats.Event
	var fields []int
	w := NewWriter(func(kind string, rec arrow.Record) error {
		fields = append(fields, int(rec.NumCols()))
		if err := formats.CheckSchema(kind, rec.Schema()); err != nil {
			return err
		}
		return formats.DecodeEvents(rec, func(e formats.Event) error { got = append(got, e); return nil })
	}, 2)
	defer w.release()
	want := []formats.Event{
		{PatientKey: "a", Kind: formats.KindConsultation, Start: 100, End: formats.NoEnd},
		{PatientKey: "b", Kind: formats.KindAE, Start: 101, End: formats.NoEnd},
		{PatientKey: "c", Kind: formats.KindAdmission, Start: 102, End: 104, Method: formats.MethodEmergency, DiagnosisCode: "I219", DiagnosisSystem: formats.DiagnosisICD10},
		{PatientKey: "d", Kind: formats.KindConsultation, Start: 103, End: formats.NoEnd},
		{PatientKey: "e", Kind: formats.KindConsultation, Start: 104, End: formats.NoEnd, DiagnosisCode: "195662009", DiagnosisSystem: formats.DiagnosisSNOMED},
	}
	for _, e := range want {
		if err := w.Event(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	v1, v2 := formats.EventsSchemaV1.NumFields(), formats.EventsSchema.NumFields()
	if len(fields) != 3 || fields[0] != v1 || fields[1] != v2 || fields[2] != v2 {
		t.Errorf("batches had %v columns, want [%d %d %d]", fields, v1, v2, v2)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	// A diagnosis that breaks the contract is refused at the line that wrote it.
	bad := formats.Event{PatientKey: "f", Kind: formats.KindAE, Start: 105, End: formats.NoEnd, DiagnosisCode: "I21.9", DiagnosisSystem: formats.DiagnosisICD10}
	if err := w.Event(bad); err == nil {
		t.Error("an ICD-10 code with its dot was accepted")
	}
}
