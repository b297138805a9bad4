#!/usr/bin/env python3
"""Deploy a new forum release and roll it back while pages are requested
continuously; print request counts, failed requests and deploy durations.

Figures, not a test (molecule/scaleout's tests reuse it with a small load,
through the load balancer). The load goes only to the web hosts of the given
inventory (the project's own lab or Molecule containers), from a bounded
number of threads for a bounded time:

    molecule converge -s default
    python bench/deploy_under_load.py \
        --inventory ~/.ansible/tmp/molecule.*.default/inventory --threads 4

Exit status 0 when both playbooks succeeded and no request failed.
"""
import argparse
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATHS = ("/", "/healthz", "/static/style.css")


def tool(name):
    """An Ansible command: on PATH or next to this Python (the project's .venv)."""
    return shutil.which(name) or str(Path(sys.executable).parent / name)


def web_addresses(inventory):
    """Address of every host of group `web`, as Ansible sees it."""
    out = subprocess.run([tool("ansible-inventory"), "-i", str(inventory), "--list"],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    data = json.loads(out)
    hostvars = data.get("_meta", {}).get("hostvars", {})
    names = data.get("web", {}).get("hosts", [])
    return {name: hostvars.get(name, {}).get("ansible_host", name) for name in names}


def app_copy(marker, broken=False):
    """A copy of app/ that makes a new release id (and, if `broken`, a
    release whose /healthz answers 503)."""
    target = Path(tempfile.mkdtemp(prefix="forum-release-"))
    shutil.copytree(ROOT / "app", target / "app",
                    ignore=shutil.ignore_patterns(".venv", "instance", "__pycache__", ".pytest_cache", "*.pyc", ".env"))
    with open(target / "app" / "wsgi.py", "a", encoding="utf-8") as wsgi:
        wsgi.write(f"\n# release marker: {marker}\n")
        if broken:
            wsgi.write(
                "\n\n@app.before_request\n"
                "def _deliberately_broken():\n"
                "    from flask import request\n"
                "    if request.path == '/healthz':\n"
                "        return 'deliberately broken release', 503\n"
                "    return None\n")
    return target / "app"


class Load:
    """Threads requesting pages over HTTPS until stopped or out of budget."""

    def __init__(self, addresses, threads, max_seconds, max_requests):
        self.addresses = list(addresses)
        self.threads = threads
        self.deadline = time.monotonic() + max_seconds
        self.max_requests = max_requests
        self.counts = Counter()
        self.failures = Counter()
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.context = ssl.create_default_context()
        self.context.check_hostname = False
        self.context.verify_mode = ssl.CERT_NONE  # the lab's self-signed certificate
        self.workers = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def _run(self, index):
        n = index
        while not self.stop_event.is_set() and time.monotonic() < self.deadline:
            with self.lock:
                if sum(self.counts.values()) >= self.max_requests:
                    return
            address = self.addresses[n % len(self.addresses)]
            path = PATHS[n % len(PATHS)]
            n += 1
            key = f"{address}{path}"
            try:
                with urllib.request.urlopen(f"https://{address}{path}", timeout=30, context=self.context) as response:
                    response.read()
                    ok = response.status == 200
                    detail = str(response.status)
            except urllib.error.HTTPError as error:
                ok, detail = False, str(error.code)
            except OSError as error:
                ok, detail = False, type(error).__name__
            with self.lock:
                self.counts[key] += 1
                if not ok:
                    self.failures[f"{key} {detail}"] += 1

    def __enter__(self):
        for worker in self.workers:
            worker.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        for worker in self.workers:
            worker.join(timeout=60)

    @property
    def total(self):
        return sum(self.counts.values())

    @property
    def failed(self):
        return sum(self.failures.values())


def playbook(inventory, name, *extra):
    """Run a playbook of this repository; returns (seconds, CompletedProcess)."""
    argv = [tool("ansible-playbook"), "-i", str(inventory), str(ROOT / "playbooks" / name), *extra]
    start = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT,
                            env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
                                 "ANSIBLE_ROLES_PATH": str(ROOT / "roles")})
    return time.monotonic() - start, result


