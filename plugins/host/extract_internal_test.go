package host

import (
	"fmt"
	"strings"
	"testing"
)

func TestBoundReasons(t *testing.T) {
	in := map[string]int64{strings.Repeat("x", 500): 2}
	for i := 0; i < 200; i++ {
		in[fmt.Sprintf("reason %d", i)] = 1
	}
	out := boundReasons(in)
	var total int64
	for r, n := range out {
		if len(r) > 64 {
			t.Errorf("reason of %d bytes kept", len(r))
		}
		total += n
	}
	if len(out) > 65 || total != 202 {
		t.Fatalf("%d reasons, %d rows; want at most 65 reasons and all 202 rows", len(out), total)
	}
}
