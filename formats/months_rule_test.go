package formats

import (
	"testing"
	"time"
)

func TestEventInMonths(t *testing.T) {
	day := func(y int, m time.Month, d int) Date { return DateOf(time.Date(y, m, d, 0, 0, 0, 0, time.UTC)) }
	jan, feb := MonthFor(2024, 1), MonthFor(2024, 2)
	tests := []struct {
		name string
		e    Event
		want bool
	}{
		{"consultation in the months", Event{Kind: KindConsultation, Start: day(2024, 2, 29), End: NoEnd}, true},
		{"consultation before", Event{Kind: KindConsultation, Start: day(2023, 12, 31), End: NoEnd}, false},
		{"stay starting in them", Event{Kind: KindAdmission, Start: day(2024, 2, 20), End: day(2024, 3, 4)}, true},
		{"stay discharged in them: its bed days count there", Event{Kind: KindAdmission, Start: day(2023, 12, 28), End: day(2024, 1, 2)}, true},
		{"stay spanning them", Event{Kind: KindAdmission, Start: day(2023, 12, 1), End: day(2024, 3, 1)}, false},
		{"open stay begun before", Event{Kind: KindAdmission, Start: day(2023, 12, 1), End: NoEnd}, false},
		{"stay discharged after", Event{Kind: KindAdmission, Start: day(2023, 11, 1), End: day(2023, 12, 31)}, false},
		{"an end on another kind does not count", Event{Kind: KindAE, Start: day(2023, 12, 31), End: day(2024, 1, 1)}, false},
	}
	for _, tt := range tests {
		if got := EventInMonths(tt.e, jan, feb); got != tt.want {
			t.Errorf("%s: EventInMonths = %v, want %v", tt.name, got, tt.want)
		}
	}
}
