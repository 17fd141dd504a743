//go:build !linux

package objstore

import "os"

func openRegular(root, rel string) (*os.File, error) { return openRegularWalk(root, rel) }
