package pluginv1

// ProtocolVersion is the go-plugin protocol version this package implements. The agent offers
// it in the handshake and refuses a plugin that speaks only other versions; it changes exactly
// when this package's name does (v1 → v2).
const ProtocolVersion = 1

// Handshake values shared by the SDK and the host. The cookie is not a secret: it only stops
// a plugin binary that is run by hand from waiting for a handshake that will never come.
const (
	MagicCookieKey   = "TRIBUTARY_PLUGIN_COOKIE"
	MagicCookieValue = "extractor-7d3f9c1e"
	PluginName       = "extractor"
)

// MaxChunkBytes is the largest Arrow payload a plugin may put in one Chunk. gRPC refuses
// messages over 4 MiB by default; a quarter of that leaves room for framing and bounds the
// agent's memory per message.
const MaxChunkBytes = 1 << 20
