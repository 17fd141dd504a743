package sdk

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// ConfigType is the type of a configuration key's value. Every value travels as a string;
// the type says which strings are valid, and the SDK refuses the others before the
// extractor's own code runs.
type ConfigType string

const (
	// TypeString is any text (also the type of a key whose Type is empty).
	TypeString ConfigType = "string"
	// TypeInt is a whole number such as 10 or -3.
	TypeInt ConfigType = "int"
	// TypeNumber is a decimal number such as 0.01.
	TypeNumber ConfigType = "number"
	// TypeBool is true or false (also 1/0, t/f, TRUE/FALSE); the extractor sees "true" or
	// "false".
	TypeBool ConfigType = "bool"
	// TypePath is a file or folder on the practice machine. The agent makes a relative path
	// absolute against the folder of its own configuration file before the plugin sees it,
	// so an extractor always gets the path the practice manager meant.
	TypePath ConfigType = "path"
)

var configTypes = []ConfigType{TypeString, TypeInt, TypeNumber, TypeBool, TypePath}

// ConfigKey describes one configuration key. The SDK applies it before the extractor's
// ValidateConfig and Extract run: it refuses unknown keys, fills in Default when the key is
// not set, refuses a Required key that is missing or blank, a value that is not of Type, and
// a value not in Allowed. Describe publishes it, so the agent and the conformance check see
// the same schema.
type ConfigKey struct {
	Name     string     // lower-case letters, digits and _, e.g. "dir"
	Help     string     // one line for the practice manager: what the key means
	Type     ConfigType // TypeString when empty
	Required bool       // the extractor cannot run without it; then Default must be empty
	Default  string     // the value the extractor sees when the key is not set
	Allowed  []string   // when not empty, the only values the key may take
}

// TypeOrString is the key's type, TypeString when it names none.
func (k ConfigKey) TypeOrString() ConfigType {
	if k.Type == "" {
		return TypeString
	}
	return k.Type
}

var keyNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// CheckSchema checks a description's configuration keys (the extractor's own and the SDK's
// GenericConfig together): names valid and distinct, types known, a default that is valid for
// its own key, no default on a required key. The SDK runs it before every configuration check,
// and the conformance check runs it on what Describe published.
func CheckSchema(keys []ConfigKey) error {
	var errs []error
	seen := map[string]bool{}
	for _, k := range keys {
		if !keyNameRE.MatchString(k.Name) {
			errs = append(errs, fmt.Errorf("config key %q: a name is lower-case letters, digits and _, starting with a letter", k.Name))
			continue
		}
		if seen[k.Name] {
			errs = append(errs, fmt.Errorf("config key %s is listed twice (the SDK's generic keys are added for you)", k.Name))
		}
		seen[k.Name] = true
		if !slices.Contains(configTypes, k.TypeOrString()) {
			errs = append(errs, fmt.Errorf("config key %s has type %q; the types are %s", k.Name, k.Type, typeList()))
			continue
		}
		if k.Required && k.Default != "" {
			errs = append(errs, fmt.Errorf("config key %s is required and has a default; it is one or the other", k.Name))
		}
		for _, a := range k.Allowed {
			if _, err := checkValue(ConfigKey{Name: k.Name, Type: k.Type}, a); err != nil {
				errs = append(errs, fmt.Errorf("config key %s allows %q: %v", k.Name, a, err))
			}
		}
		if k.Default != "" {
			if _, err := checkValue(k, k.Default); err != nil {
				errs = append(errs, fmt.Errorf("config key %s: its default %q is not a valid value: %v", k.Name, k.Default, err))
			}
		}
	}
	return errors.Join(errs...)
}

