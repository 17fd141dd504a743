package sdk

// MaxChunkBytes is the largest Arrow payload the SDK puts in one gRPC message. gRPC refuses
// messages over 4 MiB by default; staying at a quarter of that leaves room for framing and
// keeps the agent's memory per message small whatever the data.
const MaxChunkBytes = 1 << 20
