//go:build !race

package reports

// raceEnabled reports whether the race detector, which slows everything, is on.
func raceEnabled() bool { return false }
