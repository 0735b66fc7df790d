#!/bin/sh
# The seed's VM B: it booted with 128 MiB in its balloon (boot_balloon=128M);
# the hypervisor lowers the target, Linux deflates, MemTotal grows, and the
# memory is used: more than it had with the boot balloon.
. /tests/balloon-lib.sh
# The lowest MemTotal seen while the boot balloon is in: the hypervisor may
# start the deflate at any moment, so sample until it is done.
low=$(memtotal_kb)
n=0
while [ "$(vmstat balloon_deflate)" -lt 32768 ]; do
    m=$(memtotal_kb); [ "$m" -lt "$low" ] && low=$m
    n=$((n + 1)); [ $n -gt 1200 ] && { echo "linux-test taker FAIL deflated=$(vmstat balloon_deflate)"; exit 1; }
    sleep 0.1
done
sleep 1
after=$(memtotal_kb)
grow=$(( (after - low) / 1024 ))
echo "taker: MemTotal ${low} kB with the boot balloon, ${after} kB after (+${grow} MiB)"
# Use it: more than the whole of MemTotal with the balloon in, in a RAM file system.
mkdir -p /mnt/t && mount -t tmpfs -o size=90% tmpfs /mnt/t
want=$(( low / 1024 + 32 ))
if dd if=/dev/zero of=/mnt/t/fill bs=1M count=$want 2>/dev/null; then used=$want; else used=0; fi
echo "taker: wrote ${used} MiB into tmpfs"
[ $grow -ge 127 ] && [ $used = $want ] && echo "linux-test taker PASS grow_mib=$grow used_mib=$used" || echo "linux-test taker FAIL grow_mib=$grow used_mib=$used"
