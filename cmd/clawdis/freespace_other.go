//go:build !linux && !darwin

package main

// freeBytes is unknown on this platform.
func freeBytes(string) (uint64, bool) { return 0, false }
