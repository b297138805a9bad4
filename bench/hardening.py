#!/usr/bin/env python3
"""Objective scores for the hardening roles: ssh-audit and lynis, before and
after playbooks/harden.yml, on Debian 12 and Debian 13.

Uses the Molecule scenario `hardening` (containers hard-deb12, hard-deb13):
destroy, create, prepare (root key only), measure the stock hosts, converge,
measure the hardened hosts, destroy (unless --keep). Prints a table; it is a
benchmark, not a test (nothing is asserted).

How the figures are taken:
- ssh-audit (the PyPI package of this venv) runs INSIDE each container
  against 127.0.0.1: ufw's SSH rate limit (6 new connections per 30 s) rightly
  refuses the burst of connections ssh-audit opens from outside. Failures and
  warnings are counted as ssh-audit's [fail] / [warn] notes.
- lynis (Debian's package, installed into the container without
  recommends) runs `lynis audit system --quick`; the hardening index is read
  from its report.

Run from the repository root with the venv active:
    pip install ssh-audit
    python bench/hardening.py [--keep] [--skip-stock]
"""
import argparse
import concurrent.futures
import os
import pathlib
import re
import subprocess
import sys

import ssh_audit

REPO = pathlib.Path(__file__).resolve().parents[1]
SCENARIO = "hardening"
HOSTS = {"hard-deb12": "Debian 12", "hard-deb13": "Debian 13"}


def sh(argv, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, **kwargs)


def molecule(action):
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    result = sh(["molecule", action, "-s", SCENARIO], cwd=REPO, env=env)
    if result.returncode != 0:
        sys.exit(f"molecule {action} failed:\n{result.stdout[-3000:]}\n{result.stderr[-2000:]}")


def ssh_audit_counts(container):
    """(failures, warnings) of sshd on `container`, audited over loopback."""
    package = pathlib.Path(ssh_audit.__file__).parent
    sh(["docker", "exec", container, "rm", "-rf", "/root/ssh_audit"])
    copied = sh(["docker", "cp", str(package), f"{container}:/root/ssh_audit"])
    if copied.returncode != 0:
        return None, None
    result = sh(["docker", "exec", "-w", "/root", container, "sh", "-c",
                 "rm -rf ssh_audit/__pycache__; python3 -m ssh_audit -n 127.0.0.1"])
    text = result.stdout
    if "(gen) banner" not in text:
        return None, None
    return text.count("[fail]"), text.count("[warn]")


def lynis_index(container):
    """lynis hardening index of `container`."""
    install = sh(["docker", "exec", "-e", "DEBIAN_FRONTEND=noninteractive", container, "sh", "-c",
                  "apt-get update -qq && apt-get install -y -qq --no-install-recommends lynis"])
    if install.returncode != 0:
        return None
    sh(["docker", "exec", container, "lynis", "audit", "system", "--quick", "--no-colors"])
    report = sh(["docker", "exec", container, "cat", "/var/log/lynis-report.dat"]).stdout
    match = re.search(r"^hardening_index=(\d+)", report, re.M)
    return int(match.group(1)) if match else None


def measure():
    def one(container):
        fails, warns = ssh_audit_counts(container)
        return container, {"fail": fails, "warn": warns, "lynis": lynis_index(container)}

    with concurrent.futures.ThreadPoolExecutor(len(HOSTS)) as pool:
        return dict(pool.map(one, HOSTS))


def show(value):
    return "-" if value is None else str(value)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", action="store_true", help="leave the hardened containers running")
    parser.add_argument("--skip-stock", action="store_true", help="only measure the hardened hosts")
    args = parser.parse_args()

    molecule("destroy")
    molecule("create")
    molecule("prepare")
    stock = {} if args.skip_stock else measure()
    molecule("converge")
    hardened = measure()
    if not args.keep:
        molecule("destroy")

    print(f"{'host':<11} {'state':<9} {'ssh-audit fail':>14} {'ssh-audit warn':>14} {'lynis index':>11}")
    for container, label in HOSTS.items():
        for state, figures in (("stock", stock.get(container)), ("hardened", hardened[container])):
            if figures is None:
                continue
            print(f"{label:<11} {state:<9} {show(figures['fail']):>14} {show(figures['warn']):>14} "
                  f"{show(figures['lynis']):>11}")


if __name__ == "__main__":
    main()
