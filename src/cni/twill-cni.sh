#!/bin/sh
# twill-cni: the CNI plugin a runtime executes.
#
# When the node agent (twilld) serves CNI on its socket, the call is handed to it: the agent runs the
# same TypeScript code (src/cni/skel.ts) without a Node.js start per call, which is most of a
# standalone call's latency. Otherwise (no agent yet, agent restarting, socat missing, the agent
# declines) the plugin runs standalone: twill-cni.js next to this file. The framing is in
# src/cni/wire.ts; the agent identifies the caller from the kernel, this script claims nothing.
sock=${TWILL_CNI_SOCKET:-/run/twill/cni.sock}
# Seconds to wait for the agent's answer (tests shorten it).
timeout=${TWILL_CNI_TIMEOUT:-120}
case $timeout in '' | *[!0-9]*) timeout=120 ;; esac
nl='
'
conf=$(cat)

# exec keeps this PID (a runtime that kills a hung plugin kills the real work); the here-document
# expands $conf once and does not interpret what it contains.
standalone() {
  self=$(readlink -f "$0")
  exec "${self%/*}/twill-cni.js" <<EOF
$conf
EOF
}

# A CNI error of our own (the agent took the call and its answer was lost), in the config's version.
fail() {
  ver=1.1.0
  v=${conf#*'"cniVersion"'}
  if [ "$v" != "$conf" ]; then
    v=${v#*'"'}
    v=${v%%'"'*}
    case $v in 0.3.0 | 0.3.1 | 0.4.0 | 1.0.0 | 1.1.0) ver=$v ;; esac
  fi
  printf '{"cniVersion":"%s","code":11,"msg":"%s"}\n' "$ver" "$1"
  exit 1
}

# Only a socket of our own user (root) is the agent's: anything else at that path is not.
[ -S "$sock" ] && [ -O "$sock" ] && command -v socat >/dev/null 2>&1 || standalone
for v in "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_NETNS" "$CNI_IFNAME" "$CNI_ARGS" "$CNI_PATH"; do
  case $v in *"$nl"*) standalone ;; esac
done
out=$(printf 'TWILL-CNI 2\n%s\n%s\n%s\n%s\n%s\n%s\n\n%s' "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_NETNS" \
  "$CNI_IFNAME" "$CNI_ARGS" "$CNI_PATH" "$conf" | socat -t "$timeout" - "UNIX-CONNECT:$sock" 2>/dev/null)
rc=$?
first=${out%%"$nl"*}
body=${out#*"$nl"}
[ "$body" = "$out" ] && body=''
case $first in
  accepted | refused) ;;
  '')
    # Connection refused or reset before any answer: no agent took the call. A silent end or our
    # timeout may hide a call the agent is about to run: never run it a second time.
    [ "$rc" = 1 ] && standalone
    fail "the node agent did not answer within ${timeout}s; not run standalone, the agent may still run it"
    ;;
  # "standalone", or an agent of another protocol version (it ran nothing): run it here.
  *) standalone ;;
esac
status=${body%%"$nl"*}
case $status in
  '' | *[!0-9]*) fail "the node agent accepted the call but its answer was lost; not run standalone, the agent may still be running it" ;;
esac
result=${body#*"$nl"}
[ "$result" = "$body" ] && result=''
[ -n "$result" ] && printf '%s\n' "$result"
exit "$status"
