# Shared by the balloon tests (sourced, not run).
memtotal_kb() { awk '/MemTotal/ {print $2}' /proc/meminfo; }
vmstat() { v=$(awk -v k="$1" '$1 == k {print $2}' /proc/vmstat); echo "${v:-0}"; }
# wait_vmstat KEY AT_LEAST SECONDS
wait_vmstat() {
    n=0
    while [ "$(vmstat "$1")" -lt "$2" ]; do
        n=$((n + 1)); [ $n -gt $(( $3 * 10 )) ] && return 1
        sleep 0.1
    done
    return 0
}
