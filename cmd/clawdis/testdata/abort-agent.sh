#!/bin/sh
# abort-agent.sh PIDFILE BODY: a scripted agent for the abort tests. It appends one line per
# run to PIDFILE.runs. For a BODY containing "slow" it starts a child that never ends, writes
# "<own pid> <child pid>" to PIDFILE, prints "partial reply" and waits forever; for any
# BODY containing "fail" it prints "half an answer", gives the gateway time to stream it,
# then fails with "backend exploded" on stderr; for any other BODY it prints "echo: BODY".
echo run >> "$1.runs"
case "$2" in
*fail*)
	echo "half an answer"
	sleep 0.5
	echo "backend exploded" >&2
	exit 3
	;;
*slow*)
	sleep 600 &
	echo "$$ $!" > "$1.tmp" && mv "$1.tmp" "$1"
	echo "partial reply"
	wait
	;;
*) printf 'echo: %s\n' "$2" ;;
esac
