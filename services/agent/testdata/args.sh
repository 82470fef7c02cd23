#!/bin/sh
# args.sh ARG...: a fake agent that prints each argument on its own line.
printf '%s\n' "$@"
