#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Fingerprint of what forum-stack manages on a host, and the stamp of the
last converge. Read-only unless record=true."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: forum_stack_state
short_description: Fingerprint a host's managed state; compare it with, or record, the stamp of the last converge
description:
  - Hashes the host state forum-stack manages (file trees with content,
    modes, owners and link targets; installed package names; the state of
    every enabled systemd unit; runtime sysctl values of the keys set in
    /etc/sysctl.d; the ufw chains loaded in the kernel; the output of
    read-only commands) into one fingerprint.
  - With I(record=false) it reads the stamp file and reports which inputs
    and which parts of the fingerprint differ from it.
  - With I(record=true) it writes the stamp file (mode 0600). Writing the
    stamp is bookkeeping and is not reported as a change.
  - The action plugin of the same name computes I(input_parts) on the controller.
options:
  input_parts:
    description: Digests of the controller-side inputs (code, each variable, the app release...), by name.
    type: dict
    required: true
  stamp_file:
    description: Where the stamp lives on the host.
    type: path
    required: true
  record:
    description: Write the stamp instead of comparing with it.
    type: bool
    default: false
  paths:
    description: Trees to fingerprint; C(path) may be a glob; C(content) hashes file contents; C(depth) limits the walk (0 = the path itself).
    type: list
    elements: dict
    default: []
  exclude:
    description: Glob patterns of paths left out (volatile files the stack does not manage).
    type: list
    elements: str
    default: []
  commands:
    description: Read-only commands (argv lists) whose exit code and output are part of the fingerprint.
    type: list
    elements: list
    default: []
author: forum-stack
"""

import fnmatch
import glob
import hashlib
import json
import os
import stat
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule

SYSTEMD_DIRS = ("/etc/systemd/system",)
STABLE_STATE = {"active": "active", "reloading": "active", "activating": "active",
                "refreshing": "active", "deactivating": "inactive", "inactive": "inactive"}


class Fingerprint:
    def __init__(self, exclude):
        self.hash = hashlib.sha256()
        self.exclude = exclude
        self.parts = {}

    def part(self, name, text):
        digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()
        self.parts[name] = digest
        self.hash.update(f"{name}\0{digest}\n".encode())

    def excluded(self, path):
        return any(fnmatch.fnmatchcase(path, pattern) for pattern in self.exclude)


def describe(path, content):
    """One line per path: type, mode, owner, group and content or link target."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return f"{path} absent"
    line = f"{path} {stat.S_IFMT(st.st_mode):o} {stat.S_IMODE(st.st_mode):o} {st.st_uid}:{st.st_gid}"
    if stat.S_ISLNK(st.st_mode):
        return f"{line} -> {os.readlink(path)}"
    if stat.S_ISREG(st.st_mode):
        if not content:
            return f"{line} {st.st_size}"
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 16), b""):
                    digest.update(block)
        except OSError as error:
            return f"{line} unreadable {error.errno}"
        return f"{line} {digest.hexdigest()}"
    return line


def walk_tree(fp, root, content, depth):
    lines = []
    matches = sorted(glob.glob(root)) if glob.has_magic(root) else [root]
    if not matches:
        return [f"{root} absent"]
    for top in matches:
        base = top.rstrip("/").count("/")
        lines.append(describe(top, content))
        if not os.path.isdir(top) or os.path.islink(top) or depth == 0:
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            level = dirpath.rstrip("/").count("/") - base
            dirnames.sort()
            kept = []
            for name in dirnames:
                path = os.path.join(dirpath, name)
                if fp.excluded(path):
                    continue
                lines.append(describe(path, content))
                # os.walk does not follow links to directories: keep it so.
                if depth is None or level + 1 < depth:
                    kept.append(name)
            dirnames[:] = kept
            for name in sorted(filenames):
                path = os.path.join(dirpath, name)
                if not fp.excluded(path):
                    lines.append(describe(path, content))
    return lines


def installed_packages():
    names = []
    try:
        with open("/var/lib/dpkg/status", encoding="utf-8", errors="replace") as handle:
            package = None
            for line in handle:
                if line.startswith("Package: "):
                    package = line.split(None, 1)[1].strip()
                elif line.startswith("Architecture: ") and package:
                    package = f"{package}:{line.split(None, 1)[1].strip()}"
                elif line.startswith("Status: ") and package and line.rstrip().endswith(" installed"):
                    names.append(package)
    except OSError:
        return "no dpkg"
    return "\n".join(sorted(set(names)))


