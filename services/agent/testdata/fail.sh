#!/bin/sh
# fail.sh: a fake agent that prints a little, complains on stderr and exits 3.
echo "partial output"
echo "loading model" >&2
echo "warning: slow disk" >&2
echo "boom: model unavailable" >&2
exit 3
