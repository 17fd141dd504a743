package query

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Output formats.
const (
	FormatTable = "table"
	FormatCSV   = "csv"
	FormatJSON  = "json"
)

// Formats lists the valid output formats.
var Formats = []string{FormatTable, FormatCSV, FormatJSON}

// Columns returns the column names of the result, in order.
func (r *Result) Columns() []string {
	cols := []string{"month", "measure"}
	cols = append(cols, r.By...)
	return append(cols, "count", "lower", "upper", "estimate", "status", "list_size", "rate_per_1000", "rate_lower", "rate_upper", "practices")
}

// fields renders a row's values as text in Columns order; empty is null.
func (r *Result) fields(row *Row) []string {
	out := []string{row.Month, row.Measure}
	for _, b := range r.By {
		switch b {
		case ByAgeBand:
			out = append(out, row.AgeBand)
		case BySex:
			out = append(out, row.Sex)
		case ByPractice:
			out = append(out, row.Practice)
		}
	}
	num := func(p *int64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatInt(*p, 10)
	}
	estimate := func(p *float64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatFloat(*p, 'f', 1, 64)
	}
	rate := func(p *float64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatFloat(*p, 'f', 3, 64)
	}
	return append(out, num(row.Count), strconv.FormatInt(row.Lower, 10), strconv.FormatInt(row.Upper, 10),
		estimate(row.Estimate), row.Status, strconv.FormatInt(row.ListSize, 10), rate(row.Rate), rate(row.RateLower), rate(row.RateUpper),
		strconv.FormatInt(row.Practices, 10))
}

// Write prints the result as a table for people, CSV with a header line, or JSON.
func (r *Result) Write(w io.Writer, format string) error {
	switch format {
	case FormatCSV:
		cw := csv.NewWriter(w)
		if err := cw.Write(r.Columns()); err != nil {
			return err
		}
		for i := range r.Rows {
			if err := cw.Write(r.fields(&r.Rows[i])); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	case FormatJSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	case FormatTable, "":
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, strings.Join(r.Columns(), "\t")+"\t")
		for i := range r.Rows {
			f := r.fields(&r.Rows[i])
			for j := range f {
				if f[j] == "" {
					f[j] = "-"
				}
			}
			fmt.Fprintln(tw, strings.Join(f, "\t")+"\t")
		}
		return tw.Flush()
	}
	return fmt.Errorf("unknown output format %q; choose one of: %s", format, strings.Join(Formats, ", "))
}
