"""Day-to-day operator tasks for the forum, with Fabric 3.

Hosts and how to reach them come from the Ansible inventory (the same one
`site.yml` uses), never from a second list:

    fab status                         # release, health and services per web host,
                                       # newest backup and WAL archive lag per backup host
    fab logs --lines 100               # the app's and nginx's recent logs
    fab deploy                         # run playbooks/deploy.yml
    fab rollback                       # back to the release before current
    fab rollback --to 3f2a9c1b7d4e     # or to a named release
    fab status --inventory inventory/production

`--inventory` defaults to $FORUM_INVENTORY or inventory/lab.
"""
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from fabric import Connection, task
from paramiko.client import AutoAddPolicy, RejectPolicy
from paramiko.ssh_exception import SSHException

ROOT = Path(__file__).resolve().parent
DEFAULT_INVENTORY = os.environ.get("FORUM_INVENTORY", "inventory/lab")
APP_ROOT = "/srv/forum"

# What Ansible would use to reach a host, rendered by Ansible itself (the
# inventory's templates, group_vars, vaulted values: ansible.cfg's
# vault_password_file or ANSIBLE_VAULT_PASSWORD_FILE applies).
_CONNECTION_VARS = (
    '{{ {"address": ansible_host | default(inventory_hostname),'
    ' "port": ansible_port | default(22),'
    ' "user": ansible_user | default("deploy"),'
    ' "key": ansible_ssh_private_key_file | default(""),'
    ' "ssh_args": ansible_ssh_common_args | default("")} }}'
)


def _ansible_env(**extra):
    """The environment for Ansible commands: this repository's ansible.cfg
    and roles whatever the caller's ANSIBLE_CONFIG / ANSIBLE_ROLES_PATH say
    (vault and other settings from the environment still apply)."""
    return {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "ANSIBLE_ROLES_PATH": str(ROOT / "roles"), **extra}


def _tool(name):
    """An Ansible command from the project's .venv, else from PATH."""
    local = ROOT / ".venv" / "bin" / name
    return str(local) if local.exists() else (shutil.which(name) or name)


def _inventory_hosts(inventory, pattern):
    """The hosts of `pattern` in `inventory` with their connection settings,
    as the `ansible` command resolves them (no host is contacted)."""
    argv = [_tool("ansible"), "-i", str(ROOT / inventory), pattern,
            "-m", "ansible.builtin.debug", "-a", f"msg={_CONNECTION_VARS}"]
    env = _ansible_env(ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
                       ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"cannot read the hosts of '{pattern}' from {inventory} "
                         f"(ansible exited {result.returncode}):\n{result.stderr.strip() or result.stdout[-2000:]}")
    hosts = []
    for play in json.loads(result.stdout).get("plays", []):
        for task_result in play.get("tasks", []):
            for name, values in task_result["hosts"].items():
                settings = values["msg"]
                hosts.append({"name": name, **settings, "port": int(settings["port"]),
                              "options": _ssh_options(settings["ssh_args"])})
    return hosts


def _ssh_options(ssh_args):
    """-o Key=Value options of ansible_ssh_common_args, keys lowercased
    (-J HOST counts as ProxyJump)."""
    words = shlex.split(ssh_args)
    options = {}
    for index, word in enumerate(words):
        if word == "-J" and index + 1 < len(words):
            word = "ProxyJump=" + words[index + 1]
        elif word.startswith("-J"):
            word = "ProxyJump=" + word[2:]
        elif word == "-o" and index + 1 < len(words):
            word = words[index + 1]
        elif word.startswith("-o"):
            word = word[2:]
        else:
            continue
        key, _, value = word.replace(" ", "=", 1).partition("=")
        options[key.strip().lower()] = value.strip()
    return options


def _connect(host):
    """A Fabric connection that checks the host key as Ansible's ssh does:
    against ~/.ssh/known_hosts and the inventory's UserKnownHostsFile; an
    unknown host is refused unless StrictHostKeyChecking says no or
    accept-new (Fabric alone would accept any key)."""
    connect_kwargs = {}
    if host["key"]:
        connect_kwargs["key_filename"] = host["key"]
    conn = Connection(host["address"], user=host["user"], port=host["port"],
                      connect_kwargs=connect_kwargs)
    options = host["options"]
    conn.client.load_system_host_keys()
    for known_hosts in options.get("userknownhostsfile", "").split():
        known_hosts = os.path.expanduser(known_hosts)
        if os.path.exists(known_hosts):
            conn.client.load_host_keys(known_hosts)
    trusting = options.get("stricthostkeychecking", "yes").lower() in ("no", "off", "accept-new")
    conn.client.set_missing_host_key_policy(AutoAddPolicy() if trusting else RejectPolicy())
    return conn


