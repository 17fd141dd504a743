package agent

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/agent/config"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/plugins/host"
	"github.com/tributary-health/tributary/plugins/sdk"
)

// Supplies makes inProcess a SupplySource, as a plugin run through plugins/host is.
func (s inProcess) Supplies(_ context.Context, config map[string]string) (sdk.Supplies, error) {
	return sdk.ValidateConfig(s.ex, config)
}

// ukgp is shaped like a UK GP system's export: gp.csv always, apcs.csv (hospital admitted
// patient care) only when the practice has hospital data. Only the files' presence matters.
type ukgp struct{}

func (ukgp) Describe() sdk.Description {
	return sdk.Description{Name: "ukgp", Version: "0.1.0", RowKinds: []string{formats.RowRegistrations, formats.RowEvents},
		EventKinds: []string{formats.KindConsultation, formats.KindAdmission}, Methods: true,
		Config: []sdk.ConfigKey{{Name: "dir", Type: sdk.TypePath, Required: true, Help: "folder of the export"}}}
}

func (ukgp) ValidateConfig(config map[string]string) error {
	if _, err := os.Stat(filepath.Join(config["dir"], "gp.csv")); err != nil {
		return fmt.Errorf("no gp.csv in %s; set dir to the export folder", config["dir"])
	}
	return nil
}

func (ukgp) hasAPCS(config map[string]string) bool {
	_, err := os.Stat(filepath.Join(config["dir"], "apcs.csv"))
	return err == nil
}

// Supplies: without apcs.csv there are no admissions to send, so none are supplied.
func (x ukgp) Supplies(config map[string]string) (sdk.Supplies, error) {
	s := x.Describe().Supplies()
	if !x.hasAPCS(config) {
		s.EventKinds, s.Methods = []string{formats.KindConsultation}, false
	}
	return s, nil
}