func typeList() string {
	names := make([]string, len(configTypes))
	for i, t := range configTypes {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

// checkValue checks one value against its key and returns it as the extractor sees it: blanks
// around it removed (except for strings, which are taken as they are) and booleans written
// true or false.
func checkValue(k ConfigKey, v string) (string, error) {
	t := k.TypeOrString()
	if t != TypeString {
		v = strings.TrimSpace(v)
	}
	switch t {
	case TypeInt:
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return "", fmt.Errorf("%s must be a whole number, such as 10 (it is %q)", k.Name, v)
		}
	case TypeNumber:
		if f, err := strconv.ParseFloat(v, 64); err != nil || f != f {
			return "", fmt.Errorf("%s must be a number, such as 0.5 (it is %q)", k.Name, v)
		}
	case TypeBool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return "", fmt.Errorf("%s must be true or false (it is %q)", k.Name, v)
		}
		v = strconv.FormatBool(b)
	}
	if len(k.Allowed) > 0 && !slices.Contains(k.Allowed, v) {
		return "", fmt.Errorf("%s must be one of %s (it is %q)", k.Name, strings.Join(k.Allowed, ", "), v)
	}
	return v, nil
}

// ApplySchema checks config against keys and returns a new map: every key of keys that config
// sets, checked and tidied (see ConfigKey), and every other key that has a Default, set to it.
// The error lists every problem in one sentence for the practice manager. A key that config
// sets but keys does not know is refused; when a required key is missing too, and the unknown
// key looks like it, the error says so in one place ("unknown key drr (is it dir, misspelt? the
// required key dir is not set: ...)"), since that is nearly always what happened.
func ApplySchema(keys []ConfigKey, config map[string]string) (map[string]string, error) {
	byName := make(map[string]ConfigKey, len(keys))
	for _, k := range keys {
		byName[k.Name] = k
	}
	var unknown []string
	for name := range config {
		if _, ok := byName[name]; !ok {
			unknown = append(unknown, name)
		}
	}
	sort.Strings(unknown)

	out := make(map[string]string, len(keys))
	var problems []string
	var missing []ConfigKey
	for _, k := range keys {
		v, set := config[k.Name]
		switch {
		case !set && k.Required:
			missing = append(missing, k)
		case !set:
			if k.Default != "" {
				out[k.Name] = k.Default
			}
		case k.Required && strings.TrimSpace(v) == "":
			problems = append(problems, fmt.Sprintf("the required key %s is empty (%s)", k.Name, k.Help))
		default:
			checked, err := checkValue(k, v)
			if err != nil {
				problems = append(problems, err.Error())
				continue
			}
			out[k.Name] = checked
		}
	}

	// Unknown keys first, each matched with the missing required key it most likely is.
	var first []string
	explained := map[string]bool{}
	for _, u := range unknown {
		msg := fmt.Sprintf("unknown key %s", u)
		if r, ok := closest(u, missing, explained); ok {
			explained[r.Name] = true
			msg += fmt.Sprintf(" (is it %s, misspelt? the required key %s is not set: %s)", r.Name, r.Name, r.Help)
		} else if k, ok := closest(u, keys, nil); ok {
			msg += fmt.Sprintf(" (did you mean %s?)", k.Name)
		}
		first = append(first, msg)
	}
	for _, k := range missing {
		if !explained[k.Name] {
			first = append(first, fmt.Sprintf("the required key %s is not set (%s)", k.Name, k.Help))
		}
	}
	problems = append(first, problems...)
	if len(unknown) > 0 {
		names := make([]string, len(keys))
		for i, k := range keys {
			names[i] = k.Name
		}
		sort.Strings(names)
		problems = append(problems, "known keys are "+strings.Join(names, ", "))
	}
	if len(problems) > 0 {
		return nil, errors.New(strings.Join(problems, "; "))
	}
	return out, nil
}

// closest returns the key whose name is nearest to name, if any is near enough to be a
// misspelling of it: at most two edits apart (one for short names), or equal but for case and
// separators. Keys named in skip are passed over.
func closest(name string, keys []ConfigKey, skip map[string]bool) (ConfigKey, bool) {
	best, bestD := ConfigKey{}, -1
	norm := func(s string) string {
		return strings.NewReplacer("_", "", "-", "", " ", "").Replace(strings.ToLower(s))
	}
	for _, k := range keys {
		if skip[k.Name] {
			continue
		}
		d := editDistance(name, k.Name)
		if norm(name) == norm(k.Name) {
			d = 0
		}
		limit := 2
		if len(k.Name) <= 4 {
			limit = 1
		}
		if d <= limit && (bestD < 0 || d < bestD) {
			best, bestD = k, d
		}
	}
	return best, bestD >= 0
}

// editDistance is the Levenshtein distance, with a swap of neighbours counted as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
