package sdk

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow/go/v17/arrow"
	"google.golang.org/grpc/status"

	"github.com/tributary-health/tributary/formats"
)

// typed is an extractor with one key of every type. It records the configuration its own
// code saw, and narrows its supplies to what hospital, a bool, says.
type typed struct {
	seen     *map[string]string
	keys     []ConfigKey
	supplies func(map[string]string) (Supplies, error)
}

var typedKeys = []ConfigKey{
	{Name: "dir", Type: TypePath, Required: true, Help: "folder of the export"},
	{Name: "rows", Type: TypeInt, Default: "10", Help: "rows per patient"},
	{Name: "share", Type: TypeNumber, Default: "0.5", Help: "a share"},
	{Name: "hospital", Type: TypeBool, Default: "true", Help: "whether the export has hospital data"},
	{Name: "registered_from", Default: "birth", Allowed: []string{"birth", "first_encounter"}, Help: "when registration starts"},
	{Name: "salt", Help: "a secret"},
}

func (x typed) Describe() Description {
	keys := x.keys
	if keys == nil {
		keys = typedKeys
	}
	return Description{Name: "typed", Version: "0.1.0", RowKinds: []string{formats.RowRegistrations, formats.RowEvents},
		EventKinds: []string{formats.KindConsultation, formats.KindAdmission}, Methods: true, Config: keys}
}

func (x typed) ValidateConfig(config map[string]string) error {
	if x.seen != nil {
		*x.seen = config
	}
	return nil
}

func (x typed) Supplies(config map[string]string) (Supplies, error) {
	if x.supplies != nil {
		return x.supplies(config)
	}
	if config["hospital"] == "false" {
		return Supplies{RowKinds: []string{formats.RowRegistrations, formats.RowEvents}, EventKinds: []string{formats.KindConsultation}, Methods: true}, nil
	}
	return x.Describe().Supplies(), nil
}

func (typed) Extract(context.Context, Request, *Writer) error { return nil }

var (
	_ ConfigValidator = typed{}
	_ Supplier        = typed{}
)

func TestConfigSchemaFillsDefaultsAndTidiesValues(t *testing.T) {
	var seen map[string]string
	if _, err := ValidateConfig(typed{seen: &seen}, map[string]string{"dir": " /srv/export ", "hospital": "TRUE", "rows": " 7", "salt": " s "}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"dir": "/srv/export", "rows": "7", "share": "0.5", "hospital": "true", "registered_from": "birth", "salt": " s "}
	if !reflect.DeepEqual(seen, want) {
		t.Fatalf("ValidateConfig saw %v, want %v (defaults filled, typed values tidied, strings kept, generic keys removed)", seen, want)
	}

	// Extract sees the same configuration.
	var got map[string]string
	ex := recordConfig{typed: typed{}, got: &got}
	if _, err := Run(context.Background(), ex, Request{From: 1, To: 1, Config: map[string]string{"dir": "/x"}}, func(string, arrow.Record) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got["rows"] != "10" || got["hospital"] != "true" || got[ConfigMaxSkippedFraction] != "" {
		t.Fatalf("Extract saw %v", got)
	}
}

type recordConfig struct {
	typed
	got *map[string]string
}

func (r recordConfig) Extract(_ context.Context, req Request, _ *Writer) error {
	*r.got = req.Config
	return nil
}

func TestConfigSchemaRefuses(t *testing.T) {
	tests := []struct {
		name   string
		config map[string]string
		saying []string
		not    []string
	}{
		{"unknown key", map[string]string{"dir": "/x", "colour": "blue"},
			[]string{"unknown key colour", "known keys are dir, hospital, max_skipped_fraction, registered_from, rows, salt, share"}, []string{"did you mean"}},
		{"misspelt optional key", map[string]string{"dir": "/x", "rwos": "3"},
			[]string{"unknown key rwos (did you mean rows?)", "known keys are"}, nil},
		// The misspelt required key is one problem, said once: not "required key dir is not
		// set" as a second, separate sentence that sends the reader looking for a missing line.
		{"misspelt required key", map[string]string{"dri": "/x"},
			[]string{"unknown key dri (is it dir, misspelt? the required key dir is not set: folder of the export)", "known keys are"},
			[]string{"; the required key dir is not set"}},
		{"missing required key", map[string]string{}, []string{"the required key dir is not set (folder of the export)"}, []string{"unknown", "known keys"}},
		{"blank required key", map[string]string{"dir": "  "}, []string{"the required key dir is empty"}, nil},
		{"int", map[string]string{"dir": "/x", "rows": "many"}, []string{`rows must be a whole number, such as 10 (it is "many")`}, nil},
		{"number", map[string]string{"dir": "/x", "share": "half"}, []string{"share must be a number"}, nil},
		{"bool", map[string]string{"dir": "/x", "hospital": "yes please"}, []string{"hospital must be true or false"}, nil},
		{"allowed", map[string]string{"dir": "/x", "registered_from": "registration"}, []string{`registered_from must be one of birth, first_encounter (it is "registration")`}, nil},
		{"generic key", map[string]string{"dir": "/x", ConfigMaxSkippedFraction: "lots"}, []string{"max_skipped_fraction must be a number"}, nil},
		{"generic range", map[string]string{"dir": "/x", ConfigMaxSkippedFraction: "2"}, []string{"from 0 to 1"}, nil},
		{"every problem at once", map[string]string{"rows": "x", "share": "y"}, []string{"required key dir is not set", "rows must be", "share must be"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ValidateConfig(typed{}, tt.config)
			if !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want a configuration error", err)
			}
			t.Log(err)
			for _, s := range tt.saying {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			for _, s := range tt.not {
				if strings.Contains(err.Error(), s) {
					t.Errorf("error %q says %q", err, s)
				}
			}
		})
	}
}

func TestCheckSchema(t *testing.T) {
	tests := []struct {
		name   string
		key    ConfigKey
		saying string
	}{
		{"bad name", ConfigKey{Name: "Dir"}, "lower-case"},
		{"unknown type", ConfigKey{Name: "n", Type: "integer"}, `type "integer"`},
		{"required with default", ConfigKey{Name: "n", Required: true, Default: "1"}, "one or the other"},
		{"default of the wrong type", ConfigKey{Name: "n", Type: TypeInt, Default: "ten"}, `default "ten"`},
		{"default not allowed", ConfigKey{Name: "n", Default: "c", Allowed: []string{"a", "b"}}, `default "c"`},
		{"allowed value of the wrong type", ConfigKey{Name: "n", Type: TypeBool, Allowed: []string{"maybe"}}, `allows "maybe"`},
		{"generic key again", ConfigKey{Name: ConfigMaxSkippedFraction, Type: TypeNumber}, "listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := typed{keys: []ConfigKey{tt.key}}
			_, err := ValidateConfig(ex, nil)
			if !errors.Is(err, ErrDescribe) || !strings.Contains(err.Error(), tt.saying) {
				t.Fatalf("err = %v, want ErrDescribe saying %q", err, tt.saying)
			}
			if st := toStatus(err); KindOf(status.Code(st)) != ErrDescribe {
				t.Errorf("ErrDescribe does not survive the trip to the agent: %v", st)
			}
		})
	}
	if err := CheckSchema(append(append([]ConfigKey(nil), typedKeys...), GenericConfig...)); err != nil {
		t.Fatalf("a good schema refused: %v", err)
	}
}

