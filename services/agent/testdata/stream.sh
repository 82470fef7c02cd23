#!/bin/sh
# stream.sh GATE: a fake agent that prints "hello ", waits until the file GATE exists,
# then prints "world".
printf 'hello '
while [ ! -e "$1" ]; do sleep 0.02; done
printf 'world\n'
