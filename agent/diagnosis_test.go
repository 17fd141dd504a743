package agent

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// Diagnosis codes no output of the agent may hold.
const (
	secretICD10  = "Q8784"
	secretSNOMED = "195662009"
)

// coded is tiny's practice, with a primary diagnosis on every event when dx is set: an ICD-10
// code on admissions, a SNOMED CT concept on consultations.
type coded struct{ dx bool }

func (coded) Describe() sdk.Description { return tiny{}.Describe() }

func (c coded) Extract(ctx context.Context, req sdk.Request, w *sdk.Writer) error {
	for i := 0; i < 20; i++ {
		key := "secret-patient-" + string(rune('a'+i))
		if err := w.Registration(formats.Registration{PatientKey: key, Sex: "female", BirthMonth: formats.MonthFor(1971, 3), From: formats.DateOf(time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)), To: formats.NoEnd}); err != nil {
			return err
		}
		for m := req.From; m <= req.To; m++ {
			day := formats.DateOf(m.Start().AddDate(0, 0, 3+i%5))
			gp := formats.Event{PatientKey: key, Kind: formats.KindConsultation, Start: day, End: formats.NoEnd}
			stay := formats.Event{PatientKey: key, Kind: formats.KindAdmission, Start: day, End: day + formats.Date(i%4), Method: formats.MethodEmergency}
			if c.dx {
				gp.DiagnosisCode, gp.DiagnosisSystem = secretSNOMED, formats.DiagnosisSNOMED
				stay.DiagnosisCode, stay.DiagnosisSystem = secretICD10, formats.DiagnosisICD10
			}
			if err := w.Event(gp); err != nil {
				return err
			}
			if err := w.Event(stay); err != nil {
				return err
			}
		}
	}
	return nil
}

// TestDiagnosesNeverLeave: a practice whose events carry diagnoses publishes exactly what the
// same practice without them publishes (no figure depends on a diagnosis yet), and no file
// the run writes or uploads, nor its log, holds a diagnosis code.
func TestDiagnosesNeverLeave(t *testing.T) {
	ctx := context.Background()
	var published [2][]formats.Cell
	for i, dx := range []bool{false, true} {
		store, err := objstore.NewDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		a := newAgent(t, store, map[string]sdk.Extractor{"coded": coded{dx: dx}})
		var log bytes.Buffer
		a.Log = slog.New(slog.NewJSONHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))
		rep, err := a.RunOnce(ctx)
		if err != nil || rep.UploadErr != nil || rep.Failed() {
			t.Fatalf("run: %v %v %+v", err, rep.UploadErr, rep.Plugins)
		}
		data, _, err := store.Get(ctx, formats.SubmissionKey("P1", rep.RunID), 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := formats.ReadSubmission(data, formats.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		published[i] = sub.Cells
		for _, c := range sub.Cells {
			for _, s := range []string{c.Measure, c.AgeBand, c.Sex} {
				if strings.Contains(s, secretICD10) || strings.Contains(s, secretSNOMED) || strings.Contains(s, "icd10") || strings.Contains(s, "snomed") {
					t.Errorf("a published label holds a diagnosis: %+v", c)
				}
			}
		}
		if strings.Contains(log.String(), secretICD10) || strings.Contains(log.String(), secretSNOMED) {
			t.Errorf("the agent's log holds a diagnosis code")
		}
		for _, d := range []string{a.Spool.Dir(), store.Root()} {
			filepath.Walk(d, func(p string, info os.FileInfo, err error) error {
				if err != nil || info.IsDir() {
					return err
				}
				b, _ := os.ReadFile(p)
				if bytes.Contains(b, []byte(secretICD10)) || bytes.Contains(b, []byte(secretSNOMED)) || bytes.Contains(b, []byte("secret-patient")) {
					t.Errorf("%s holds a diagnosis code or a patient key", p)
				}
				return nil
			})
		}
	}
	if len(published[0]) == 0 || len(published[0]) != len(published[1]) {
		t.Fatalf("%d and %d values published", len(published[0]), len(published[1]))
	}
	for i := range published[0] {
		if published[0][i] != published[1][i] {
			t.Errorf("value %d differs with diagnoses: %+v, without %+v", i, published[1][i], published[0][i])
		}
	}
}
