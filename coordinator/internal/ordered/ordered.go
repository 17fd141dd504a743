// Package ordered runs independent pieces of work on a bounded number of goroutines and
// hands their results back in order, so outputs built from them are deterministic.
package ordered

import (
	"context"
	"sync"
)

// Run runs work(i) for i in [0, n) on at most workers goroutines and hands each result to
// consume in index order, on the calling goroutine. At most 2×workers results wait to be
// consumed, so memory stays bounded however large n is. The first error from work or consume
// stops everything and is returned once every goroutine has finished.
func Run[T any](ctx context.Context, n, workers int, work func(context.Context, int) (T, error), consume func(int, T) error) error {
	if n == 0 {
		return nil
	}
	workers = max(1, min(workers, n))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type slot struct {
		v    T
		err  error
		done chan struct{}
	}
	slots := make([]slot, n)
	for i := range slots {
		slots[i].done = make(chan struct{})
	}
	window := make(chan struct{}, 2*workers)
	jobs := make(chan int)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(jobs)
		for i := 0; i < n; i++ {
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				slots[i].v, slots[i].err = work(ctx, i)
				close(slots[i].done)
			}
		}()
	}
	var err error
	for i := 0; i < n && err == nil; i++ {
		select {
		case <-slots[i].done:
		case <-ctx.Done():
			err = ctx.Err()
			continue
		}
		if err = slots[i].err; err != nil {
			continue
		}
		err = consume(i, slots[i].v)
		var zero T
		slots[i].v = zero
		<-window
	}
	cancel()
	wg.Wait()
	return err
}
