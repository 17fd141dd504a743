package agent

import (
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/tributary-health/tributary/agent/config"
	"github.com/tributary-health/tributary/agent/spool"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// inProcess runs an extractor in the test process through sdk.Run: the same Writer and
// validation as a plugin, without a binary.
type inProcess struct{ ex sdk.Extractor }

func (s inProcess) Describe(context.Context) (sdk.Description, error) { return s.ex.Describe(), nil }
func (s inProcess) Extract(ctx context.Context, req sdk.Request, emit func(string, arrow.Record) error) error {
	_, err := sdk.Run(ctx, s.ex, req, emit)
	return err
}
func (inProcess) Close() error { return nil }

// tiny is a practice of 20 registered patients, each with one consultation and one
// emergency admission in every month.
type tiny struct{ fail bool }

func (tiny) Describe() sdk.Description {
	return sdk.Description{Name: "tiny", Version: "1.0.0", RowKinds: []string{formats.RowRegistrations, formats.RowEvents},
		EventKinds: []string{formats.KindConsultation, formats.KindAdmission}, Methods: true}
}

func (t tiny) Extract(ctx context.Context, req sdk.Request, w *sdk.Writer) error {
	for i := 0; i < 20; i++ {
		key := "secret-patient-" + string(rune('a'+i))
		if err := w.Registration(formats.Registration{PatientKey: key, Sex: "female", BirthMonth: formats.MonthFor(1971, 3), From: formats.DateOf(time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)), To: formats.NoEnd}); err != nil {
			return err
		}
		for m := req.From; m <= req.To; m++ {
			day := formats.DateOf(m.Start().AddDate(0, 0, 3))
			if err := w.Event(formats.Event{PatientKey: key, Kind: formats.KindConsultation, Start: day, End: formats.NoEnd}); err != nil {
				return err
			}
			if err := w.Event(formats.Event{PatientKey: key, Kind: formats.KindAdmission, Start: day, End: day + 2, Method: formats.MethodEmergency}); err != nil {
				return err
			}
		}
	}
	if t.fail {
		return errors.New("source database went away")
	}
	return nil
}

// flaky fails every Put while down is true.
type flaky struct {
	objstore.Store
	down bool
}

func (f *flaky) Put(ctx context.Context, key string, data []byte) (objstore.Info, error) {
	if f.down {
		return objstore.Info{}, objstore.ErrUnavailable
	}
	return f.Store.Put(ctx, key, data)
}

func newAgent(t *testing.T, store objstore.Store, extractors map[string]sdk.Extractor) *Agent {
	t.Helper()
	dir := t.TempDir()
	priv, _, err := InitKeys(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Practice: "P1", KeyFile: priv, Store: "file:///unused", Spool: filepath.Join(dir, "spool"), Policy: formats.PolicyUK.Name,
		Months: config.Months{From: "2024-01", To: "2024-03"}}
	cfg.PluginRunTimeout.Duration = time.Minute
	for name := range extractors {
		cfg.Plugins = append(cfg.Plugins, config.Plugin{Name: name, Path: "/in/process", SHA256: strings.Repeat("0", 64)})
	}
	key, err := readKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	sp, _, err := spool.Open(cfg.Spool)
	if err != nil {
		t.Fatal(err)
	}
	return &Agent{Config: cfg, Key: key, Spool: sp,
		Uploader: &Uploader{Spool: sp, Store: store, StoreURL: "file:///test"},
		Launch: func(_ context.Context, p config.Plugin) (Source, error) {
			return inProcess{extractors[p.Name]}, nil
		}}
}