def enabled_units(module):
    """Every unit some target wants (links in /etc/systemd/system/*.wants),
    with its enablement and a settled ActiveState."""
    units = set()
    for base in SYSTEMD_DIRS:
        for wants in glob.glob(os.path.join(base, "*.wants")) + glob.glob(os.path.join(base, "*.requires")):
            units.update(os.listdir(wants))
    if not units:
        return ""
    rc, out, _ = module.run_command(["systemctl", "show", "--property=Id,ActiveState,UnitFileState", "--"]
                                    + sorted(units))
    if rc != 0:
        return f"systemctl rc {rc}"
    lines = []
    for block in out.strip().split("\n\n"):
        props = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        state = STABLE_STATE.get(props.get("ActiveState", ""), props.get("ActiveState", ""))
        lines.append(f"{props.get('Id', '?')} {props.get('UnitFileState', '')} {state}")
    return "\n".join(sorted(lines))


def sysctl_values():
    keys = set()
    for path in sorted(glob.glob("/etc/sysctl.d/*.conf")) + ["/etc/sysctl.conf"]:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    line = line.strip().lstrip("-")
                    if line and not line.startswith(("#", ";")) and "=" in line:
                        keys.add(line.split("=", 1)[0].strip())
        except OSError:
            continue
    lines = []
    for key in sorted(keys):
        try:
            with open("/proc/sys/" + key.replace(".", "/"), encoding="utf-8") as handle:
                value = " ".join(handle.read().split())
        except OSError:
            value = "unavailable"
        lines.append(f"{key} {value}")
    return "\n".join(lines)


def firewall_rules(module):
    """ufw's chains as loaded in the kernel (fail2ban's own chains and the
    packet counters are left out: they change by themselves)."""
    lines = []
    for tool in ("iptables", "ip6tables"):
        path = module.get_bin_path(tool)
        if not path:
            continue
        rc, out, _ = module.run_command([path, "-w", "-S"])
        lines.append(f"{tool} rc {rc}")
        lines.extend(line for line in out.splitlines() if line.startswith("-P ") or "ufw-" in line)
    return "\n".join(lines)


def run_commands(module, commands):
    lines = []
    for argv in commands:
        try:
            rc, out, err = module.run_command([str(a) for a in argv])
        except Exception as error:  # a missing program is a state too
            rc, out, err = 127, "", str(error)
        lines.append(f"$ {' '.join(map(str, argv))}\nrc {rc}\n{out}")
    return "\n".join(lines)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            input_parts=dict(type="dict", required=True, no_log=True),
            stamp_file=dict(type="path", required=True),
            record=dict(type="bool", default=False),
            paths=dict(type="list", elements="dict", default=[]),
            exclude=dict(type="list", elements="str", default=[]),
            commands=dict(type="list", elements="list", default=[]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    started = time.monotonic()
    fp = Fingerprint(params["exclude"] + [params["stamp_file"], params["stamp_file"] + ".tmp"])
    for entry in params["paths"]:
        depth = entry.get("depth")
        lines = walk_tree(fp, entry["path"], bool(entry.get("content", False)),
                          None if depth is None else int(depth))
        fp.part(f"path {entry['path']}", "\n".join(lines))
    fp.part("packages", installed_packages())
    fp.part("units", enabled_units(module))
    fp.part("sysctl", sysctl_values())
    fp.part("firewall", firewall_rules(module))
    fp.part("commands", run_commands(module, params["commands"]))
    fingerprint = fp.hash.hexdigest()

    inputs = params["input_parts"]
    stamp = {}
    try:
        with open(params["stamp_file"], encoding="utf-8") as handle:
            stamp = json.load(handle)
    except (OSError, ValueError):
        stamp = {}
    recorded_inputs = stamp.get("input_parts", {})
    inputs_differ = sorted(name for name in set(inputs) | set(recorded_inputs)
                           if inputs.get(name) != recorded_inputs.get(name))
    differs = sorted(name for name, digest in fp.parts.items() if stamp.get("parts", {}).get(name) != digest)
    result = dict(changed=False, fingerprint=fingerprint, stamped=bool(stamp),
                  inputs_differ=inputs_differ, differs=differs,
                  current=bool(stamp) and not inputs_differ and stamp.get("fingerprint") == fingerprint,
                  recorded_at=stamp.get("recorded", ""), seconds=round(time.monotonic() - started, 3))

    if params["record"] and not module.check_mode:
        directory = os.path.dirname(params["stamp_file"])
        os.makedirs(directory, mode=0o755, exist_ok=True)
        tmp = params["stamp_file"] + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"input_parts": inputs, "fingerprint": fingerprint, "parts": fp.parts,
                       "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}, handle, indent=1)
        os.replace(tmp, params["stamp_file"])
        result["recorded"] = True
    module.exit_json(**result)


if __name__ == "__main__":
    main()
