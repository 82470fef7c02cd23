// Package schemas defines the wire protocol: the Go types of every frame and payload, and
// the JSON Schema files (draft 2020-12) that every inbound frame is validated against.
package schemas