func (x ukgp) Extract(_ context.Context, req sdk.Request, w *sdk.Writer) error {
	apcs := x.hasAPCS(req.Config)
	for i := 0; i < 20; i++ {
		key := fmt.Sprintf("gp-patient-%02d", i)
		if err := w.Registration(formats.Registration{PatientKey: key, Sex: "male", BirthMonth: formats.MonthFor(1960, 2), From: formats.DateOf(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)), To: formats.NoEnd}); err != nil {
			return err
		}
		for m := req.From; m <= req.To; m++ {
			day := formats.DateOf(m.Start().AddDate(0, 0, 9))
			if err := w.Event(formats.Event{PatientKey: key, Kind: formats.KindConsultation, Start: day, End: formats.NoEnd}); err != nil {
				return err
			}
			if apcs {
				if err := w.Event(formats.Event{PatientKey: key, Kind: formats.KindAdmission, Start: day, End: day + 1, Method: formats.MethodElective}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

var (
	_ sdk.ConfigValidator = ukgp{}
	_ sdk.Supplier        = ukgp{}
)

// TestMeasureAbsentWhenTheSourceLacksIt: a GP export without its hospital file supplies no
// admissions, and the practice's figures then have no admissions measures at all: not zeros,
// which the coordinator would add up as a real count of none. The relative dir is resolved
// against the configuration file's folder.
func TestMeasureAbsentWhenTheSourceLacksIt(t *testing.T) {
	hospital := []string{formats.Admissions, formats.AdmissionsEmergency, formats.AdmissionsElective, formats.BedDays, formats.PatientsAdmittedEmergency}
	for _, withAPCS := range []bool{false, true} {
		t.Run(fmt.Sprintf("apcs.csv=%v", withAPCS), func(t *testing.T) {
			ctx := context.Background()
			store, err := objstore.NewDir(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			a := newAgent(t, store, map[string]sdk.Extractor{"ukgp": ukgp{}})
			confDir := t.TempDir()
			export := filepath.Join(confDir, "export")
			files := []string{"gp.csv"}
			if withAPCS {
				files = append(files, "apcs.csv")
			}
			if err := os.Mkdir(export, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, f := range files {
				if err := os.WriteFile(filepath.Join(export, f), nil, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			a.Config.Plugins[0].Config = map[string]string{"dir": "export"}
			a.Config.Plugins[0].Dir = confDir
			rep, err := a.RunOnce(ctx)
			if err != nil || rep.Failed() {
				t.Fatalf("run: %v %+v", err, rep.Plugins)
			}
			for _, m := range hospital {
				if slices.Contains(rep.Measures, m) != withAPCS {
					t.Errorf("measure %s in the figures: %v, want %v (measures %v)", m, !withAPCS, withAPCS, rep.Measures)
				}
			}
			if !slices.Contains(rep.Measures, formats.Consultations) || !slices.Contains(rep.Measures, formats.RegisteredPatients) {
				t.Errorf("measures %v lack the GP ones", rep.Measures)
			}
			sub := readSubmission(t, ctx, store, a, rep.RunID)
			for _, c := range sub.Cells {
				if slices.Contains(hospital, c.Measure) && !withAPCS {
					t.Fatalf("the submission has a %s value %+v for a practice without hospital data", c.Measure, c.Protected)
				}
			}
		})
	}
}

func readSubmission(t *testing.T, ctx context.Context, store objstore.Store, a *Agent, run string) *formats.Submission {
	t.Helper()
	raw, _, err := store.Get(ctx, formats.ManifestKey("P1", run), formats.MaxEnvelopeBytes)
	if err != nil {
		t.Fatal(err)
	}
	m, err := formats.VerifyManifest(formats.ManifestKey("P1", run), raw, a.Key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	data, _, err := store.Get(ctx, m.Files[0].Key, 1<<24)
	if err != nil {
		t.Fatal(err)
	}
	s, err := formats.VerifySubmission(m, m.Files[0], data, formats.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCheckPluginsInProcess: each plugin is checked on its own, with the configuration a run
// would send it, and says what it would supply.
func TestCheckPluginsInProcess(t *testing.T) {
	confDir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(confDir, "export"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(confDir, "export", "gp.csv"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{Plugins: []config.Plugin{
		{Name: "good", Config: map[string]string{"dir": "export"}, Dir: confDir},
		{Name: "misspelt", Config: map[string]string{"dri": "export"}, Dir: confDir},
		{Name: "nofolder", Config: map[string]string{"dir": "elsewhere"}, Dir: confDir},
		{Name: "absent"},
	}}
	launch := func(_ context.Context, p config.Plugin) (Source, error) {
		if p.Name == "absent" {
			return nil, errors.New("cannot read the binary")
		}
		return inProcess{ukgp{}}, nil
	}
	checks := CheckPlugins(context.Background(), cfg, launch)
	if len(checks) != 4 {
		t.Fatalf("%d checks", len(checks))
	}
	for _, c := range checks {
		t.Log(c)
	}
	good := checks[0]
	if good.Err != nil || good.Config["dir"] != filepath.Join(confDir, "export") || !slices.Equal(good.Measures, []string{formats.RegisteredPatients, formats.Consultations}) {
		t.Errorf("good: %+v", good)
	}
	if !strings.Contains(good.String(), "plugin good 0.1.0: configuration accepted; supplies registered_patients, consultations") {
		t.Errorf("good: %s", good)
	}
	for i, want := range []string{"", "unknown key dri (is it dir, misspelt?", "no gp.csv in " + filepath.Join(confDir, "elsewhere"), "cannot read the binary"} {
		if i == 0 {
			continue
		}
		if err := checks[i].Err; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want it to say %q", checks[i].Name, err, want)
		}
	}
}

// TestCheckPluginsThroughTheHost: what 'config check' must catch before the first run, with
// real plugin processes: a misspelt key, a missing folder, a missing binary and the sample's
// placeholder checksum; and a relative dir that is right relative to the configuration file.
func TestCheckPluginsThroughTheHost(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the template plugin")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "template")
	build := exec.Command("go", "build", "-o", bin, "github.com/tributary-health/tributary/plugins/template")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	sum, err := host.FileSHA256(bin)
	if err != nil {
		t.Fatal(err)
	}
	testdata, err := filepath.Abs("../plugins/template/testdata")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(dir, "export"), os.DirFS(testdata)); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`practice = "A81001"
key_file = "practice.key"
store = "file:///unused"
spool = "spool"
[[plugins]]
name = "relative"
path = "template"
sha256 = %[1]q
  [plugins.config]
  dir = "export"
[[plugins]]
name = "misspelt"
path = "template"
sha256 = %[1]q
  [plugins.config]
  dri = "export"
[[plugins]]
name = "nofolder"
path = "template"
sha256 = %[1]q
  [plugins.config]
  dir = "/no/such/folder"
[[plugins]]
name = "absent"
path = "absent-plugin"
sha256 = %[1]q
[[plugins]]
name = "placeholder"
path = "template"
sha256 = "0000000000000000000000000000000000000000000000000000000000000000"
  [plugins.config]
  dir = "export"
`, sum)
	path := filepath.Join(dir, "agent.toml")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg.PluginStartTimeout.Duration = time.Minute
	checks := CheckPlugins(context.Background(), cfg, HostLauncher(cfg, nil))
	want := []string{
		"",
		"unknown key dri (is it dir, misspelt? the required key dir is not set",
		"cannot read /no/such/folder/registrations.csv",
		"cannot read the binary",
		"expected sha256 0000000000000000000000000000000000000000000000000000000000000000, the file has " + sum,
	}
	for i, c := range checks {
		t.Log(c)
		switch {
		case want[i] == "" && c.Err != nil:
			t.Errorf("%s: %v", c.Name, c.Err)
		case want[i] != "" && (c.Err == nil || !strings.Contains(c.Err.Error(), want[i])):
			t.Errorf("%s: err = %v, want it to say %q", c.Name, c.Err, want[i])
		}
	}
	if c := checks[0]; c.Config["dir"] != filepath.Join(dir, "export") || len(c.Measures) != len(formats.BuiltinDefinitions()) {
		t.Errorf("relative: %+v", c)
	}
}
