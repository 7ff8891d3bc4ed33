#!/usr/bin/env bash
# Installs one fleetwave role on a Debian host, and only what that role needs. Run it again: it changes only what
# is missing (idempotent), and restarts nothing that did not change.
#
#   deploy/install.sh controller [--deb FILE]   the fleetwave-controller package (controller, router, the fleetwave
#                                               command), user fleetwave, and a CA in /etc/fleetwave/tls
#   deploy/install.sh agent [--deb FILE]        the fleetwave-agent package (agent, user fleetwave for the apps)
#   deploy/install.sh nats [--cluster]          Debian's nats-server with fleetwave's config (deploy/nats/):
#                                               JetStream, TLS, users; one server, or a node of a 3-node cluster
#
# Without --deb, the newest dist/pkg/fleetwave-ROLE_*.deb of this checkout is used (built with `make dist` first
# when there is none). --dry-run prints the steps that would change something, and changes nothing.
# --root DIR puts every file under DIR instead of / (for tests; system commands still run through PATH).
set -euo pipefail

usage() { echo "usage: deploy/install.sh controller|agent|nats [--deb FILE] [--cluster] [--dry-run]" >&2; exit 2; }
role="${1:-}"
case "$role" in controller|agent|nats) shift ;; *) usage ;; esac
deb="" cluster=0 dry_run=0 root="" pkg=""
while [ $# -gt 0 ]; do
  case "$1" in
    --deb) deb="${2:?--deb needs a file}"; shift 2 ;;
    --cluster) cluster=1; shift ;;
    --dry-run) dry_run=1; shift ;;
    --root) root="${2:?--root needs a directory}"; shift 2 ;;
    *) echo "install.sh: unknown option '$1'" >&2; usage ;;
  esac
done
if [ "$role" = nats ] && [ -n "$deb" ]; then echo "install.sh: --deb is for controller and agent" >&2; usage; fi
if [ "$role" != nats ] && [ "$cluster" = 1 ]; then echo "install.sh: --cluster is for nats" >&2; usage; fi
here="$(cd "$(dirname "$0")/.." && pwd)"
changed=0

# One step that changes the host: printed, then run (unless --dry-run).
step() {
  changed=1
  if [ "$dry_run" = 1 ]; then echo "would: $*"; else echo "+ $*"; "$@"; fi
}
note() { echo "install.sh: $*"; }
systemd_running() { [ -z "$root" ] && [ -d /run/systemd/system ]; }

# Sets $pkg to the package file for `fleetwave-$1`: --deb, else this checkout's newest (built when missing).
# FLEETWAVE_PKG_DIR: where built packages are looked for (tests point it at an empty directory).
pkg_dir="${FLEETWAVE_PKG_DIR:-$here/dist/pkg}"
newest_deb() { ls -1 "$pkg_dir"/"fleetwave-$1"_*.deb 2>/dev/null | sort -V | tail -n 1 || true; }
find_package() {
  if [ -n "$deb" ]; then
    [ -f "$deb" ] || { echo "install.sh: --deb $deb: no such file" >&2; exit 2; }
    pkg="$deb"; return
  fi
  pkg="$(newest_deb "$1")"
  [ -n "$pkg" ] && return
  [ -f "$here/Makefile" ] || { echo "install.sh: no fleetwave-$1 .deb: give --deb FILE" >&2; exit 2; }
  step make -C "$here" dist
  pkg="$(newest_deb "$1")"
  if [ -z "$pkg" ]; then
    [ "$dry_run" = 1 ] || { echo "install.sh: make dist made no fleetwave-$1 .deb" >&2; exit 1; }
    pkg="$pkg_dir/fleetwave-$1_VERSION.deb"
  fi
}

