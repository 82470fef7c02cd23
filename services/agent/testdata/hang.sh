#!/bin/sh
# hang.sh PIDFILE: a fake agent that never ends. It starts a child that never ends either,
# writes "<own pid> <child pid>" to PIDFILE, prints "started" and waits.
sleep 600 &
echo "$$ $!" > "$1.tmp" && mv "$1.tmp" "$1"
echo started
wait
