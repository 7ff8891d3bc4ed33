#!/bin/sh
# install-nats-users: installs the NATS users file the fleetwave controller writes into its own state dir as
# nats-server's /etc/nats/fleetwave-users.conf (root:nats 0640), after nats-server -t accepted the whole
# configuration with it, and has a running nats-server reload it. Run as root by fleetwave-nats-users.service when
# fleetwave-nats-users.path sees the file change, so the controller stays unprivileged (user fleetwave, its state
# dir its only writable place) and never signals nats-server itself.
#
#   /usr/lib/fleetwave/install-nats-users [--from FILE] [--config FILE]
#
# --from: the controller's file (default /var/lib/fleetwave/controller/nats-users.conf, controller.yaml's
# nats-agent-users); --config: nats-server's config (default /etc/nats/nats-server.conf), which includes
# ./fleetwave-users.conf from its own directory. The passwords the files reference come from the environment
# (the unit reads /etc/nats/fleetwave.env).
set -eu

from=/var/lib/fleetwave/controller/nats-users.conf
config=/etc/nats/nats-server.conf
while [ $# -gt 0 ]; do
  case "$1" in
    --from) from="${2:?--from needs a file}"; shift 2 ;;
    --config) config="${2:?--config needs a file}"; shift 2 ;;
    *) echo "install-nats-users: unknown option '$1' (usage: install-nats-users [--from FILE] [--config FILE])" >&2; exit 2 ;;
  esac
done
etc="$(dirname "$config")"
to="$etc/fleetwave-users.conf"

# Runs a command as USER with its groups: what the controller's file names (a symlink it planted, an include) is
# read with the rights of the controller's user, or checked with those of nats-server's, never root's.
as() { user="$1"; shift; setpriv --reuid="$user" --regid="$user" --init-groups -- "$@"; }
fail() { echo "install-nats-users: $*" >&2; exit 1; }

[ -f "$config" ] || fail "$config is missing: nats-server is not set up on this host (deploy/install.sh nats); disable fleetwave-nats-users.path if NATS runs elsewhere"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
as fleetwave cat "$from" > "$work/new" || fail "cannot read $from as user fleetwave (controller.yaml: nats-agent-users)"
if [ -f "$to" ] && cmp -s "$work/new" "$to"; then
  echo "install-nats-users: $to is already up to date"
  exit 0
fi

# nats-server's directory as it would be after the install (every entry linked, the new users file copied in), so
# relative includes resolve as they will, and nats-server -t checks the whole configuration, TLS files included.
check="$work/check"
mkdir "$check"
for entry in "$etc"/*; do ln -s "$entry" "$check/"; done
rm -f "$check/fleetwave-users.conf"
cp "$work/new" "$check/fleetwave-users.conf"
# nats-server -t runs as nats: it may enter these two directories and read the two copies (nothing else changes
# owner: the links point into nats-server's own directory).
chgrp nats "$work" "$check" "$work/new" "$check/fleetwave-users.conf"
chmod 0750 "$work" "$check"
chmod 0640 "$work/new" "$check/fleetwave-users.conf"
if ! out="$(as nats nats-server -t -c "$check/$(basename "$config")" 2>&1)"; then
  fail "nats-server refuses $from, $to kept: $(echo "$out" | tr '\n' ' ')"
fi

# Beside the target, then renamed: a nats-server reloading meanwhile reads the old file or the new one.
install -m 0640 -o root -g nats "$work/new" "$to.new"
mv -f "$to.new" "$to"
if systemctl is-active --quiet nats-server.service; then
  # Debian's unit reloads with SIGHUP: nats-server then drops the users no longer listed (revoked agents).
  systemctl reload nats-server.service
  echo "install-nats-users: installed $to, nats-server reloaded"
else
  echo "install-nats-users: installed $to; nats-server is not running and reads it when it starts"
fi
