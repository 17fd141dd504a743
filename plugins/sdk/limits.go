package sdk

import pluginv1 "github.com/tributary-health/tributary/plugins/proto/tributary/plugin/v1"

// MaxChunkBytes is the largest Arrow payload the SDK puts in one protocol message (1 MiB).
const MaxChunkBytes = pluginv1.MaxChunkBytes
