#!/bin/sh
# A small workload: processes, pipes, a file system in RAM, timers.
# Every result is checked against what it must be.
ok=1
sum=$(seq 1 20000 | awk '{s += $1} END {print s}')
[ "$sum" = "200010000" ] || { echo "workload: sum $sum"; ok=0; }
mkdir -p /mnt/w && mount -t tmpfs -o size=64m tmpfs /mnt/w
dd if=/dev/urandom of=/mnt/w/a bs=1M count=16 2>/dev/null
cp /mnt/w/a /mnt/w/b
[ "$(md5sum < /mnt/w/a)" = "$(md5sum < /mnt/w/b)" ] || { echo "workload: copies differ"; ok=0; }
t0=$(cat /proc/uptime | cut -d' ' -f1)
sleep 1
t1=$(cat /proc/uptime | cut -d' ' -f1)
# The guest's timer: a second of sleep is about a second of its time.
awk -v a="$t0" -v b="$t1" 'BEGIN { d = b - a; exit !(d >= 0.9 && d < 3) }' || { echo "workload: slept $t0 -> $t1"; ok=0; }
i=0; while [ $i -lt 200 ]; do /bin/true; i=$((i + 1)); done
umount /mnt/w
[ $ok = 1 ] && echo "linux-test workload PASS slept=$t0->$t1" || echo "linux-test workload FAIL"
