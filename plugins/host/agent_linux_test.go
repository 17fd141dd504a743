package host_test

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tributary-health/tributary/plugins/internal/testplugins"
)

// TestPluginDiesWithAgent kills a stand-in agent with SIGKILL, which runs none of its
// cleanup, and checks the kernel killed its plugin too (Pdeathsig).
func TestPluginDiesWithAgent(t *testing.T) {
	assertNoneLeft(t, "hangs")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), agentEnv+"=1", "TEST_AGENT_PLUGIN="+bins["hangs"])
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("stand-in agent said %q", line)
	}
	if pids := testplugins.Running(bins["hangs"]); len(pids) != 1 {
		t.Fatalf("plugin processes before the agent dies: %v", pids)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	if pids := testplugins.WaitGone(bins["hangs"], 5*time.Second); len(pids) > 0 {
		t.Fatalf("plugin outlived its agent: pids %v", pids)
	}
}
