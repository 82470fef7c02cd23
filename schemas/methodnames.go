package schemas

import "slices"

// Methods lists the protocol's methods (those with params and payload schemas), sorted.
func Methods() []string {
	names := make([]string, 0, len(methodTable))
	for name := range methodTable {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}