def _on_web_hosts(inventory, action):
    """Run action(name, connection) for every web host; a host that cannot
    be reached is reported and the others still run; exit 1 if any failed."""
    hosts = _inventory_hosts(inventory, "web")
    if not hosts:
        raise SystemExit(f"no hosts in group 'web' of {inventory}")
    _on_hosts(hosts, action)


def _on_hosts(hosts, action):
    """Run action(name, connection) for each of `hosts` (from
    _inventory_hosts); see _on_web_hosts."""
    # Fabric would connect straight to the address instead: say so first.
    proxied = [host["name"] for host in hosts
               if {"proxyjump", "proxycommand"} & set(host["options"])]
    if proxied:
        raise SystemExit(f"{', '.join(proxied)}: ansible_ssh_common_args goes through ProxyJump or "
                         "ProxyCommand, which fab does not follow; nothing was run. Use "
                         "`ansible web -m ansible.builtin.command -a ...` for these hosts.")
    unreachable = []
    for host in hosts:
        conn = _connect(host)
        try:
            action(host["name"], conn)
        except BrokenPipeError:  # our own output closed (| head): not the host's fault
            raise
        except (SSHException, OSError) as error:  # paramiko's errors and the socket's
            print(f"{host['name']}: cannot connect to {host['address']}:{host['port']}: {error}", file=sys.stderr)
            unreachable.append(host["name"])
        finally:
            conn.close()
    if unreachable:
        raise SystemExit(f"not reached: {', '.join(unreachable)}")


def _status(name, conn):
    release = conn.run(f"readlink {APP_ROOT}/current || echo none", hide=True, warn=True).stdout.strip()
    previous = conn.run(f"readlink {APP_ROOT}/previous || echo none", hide=True, warn=True).stdout.strip()
    # Through nginx on the host itself (self-signed certificate: -k).
    health = conn.run("curl -ksS --max-time 5 https://127.0.0.1/healthz || "
                      "curl -sS --max-time 5 http://127.0.0.1/healthz", hide=True, warn=True)
    units = ["forum.socket", "forum.service", "nginx"]
    states = conn.sudo(f"systemctl is-active {' '.join(units)}", hide=True, warn=True).stdout.split()
    server = conn.run("systemctl show -p Description --value forum.service", hide=True, warn=True).stdout.strip()
    print(f"{name}: release {Path(release).name} (previous {Path(previous).name}), {server}")
    print(f"  health: {health.stdout.strip() if health.ok else 'FAILED ' + health.stderr.strip()}")
    print("  services: " + ", ".join(f"{unit}={state}" for unit, state in zip(units, states)))


# pgBackRest's repository account and stanza (the pgbackrest role's defaults).
BACKUP_USER = "pgbackrest"
BACKUP_STANZA = "forum"


def _backup_report(stanza, now, newest_wal_mtime, check_ok, check_error=""):
    """The lines `fab status` prints for a backup host, from `pgbackrest
    info --output=json`'s entry for the stanza, the time now, the mtime of
    the newest archived WAL segment in the repository (None: none found)
    and whether `pgbackrest check` passed."""
    backups = stanza.get("backup", [])
    if backups:
        newest = max(backups, key=lambda b: b["timestamp"]["stop"])
        age = now - newest["timestamp"]["stop"]
        backup = (f"{newest['label']} ({newest['type']}), {_age(age)} ago; "
                  f"{sum(1 for b in backups if b['type'] == 'full')} full, {len(backups)} in all")
    else:
        backup = "none"
    archives = [a for a in stanza.get("archive", []) if a.get("max")]
    newest_wal = archives[-1]["max"] if archives else None
    if newest_wal and newest_wal_mtime is not None:
        archive = f"newest WAL {newest_wal}, archived {_age(now - newest_wal_mtime)} ago"
    else:
        archive = "no WAL archived"
    status = stanza.get("status", {})
    error_lines = check_error.strip().splitlines()
    check = "ok" if check_ok else "FAILED" + (f": {error_lines[-1]}" if error_lines else "")
    return [f"  stanza {stanza.get('name', '?')}: {status.get('message', '?')} (code {status.get('code', '?')})",
            f"  newest backup: {backup}",
            f"  archive: {archive}",
            f"  check: {check}"]


def _age(seconds):
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172800:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


