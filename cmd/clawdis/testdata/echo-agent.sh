#!/bin/sh
# A scripted agent backend for the end-to-end tests: it streams "echo: <prompt>" in two
# chunks and counts its runs in $CLAWDIS_TEST_RUNS (one line per run) when that is set.
[ -n "$CLAWDIS_TEST_RUNS" ] && echo run >> "$CLAWDIS_TEST_RUNS"
printf 'echo: '
printf '%s\n' "$1"