func TestRunOnceReleasesSignedFiles(t *testing.T) {
	ctx := context.Background()
	store, err := objstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := newAgent(t, store, map[string]sdk.Extractor{"tiny": tiny{}})
	rep, err := a.RunOnce(ctx)
	if err != nil || rep.UploadErr != nil || rep.Failed() {
		t.Fatalf("run: %v %v %+v", err, rep.UploadErr, rep.Plugins)
	}
	// One submission covering January to March and their quarter, and the manifest.
	if rep.Files != 1 || rep.Periods != 4 || rep.Upload.RunsSent != 1 || rep.Upload.FilesSent != 2 {
		t.Fatalf("report %+v", rep)
	}
	raw, _, err := store.Get(ctx, formats.ManifestKey("P1", rep.RunID), formats.MaxEnvelopeBytes)
	if err != nil {
		t.Fatal(err)
	}
	m, err := formats.VerifyManifest(formats.ManifestKey("P1", rep.RunID), raw, a.Key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range m.Files {
		data, _, err := store.Get(ctx, f.Key, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		s, err := formats.VerifySubmission(m, f, data, formats.DefaultLimits)
		if err != nil {
			t.Fatal(err)
		}
		if s.From != formats.MonthFor(2024, 1) || s.To != formats.MonthFor(2024, 3) || m.From != "2024-01" || m.To != "2024-03" {
			t.Fatalf("months %s..%s, manifest %s..%s; want 2024-01..2024-03", s.From, s.To, m.From, m.To)
		}
		// Every patient is a woman of 50-54: every value whose box holds that cell is the
		// monthly count times the months of its period (list sizes become patient-months),
		// every other value is 0; nothing is small, so nothing is withheld.
		for _, c := range s.Cells {
			var n int64
			if (c.AgeBand == "50-54" || c.AgeBand == formats.All) && (c.Sex == "female" || c.Sex == formats.All) {
				switch c.Measure {
				case formats.RegisteredPatients, formats.Consultations, formats.Admissions, formats.AdmissionsEmergency, formats.PatientsAdmittedEmergency:
					n = 20
				case formats.BedDays:
					n = 40
				}
			}
			if want := formats.PolicyUK.Apply(n * int64(c.Period.Len())); c.Protected != want {
				t.Errorf("%s %s %s %s = %+v, want %+v", c.Period, c.Measure, c.AgeBand, c.Sex, c.Protected, want)
			}
		}
	}
	rel, err := a.Spool.Releases()
	if err != nil || len(rel) != 2 || rel[0].Period != "2024-01..2024-03" {
		t.Fatalf("release log has %d entries (%v), want the submission (2024-01..2024-03) and the manifest: %+v", len(rel), err, rel)
	}
	assertNoSecret(t, a.Spool.Dir(), store.Root())
}

// TestUploadResumesAfterOutage: with the store down the run is spooled, and the next attempt
// sends it exactly once.
func TestUploadResumesAfterOutage(t *testing.T) {
	ctx := context.Background()
	dir, _ := objstore.NewDir(t.TempDir())
	store := &flaky{Store: dir, down: true}
	a := newAgent(t, store, map[string]sdk.Extractor{"tiny": tiny{}})
	rep, err := a.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(rep.UploadErr, objstore.ErrUnavailable) || rep.Upload.RunsPending != 1 {
		t.Fatalf("want the run pending with ErrUnavailable, got %+v %v", rep.Upload, rep.UploadErr)
	}
	if objs, _ := dir.List(ctx, formats.PracticesPrefix); len(objs) != 0 {
		t.Fatalf("nothing may be in the store yet, found %d objects", len(objs))
	}
	store.down = false
	res, err := a.Uploader.UploadPending(ctx)
	if err != nil || res.RunsSent != 1 || res.FilesSent != 2 {
		t.Fatalf("resume: %+v %v", res, err)
	}
	again, err := a.Uploader.UploadPending(ctx)
	if err != nil || again.FilesSent != 0 {
		t.Fatalf("a second pass must send nothing: %+v %v", again, err)
	}
	objs, _ := dir.List(ctx, formats.PracticesPrefix)
	if len(objs) != 2 {
		t.Fatalf("store holds %d objects, want 2 (the submission and the manifest)", len(objs))
	}
}

// TestFailingPluginLeftOut: a failing plugin's rows are not released, the other plugin's are.
func TestFailingPluginLeftOut(t *testing.T) {
	ctx := context.Background()
	store, _ := objstore.NewDir(t.TempDir())
	a := newAgent(t, store, map[string]sdk.Extractor{"tiny": tiny{}, "broken": tiny{fail: true}})
	rep, err := a.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var failed, ok int
	for _, p := range rep.Plugins {
		if p.Err != nil {
			failed++
			if !strings.Contains(p.Err.Error(), "source database went away") {
				t.Errorf("plugin error %q does not say what went wrong", p.Err)
			}
		} else {
			ok++
		}
	}
	if failed != 1 || ok != 1 {
		t.Fatalf("plugins %+v", rep.Plugins)
	}
	// The broken plugin emitted the same rows before failing; had they been kept, every count
	// would be 40, not 20.
	data, _, err := store.Get(ctx, formats.SubmissionKey("P1", rep.RunID), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	s, err := formats.ReadSubmission(data, formats.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range s.Cells {
		if c.Period == formats.MonthPeriod(formats.MonthFor(2024, 1)) && c.Measure == formats.Consultations && c.AgeBand == "50-54" && c.Sex == "female" && c.Count != 20 {
			t.Fatalf("consultations = %d, want 20 (the failed plugin's rows must be left out)", c.Count)
		}
	}
	if len(s.Extractors) != 1 || s.Extractors[0] != "tiny@1.0.0" {
		t.Fatalf("extractors %v", s.Extractors)
	}
}

// assertNoSecret searches every file under the folders for the patient keys of tiny.
func assertNoSecret(t *testing.T, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		filepath.Walk(d, func(p string, info os.FileInfo, err error) error {
			if err != nil || info.IsDir() {
				return err
			}
			b, _ := os.ReadFile(p)
			if strings.Contains(string(b), "secret-patient") {
				t.Errorf("%s contains a patient key", p)
			}
			return nil
		})
	}
}

// slow never finishes and ignores its context, like a plugin stuck on a database.
type slow struct{ tiny }

func (slow) Extract(ctx context.Context, req sdk.Request, w *sdk.Writer) error {
	<-ctx.Done()
	return errors.New("stream terminated") // what a plugin's call may say when cut off
}

// TestTimeoutIsAKind: a plugin cut off by plugin_run_timeout fails as a timeout, whatever
// its call returned, and the other plugin's figures are released.
func TestTimeoutIsAKind(t *testing.T) {
	store, _ := objstore.NewDir(t.TempDir())
	a := newAgent(t, store, map[string]sdk.Extractor{"tiny": tiny{}, "slow": slow{}})
	a.Config.PluginRunTimeout.Duration = 200 * time.Millisecond
	rep, err := a.RunOnce(context.Background())
	if err != nil || rep.Files != 1 {
		t.Fatalf("run: %v, %d files", err, rep.Files)
	}
	kinds := map[string]string{}
	for _, p := range rep.Plugins {
		kinds[p.Name] = FailureKind(p.Err)
	}
	if kinds["slow"] != FailTimeout || kinds["tiny"] != "" {
		t.Fatalf("failure kinds %v, want slow: timeout and tiny: none", kinds)
	}
}
