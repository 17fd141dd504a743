package objstore_test

import (
	"testing"

	"github.com/tributary-health/tributary/internal/objstore"
	"github.com/tributary-health/tributary/internal/objstore/objstoretest"
)

func TestDirConformance(t *testing.T) {
	objstoretest.Run(t, func(t *testing.T) objstore.Store {
		d, err := objstore.NewDir(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return d
	})
}
