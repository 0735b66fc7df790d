#!/bin/sh
# For make bench: how long Linux takes to inflate its balloon by 128 MiB,
# in its own time (CNTVCT ticks, 62.5 MHz). Whoever runs the bench sets the
# target when "inflate: ready" appears: the hypervisor's monitor, or QEMU's
# own monitor for its virtio-balloon device on plain QEMU. /bin/vmstat-wait
# (guest/linux/tools/vmstat-wait.S) times balloon_inflate from its first page
# to its 32768th, reading /proc/vmstat once a millisecond.
echo "inflate: ready"
ticks=$(/bin/vmstat-wait balloon_inflate 32768)
[ -n "$ticks" ] || { echo "linux-test inflate FAIL no figure"; exit 1; }
echo "inflate: 32768 pages in $ticks ticks ($((ticks / 62500)) ms)"
echo "linux-test inflate PASS ticks=$ticks"
