#!/bin/sh
# abort-agent.sh PIDFILE BODY: a scripted agent for the abort tests. It appends one line per
# run to PIDFILE.runs. For a BODY containing "slow" it starts a child that never ends, writes
# "<own pid> <child pid>" to PIDFILE, prints "partial reply" and waits forever; for any
# other BODY it prints "echo: BODY".
echo run >> "$1.runs"
case "$2" in
*slow*)
	sleep 600 &
	echo "$$ $!" > "$1.tmp" && mv "$1.tmp" "$1"
	echo "partial reply"
	wait
	;;
*) printf 'echo: %s\n' "$2" ;;
esac
