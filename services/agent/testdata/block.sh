#!/bin/sh
# block.sh DIR NAME: a fake agent that appends NAME to DIR/log, prints "start NAME",
# waits until the file DIR/NAME exists, then prints "end NAME".
echo "$2" >> "$1/log"
printf 'start %s\n' "$2"
while [ ! -e "$1/$2" ]; do sleep 0.02; done
printf 'end %s\n' "$2"
