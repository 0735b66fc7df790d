#!/bin/sh
# Several CPUs: all of them online, and each doing work. One busy process
# per CPU for three seconds; then every CPU's user+system time in /proc/stat
# must have grown by at least a tenth of a second (10 ticks of USER_HZ 100:
# an emulated CPU on a busy host gets only part of the time, but a CPU that
# never ran anything gets none).
n=$(grep -c '^processor' /proc/cpuinfo)
online=$(cat /sys/devices/system/cpu/online)
grep '^cpu[0-9]' /proc/stat | awk '{print $1, $2 + $4}' > /tmp/before
i=0
while [ $i -lt $n ]; do
    ( end=$(( $(date +%s) + 3 )); while [ $(date +%s) -lt $end ]; do :; done ) &
    i=$((i + 1))
done
wait
grep '^cpu[0-9]' /proc/stat | awk '{print $1, $2 + $4}' > /tmp/after
busy=$(paste -d' ' /tmp/before /tmp/after | awk '{printf "%s=%d ", $1, $4 - $2}')
idle=$(paste -d' ' /tmp/before /tmp/after | awk '$4 - $2 < 10 {print $1}')
echo "smp: cpus=$n online=$online busy: $busy"
[ -z "$idle" ] && [ "$n" -ge 2 ] && echo "linux-test smp PASS cpus=$n online=$online" || echo "linux-test smp FAIL idle=$idle"
