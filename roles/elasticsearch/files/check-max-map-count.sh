# The init container check-max-map-count of every node pool with elasticsearch_allow_mmap: true
# (templates/statefulsets.yaml.j2 runs it as `sh -c <this file> check-max-map-count FILE MINIMUM LOG`).
# vm.max_map_count is a node-wide sysctl any unprivileged pod can read: fail before Elasticsearch
# starts, with the fix, instead of every node exiting at its bootstrap check. Needs a POSIX sh
# and cat (the Elasticsearch image is Ubuntu: coreutils is essential there).
#   $1 the sysctl's file (/proc/sys/vm/max_map_count)
#   $2 the minimum Elasticsearch's bootstrap check accepts (262144)
#   $3 where the message goes besides stderr (/dev/termination-log: kubectl describe, wait_ready);
#      one line of less than 300 characters, all that wait_ready shows of a last state
# cat, not the shell's read: read takes one byte per read(2), and a sysctl file answers only the
# first read (dash's read gets "6" of 65530).
if ! value=$(cat "$1" 2>/dev/null); then
  value=unreadable
fi
case "$value" in
  '' | *[!0-9]*)
    message="vm.max_map_count unreadable in $1: $value."
    ;;
  *)
    if [ "$value" -ge "$2" ]; then
      printf 'vm.max_map_count=%s on this node (at least %s): mmap allowed\n' "$value" "$2"
      exit 0
    fi
    message="vm.max_map_count=$value on this node, below the $2 elasticsearch_allow_mmap: true needs."
    ;;
esac
message="$message Fix: sysctl -w vm.max_map_count=$2 (or more) on every node, kept in /etc/sysctl.d (or a DaemonSet of the cluster admin, or the Node Tuning Operator), or set elasticsearch_allow_mmap: false."
printf '%s\n' "$message" >&2
printf '%s\n' "$message" > "$3" 2>/dev/null
exit 1
