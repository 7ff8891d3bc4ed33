# Shared by the maintainer scripts: deploy/dist/deb.ts pastes it in where a script has its COMMON marker.

# The system user and group `fleetwave`: the controller and router run as it, the agent runs apps as it (--app-user).
ensure_fleetwave_user() {
  getent group fleetwave >/dev/null || groupadd --system fleetwave
  getent passwd fleetwave >/dev/null ||
    useradd --system --gid fleetwave --home-dir /var/lib/fleetwave --no-create-home --shell /usr/sbin/nologin \
      --comment "fleetwave" fleetwave
}

# Owner and mode of a path, unless the admin set their own with dpkg-statoverride.
set_perms() { # owner:group mode path
  [ -e "$3" ] || return 0
  dpkg-statoverride --list "$3" >/dev/null 2>&1 && return 0
  chown "$1" "$3"
  chmod "$2" "$3"
}

systemd_running() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }
