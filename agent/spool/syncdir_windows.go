package spool

// syncDir is a no-op on Windows: NTFS renames are journaled and directories cannot be
// opened for fsync there.
func syncDir(string) error { return nil }
