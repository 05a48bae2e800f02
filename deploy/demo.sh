#!/usr/bin/env bash
# A demo gate in front of a local sshd, in one command (run as root on Debian 12):
#
#   bash deploy/demo.sh              # start everything; Ctrl-C stops it all
#   bash deploy/demo.sh --background # start, print the commands, and return (stop with: deploy/demo.sh stop)
#   bash deploy/demo.sh stop
#
# What it does:
#   1. installs openssh-server if sshd is missing, and starts Debian's sshd on 127.0.0.1:2200 with its own
#      temporary config (not the system's), with a demo user `sgdemo` (no password: key login only);
#   2. runs `sealgate init` (config and keys), pins that sshd's host key for the gate (from the key file,
#      not by trust-on-first-use), and authorizes the gate's upstream key for `sgdemo`;
#   3. starts `sealgate serve` on 127.0.0.1:2222 and prints the `ssh` command to go through it, and the
#      auditor's commands (`sessions`, `commands`, `replay`, `text`) that read what was recorded.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEMO=${SEALGATE_DEMO_DIR:-/tmp/sealgate-demo}
SSHD_PORT=${SEALGATE_DEMO_SSHD_PORT:-2200}
GATE_PORT=${SEALGATE_DEMO_GATE_PORT:-2222}
DEMO_USER=sgdemo
SEALGATE=(node "$REPO/bin/sealgate.js")

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

stop_all() {
  for name in gate sshd; do
    local pidfile="$DEMO/$name.pid"
    if [[ -f $pidfile ]]; then
      local pid
      pid=$(cat "$pidfile")
      if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      fi
      rm -f "$pidfile"
    fi
  done
}

if [[ ${1:-} == stop ]]; then
  stop_all
  say "stopped (the demo files stay in $DEMO)"
  exit 0
fi
BACKGROUND=0
[[ ${1:-} == --background ]] && BACKGROUND=1

if [[ $(id -u) -ne 0 ]]; then
  echo "demo.sh: run it as root (it starts sshd and adds the demo user $DEMO_USER)" >&2
  exit 2
fi
if [[ ! -x /usr/sbin/sshd ]]; then
  say "installing openssh-server (its system service stays disabled: the demo runs its own sshd)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssh-server
fi
if [[ ! -f $REPO/dist/src/cli/main.js ]]; then
  say "building sealgate"
  (cd "$REPO" && npx tsc -p tsconfig.json)
fi

stop_all
rm -rf "$DEMO"
mkdir -p "$DEMO/sshd"
chmod 755 "$DEMO" "$DEMO/sshd"

say "demo user $DEMO_USER"
id -u "$DEMO_USER" >/dev/null 2>&1 || useradd -m -s /bin/bash "$DEMO_USER"
usermod -p '*' "$DEMO_USER" # useradd leaves it locked, and sshd (UsePAM no) refuses locked users

say "sshd on 127.0.0.1:$SSHD_PORT"
mkdir -p /run/sshd
ssh-keygen -q -t ecdsa -b 256 -N '' -C demo-sshd -f "$DEMO/sshd/host_ecdsa"
touch "$DEMO/sshd/authorized_keys"
chmod 644 "$DEMO/sshd/authorized_keys"
cat >"$DEMO/sshd/sshd_config" <<EOF
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $DEMO/sshd/host_ecdsa
PidFile $DEMO/sshd/sshd.pid
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
StrictModes no
AuthorizedKeysFile $DEMO/sshd/authorized_keys
Subsystem sftp internal-sftp
AcceptEnv LANG LC_*
EOF
/usr/sbin/sshd -D -f "$DEMO/sshd/sshd_config" -E "$DEMO/sshd/sshd.log" </dev/null >/dev/null 2>&1 &
echo $! >"$DEMO/sshd.pid"

say "sealgate init"
"${SEALGATE[@]}" init "$DEMO/gate" --target-port "$SSHD_PORT" --target-user "$DEMO_USER" --listen-port "$GATE_PORT" >"$DEMO/init.txt"
# Pin the target's host key from its key file: no trust on first use.
echo "[127.0.0.1]:$SSHD_PORT $(cut -d' ' -f1,2 "$DEMO/sshd/host_ecdsa.pub")" >"$DEMO/gate/known_hosts/local"
cat "$DEMO/gate/keys/upstream_key.pub" >>"$DEMO/sshd/authorized_keys"
# The client pins the gate's host key the same way.
echo "[127.0.0.1]:$GATE_PORT $(ssh-keygen -y -f "$DEMO/gate/keys/host_key.pem")" >"$DEMO/gate_known_hosts"

say "sealgate serve on 127.0.0.1:$GATE_PORT (log: $DEMO/gate.log)"
"${SEALGATE[@]}" serve --config "$DEMO/gate/sealgate.yaml" </dev/null >"$DEMO/gate.log" 2>&1 &
GATE_PID=$!
echo "$GATE_PID" >"$DEMO/gate.pid"
for _ in $(seq 100); do
  if grep -q '"listening"' "$DEMO/gate.log" 2>/dev/null; then break; fi
  if ! kill -0 "$GATE_PID" 2>/dev/null; then
    cat "$DEMO/gate.log" >&2
    echo "demo.sh: sealgate serve did not start" >&2
    stop_all
    exit 1
  fi
  sleep 0.1
done

cat <<EOF

The demo gate is up. Go through it (user "demo", to target "local", which is sshd on port $SSHD_PORT):

  ssh -p $GATE_PORT -i $DEMO/gate/keys/demo_user_key.pem -o UserKnownHostsFile=$DEMO/gate_known_hosts demo+local@127.0.0.1

Then see what you did, as an auditor would (the recipient key is unencrypted, for the demo only;
every read checks the log against the signer's public key first):

  READ="--keys $DEMO/gate/keys/signer.pub.pem --key file:$DEMO/gate/keys/recipient.key.pem"
  node $REPO/bin/sealgate.js sessions $DEMO/gate/store \$READ              # who, where, when, how it ended
  node $REPO/bin/sealgate.js commands $DEMO/gate/store \$READ              # every command, typed or exec
  node $REPO/bin/sealgate.js replay $DEMO/gate/store SESSION \$READ --at INDEX   # watch that moment
  node $REPO/bin/sealgate.js text $DEMO/gate/store SESSION \$READ          # the screen as plain text

EOF

if [[ $BACKGROUND -eq 1 ]]; then
  echo "Stop it with: bash $REPO/deploy/demo.sh stop"
  exit 0
fi
trap 'trap - INT TERM; echo; say "stopping"; stop_all; exit 0' INT TERM
echo "Ctrl-C stops the gate and sshd."
wait "$GATE_PID" || true
stop_all
