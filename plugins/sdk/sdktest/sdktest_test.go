package sdktest_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/plugins/sdk"
	"github.com/tributary-health/tributary/plugins/sdk/sdktest"
)

// clinic sends two patients, a consultation each, an emergency stay that began in December and
// ends in January, and, when told to, a stay spanning the months or an A&E visit it does not
// supply with a GP-only configuration.
type clinic struct{}

func (clinic) Describe() sdk.Description {
	return sdk.Description{Name: "clinic", Version: "0.1.0",
		RowKinds:   []string{formats.RowRegistrations, formats.RowEvents},
		EventKinds: []string{formats.KindConsultation, formats.KindAE, formats.KindAdmission}, Methods: true,
		Config: []sdk.ConfigKey{
			{Name: "gp_only", Type: sdk.TypeBool, Default: "false", Help: "the export holds GP data only"},
			{Name: "misbehave", Allowed: []string{"", "spanning", "ae"}, Help: "tests only"},
		}}
}

func (clinic) Supplies(config map[string]string) (sdk.Supplies, error) {
	if config["gp_only"] == "true" {
		return sdk.Supplies{RowKinds: []string{formats.RowRegistrations, formats.RowEvents}, EventKinds: []string{formats.KindConsultation}}, nil
	}
	return clinic{}.Describe().Supplies(), nil
}

func (clinic) Extract(_ context.Context, req sdk.Request, w *sdk.Writer) error {
	jan := formats.DateOf(req.From.Start())
	for _, key := range []string{"patient-a", "patient-b"} {
		if err := w.Registration(formats.Registration{PatientKey: key, Sex: "female", BirthMonth: formats.MonthFor(1980, 5), From: jan - 1000, To: formats.NoEnd}); err != nil {
			return err
		}
		if err := w.Event(formats.Event{PatientKey: key, Kind: formats.KindConsultation, Start: jan + 3, End: formats.NoEnd}); err != nil {
			return err
		}
	}
	req.Log.Info("sent the consultations", "count", 2)
	if req.Config["gp_only"] != "true" {
		if err := w.Event(formats.Event{PatientKey: "patient-a", Kind: formats.KindAdmission, Start: jan - 4, End: jan + 1, Method: formats.MethodEmergency}); err != nil {
			return err
		}
	}
	switch req.Config["misbehave"] {
	case "spanning":
		return w.Event(formats.Event{PatientKey: "patient-b", Kind: formats.KindAdmission, Start: jan - 40, End: jan + 100, Method: formats.MethodUnknown})
	case "ae":
		return w.Event(formats.Event{PatientKey: "patient-b", Kind: formats.KindAE, Start: jan + 5, End: formats.NoEnd})
	}
	return nil
}

var jan, feb = formats.MonthFor(2024, 1), formats.MonthFor(2024, 2)

func TestExtractRecordsRows(t *testing.T) {
	rec := sdktest.Extract(t, clinic{}, jan, feb, nil)
	if len(rec.Registrations) != 2 || rec.Registrations[1].PatientKey != "patient-b" || rec.Registrations[0].Sex != "female" {
		t.Fatalf("registrations %+v", rec.Registrations)
	}
	counts := rec.EventCounts()
	if counts[formats.KindConsultation] != 2 || counts["admission/emergency"] != 1 || len(counts) != 2 {
		t.Fatalf("event counts %v", counts)
	}
	if stays := rec.EventsOf(formats.KindAdmission); len(stays) != 1 || stays[0].End.Month() != jan {
		t.Fatalf("stays %+v", stays)
	}
	if len(rec.Uncounted()) != 0 {
		t.Fatalf("uncounted %+v: a stay discharged in the months counts", rec.Uncounted())
	}
	if rec.Stats.TotalRows() != 5 || rec.Batches != 2 || !rec.Supplies.Methods {
		t.Fatalf("stats %+v, batches %d, supplies %+v", rec.Stats, rec.Batches, rec.Supplies)
	}
	if !strings.Contains(rec.Log, "sent the consultations: count=2") {
		t.Fatalf("log %q", rec.Log)
	}
}

func TestUncountedEvents(t *testing.T) {
	rec := sdktest.Extract(t, clinic{}, jan, feb, map[string]string{"misbehave": "spanning"})
	if u := rec.Uncounted(); len(u) != 1 || u[0].PatientKey != "patient-b" {
		t.Fatalf("uncounted %+v, want the spanning stay", u)
	}
}

// TestChecksAsTheHostDoes: an event kind the extractor said it does not supply with this
// configuration fails the run, as it would through the agent.
func TestChecksAsTheHostDoes(t *testing.T) {
	rec, err := sdktest.Run(context.Background(), clinic{}, sdk.Request{From: jan, To: feb, Config: map[string]string{"gp_only": "true", "misbehave": "ae"}})
	if err == nil || !strings.Contains(err.Error(), "an event of kind ae_attendance, which the extractor does not supply with this configuration") {
		t.Fatalf("err = %v", err)
	}
	if len(rec.Supplies.EventKinds) != 1 {
		t.Errorf("supplies %+v", rec.Supplies)
	}
	_, err = sdktest.Run(context.Background(), clinic{}, sdk.Request{From: jan, To: feb, Config: map[string]string{"gp_onyl": "true"}})
	if !errors.Is(err, sdk.ErrConfig) || !strings.Contains(err.Error(), "did you mean gp_only?") {
		t.Fatalf("misspelt key: err = %v", err)
	}
}

// TestSummaryAndRequest: a case's request.conf is read with its line named on a mistake, and
// the summary labels patients without their keys, sorts events and ends with the error.
func TestSummaryAndRequest(t *testing.T) {
	dir := t.TempDir()
	conf := dir + "/request.conf"
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(conf, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("# a case\nfrom = 2024-01\nto = 2024-02\ngp_only = true\n")
	from, to, cfg, err := sdktest.ReadRequest(conf)
	if err != nil || from != formats.MonthFor(2024, 1) || to != formats.MonthFor(2024, 2) || cfg["gp_only"] != "true" || len(cfg) != 1 {
		t.Fatalf("ReadRequest = %v %v %v %v", from, to, cfg, err)
	}
	for text, want := range map[string]string{
		"from = 2024-01\nto 2024-02\n":   "request.conf:2",
		"from = 2024-13\nto = 2024-02\n": "request.conf:1: from",
		"from = 2024-01\n":               "from and to are both needed",
	} {
		write(text)
		if _, _, _, err := sdktest.ReadRequest(conf); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ReadRequest(%q) = %v, want an error saying %q", text, err, want)
		}
	}
	rec, err := sdktest.Run(context.Background(), clinic{}, sdk.Request{From: formats.MonthFor(2024, 1), To: formats.MonthFor(2024, 1)})
	if err != nil {
		t.Fatal(err)
	}
	got := sdktest.Summary(rec, errors.New("the end"))
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if !strings.HasPrefix(lines[0], "supplies [registrations events]") || lines[len(lines)-1] != "error the end" {
		t.Errorf("summary's first and last lines:\n%s", got)
	}
	if strings.Contains(got, "patient-a") || !strings.Contains(got, "registration p1 female") || !strings.Contains(got, "registration p2 female") {
		t.Errorf("summary shows a patient key or lacks the labels:\n%s", got)
	}
	var events []string
	for _, l := range lines {
		if strings.HasPrefix(l, "event ") {
			events = append(events, l)
		}
	}
	if len(events) == 0 || !slices.IsSorted(events) {
		t.Errorf("events missing or not sorted: %v", events)
	}
}
