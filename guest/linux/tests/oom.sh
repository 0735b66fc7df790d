#!/bin/sh
# DEFLATE_ON_OOM (vms.conf balloon=oom): the VM boots with most of its
# memory in the balloon; asking for more than is left makes Linux take pages
# back from the balloon instead of killing anything.
. /tests/balloon-lib.sh
wait_vmstat balloon_inflate 24576 60 || { echo "linux-test oom FAIL boot balloon not inflated"; exit 1; }
sleep 1
free_before=$(awk '/MemAvailable/ {print $2}' /proc/meminfo)
echo "oom: MemAvailable ${free_before} kB, balloon_deflate=$(vmstat balloon_deflate)"
mkdir -p /mnt/o && mount -t tmpfs -o size=95% tmpfs /mnt/o
want=$(( free_before / 1024 + 48 ))
if dd if=/dev/zero of=/mnt/o/fill bs=1M count=$want 2>/dev/null; then used=$want; else used=0; fi
deflated=$(vmstat balloon_deflate)
echo "oom: wrote ${used} MiB, balloon_deflate=$deflated"
[ $used = $want ] && [ $deflated -gt 0 ] && echo "linux-test oom PASS used_mib=$used deflated=$deflated" || echo "linux-test oom FAIL used_mib=$used deflated=$deflated"
