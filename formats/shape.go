package formats

import "slices"

// All is the age band or sex label of a margin: the value over every band, or every sex.
const All = "all"

// Dimensions of one measure in one period. A practice publishes, for every measure and
// period, the fine cells (age band × sex) and three margins of them: by age band, by sex, and
// the total. Each is its own value through the disclosure policy; together they are the
// measure's NumShapes "shapes".
const (
	NumBands  = 19
	NumSexes  = 3
	NumFine   = NumBands * NumSexes               // age band × sex cells
	NumShapes = NumFine + NumBands + NumSexes + 1 // fine cells, band margins, sex margins, total
	// TotalShape is the shape index of the total.
	TotalShape = NumShapes - 1
)

func init() {
	if len(AgeBands) != NumBands || len(Sexes) != NumSexes {
		panic("formats: NumBands or NumSexes disagree with AgeBands or Sexes")
	}
}

// Shape indexes, in canonical order: the fine cells band by band (FineShape), then the band
// margins (BandShape), then the sex margins (SexShape), then the total.

// FineShape is the shape index of the cell of age band b and sex x (indexes into AgeBands and
// Sexes).
func FineShape(b, x int) int { return b*NumSexes + x }

// BandShape is the shape index of the margin of age band b over every sex.
func BandShape(b int) int { return NumFine + b }

// SexShape is the shape index of the margin of sex x over every age band.
func SexShape(x int) int { return NumFine + NumBands + x }

// ShapeDims returns the age band and sex indexes of shape i; -1 stands for All.
func ShapeDims(i int) (b, x int) {
	switch {
	case i < NumFine:
		return i / NumSexes, i % NumSexes
	case i < NumFine+NumBands:
		return i - NumFine, -1
	case i < NumFine+NumBands+NumSexes:
		return -1, i - NumFine - NumBands
	}
	return -1, -1
}

// ShapeLabels returns the age_band and sex labels of shape i, with All for a margin.
func ShapeLabels(i int) (band, sex string) {
	b, x := ShapeDims(i)
	band, sex = All, All
	if b >= 0 {
		band = AgeBands[b]
	}
	if x >= 0 {
		sex = Sexes[x]
	}
	return band, sex
}

// ShapeIndex returns the shape index of the labels, or -1 if they name none.
func ShapeIndex(band, sex string) int {
	b, x := -1, -1
	if band != All {
		if b = AgeBandIndex(band); b < 0 {
			return -1
		}
	}
	if sex != All {
		if x = slices.Index(Sexes, sex); x < 0 {
			return -1
		}
	}
	switch {
	case b >= 0 && x >= 0:
		return FineShape(b, x)
	case b >= 0:
		return BandShape(b)
	case x >= 0:
		return SexShape(x)
	}
	return TotalShape
}

// IsFineShape reports whether shape i is a single age band × sex cell.
func IsFineShape(i int) bool { return i >= 0 && i < NumFine }

// ShapeCells calls fn with the fine cell index of every cell that shape i sums.
func ShapeCells(i int, fn func(fine int)) {
	b, x := ShapeDims(i)
	for bb := range NumBands {
		if b >= 0 && bb != b {
			continue
		}
		for xx := range NumSexes {
			if x >= 0 && xx != x {
				continue
			}
			fn(FineShape(bb, xx))
		}
	}
}
