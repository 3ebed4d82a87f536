#!/bin/sh
# twill-cni: the CNI plugin a runtime executes.
#
# When the node agent (twilld) serves CNI on its socket, the call is handed to it: the agent runs the
# same TypeScript code (src/cni/skel.ts) without a Node.js start per call, which is most of a
# standalone call's latency. Otherwise (no agent yet, agent restarting, socat missing) the plugin runs
# standalone: twill-cni.js next to this file. The framing is in src/cni/wire.ts.
sock=${TWILL_CNI_SOCKET:-/run/twill/cni.sock}
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

[ -S "$sock" ] && command -v socat >/dev/null 2>&1 || standalone
for v in "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_NETNS" "$CNI_IFNAME" "$CNI_ARGS" "$CNI_PATH"; do
  case $v in *"$nl"*) standalone ;; esac
done
ns=$(readlink /proc/self/ns/net)
out=$(printf 'TWILL-CNI 1\n%s\n%s\n%s\n%s\n%s\n%s\n%s\n\n%s' "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_NETNS" \
  "$CNI_IFNAME" "$CNI_ARGS" "$CNI_PATH" "$ns" "$conf" | socat -t 120 - "UNIX-CONNECT:$sock" 2>/dev/null)
# No answer (agent not listening, or gone mid-call), or an agent of another namespace: run standalone.
# Verbs are idempotent, so a call the agent may have started is safe to run again.
[ -n "$out" ] && [ "$out" != standalone ] || standalone
status=${out%%"$nl"*}
body=${out#*"$nl"}
[ "$body" = "$out" ] && body=''
[ -n "$body" ] && printf '%s\n' "$body"
exit "$status"
