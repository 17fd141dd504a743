package main

import (
	"flag"
	"testing"

	"github.com/tributary-health/tributary/plugins/sdk/sdktest"
)

var update = flag.Bool("update", false, "rewrite testcases/*/expected.txt from the extractor's output")

// TestGolden runs every testcases/<case> folder: its NDJSON and Bundle files are the export,
// request.conf holds from, to and configuration keys (key = value; dir is the folder itself),
// and expected.txt is the summary of what the extractor must send, skip and log
// (sdktest.Golden).
func TestGolden(t *testing.T) { sdktest.Golden(t, Extractor{}, "testcases", *update) }