def _backup_status(name, conn):
    pgbackrest = f"pgbackrest --stanza={BACKUP_STANZA}"
    info = conn.sudo(f"{pgbackrest} --output=json info", hide=True, warn=True, user=BACKUP_USER)
    if not info.ok:
        print(f"{name}: pgbackrest info FAILED: {info.stderr.strip()}")
        return
    stanza = json.loads(info.stdout)[0]
    archives = [a for a in stanza.get("archive", []) if a.get("max")]
    mtime = None
    if archives:
        found = conn.sudo(f"find /var/lib/pgbackrest/archive/{BACKUP_STANZA} -name "
                          f"{shlex.quote(archives[-1]['max'] + '*')} -printf '%T@\\n'",
                          hide=True, warn=True, user=BACKUP_USER).stdout.split()
        mtime = max(map(float, found)) if found else None
    # check switches a WAL segment on the db host and waits for it in the
    # repository: the whole archiving path, end to end.
    check = conn.sudo(f"{pgbackrest} check", hide=True, warn=True, user=BACKUP_USER)
    now = float(conn.run("date +%s", hide=True).stdout)
    print(f"{name}: pgBackRest repository")
    for line in _backup_report(stanza, now, mtime, check.ok, check.stderr + check.stdout):
        print(line)


# What a db host reports about replication, in one psql call: a primary
# lists its standbys (slot name, state, sync state, replay lag), a standby
# the primary it streams from and how far behind its replay is.
_REPLICATION_QUERY = """
SELECT CASE WHEN NOT pg_is_in_recovery() THEN
  'primary; standbys: ' || coalesce((SELECT string_agg(application_name || ' ' || state || ' (' || sync_state
      || ', replay lag ' || coalesce(round(extract(epoch FROM replay_lag)::numeric, 1), 0) || ' s)', ', ')
    FROM pg_stat_replication), 'none')
ELSE
  'standby of ' || coalesce((SELECT sender_host || ' (' || status || ')' FROM pg_stat_wal_receiver), 'nothing')
  || ', last replayed commit ' || coalesce(round(extract(epoch FROM now() - pg_last_xact_replay_timestamp())::numeric, 1)
  || ' s ago', 'none')
END
"""


def _database_status(name, conn):
    state = conn.sudo(f"psql -XAt -c {shlex.quote(' '.join(_REPLICATION_QUERY.split()))}",
                      hide=True, warn=True, user="postgres")
    if state.ok:
        print(f"{name}: PostgreSQL {state.stdout.strip()}")
        return
    fenced = conn.sudo("cat /var/lib/postgresql/*/main/FENCED-by-failover", hide=True, warn=True)
    reason = (state.stderr.strip().splitlines() or [f"psql exited {state.exited}"])[-1]
    print(f"{name}: PostgreSQL not answering ({reason})"
          + (f"; {fenced.stdout.strip().splitlines()[0]}" if fenced.ok and fenced.stdout.strip() else ""))


@task
def status(c, inventory=DEFAULT_INVENTORY):
    """Show the live release, the health check and the services on every web
    host; PostgreSQL on every db and db_replica host (a primary's standbys and
    their lag, a standby's primary); the newest backup, the WAL archive lag and
    pgBackRest's check on every backup host."""
    webs = _inventory_hosts(inventory, "web")
    backups = _inventory_hosts(inventory, "backup")
    databases = _inventory_hosts(inventory, "db:db_replica")
    if not webs and not backups:
        raise SystemExit(f"no hosts in group 'web' or 'backup' of {inventory}")
    if webs:
        _on_web_hosts(inventory, _status)
    if databases:
        _on_hosts(databases, _database_status)
    if backups:
        _on_hosts(backups, _backup_status)


@task
def logs(c, inventory=DEFAULT_INVENTORY, lines=50):
    """Print the last lines of the app's journal and nginx's error log on every web host."""
    def show(name, conn):
        print(f"===== {name}: forum.service")
        conn.sudo(f"journalctl -u forum.service -n {int(lines)} --no-pager", warn=True)
        print(f"===== {name}: nginx error log")
        conn.sudo(f"tail -n {int(lines)} /var/log/nginx/error.log", warn=True)

    _on_web_hosts(inventory, show)


def _playbook(playbook, inventory, extra, variables=None):
    """Run a playbook of this repository; `variables` go in as one JSON -e
    (a value with spaces or quotes stays one value for the role's checks)."""
    argv = [_tool("ansible-playbook"), "-i", str(ROOT / inventory), playbook]
    if variables:
        argv += ["-e", json.dumps(variables)]
    argv += shlex.split(extra)
    print("+ " + shlex.join(argv), flush=True)
    result = subprocess.run(argv, cwd=ROOT, env=_ansible_env(), check=False)
    if result.returncode != 0:
        sys.exit(result.returncode)


@task
def deploy(c, inventory=DEFAULT_INVENTORY, serial=0, extra=""):
    """Deploy the forum: run playbooks/deploy.yml (serial: hosts per batch; extra: more ansible-playbook options)."""
    _playbook("playbooks/deploy.yml", inventory, extra,
              {"forum_deploy_serial": int(serial)} if int(serial) else None)


@task
def rollback(c, inventory=DEFAULT_INVENTORY, to="", extra=""):
    """Go back to the release before current on every web host, or to release `to`."""
    _playbook("playbooks/rollback.yml", inventory, extra, {"forum_rollback_to": to} if to else None)