func TestSuppliesDependOnConfig(t *testing.T) {
	all, err := ValidateConfig(typed{}, map[string]string{"dir": "/x"})
	if err != nil || !reflect.DeepEqual(all.EventKinds, []string{formats.KindConsultation, formats.KindAdmission}) || !all.Methods {
		t.Fatalf("with hospital data: %+v, %v", all, err)
	}
	gp, err := ValidateConfig(typed{}, map[string]string{"dir": "/x", "hospital": "false"})
	if err != nil || !reflect.DeepEqual(gp.EventKinds, []string{formats.KindConsultation}) {
		t.Fatalf("without hospital data: %+v, %v", gp, err)
	}
	if gp.Methods {
		t.Error("admission methods supplied without admissions")
	}

	// Claiming more than Describe is the extractor's bug.
	wider := typed{supplies: func(map[string]string) (Supplies, error) {
		return Supplies{RowKinds: []string{formats.RowEvents}, EventKinds: []string{formats.KindAE}}, nil
	}}
	if _, err := ValidateConfig(wider, map[string]string{"dir": "/x"}); !errors.Is(err, ErrDescribe) || !strings.Contains(err.Error(), "event kind ae_attendance") {
		t.Fatalf("a wider claim: err = %v", err)
	}
	// An error from Supplies is about the configuration.
	failing := typed{supplies: func(map[string]string) (Supplies, error) { return Supplies{}, errors.New("cannot list the export") }}
	if _, err := ValidateConfig(failing, map[string]string{"dir": "/x"}); !errors.Is(err, ErrConfig) {
		t.Fatalf("a failing Supplies: err = %v", err)
	}
	// Without the events row kind no event kind can arrive.
	if s := (Supplies{RowKinds: []string{formats.RowRegistrations}, EventKinds: []string{formats.KindAE}, Methods: true}).Clean(); len(s.EventKinds) != 0 || s.Methods {
		t.Fatalf("Clean = %+v", s)
	}
}

func TestPathKeys(t *testing.T) {
	d := Description{Config: []ConfigKey{
		{Name: "export", Type: TypePath},
		{Name: "dir", Type: TypeString}, // typed: the type decides, not the name
		{Name: "log_file"},              // untyped (an older plugin): the name decides
		{Name: "folder"},
		{Name: "profile"},
	}}
	if got := d.PathKeys(); !reflect.DeepEqual(got, []string{"export", "log_file", "folder"}) {
		t.Fatalf("PathKeys = %v", got)
	}
}
