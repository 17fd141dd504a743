package loadgen_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"

	"github.com/tributary-health/tributary/coordinator/combine"
	"github.com/tributary-health/tributary/coordinator/loadgen"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// write fills a new directory store and returns it with the generator.
func write(t *testing.T, o loadgen.Options) (*loadgen.Generator, objstore.Store, string) {
	t.Helper()
	dir := t.TempDir()
	st, err := objstore.NewDir(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	o.Workdir = filepath.Join(dir, "work")
	g, err := loadgen.New(o)
	if err != nil {
		t.Fatal(err)
	}
	s, err := g.Write(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	if s.Objects != 1+2*o.Practices || s.Bytes <= 0 {
		t.Errorf("stats %+v: want %d objects", s, 1+2*o.Practices)
	}
	return g, st, dir
}

// TestCombines: a generated federation combines with nothing quarantined, every
// practice-month counted; its list sizes and rates are England's; its keys lie where the
// demo lays them; a new run of one practice makes a revision.
func TestCombines(t *testing.T) {
	ctx := context.Background()
	const practices, months = 6, 15
	g, st, dir := write(t, loadgen.Options{Practices: practices, Months: months, Seed: 3})
	keyPEM, err := os.ReadFile(filepath.Join(dir, "work", "coordinator", "coordinator.key"))
	if err != nil {
		t.Fatal(err)
	}
	coord, err := formats.ParsePrivateKey(keyPEM)
	if err != nil || !coord.Equal(g.Coordinator()) {
		t.Fatalf("coordinator.key: %v", err)
	}
	for i := range practices {
		pem, err := os.ReadFile(filepath.Join(dir, "work", "agents", loadgen.PracticeID(i), "keys", "practice.key"))
		if err != nil {
			t.Fatal(err)
		}
		if k, err := formats.ParsePrivateKey(pem); err != nil || !k.Equal(g.PracticeKey(i)) {
			t.Fatalf("practice %d key: %v", i, err)
		}
		if s := g.Size(i); s < 2000 || s > 20000 {
			t.Errorf("practice %d list size %d, want 2,000 to 20,000", i, s)
		}
	}
	pub := coord.Public().(ed25519.PublicKey)
	res, err := combine.Run(ctx, st, pub, combine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rep := res.Report
	if rep.Practices != practices || rep.MonthsCombined != practices*months || rep.FilesCombined != practices || len(rep.Quarantined) != 0 {
		t.Fatalf("combined %d practices, %d months, %d files, quarantined %v", rep.Practices, rep.MonthsCombined, rep.FilesCombined, rep.Quarantined)
	}

	// Every value is through the policy: counts 1-7 suppressed, the rest multiples of 5.
	from, to := g.Span()
	var list, emergency, admissions int64
	for i := range practices {
		infos, err := st.List(ctx, "practices/"+loadgen.PracticeID(i)+"/")
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range infos {
			k, err := formats.ParseKey(in.Key)
			if err != nil || k.Manifest() {
				continue
			}
			data, _, err := st.Get(ctx, in.Key, 1<<30)
			if err != nil {
				t.Fatal(err)
			}
			sub, err := formats.ReadSubmission(data, formats.DefaultLimits)
			if err != nil {
				t.Fatal(err)
			}
			if sub.From != from || sub.To != to || sub.Policy != formats.DefaultPolicy.Name {
				t.Errorf("%s covers %s..%s under %s", in.Key, sub.From, sub.To, sub.Policy)
			}
			for _, c := range sub.Cells {
				if c.Status == formats.StatusRounded && c.Count%5 != 0 {
					t.Fatalf("%s: %v is not rounded to 5", in.Key, c)
				}
				if c.Period.Kind != formats.KindYear || c.AgeBand != formats.All || c.Sex != formats.All || c.Status != formats.StatusRounded {
					continue
				}
				switch c.Measure {
				case formats.RegisteredPatients:
					list += c.Count / 12
				case formats.AdmissionsEmergency:
					emergency += c.Count
				case formats.Admissions:
					admissions += c.Count
				}
			}
		}
	}
	// England: about 0.29 admissions a patient-year, two in five of them emergencies;
	// practices run at 0.7 to 1.5 times that, so allow a wide band.
	if rate := float64(admissions) / float64(list); rate < 0.2 || rate > 0.45 {
		t.Errorf("admissions per patient-year %.3f, want about 0.29", rate)
	}
	if share := float64(emergency) / float64(admissions); share < 0.3 || share > 0.5 {
		t.Errorf("emergency share of admissions %.2f, want about 0.4", share)
	}

	// One practice's new run: the next combine takes its months from it.
	if err := g.WriteNewRun(ctx, st, 2, 1); err != nil {
		t.Fatal(err)
	}
	res, err = combine.Run(ctx, st, pub, combine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Report.FilesCombined != practices+1 || res.Report.MonthsCombined != practices*months || len(res.Report.Quarantined) != 0 {
		t.Errorf("after a new run: %d files, %d months, quarantined %v", res.Report.FilesCombined, res.Report.MonthsCombined, res.Report.Quarantined)
	}
}

// TestDeterministic: the same options give byte-identical stores; another seed does not.
func TestDeterministic(t *testing.T) {
	o := loadgen.Options{Practices: 3, Months: 4, Seed: 9, Workers: 3}
	_, a, _ := write(t, o)
	_, b, _ := write(t, o)
	o.Seed = 10
	_, c, _ := write(t, o)
	ctx := context.Background()
	la, _ := a.List(ctx, "")
	lb, _ := b.List(ctx, "")
	lc, _ := c.List(ctx, "")
	if len(la) != 7 || len(lb) != len(la) {
		t.Fatalf("%d and %d objects, want 7", len(la), len(lb))
	}
	get := func(st objstore.Store, key string) []byte {
		data, _, err := st.Get(ctx, key, 1<<30)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	same := 0
	for i := range la {
		if la[i].Key != lb[i].Key || !bytes.Equal(get(a, la[i].Key), get(b, lb[i].Key)) {
			t.Errorf("%s differs from %s", la[i].Key, lb[i].Key)
		}
		if i < len(lc) && bytes.Equal(get(a, la[i].Key), get(c, lc[i].Key)) {
			same++
		}
	}
	if same > 0 {
		t.Errorf("another seed left %d objects identical", same)
	}
}

// TestRefusesAnotherFederation: loadgen does not write over another federation's registry,
// nor over another coordinator key in its workdir.
func TestRefusesAnotherFederation(t *testing.T) {
	_, st, dir := write(t, loadgen.Options{Practices: 1, Months: 1, Seed: 1})
	g, err := loadgen.New(loadgen.Options{Practices: 1, Months: 1, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Write(context.Background(), st); err == nil {
		t.Error("a second federation was written over the first's registry")
	}
	other, err := objstore.NewDir(filepath.Join(dir, "other"))
	if err != nil {
		t.Fatal(err)
	}
	g, err = loadgen.New(loadgen.Options{Practices: 1, Months: 1, Seed: 2, Workdir: filepath.Join(dir, "work")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Write(context.Background(), other); err == nil {
		t.Error("another coordinator key was written over the workdir's")
	}
	for _, bad := range []loadgen.Options{{Practices: 0, Months: 1}, {Practices: 1, Months: 0}, {Practices: 100000, Months: 1}} {
		if _, err := loadgen.New(bad); err == nil {
			t.Errorf("New(%+v) accepted", bad)
		}
	}
}
