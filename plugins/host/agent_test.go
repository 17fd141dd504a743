package host_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/tributary-health/tributary/plugins/host"
)

// agentEnv makes the test binary act as a stand-in agent: launch the plugin named by
// TEST_AGENT_PLUGIN, say "ready" on stdout, and wait to be killed.
const agentEnv = "TEST_AGENT_ROLE"

func runAgent() {
	path := os.Getenv("TEST_AGENT_PLUGIN")
	sum, err := host.FileSHA256(path)
	if err == nil {
		_, err = host.Launch(context.Background(), host.Options{Path: path, SHA256: sum})
	}
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("ready")
	time.Sleep(time.Minute)
	os.Exit(3)
}
