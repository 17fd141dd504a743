package ordered

import (
	"context"
	"errors"
	"runtime"
	"testing"
	"time"
)

func TestRunInOrder(t *testing.T) {
	for _, workers := range []int{0, 1, 3, 50} {
		var got []int
		err := Run(context.Background(), 20, workers,
			func(_ context.Context, i int) (int, error) {
				time.Sleep(time.Duration((20-i)%4) * time.Millisecond) // finish out of order
				return i * i, nil
			},
			func(i, v int) error {
				if v != i*i {
					t.Errorf("result %d is %d", i, v)
				}
				got = append(got, i)
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range got {
			if v != i {
				t.Fatalf("workers=%d: consumed %v, want 0..19 in order", workers, got)
			}
		}
		if len(got) != 20 {
			t.Fatalf("workers=%d: consumed %d results", workers, len(got))
		}
	}
}

func TestRunStopsOnError(t *testing.T) {
	before := runtime.NumGoroutine()
	boom := errors.New("boom")
	consumed := 0
	err := Run(context.Background(), 1000, 4,
		func(ctx context.Context, i int) (int, error) {
			if i == 5 {
				return 0, boom
			}
			return i, ctx.Err()
		},
		func(int, int) error { consumed++; return nil })
	if !errors.Is(err, boom) || consumed != 5 {
		t.Errorf("err %v after %d results, want boom after 5", err, consumed)
	}
	err = Run(context.Background(), 1000, 4,
		func(_ context.Context, i int) (int, error) { return i, nil },
		func(i, _ int) error {
			if i == 7 {
				return boom
			}
			return nil
		})
	if !errors.Is(err, boom) {
		t.Errorf("consumer error: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Run(ctx, 10, 2, func(ctx context.Context, i int) (int, error) { return i, ctx.Err() }, func(int, int) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	time.Sleep(10 * time.Millisecond)
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("%d goroutines before, %d after: Run leaked some", before, after)
	}
}
