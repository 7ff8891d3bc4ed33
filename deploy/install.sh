#!/usr/bin/env bash
# Installs fleetwave from this checkout on a Debian host: builds it, links the
# `fleetwave` command, creates the service user and installs the systemd unit(s).
# Usage: deploy/install.sh controller|agent
set -euo pipefail
role="${1:?usage: deploy/install.sh controller|agent}"
case "$role" in controller|agent) ;; *) echo "install.sh: role must be controller or agent" >&2; exit 2 ;; esac
here="$(cd "$(dirname "$0")/.." && pwd)"
cd "$here"
make build
ln -sf "$here/dist/cli/main.js" /usr/local/bin/fleetwave
chmod +x "$here/dist/cli/main.js"
install -d -m 0755 /etc/fleetwave
if [ "$role" = controller ]; then
  id fleetwave >/dev/null 2>&1 || useradd --system --home /var/lib/fleetwave --shell /usr/sbin/nologin fleetwave
  command -v nats-server >/dev/null || apt-get install -y nats-server
fi
[ -f "/etc/fleetwave/$role.env" ] || install -m 0640 "deploy/$role.env.example" "/etc/fleetwave/$role.env"
install -m 0644 "deploy/systemd/fleetwave-$role.service" /etc/systemd/system/
systemctl daemon-reload
echo "edit /etc/fleetwave/$role.env, then: systemctl enable --now fleetwave-$role"
