# -*- coding: utf-8 -*-
"""Controller side of forum_stack_state: the digest of everything on the
controller that decides what a converge does to a host (the playbooks' and
roles' code, the host's variables, the inventory's shape and the other hosts'
addresses, the host facts the roles read, the app release), then the module
on the host."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import socket

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase

# Names whose values change from run to run or belong to Ansible itself.
SKIPPED_VARS = (
    "ansible_*", "_*", "*_result", "stamp_*", "hostvars", "groups", "group_names", "vars", "environment",
    "omit", "play_hosts", "playbook_dir", "inventory_dir", "inventory_file", "inventory_hostname_short",
    "role_name", "role_names", "role_path", "role_uuid", "module_setup", "gather_subset",
    "discovered_interpreter_*", "harden_*",
)
# Facts the roles' settings derive from; the rest (uptime, free memory) changes by itself.
FACTS = ("distribution", "distribution_release", "distribution_version", "architecture", "memtotal_mb",
         "processor_vcpus", "all_ipv4_addresses", "virtualization_type", "virtualization_role",
         "service_mgr", "hostname", "fqdn")
MODULE_ARGS = ("stamp_file", "record", "paths", "exclude", "commands")


def code_digest(roots):
    digest = hashlib.sha256()
    for root in sorted(roots):
        if os.path.isfile(root):
            files = [root]
        else:
            files = []
            for dirpath, dirnames, filenames in os.walk(root):
                dirnames[:] = sorted(d for d in dirnames if d not in ("__pycache__", ".git"))
                files.extend(os.path.join(dirpath, f) for f in sorted(filenames) if not f.endswith(".pyc"))
        for path in files:
            with open(path, "rb") as handle:
                digest.update(os.path.relpath(path, os.path.dirname(root)).encode() + b"\0" + handle.read() + b"\0")
    return digest.hexdigest()


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def _resolve(self, value):
        try:
            return self._templar.template(value)
        except Exception:  # an unresolvable value counts as written
            return repr(value)

    def _facts(self, facts):
        picked = {name: facts.get(name) for name in FACTS}
        picked["default_ipv4"] = (facts.get("default_ipv4") or {}).get("address")
        picked["all_ipv4_addresses"] = sorted(picked["all_ipv4_addresses"] or [])
        return picked

    def input_parts(self, task_vars, code_roots, extra, shared_vars):
        """One digest per input: the code, each variable of the host, each
        host's shared variables and facts, the groups, each extra input."""
        omit = task_vars.get("omit") or "\0no omit\0"

        def digest(value):
            text = json.dumps(value, sort_keys=True, default=repr).replace(omit, "<omit>")
            return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()

        parts = {"code": code_digest(code_roots),
                 "groups": digest({g: sorted(h) for g, h in task_vars["groups"].items()}),
                 "facts": digest(self._facts(task_vars.get("ansible_facts", {}) or {})),
                 # fail2ban never bans the controller's address: another
                 # controller must not take the fast path on its first run.
                 "controller": digest(socket.gethostname())}
        # Facts (gathered, cached, or returned by modules such as getent)
        # appear as variables too; the ones that matter are in "facts".
        facts = set(task_vars.get("ansible_facts", {}) or {})
        for name in sorted(task_vars):
            if name in facts or any(fnmatch.fnmatchcase(name, pattern) for pattern in SKIPPED_VARS):
                continue
            parts[f"variable {name}"] = digest(self._resolve(task_vars[name]))
        hostvars = task_vars["hostvars"]
        for host in sorted(task_vars["groups"].get("all", [])):
            values = hostvars[host]
            shared = {name: self._resolve(values.get(name)) for name in shared_vars}
            shared["facts"] = self._facts(values.get("ansible_facts", {}) or {})
            parts[f"host {host}"] = digest(shared)
        for name, value in sorted((self._resolve(extra) or {}).items()):
            parts[f"input {name}"] = digest(value)
        return parts

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        parts = args.get("input_parts")
        if not parts:
            roots = args.get("code_roots") or []
            if not roots:
                raise AnsibleError("forum_stack_state: code_roots (or input_parts) is required")
            parts = self.input_parts(task_vars, roots, args.get("extra_inputs", {}), args.get("shared_vars", []))
        module_args = {name: args[name] for name in MODULE_ARGS if name in args}
        module_args["input_parts"] = parts
        result.update(self._execute_module(module_name="forum_stack_state", module_args=module_args,
                                           task_vars=task_vars))
        # For the record at the end of the run; the tasks are no_log (the
        # digests of secrets stay out of the output).
        result["input_parts"] = parts
        return result
