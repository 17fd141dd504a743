package agent

import (
	"context"
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/agent/config"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/plugins/sdk"
	"github.com/tributary-health/tributary/secagg"
	"github.com/tributary-health/tributary/secagg/secaggtest"
)

func secureConfig(t *testing.T, a *Agent) [2]*secagg.HolderKey {
	t.Helper()
	l, h, _, err := secaggtest.Holders()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []*secagg.HolderKey{h, l} { // the order in the file does not matter
		a.Config.SecureAggregation.Holders = append(a.Config.SecureAggregation.Holders,
			config.Holder{ID: k.ID, Role: k.Role, PublicKey: secagg.EncodeHPKEPublic(k.HPKE.Public())})
	}
	if _, err := a.Config.SecureAggregation.Recipients(); err != nil {
		t.Fatal(err)
	}
	return [2]*secagg.HolderKey{l, h}
}

// TestRunOnceSendsSecretShares: with holders configured, a run uploads one shares file per
// holder, listed in its signed manifest, and the two together hold the run's exact counts
// (tiny: 20 women aged 52-53, each with a consultation and a two-night emergency admission
// every month; outpatient and A&E attendances not supplied).
func TestRunOnceSendsSecretShares(t *testing.T) {
	ctx := context.Background()
	store, err := objstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := newAgent(t, store, map[string]sdk.Extractor{"tiny": tiny{}})
	keys := secureConfig(t, a)
	rep, err := a.RunOnce(ctx)
	if err != nil || rep.UploadErr != nil {
		t.Fatalf("run: %v %v", err, rep.UploadErr)
	}
	if rep.Files != 3 || rep.Secure == nil || rep.Secure.Err != nil || rep.Secure.Months != 3 || rep.Upload.FilesSent != 4 {
		t.Fatalf("report %+v, secure %+v", rep, rep.Secure)
	}
	raw, _, err := store.Get(ctx, formats.ManifestKey("P1", rep.RunID), formats.MaxEnvelopeBytes)
	if err != nil {
		t.Fatal(err)
	}
	m, err := formats.VerifyManifest(formats.ManifestKey("P1", rep.RunID), raw, a.Key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	var files [2][]byte
	for i, k := range keys {
		f, ok := m.SharesFor(k.ID)
		if !ok {
			t.Fatalf("the manifest lists no shares for %s: %+v", k.ID, m.Files)
		}
		data, _, err := store.Get(ctx, f.Key, f.Size)
		if err != nil {
			t.Fatal(err)
		}
		s, err := formats.VerifyShares(m, f, data)
		if err != nil {
			t.Fatal(err)
		}
		if s.Header.Aggregator != i || len(s.Header.Reports) != 3 {
			t.Fatalf("%s: header %+v", k.ID, s.Header)
		}
		wantSupplied := []string{formats.RegisteredPatients, formats.Consultations, formats.Admissions, formats.AdmissionsEmergency,
			formats.AdmissionsElective, formats.BedDays, formats.PatientsAdmittedEmergency}
		if got := s.Header.Reports[0].Supplied; len(got) != len(wantSupplied) {
			t.Errorf("supplied %v, want %v", got, wantSupplied)
		}
		files[i] = data
	}
	got, err := secaggtest.Reveal(keys, files)
	if err != nil {
		t.Fatal(err)
	}
	cell := formats.FineShape(formats.AgeBandIndex("50-54"), 0)
	want := map[string]uint64{formats.RegisteredPatients: 20, formats.Consultations: 20, formats.Admissions: 20, formats.AdmissionsEmergency: 20,
		formats.BedDays: 40, formats.PatientsAdmittedEmergency: 20}
	for _, month := range []string{"2024-01", "2024-02", "2024-03"} {
		v := got[month]
		if len(v) != secagg.Params().Length() {
			t.Fatalf("%s: %d counts", month, len(v))
		}
		for li, measure := range formats.Measures {
			for fine := range formats.NumFine {
				w := uint64(0)
				if fine == cell {
					w = want[measure]
				}
				if v[li*formats.NumFine+fine] != w {
					t.Errorf("%s %s cell %d: %d, want %d", month, measure, fine, v[li*formats.NumFine+fine], w)
				}
			}
		}
	}
}

// wide registers more patients in one cell than a report holds.
type wide struct{}

func (wide) Describe() sdk.Description {
	return sdk.Description{Name: "wide", Version: "1.0.0", RowKinds: []string{formats.RowRegistrations}}
}

func (wide) Extract(ctx context.Context, req sdk.Request, w *sdk.Writer) error {
	for i := range secagg.MaxCount + 1 {
		key := "p" + string(rune('a'+i%26)) + time.Duration(i).String()
		if err := w.Registration(formats.Registration{PatientKey: key, Sex: "male", BirthMonth: formats.MonthFor(2000, 1),
			From: formats.DateOf(time.Date(2010, 1, 1, 0, 0, 0, 0, time.UTC)), To: formats.NoEnd}); err != nil {
			return err
		}
	}
	return nil
}

// TestOverWidthMonthIsLeftOut: a month with a count above 65,535 is left out of secure
// aggregation and named; the run's published figures go as always.
func TestOverWidthMonthIsLeftOut(t *testing.T) {
	if testing.Short() {
		t.Skip("65,536 registrations")
	}
	store, err := objstore.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := newAgent(t, store, map[string]sdk.Extractor{"wide": wide{}})
	a.Config.Months = config.Months{From: "2024-01", To: "2024-01"}
	secureConfig(t, a)
	rep, err := a.RunOnce(context.Background())
	if err != nil || rep.UploadErr != nil {
		t.Fatalf("run: %v %v", err, rep.UploadErr)
	}
	if rep.Files != 1 || rep.Secure == nil || rep.Secure.Err == nil || len(rep.Secure.Skipped) != 1 {
		t.Fatalf("report %+v, secure %+v", rep, rep.Secure)
	}
	if why := rep.Secure.Skipped["2024-01"]; why == "" || !strings.Contains(why, formats.RegisteredPatients) || strings.Contains(why, "65536") {
		t.Errorf("the skipped month's reason %q should name the measure and never the count", why)
	}
	if _, err := store.Stat(context.Background(), formats.SubmissionKey("P1", rep.RunID)); err != nil {
		t.Errorf("the run's figures were not uploaded: %v", err)
	}
}
