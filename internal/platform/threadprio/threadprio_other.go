//go:build !linux

package threadprio

// Background does nothing on this system.
func Background() error { return nil }

// Foreground does nothing on this system.
func Foreground() (back func(), err error) { return func() {}, nil }

// Do runs f.
func Do(f func() error) error { return f() }

// Reset does nothing on this system.
func Reset() error { return nil }

// Threads lists nothing on this system.
func Threads() (front, back []int, err error) { return nil, nil, nil }
