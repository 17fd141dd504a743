package server

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/apache/arrow/go/v17/arrow"
	"github.com/apache/arrow/go/v17/arrow/array"
	"github.com/apache/arrow/go/v17/arrow/ipc"
	"github.com/apache/arrow/go/v17/arrow/memory"
)

// Output formats of table endpoints (?format=).
const (
	FormatJSON  = "json"
	FormatCSV   = "csv"
	FormatArrow = "arrow"
)

// Content types.
const (
	contentJSON  = "application/json"
	contentCSV   = "text/csv; charset=utf-8"
	contentArrow = "application/vnd.apache.arrow.stream"
)

// column is one exported field of a row struct, named by its json tag.
type column struct {
	name  string
	index int
	kind  reflect.Kind // of the field, or of what it points to
	ptr   bool
}

func columnsOf(t reflect.Type) []column {
	var cols []column
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		c := column{name: name, index: i, kind: f.Type.Kind()}
		if c.kind == reflect.Pointer {
			c.ptr, c.kind = true, f.Type.Elem().Kind()
		}
		cols = append(cols, c)
	}
	return cols
}

// writeTable writes rows (a slice of structs) as JSON (wrapped in envelope under "rows"),
// CSV with a header line, or an Arrow IPC stream with one column per field.
func writeTable[T any](w http.ResponseWriter, format string, envelope map[string]any, rows []T) {
	switch format {
	case "", FormatJSON:
		if envelope == nil {
			envelope = map[string]any{}
		}
		envelope["rows"] = rows
		writeJSON(w, http.StatusOK, envelope)
	case FormatCSV:
		var buf bytes.Buffer
		if err := encodeCSV(&buf, rows); err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", contentCSV)
		w.Write(buf.Bytes())
	case FormatArrow:
		var buf bytes.Buffer
		if err := encodeArrow(&buf, rows); err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		w.Header().Set("Content-Type", contentArrow)
		w.Write(buf.Bytes())
	default:
		writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown format %q; choose json, csv or arrow", format))
	}
}

func encodeCSV[T any](buf *bytes.Buffer, rows []T) error {
	cols := columnsOf(reflect.TypeFor[T]())
	cw := csv.NewWriter(buf)
	head := make([]string, len(cols))
	for i, c := range cols {
		head[i] = c.name
	}
	cw.Write(head)
	rec := make([]string, len(cols))
	for _, r := range rows {
		v := reflect.ValueOf(r)
		for i, c := range cols {
			f := v.Field(c.index)
			if c.ptr {
				if f.IsNil() {
					rec[i] = ""
					continue
				}
				f = f.Elem()
			}
			switch c.kind {
			case reflect.String:
				rec[i] = f.String()
			case reflect.Int, reflect.Int64, reflect.Int32:
				rec[i] = strconv.FormatInt(f.Int(), 10)
			case reflect.Float64:
				rec[i] = strconv.FormatFloat(f.Float(), 'g', 10, 64)
			case reflect.Bool:
				rec[i] = strconv.FormatBool(f.Bool())
			default:
				return fmt.Errorf("column %s has unsupported type %s", c.name, c.kind)
			}
		}
		cw.Write(rec)
	}
	cw.Flush()
	return cw.Error()
}

func encodeArrow[T any](buf *bytes.Buffer, rows []T) error {
	cols := columnsOf(reflect.TypeFor[T]())
	fields := make([]arrow.Field, len(cols))
	for i, c := range cols {
		var dt arrow.DataType
		switch c.kind {
		case reflect.String:
			dt = arrow.BinaryTypes.String
		case reflect.Int, reflect.Int64, reflect.Int32:
			dt = arrow.PrimitiveTypes.Int64
		case reflect.Float64:
			dt = arrow.PrimitiveTypes.Float64
		case reflect.Bool:
			dt = arrow.FixedWidthTypes.Boolean
		default:
			return fmt.Errorf("column %s has unsupported type %s", c.name, c.kind)
		}
		fields[i] = arrow.Field{Name: c.name, Type: dt, Nullable: c.ptr}
	}
	schema := arrow.NewSchema(fields, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for _, r := range rows {
		v := reflect.ValueOf(r)
		for i, c := range cols {
			f := v.Field(c.index)
			fb := b.Field(i)
			if c.ptr {
				if f.IsNil() {
					fb.AppendNull()
					continue
				}
				f = f.Elem()
			}
			switch x := fb.(type) {
			case *array.StringBuilder:
				x.Append(f.String())
			case *array.Int64Builder:
				x.Append(f.Int())
			case *array.Float64Builder:
				x.Append(f.Float())
			case *array.BooleanBuilder:
				x.Append(f.Bool())
			}
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	w := ipc.NewWriter(buf, ipc.WithSchema(schema))
	if err := w.Write(rec); err != nil {
		return err
	}
	return w.Close()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	// Not HTML-escaped: the answers are JSON for programs (served as application/json with
	// nosniff), and an error saying "use '&'" should say '&'.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	data := []byte(`{"error":"the answer could not be encoded"}` + "\n")
	if err := enc.Encode(v); err == nil {
		data = buf.Bytes()
	} else {
		code = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", contentJSON)
	w.WriteHeader(code)
	w.Write(data)
}

// writeError answers with {"error": msg}: what went wrong and what to do.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
