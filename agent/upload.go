package agent

import (
	"context"
	"fmt"
	"log/slog"
	"path"
	"sync"
	"time"

	"github.com/tributary-health/tributary/agent/spool"
	"github.com/tributary-health/tributary/formats"
	"github.com/tributary-health/tributary/internal/objstore"
)

// Uploader sends complete runs from the spool to the store: the run's submission first,
// the manifest last, each confirmed by checksum before it is marked sent. Putting a file the
// store already holds is harmless (same key, same bytes), so an upload interrupted at any
// point is simply repeated.
type Uploader struct {
	Spool    *spool.Spool
	Store    objstore.Store
	StoreURL string // for the release log, without credentials
	Log      *slog.Logger
	Now      func() time.Time

	mu sync.Mutex // one pass at a time: a scheduled run's upload and the outbox's retries
}

// UploadResult counts what one pass sent and what is still waiting.
type UploadResult struct {
	RunsSent    int
	FilesSent   int // objects stored: submissions and manifests alike
	BytesSent   int64
	RunsPending int
}

// UploadPending tries every pending run, oldest first. It stops at the first error, which
// leaves that run and the later ones pending for the next attempt.
func (u *Uploader) UploadPending(ctx context.Context) (UploadResult, error) {
	return u.uploadPending(ctx, nil)
}

// uploadPending is UploadPending telling prog, when set, what there is to send and each object
// sent.
func (u *Uploader) uploadPending(ctx context.Context, prog Progress) (UploadResult, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	var res UploadResult
	runs, err := u.Spool.Pending()
	if err != nil {
		return res, err
	}
	if prog != nil {
		objects := 0
		for _, r := range runs {
			for _, f := range r.Manifest.Files {
				if !u.Spool.IsSent(r.ID, path.Base(f.Key)) {
					objects++
				}
			}
			if !u.Spool.IsSent(r.ID, formats.ManifestName) {
				objects++
			}
		}
		prog.Uploading(objects)
	}
	for i, r := range runs {
		files, n, err := u.uploadRun(ctx, r, prog)
		res.FilesSent += files
		res.BytesSent += n
		if err != nil {
			res.RunsPending = len(runs) - i
			return res, err
		}
		res.RunsSent++
	}
	return res, nil
}

func (u *Uploader) now() time.Time {
	if u.Now != nil {
		return u.Now()
	}
	return time.Now()
}

func (u *Uploader) uploadRun(ctx context.Context, r spool.Run, prog Progress) (int, int64, error) {
	var files int
	var bytes int64
	send := func(name, key, period string, data []byte, sha string) error {
		if u.Spool.IsSent(r.ID, name) {
			return nil
		}
		info, err := u.Store.Put(ctx, key, data)
		if err != nil {
			return fmt.Errorf("upload %s: %w", key, err)
		}
		if sha != "" && info.SHA256 != "" && info.SHA256 != sha {
			return fmt.Errorf("upload %s: the store holds SHA-256 %s, the manifest says %s", key, info.SHA256, sha)
		}
		if err := u.Spool.LogRelease(spool.Release{Time: u.now().UTC(), RunID: r.ID, Period: period, Key: key, Store: u.StoreURL, Size: int64(len(data)), SHA256: info.SHA256}); err != nil {
			return err
		}
		if err := u.Spool.MarkSent(r.ID, name); err != nil {
			return err
		}
		files++
		bytes += int64(len(data))
		if prog != nil {
			prog.Uploaded()
		}
		return nil
	}
	for _, f := range r.Manifest.Files {
		name := path.Base(f.Key)
		data, err := u.Spool.ReadFile(r.ID, name)
		if err != nil {
			return files, bytes, err
		}
		// The spool is on the practice's disk: check it still holds what was signed.
		if err := formats.VerifyFile(f, data); err != nil {
			return files, bytes, fmt.Errorf("spooled file of run %s no longer matches its manifest (disk fault?); delete %s to discard the run: %w", r.ID, name, err)
		}
		if err := send(name, f.Key, r.Manifest.From+".."+r.Manifest.To, data, f.SHA256); err != nil {
			return files, bytes, err
		}
	}
	if err := send(formats.ManifestName, r.Manifest.Key(), "", r.Raw, ""); err != nil {
		return files, bytes, err
	}
	if err := u.Spool.Complete(r.ID); err != nil {
		return files, bytes, err
	}
	if u.Log != nil {
		u.Log.Info("run uploaded", "run", r.ID, "files", len(r.Manifest.Files), "store", u.StoreURL)
	}
	return files, bytes, nil
}
