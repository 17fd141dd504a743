// Package deploy_test checks the deployment files: the compose file parses and names what
// the container file builds, the container file copies files that exist, the example
// configurations are valid and the trial set-up script is valid shell. No container engine
// runs here, so the images themselves are not built.
package deploy_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/tributary-health/tributary/agent/config"
	"github.com/tributary-health/tributary/internal/testenv"
)

type compose struct {
	Services map[string]struct {
		Image     string            `yaml:"image"`
		Build     map[string]string `yaml:"build"`
		Command   []string          `yaml:"command"`
		DependsOn map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		Volumes []string `yaml:"volumes"`
	} `yaml:"services"`
	Volumes map[string]any `yaml:"volumes"`
}

func TestCompose(t *testing.T) {
	root := testenv.RepoRoot(t)
	b, err := os.ReadFile(filepath.Join(root, "deploy", "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatalf("compose.yaml does not parse: %v", err)
	}
	for _, want := range []string{"minio", "bucket", "setup", "coordinator", "agent-a81001", "agent-a81002"} {
		if _, ok := c.Services[want]; !ok {
			t.Errorf("compose.yaml has no service %s", want)
		}
	}
	built := map[string]bool{"tributary-agent": true, "tributary-coordinator": true, "tributary-trial-setup": true}
	for name, s := range c.Services {
		for dep := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("service %s depends on %s, which does not exist", name, dep)
			}
		}
		if s.Image == "" {
			t.Errorf("service %s has no image", name)
		}
		if strings.HasPrefix(s.Image, "localhost/tributary") {
			if s.Build["dockerfile"] != "deploy/Containerfile" || len(s.Command) == 0 || !built[s.Command[0]] {
				t.Errorf("service %s: build %v, command %v; want deploy/Containerfile and a program it installs", name, s.Build, s.Command)
			}
			if s.Command[0] == "tributary-agent" {
				i := slices.Index(s.Command, "--config")
				if i < 0 || !strings.HasPrefix(s.Command[i+1], "/var/lib/tributary/") {
					t.Errorf("agent service %s must name a configuration the setup service writes: %v", name, s.Command)
				}
			}
		}
		for _, v := range s.Volumes {
			src := strings.Split(v, ":")[0]
			if strings.HasPrefix(src, "./") {
				continue // trial data the user provides
			}
			if _, ok := c.Volumes[src]; !ok {
				t.Errorf("service %s mounts volume %s, which is not declared", name, src)
			}
		}
	}
}

func TestContainerfileCopiesExistingFiles(t *testing.T) {
	root := testenv.RepoRoot(t)
	f, err := os.Open(filepath.Join(root, "deploy", "Containerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var builds []string
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[0] == "COPY" && !strings.HasPrefix(fields[1], "--from") && fields[1] != "." {
			for _, src := range fields[1 : len(fields)-1] {
				if _, err := os.Stat(filepath.Join(root, src)); err != nil {
					t.Errorf("Containerfile copies %s, which does not exist", src)
				}
			}
		}
		for _, fld := range fields {
			if strings.HasPrefix(fld, "./") && strings.Contains(fld, "/cmd/") || fld == "./plugins/synthea" {
				builds = append(builds, strings.TrimSuffix(fld, ";"))
			}
		}
	}
	for _, want := range []string{"./agent/cmd/tributary-agent", "./coordinator/cmd/tributary-coordinator", "./plugins/synthea"} {
		if !slices.Contains(builds, want) {
			t.Errorf("Containerfile does not build %s", want)
		}
		if _, err := os.Stat(filepath.Join(root, want)); err != nil {
			t.Errorf("Containerfile builds %s, which does not exist", want)
		}
	}
}

func TestExampleConfigs(t *testing.T) {
	root := testenv.RepoRoot(t)
	for _, name := range []string{"agent.toml", "agent-windows.toml"} {
		b, err := os.ReadFile(filepath.Join(root, "deploy", "examples", name))
		if err != nil {
			t.Fatal(err)
		}
		c, err := config.Parse(b)
		if err != nil {
			t.Errorf("deploy/examples/%s: %v", name, err)
			continue
		}
		if c.Listen != config.DefaultListen || c.Months.Recent == 0 {
			t.Errorf("deploy/examples/%s: listen %q, months.recent %d", name, c.Listen, c.Months.Recent)
		}
	}
}

func TestTrialSetupIsValidShell(t *testing.T) {
	script := filepath.Join(testenv.RepoRoot(t), "deploy", "trial-setup.sh")
	if out, err := exec.Command("sh", "-n", script).CombinedOutput(); err != nil {
		t.Fatalf("sh -n %s: %v\n%s", script, err, out)
	}
}
