package service

import (
	"bytes"
	_ "embed"
	"fmt"
	"path/filepath"
	"strings"
	"text/template"
)

// Installation: why our own code over github.com/kardianos/service.
//
// kardianos/service wraps systemd, SysV, launchd and the Windows Service Control Manager
// behind one interface, but its systemd unit comes from a template inside the library, so
// the unit a practice gets is neither the file we ship in deploy/ nor one we can verify, and
// its Windows side sets no recovery actions. Like Telegraf and Grafana Alloy we use
// golang.org/x/sys/windows/svc (already a dependency) for the Windows Service Control
// Manager, with restart-on-failure recovery actions, and write the systemd unit ourselves
// from unit.tmpl, which TestDeployUnitIsRendered keeps identical to deploy/tributary-agent.service
// and which systemd-analyze verify checks in CI. Two small platform files, no global state.

// DefaultName is the service's name: the systemd unit tributary-agent.service, the Windows
// service "tributary-agent".
const DefaultName = "tributary-agent"

// Options says what to install.
type Options struct {
	Name    string // service name; DefaultName when empty
	Binary  string // absolute path of tributary-agent
	Config  string // absolute path of the configuration file
	User    string // systemd: the account the service runs as; root when empty
	UnitDir string // systemd: where the unit goes; /etc/systemd/system when empty
	LogFile string // Windows: where the service logs (a service has no console)
}

func (o *Options) defaults() error {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.Binary == "" || o.Config == "" {
		return fmt.Errorf("service: the binary and the configuration file must be named")
	}
	var err error
	if o.Binary, err = filepath.Abs(o.Binary); err != nil {
		return err
	}
	if o.Config, err = filepath.Abs(o.Config); err != nil {
		return err
	}
	return nil
}

//go:embed unit.tmpl
var unitTemplate string

var unitTmpl = template.Must(template.New("unit").Funcs(template.FuncMap{"quote": systemdQuote}).Parse(unitTemplate))

// Unit renders the systemd unit for o.
func Unit(o Options) ([]byte, error) {
	if err := o.defaults(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := unitTmpl.Execute(&b, o); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// systemdQuote quotes a path for ExecStart when it needs it.
func systemdQuote(s string) string {
	if !strings.ContainsAny(s, " \t\"'\\") {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}
