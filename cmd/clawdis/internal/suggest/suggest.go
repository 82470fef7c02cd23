// Package suggest picks the known word a mistyped one was probably meant to be, for the
// "did you mean …?" hints of the CLI (commands, flags, services, methods) and of the config
// loader (unknown keys).
package suggest

import "strings"

// Closest returns the candidate nearest to word, or "" when none is close enough: a
// candidate that differs only in case, one within an edit distance of 2 (1 for words of up
// to 4 letters; a swap of two neighbouring letters counts as one edit), or one that starts
// with word when word has at least 3 letters. Ties go to the earlier candidate.
func Closest(word string, candidates []string) string {
	if word == "" {
		return ""
	}
	lw := strings.ToLower(word)
	limit := 2
	if len([]rune(word)) <= 4 {
		limit = 1
	}
	best, bestDist := "", limit+1
	for _, c := range candidates {
		if c == word {
			return c
		}
		lc := strings.ToLower(c)
		if lc == lw {
			return c
		}
		if d := distance(lw, lc); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best != "" {
		return best
	}
	if len([]rune(word)) >= 3 {
		for _, c := range candidates {
			if strings.HasPrefix(strings.ToLower(c), lw) {
				return c
			}
		}
	}
	return ""
}

// distance is the optimal string alignment distance between a and b: insertions,
// deletions, substitutions and transpositions of adjacent runes each cost 1.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	// d[i][j] is the distance between ra[:i] and rb[:j]; three rows are enough.
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
