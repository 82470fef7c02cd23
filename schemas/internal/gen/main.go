// Command gen writes protocol.schema.json, the single-document bundle of the protocol's JSON
// Schemas. It runs from `go generate ./schemas` (in the schemas directory).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/clawdis/clawdis/schemas"
)

func main() {
	out := flag.String("o", schemas.BundleFile, "output file")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	b, err := schemas.Bundle()
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return fmt.Errorf("write bundle: %w", err)
	}
	return nil
}
