package combine

import (
	"context"
	"fmt"

	"github.com/tributary-health/tributary/coordinator/figures"
)

// DatasetDir is the folder, under a combined output's prefix, of the federation's monthly
// figures as a Hive-partitioned Parquet dataset that DuckDB, Spark, Trino or pandas read
// with no Tributary code: one file per month, DatasetFile(month).
const DatasetDir = "dataset/"

// DatasetFile is the name, under a combined output's prefix, of month's file in the dataset.
// Its objects are listed in the pointer by that name, like the other outputs.
func DatasetFile(month string) string { return DatasetDir + "month=" + month + "/part-0.parquet" }

// datasetOutputs writes the month rows of figs (those of federation.parquet whose period is
// one month) into one Parquet file per month, with federation.parquet's schema and metadata;
// each file is read back and checked as federation.parquet is. Quarters and years stay in
// federation.parquet alone: a quarter's figure is answered from the practices' quarter
// values, which are not the sum of its months' figures.
func datasetOutputs(ctx context.Context, figs []figures.Figure, md map[string]string) ([]struct {
	name string
	data []byte
}, error) {
	var out []struct {
		name string
		data []byte
	}
	var w *tableWriter
	month := ""
	flush := func() error {
		if w == nil {
			return nil
		}
		_, pq, err := w.finish(ctx)
		if err != nil {
			return fmt.Errorf("dataset month %s: %w", month, err)
		}
		out = append(out, struct {
			name string
			data []byte
		}{DatasetFile(month), pq})
		w = nil
		return nil
	}
	for i := range figs {
		f := &figs[i]
		if f.From != f.To || f.Period != f.From {
			continue // a quarter or a year
		}
		if f.Period != month {
			if err := flush(); err != nil {
				return nil, err
			}
			// Rows come period by period (FederationFigures), so a month seen before would
			// be a second file for it.
			for _, o := range out {
				if o.name == DatasetFile(f.Period) {
					return nil, fmt.Errorf("dataset: the figures of month %s are not together", f.Period)
				}
			}
			var err error
			if w, err = newTableWriter(KindFederation, md, parquetOnly); err != nil {
				return nil, err
			}
			month = f.Period
		}
		if err := w.appendFederation(f); err != nil {
			return nil, err
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}
