package main

import (
	"testing"

	"github.com/tributary-health/tributary/formats"
)

func month(t testing.TB, s string) formats.Month {
	t.Helper()
	m, err := formats.ParseMonth(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
