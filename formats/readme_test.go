package formats

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEMeasures keeps README.md's catalogue, which the code and the plugin guide cite
// for what each measure counts and in which month, in step with the built-in definitions.
func TestREADMEMeasures(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Measures\n")
	if !ok {
		t.Fatal(`README.md has no "## Measures" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var listed []string
	for _, line := range strings.Split(section, "\n") {
		if strings.HasPrefix(line, "| `") {
			name, _, _ := strings.Cut(strings.TrimPrefix(line, "| `"), "`")
			listed = append(listed, name)
		}
	}
	if want := MeasureNames(BuiltinDefinitions()); strings.Join(listed, " ") != strings.Join(want, " ") {
		t.Errorf("README.md lists %v, the built-in definitions are %v", listed, want)
	}
	if !strings.Contains(section, "EventInMonths") {
		t.Error("README.md's catalogue does not name the month rule, EventInMonths")
	}
}