# Installs a .deb unless that very version is installed already; apt resolves its Depends.
install_package() { # name file
  local want have=""
  want="$(dpkg-deb --field "$2" Version 2>/dev/null || echo new)"
  have="$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Status} ${Version}' "$1" 2>/dev/null || true)"
  if [ "$have" = "install ok installed $want" ]; then note "$1 $want already installed"; return; fi
  case "$2" in /*) ;; *) set -- "$1" "./$2" ;; esac
  step apt-get install -y "$2"
}

role_controller() {
  find_package controller
  install_package fleetwave-controller "$pkg"
  local tls="$root/etc/fleetwave/tls"
  if [ -f "$tls/ca.key" ]; then
    note "CA kept: $tls"
  else
    # Readable by the controller's group (fleetwave), ca.key by root only.
    step fleetwave ca init --dir "$tls" --group fleetwave --san "$(hostname -f 2>/dev/null || hostname)"
  fi
  note "next: edit /etc/fleetwave/controller.yaml (nats, advertise-http), put FLEETWAVE_NATS_PASS in /etc/fleetwave/controller.env (0600), then: systemctl enable --now fleetwave-controller"
}

role_agent() {
  # The package's postinst creates the apps' user fleetwave (agent.yaml: app-user: fleetwave) and /var/lib/fleetwave/agent.
  find_package agent
  install_package fleetwave-agent "$pkg"
  note "next: copy the controller's /etc/fleetwave/tls/ca.crt to /etc/fleetwave/tls/ca.crt, edit /etc/fleetwave/agent.yaml, put FLEETWAVE_JOIN_TOKEN=<fleetwave token create NAME --role agent> in /etc/fleetwave/agent.env (0600), then: systemctl enable --now fleetwave-agent"
}

# Installs $1 as $2 (mode $3, owner $4) when missing; an existing file is the operator's and is kept.
install_once() {
  if [ -e "$2" ]; then note "kept $2"; return; fi
  step install -D -m "$3" -o root -g "$4" "$1" "$2"
}

random_secret() { head -c 18 /dev/urandom | base64 | tr -d '/+='; }

# /etc/nats/fleetwave.env: the passwords the config files reference, made once (then only read).
nats_env() {
  local file="$root/etc/nats/fleetwave.env"
  if [ -e "$file" ]; then note "kept $file"; return; fi
  local text
  text="# Passwords for /etc/nats/fleetwave-users.conf (made by deploy/install.sh nats). Give the controller's to the
# controller host (/etc/fleetwave/controller.env: FLEETWAVE_NATS_PASS=...), the router's to router hosts.
FLEETWAVE_NATS_CONTROLLER_PASS=$(random_secret)
FLEETWAVE_NATS_DASHBOARD_PASS=$(random_secret)
FLEETWAVE_NATS_ROUTER_PASS=$(random_secret)
# The shared agents user (nats-user: agents in every agent.yaml, this password in its agent.env as FLEETWAVE_NATS_PASS).
FLEETWAVE_NATS_AGENTS_PASS=$(random_secret)
"
  if [ "$cluster" = 1 ]; then
    local route_pass
    route_pass="$(random_secret)"
    text+="# Cluster: this node's name; the route password and the three routes are the same on every node (copy them).
FLEETWAVE_NATS_NAME=$(hostname -s)
FLEETWAVE_NATS_ROUTE_PASS=$route_pass
FLEETWAVE_NATS_ROUTE_1=nats-route://route:$route_pass@nats-1.example.internal:6222
FLEETWAVE_NATS_ROUTE_2=nats-route://route:$route_pass@nats-2.example.internal:6222
FLEETWAVE_NATS_ROUTE_3=nats-route://route:$route_pass@nats-3.example.internal:6222
"
  fi
  step install -d -m 0755 "$(dirname "$file")"
  if [ "$dry_run" = 1 ]; then echo "would: write $file (mode 0600, new random passwords)"; else
    (umask 077; printf '%s' "$text" > "$file"); echo "+ wrote $file (mode 0600)"
  fi
}

# The server certificate: on the controller host, the controller's (its names are this host's); else by hand.
nats_tls() {
  local dir="$root/etc/nats/tls" from="$root/etc/fleetwave/tls"
  if [ -e "$dir/server.crt" ]; then note "kept $dir/server.crt"; return; fi
  if [ -e "$from/controller.crt" ]; then
    step install -D -m 0644 -o root -g nats "$from/controller.crt" "$dir/server.crt"
    step install -D -m 0640 -o root -g nats "$from/controller.key" "$dir/server.key"
  else
    note "TLS: on the controller host run 'fleetwave ca issue --dir /etc/fleetwave/tls --name $(hostname -f 2>/dev/null || hostname) --out-dir /tmp/nats-cert', copy the two files here as $dir/server.crt and server.key (root:nats, key 0640)"
  fi
}

role_nats() {
  if ! command -v nats-server >/dev/null; then step apt-get install -y nats-server; fi
  local conf=single.conf
  [ "$cluster" = 1 ] && conf=cluster.conf
  # Debian's own /etc/nats-server.conf stays untouched; the drop-in points the unit at /etc/nats/.
  install_once "$here/deploy/nats/$conf" "$root/etc/nats/nats-server.conf" 0644 root
  install_once "$here/deploy/nats/fleetwave-users.conf" "$root/etc/nats/fleetwave-users.conf" 0640 nats
  nats_env
  nats_tls
  install_once "$here/deploy/nats/nats-server.service.d/fleetwave.conf" "$root/etc/systemd/system/nats-server.service.d/fleetwave.conf" 0644 root
  if [ "$changed" = 1 ] && systemd_running; then
    step systemctl daemon-reload
    if [ -e /etc/nats/tls/server.key ]; then step systemctl enable nats-server; step systemctl restart nats-server; fi
  fi
  note "next: check with 'set -a; . /etc/nats/fleetwave.env; nats-server -t -c /etc/nats/nats-server.conf', then: systemctl restart nats-server"
}

"role_$role"
[ "$changed" = 1 ] || note "nothing to change: $role is installed"