def releases(addresses):
    """The release each web host reports in /healthz."""
    context = ssl._create_unverified_context()  # self-signed lab certificate
    seen = {}
    for name, address in addresses.items():
        try:
            with urllib.request.urlopen(f"https://{address}/healthz", timeout=10, context=context) as response:
                seen[name] = json.loads(response.read()).get("release")
        except (OSError, ValueError) as error:
            seen[name] = f"error: {error}"
    return seen


def run(inventory, threads=4, max_seconds=900, max_requests=200_000, extra=(), log=print,
        targets=None, read_releases=releases, rollback_extra=()):
    """Deploy a new release then roll back under load; returns the figures.
    `extra` goes to both playbooks, `rollback_extra` to the rollback only.

    The load goes to `targets` (addresses; default the web hosts themselves,
    e.g. a load balancer's instead); `read_releases` maps {host: address} to
    {host: live release} (default: each web host's /healthz from here, which
    a firewall that admits only the load balancers refuses)."""
    addresses = web_addresses(inventory)
    if not addresses:
        raise SystemExit(f"no web hosts in {inventory}")
    source = app_copy(f"bench {time.time()}")
    figures = {"hosts": addresses, "before": read_releases(addresses)}
    log(f"web hosts: {addresses}; live releases: {figures['before']}")
    with Load(targets or addresses.values(), threads, max_seconds, max_requests) as load:
        time.sleep(2)
        figures["deploy_seconds"], deploy = playbook(
            inventory, "deploy.yml", "-e", f"forum_source_dir={source}", *extra)
        figures["after_deploy"] = read_releases(addresses)
        log(f"deploy: rc {deploy.returncode} in {figures['deploy_seconds']:.1f} s -> {figures['after_deploy']}")
        time.sleep(2)
        figures["rollback_seconds"], rollback = playbook(inventory, "rollback.yml", *extra, *rollback_extra)
        figures["after_rollback"] = read_releases(addresses)
        log(f"rollback: rc {rollback.returncode} in {figures['rollback_seconds']:.1f} s -> {figures['after_rollback']}")
        time.sleep(2)
    shutil.rmtree(source.parent, ignore_errors=True)
    figures.update(deploy_rc=deploy.returncode, rollback_rc=rollback.returncode,
                   requests=load.total, failed=load.failed, by_url=dict(load.counts),
                   failures=dict(load.failures))
    for name, result in (("deploy", deploy), ("rollback", rollback)):
        if result.returncode != 0:
            log(f"--- {name} output (tail)\n" + "\n".join((result.stdout + result.stderr).splitlines()[-40:]))
    return figures


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inventory", required=True, help="Ansible inventory with a `web` group")
    parser.add_argument("--threads", type=int, default=4, help="load threads (1-16)")
    parser.add_argument("--max-seconds", type=int, default=900, help="stop the load after this long")
    parser.add_argument("--max-requests", type=int, default=200_000, help="stop the load after this many")
    parser.add_argument("--serial", type=int, help="forum_deploy_serial (hosts per batch)")
    args = parser.parse_args()
    if not 1 <= args.threads <= 16:
        parser.error("--threads must be 1-16")
    extra = ["-e", f"forum_deploy_serial={args.serial}"] if args.serial else []
    figures = run(args.inventory, args.threads, args.max_seconds, args.max_requests, extra)
    print(f"requests: {figures['requests']}  failed: {figures['failed']}")
    for url, count in sorted(figures["by_url"].items()):
        print(f"  {count:6d}  {url}")
    for failure, count in sorted(figures["failures"].items()):
        print(f"  FAILED {count:6d}  {failure}")
    print(f"deploy: {figures['deploy_seconds']:.1f} s (rc {figures['deploy_rc']})  "
          f"rollback: {figures['rollback_seconds']:.1f} s (rc {figures['rollback_rc']})")
    ok = figures["failed"] == 0 and figures["deploy_rc"] == 0 and figures["rollback_rc"] == 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
