package holder

import (
	"context"
	"crypto/ed25519"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/coordinator/provision"
	"github.com/tributary-health/tributary/coordinator/secure"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/miniotest"
	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/secagg"
)

// TestBadReportsOnMinIO runs two rounds on a real MinIO server, each holder with its own
// least-privilege credentials (provision.Holder). After an honest first round, the second
// month carries, beside five honest practices' reports:
//
//   - P006: a report with one count over the 16-bit width (its shares sum to 65,540; Prio3's
//     verification fails, here already at the leader's preparation, since its share no longer
//     matches the report's joint randomness);
//   - P007: a report whose leader share is encrypted to the helper's key (wrong holder);
//   - P008: a report replaying P001's report of the first month (its nonce);
//   - P010: a run from a practice that is not in the registry.
//
// Each is rejected with its kind and a reason naming the practice, in the result and in the
// signed round record; the month's exact federation cells are those of the five honest
// practices, and its published totals are within 2 of their truth.
func TestBadReportsOnMinIO(t *testing.T) {
	srv := miniotest.Shared(t)
	bucket := miniotest.Bucket(t)
	root := srv.Store(t, bucket)
	jan, feb := formats.MonthFor(2024, 1), formats.MonthFor(2024, 2)
	f := newTestFedOn(t, root, 8, jan, feb)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	admin, err := provision.Open(srv.URL(bucket), srv.AccessKey, srv.SecretKey)
	if err != nil {
		t.Fatal(err)
	}
	for i, leader := range []bool{true, false} {
		creds, err := admin.Holder(ctx, f.keys[i].ID, leader)
		if err != nil {
			t.Fatal(err)
		}
		st, err := objstore.Open(ctx, srv.URL(bucket), objstore.Options{AccessKey: creds.AccessKey, SecretKey: creds.SecretKey})
		if err != nil {
			t.Fatal(err)
		}
		f.holders[i].Store = st
	}
	honest := f.practices[:5]
	runs := map[string]string{}
	for _, p := range honest {
		runs[p.id] = f.upload(p, uploadOptions{from: jan, to: jan})
	}
	mustRound(t, f, LeadOptions{From: jan, To: jan})
	replayed := f.ref(honest[0], runs["P001"], jan).Nonce

	for _, p := range honest {
		f.upload(p, uploadOptions{from: feb, to: feb})
	}
	f.upload(f.practices[5], uploadOptions{from: feb, to: feb, counts: func(_ formats.Month, v []uint64) { v[3] = secagg.MaxCount + 5 }})
	wrong := [2]secagg.Recipient{{ID: f.keys[0].ID, Role: secagg.RoleLeader, Key: f.keys[1].HPKE.Public()}, f.keys[1].Public().Recipient()}
	f.upload(f.practices[6], uploadOptions{from: feb, to: feb, to2: &wrong})
	f.upload(f.practices[7], uploadOptions{from: feb, to: feb, nonces: map[formats.Month]string{feb: replayed}})
	_, strangerKey, _ := ed25519.GenerateKey(nil)
	stranger := &testPractice{id: "P010", key: strangerKey, size: 5000, seed: 99, version: map[formats.Month]int{}}
	f.upload(stranger, uploadOptions{from: feb, to: feb})

	var exact []uint64
	lead, _ := mustRound(t, f, LeadOptions{From: feb, To: feb, Exact: func(_ formats.Month, _ []string, cells []uint64) { exact = cells }})
	want := exactTotal(honest, feb)
	if len(exact) != len(want) {
		t.Fatalf("no exact cells for %s: the month was not aggregated (%s)", feb, withheldReasons(lead.Months))
	}
	for i := range want {
		if exact[i] != want[i] {
			t.Fatalf("cell %d: securely aggregated %d, the five honest practices' counts sum to %d: a bad report changed the total", i, exact[i], want[i])
		}
	}

	// The signed round record names every bad report, with its kind and reason.
	raw, _, err := root.Get(ctx, secure.RoundKey(lead.Round), formats.MaxEnvelopeBytes)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := secure.VerifyRound(secure.RoundKey(lead.Round), raw, f.keys[0].Sign.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ practice, kind, reason string }{
		{"P006", secure.KindInvalid, "fails Prio3 verification"},
		{"P007", secure.KindWrongHolder, "encrypted to key"},
		{"P008", secure.KindReplay, "was first seen as practice P001's report of 2024-01"},
		{"P010", secure.KindNotRegistered, "practice P010 is not in the federation registry"},
	} {
		found := false
		for _, r := range rec.Rejected {
			if r.Practice == c.practice {
				found = true
				if r.Kind != c.kind || !strings.Contains(r.Reason, c.reason) {
					t.Errorf("%s rejected as %s (%s); want %s, %q", c.practice, r.Kind, r.Reason, c.kind, c.reason)
				}
			}
		}
		if !found {
			t.Errorf("%s's bad report is not named in the round record: %+v", c.practice, rec.Rejected)
		}
	}
	for _, r := range rec.Rejected {
		if r.Practice <= "P005" {
			t.Errorf("an honest practice was rejected: %+v", r)
		}
	}
	// What the coordinator reads: February's totals are the honest ones, within 2.
	figs := f.published()
	for li, measure := range formats.Measures {
		var truth int64
		for fine := range formats.NumFine {
			truth += int64(want[li*formats.NumFine+fine])
		}
		v := totalOf(figs, feb, measure)
		if v.Count < truth-2 || v.Count > truth+2 || v.Lower > truth || v.Upper < truth {
			t.Errorf("%s %s: published %+v, the honest practices' truth is %d", feb, measure, v, truth)
		}
		if n := figs.Practices[feb][measure]; n != len(honest) {
			t.Errorf("%s %s: %d practices behind the total, want %d", feb, measure, n, len(honest))
		}
	}
}

