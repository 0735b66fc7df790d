#!/bin/sh
# For make bench: how long Linux takes to inflate its balloon by 128 MiB,
# in its own time (CNTVCT ticks, 62.5 MHz). Whoever runs the bench sets the
# target when "inflate: ready" appears: the hypervisor's monitor, or QEMU's
# own monitor for its virtio-balloon device on plain QEMU.
. /tests/balloon-lib.sh
echo "inflate: ready"
n=0
while [ "$(vmstat balloon_inflate)" -eq 0 ]; do
    n=$((n + 1)); [ $n -gt 6000 ] && { echo "linux-test inflate FAIL no inflate"; exit 1; }
    sleep 0.01
done
t0=$(/bin/cntvct)
while [ "$(vmstat balloon_inflate)" -lt 32768 ]; do sleep 0.01; done
t1=$(/bin/cntvct)
echo "inflate: 32768 pages in $((t1 - t0)) ticks ($(( (t1 - t0) / 62500 )) ms)"
echo "linux-test inflate PASS ticks=$((t1 - t0))"
