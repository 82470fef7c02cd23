#!/bin/sh
# gate-agent.sh DIR BODY: a scripted agent for the crash tests. It appends the last word of
# BODY to DIR/runs, waits until the file DIR/gate exists, then replies "reply to <word>".
word=${2##* }
echo "$word" >> "$1/runs"
while [ ! -e "$1/gate" ]; do sleep 0.02; done
printf 'reply to %s\n' "$word"
