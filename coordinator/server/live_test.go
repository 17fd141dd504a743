package server

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tributary-health/tributary/coordinator/internal/fedgen"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/miniotest"
	"github.com/tributary-health/tributary/internal/objstore"
)

// With the server running against a real MinIO server, a new month of submissions lands in
// the bucket and the API shows it within seconds, without a restart. The server lists the
// bucket every half second and also subscribes to MinIO's bucket notifications; the MinIO
// build the tests use holds its notification stream back (not even its keep-alive pings
// arrive), so the listing is what this test proves, and /api/status says the subscription is
// not delivering.
func TestLiveUpdateOnMinIO(t *testing.T) {
	minio := miniotest.Shared(t)
	for _, c := range []struct {
		name     string
		interval time.Duration
	}{{"interval and notifications", 500 * time.Millisecond}} {
		t.Run(c.name, func(t *testing.T) {
			bucket := miniotest.Bucket(t)
			st := minio.Store(t, bucket)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			fed := fedgen.New(fedgen.Params{Practices: 3, Months: 2, Seed: 5, Start: formats.MonthFor(2025, time.January)})
			if err := fed.Write(ctx, st, 2); err != nil {
				t.Fatal(err)
			}
			toks, err := OpenTokens(filepath.Join(t.TempDir(), "tokens.json"))
			if err != nil {
				t.Fatal(err)
			}
			lead, _, err := toks.Add("lead", RoleLead, "", time.Now())
			if err != nil {
				t.Fatal(err)
			}
			logger := slog.New(slog.NewTextHandler(io.Discard, nil))
			srv, err := New(Options{Store: st, Coordinator: fed.Coordinator.Public().(ed25519.PublicKey), Tokens: toks,
				Interval: c.interval, Logger: logger})
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { defer wg.Done(); srv.Run(ctx) }()
			defer wg.Wait()
			defer cancel()
			hs := httptest.NewServer(srv.Handler())
			defer hs.Close()

			months := func() []string {
				req, _ := http.NewRequest("GET", hs.URL+"/api/meta", nil)
				req.Header.Set("Authorization", "Bearer "+lead)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				var m Meta
				json.NewDecoder(resp.Body).Decode(&m)
				return m.Months
			}
			waitFor := func(n int, limit time.Duration) time.Duration {
				start := time.Now()
				for time.Since(start) < limit {
					if len(months()) == n {
						return time.Since(start)
					}
					time.Sleep(50 * time.Millisecond)
				}
				t.Fatalf("the API shows months %v after %s; want %d", months(), limit, n)
				return 0
			}
			waitFor(2, 30*time.Second) // the first combine
			p := fed.Practices[0]
			sub := fedgen.Publish(fed.Policy, p.ID, "20260501T000000Z-00001234", fed.Start+2, fed.Start+2, formats.Measures,
				func(m formats.Month, measure string, b, x int) int64 { return fed.True(0, m, measure, b, x) })
			if _, err := fedgen.WriteSubmission(ctx, st, p.Key, p.Created.Add(time.Hour), sub); err != nil {
				t.Fatal(err)
			}
			// A limit on waiting, not a timing: the figure is how long it took, logged; a loaded
			// machine (CI beside other work) can take longer than the idle second or two.
			took := waitFor(3, 60*time.Second)
			t.Logf("a new month appeared in the API %s after it was uploaded", took.Round(time.Millisecond))
			if s := srv.Status(); s.FilesRead != 1 {
				t.Errorf("the re-combine read %d files, want only the new one", s.FilesRead)
			}
			req, _ := http.NewRequest("GET", hs.URL+"/api/status", nil)
			req.Header.Set("Authorization", "Bearer "+lead)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var status Status
			if err := json.NewDecoder(resp.Body).Decode(&status); err != nil {
				t.Fatal(err)
			}
			if status.Notifications.State != objstore.NotifySilent {
				t.Errorf("/api/status: notifications %+v; want %q on the pinned MinIO", status.Notifications, objstore.NotifySilent)
			}
		})
	}
}