// TestSharedNonceInOneRound: two practices' reports of one round carry the same nonce (one is
// a copy; neither holder can tell which): both are refused as replays, the helper is not asked
// to aggregate a report twice (it would refuse the whole plan), and the month is published
// over the other practices, exactly.
func TestSharedNonceInOneRound(t *testing.T) {
	m := formats.MonthFor(2024, 1)
	f := newTestFed(t, 5, m, m)
	var nonce string
	for i, p := range f.practices {
		o := uploadOptions{}
		if i == 4 {
			o.nonces = map[formats.Month]string{m: nonce}
		}
		run := f.upload(p, o)
		if i == 0 {
			nonce = f.ref(p, run, m).Nonce
		}
	}
	var exact []uint64
	lead, _ := mustRound(t, f, LeadOptions{Exact: func(_ formats.Month, _ []string, cells []uint64) { exact = cells }})
	var replays []string
	for _, r := range lead.Rejected {
		if r.Kind == secure.KindReplay {
			replays = append(replays, r.Practice)
		}
	}
	if strings.Join(replays, ",") != "P001,P005" {
		t.Errorf("replays refused: %v (all: %+v)", replays, lead.Rejected)
	}
	want := exactTotal(f.practices[1:4], m)
	if len(exact) != len(want) {
		t.Fatalf("nothing aggregated: %s", withheldReasons(lead.Months))
	}
	for i := range want {
		if exact[i] != want[i] {
			t.Fatalf("cell %d: %d, want %d", i, exact[i], want[i])
		}
	}
}

// TestAuditRefusalWithholdsOnlyItsMonth: a practice's February report keeps every count in
// range (so Prio3 accepts it) but claims far more emergency admissions than admissions in one
// cell, so the federation's February cells break a relation the disclosure audit relies on.
// The leader withholds February, saying why, and still publishes January.
func TestAuditRefusalWithholdsOnlyItsMonth(t *testing.T) {
	jan, feb := formats.MonthFor(2024, 1), formats.MonthFor(2024, 2)
	f := newTestFed(t, 4, jan, feb)
	emergency, admissions := slices.Index(formats.Measures, formats.AdmissionsEmergency), slices.Index(formats.Measures, formats.Admissions)
	for i, p := range f.practices {
		o := uploadOptions{}
		if i == 3 {
			o.counts = func(m formats.Month, v []uint64) {
				if m == feb {
					v[emergency*formats.NumFine+40] = v[admissions*formats.NumFine+40] + 5000
				}
			}
		}
		f.upload(p, o)
	}
	lead, _ := mustRound(t, f, LeadOptions{})
	why := withheldReasons(lead.Months)
	if !strings.Contains(why, "2024-02 *: disclosure control of 2024-02..2024-02") || !strings.Contains(why, "break the relations") || strings.Contains(why, "2024-01") {
		t.Fatalf("withheld:\n%s", why)
	}
	figs := f.published()
	if v := totalOf(figs, jan, formats.Admissions); v.Status != formats.StatusRounded {
		t.Errorf("January was not published: %+v", v)
	}
	if v := totalOf(figs, feb, formats.Admissions); v.Status != "absent" {
		t.Errorf("February was published: %+v", v)
	}
}
