#!/bin/sh
# The seed's VM A: its balloon is inflated by 128 MiB (hv balloon_move, or
# the monitor's `balloon`), which Linux's virtio_balloon does on its own;
# MemTotal shrinks by as much.
. /tests/balloon-lib.sh
# The balloon may have started before this script: MemTotal as it was
# before the first inflated page is what it reads plus what is inflated,
# both read while the balloon stood still (the same count before and after).
while :; do
    early=$(vmstat balloon_inflate); total=$(memtotal_kb)
    [ "$(vmstat balloon_inflate)" = "$early" ] && break
done
before=$(( total + early * 4 ))
echo "giver: MemTotal ${before} kB before the balloon (${early} pages already in it), waiting for it"
wait_vmstat balloon_inflate 32768 120 || { echo "linux-test giver FAIL inflated=$(vmstat balloon_inflate)"; exit 1; }
sleep 1
after=$(memtotal_kb)
drop=$(( (before - after) / 1024 ))
echo "giver: MemTotal ${after} kB (-${drop} MiB), balloon_inflate=$(vmstat balloon_inflate)"
[ $drop -ge 127 ] && echo "linux-test giver PASS drop_mib=$drop" || echo "linux-test giver FAIL drop_mib=$drop"
# Stay up until the other VM is done with the memory.
sleep 3
