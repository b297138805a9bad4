"""Day-to-day operator tasks for the forum, with Fabric 3.

Hosts and how to reach them come from the Ansible inventory (the same one
`site.yml` uses), never from a second list:

    fab status                         # release, health and services per web host
    fab logs --lines 100               # the app's and nginx's recent logs
    fab deploy                         # run playbooks/deploy.yml
    fab rollback                       # back to the release before current
    fab rollback --to 3f2a9c1b7d4e     # or to a named release
    fab status --inventory inventory/production

`--inventory` defaults to $FORUM_INVENTORY or inventory/lab.
"""
import os
import shlex
import subprocess
from pathlib import Path

from fabric import Connection, task

ROOT = Path(__file__).resolve().parent
DEFAULT_INVENTORY = os.environ.get("FORUM_INVENTORY", "inventory/lab")
APP_ROOT = "/srv/forum"


def _inventory_hosts(inventory, pattern):
    """Resolve the hosts of `pattern` with their connection settings, with
    the inventory's templates rendered by Ansible itself."""
    from ansible.inventory.manager import InventoryManager
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar
    from ansible.vars.manager import VariableManager

    loader = DataLoader()
    manager = InventoryManager(loader=loader, sources=[str(ROOT / inventory)])
    variables = VariableManager(loader=loader, inventory=manager)
    hosts = []
    for host in manager.get_hosts(pattern):
        hostvars = variables.get_vars(host=host)
        templar = Templar(loader=loader, variables=hostvars)

        def value(name, default=None):
            raw = hostvars.get(name, default)
            return templar.template(raw) if raw is not None else None

        hosts.append({
            "name": host.name,
            "address": value("ansible_host", host.name),
            "port": int(value("ansible_port", 22)),
            "user": value("ansible_user", "deploy"),
            "key": value("ansible_ssh_private_key_file"),
            "ssh_args": value("ansible_ssh_common_args", "") or "",
        })
    return hosts


def _connect(host):
    connect_kwargs = {}
    if host["key"]:
        connect_kwargs["key_filename"] = host["key"]
    conn = Connection(host["address"], user=host["user"], port=host["port"],
                      connect_kwargs=connect_kwargs)
    for option in shlex.split(host["ssh_args"]):
        if option.startswith("UserKnownHostsFile="):
            known_hosts = option.split("=", 1)[1]
            if os.path.exists(known_hosts):
                conn.client.load_host_keys(known_hosts)
    return conn


def _web_connections(inventory):
    hosts = _inventory_hosts(inventory, "web")
    if not hosts:
        raise SystemExit(f"no hosts in group 'web' of {inventory}")
    return [(host["name"], _connect(host)) for host in hosts]


@task
def status(c, inventory=DEFAULT_INVENTORY):
    """Show the live release, the health check and the services on every web host."""
    for name, conn in _web_connections(inventory):
        release = conn.run(f"readlink {APP_ROOT}/current || echo none", hide=True, warn=True).stdout.strip()
        previous = conn.run(f"readlink {APP_ROOT}/previous || echo none", hide=True, warn=True).stdout.strip()
        # Through nginx on the host itself (self-signed certificate: -k).
        health = conn.run("curl -ksS --max-time 5 https://127.0.0.1/healthz || "
                          "curl -sS --max-time 5 http://127.0.0.1/healthz", hide=True, warn=True)
        services = conn.sudo("systemctl is-active forum.socket forum.service nginx",
                             hide=True, warn=True).stdout.split()
        server = conn.run("systemctl show -p Description --value forum.service", hide=True, warn=True).stdout.strip()
        print(f"{name}: release {Path(release).name} (previous {Path(previous).name}), {server}")
        print(f"  health: {health.stdout.strip() if health.ok else 'FAILED ' + health.stderr.strip()}")
        print("  services: " + ", ".join(
            f"{unit}={state}" for unit, state in zip(["forum.socket", "forum.service", "nginx"], services)))


@task
def logs(c, inventory=DEFAULT_INVENTORY, lines=50):
    """Print the last lines of the app's journal and nginx's error log on every web host."""
    for name, conn in _web_connections(inventory):
        print(f"===== {name}: forum.service")
        conn.sudo(f"journalctl -u forum.service -n {int(lines)} --no-pager", warn=True)
        print(f"===== {name}: nginx error log")
        conn.sudo(f"tail -n {int(lines)} /var/log/nginx/error.log", warn=True)


def _playbook(playbook, inventory, extra):
    argv = [str(ROOT / ".venv/bin/ansible-playbook"), "-i", str(ROOT / inventory), playbook, *shlex.split(extra)]
    if not os.path.exists(argv[0]):
        argv[0] = "ansible-playbook"
    print("+ " + shlex.join(argv))
    subprocess.run(argv, cwd=ROOT, check=True)


@task
def deploy(c, inventory=DEFAULT_INVENTORY, serial=0, extra=""):
    """Deploy the forum: run playbooks/deploy.yml (serial: hosts per batch; extra: more ansible-playbook options)."""
    if int(serial):
        extra = f"-e forum_deploy_serial={int(serial)} {extra}"
    _playbook("playbooks/deploy.yml", inventory, extra)


@task
def rollback(c, inventory=DEFAULT_INVENTORY, to="", extra=""):
    """Go back to the release before current on every web host, or to release `to`."""
    if to:
        extra = f"-e forum_rollback_to={shlex.quote(to)} {extra}"
    _playbook("playbooks/rollback.yml", inventory, extra)
