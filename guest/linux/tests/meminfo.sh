#!/bin/sh
# Memory as the guest sees it. The balloon driver counts its work in
# /proc/vmstat (balloon_inflate, balloon_deflate, balloon_migrate).
grep MemTotal /proc/meminfo
if grep -q '^balloon_' /proc/vmstat; then
    grep '^balloon_' /proc/vmstat
else
    echo "no balloon counters in /proc/vmstat"
fi
echo "linux-test meminfo PASS"
