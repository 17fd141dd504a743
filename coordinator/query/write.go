package query

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/tributary-health/tributary/coordinator/figures"
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
	cols := []string{"period", "measure"}
	cols = append(cols, r.By...)
	return append(cols, "count", "lower", "upper", "status", "method", "published_sum", "list_size",
		"rate_per_1000", "rate_lower", "rate_upper", "dsr_per_1000", "dsr_at_lower", "dsr_at_upper", "practices", "note")
}

// fields renders a row's values as text in Columns order; empty is null.
func (r *Result) fields(row *figures.Figure) []string {
	out := []string{row.Period, row.Measure}
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
	rate := func(p *float64) string {
		if p == nil {
			return ""
		}
		return strconv.FormatFloat(*p, 'f', 3, 64)
	}
	return append(out, num(row.Count), strconv.FormatInt(row.Lower, 10), strconv.FormatInt(row.Upper, 10),
		row.Status, row.Method, strconv.FormatInt(row.PublishedSum, 10), num(row.ListSize),
		rate(row.Rate), rate(row.RateLower), rate(row.RateUpper), rate(row.DSR), rate(row.DSRAtLower), rate(row.DSRAtUpper),
		strconv.FormatInt(row.Practices, 10), row.Note)
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
		cols := r.Columns()
		fmt.Fprintln(tw, strings.Join(cols[:len(cols)-1], "\t")+"\t")
		for i := range r.Rows {
			f := r.fields(&r.Rows[i])
			f = f[:len(f)-1] // notes are for CSV and JSON; a table keeps to the figures
			for j := range f {
				if f[j] == "" {
					f[j] = "-"
				}
			}
			fmt.Fprintln(tw, strings.Join(f, "\t")+"\t")
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		// A table prints each note once, under it.
		var notes []string
		for i := range r.Rows {
			if n := r.Rows[i].Note; n != "" && !slices.Contains(notes, n) {
				notes = append(notes, n)
			}
		}
		for _, n := range notes {
			if _, err := fmt.Fprintf(w, "note: %s\n", n); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("unknown output format %q; choose one of: %s", format, strings.Join(Formats, ", "))
}
