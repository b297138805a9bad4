#!/usr/bin/env python3
"""Download a release's wheels once, on the controller, for one web host kind.

Reads the release's pinned requirements on stdin and writes
<cache>/wheels-cp<XY>-<arch>-<digest>.tar: every wheel those requirements
need on CPython X.Y / Linux <arch>, in an uncompressed tar whose bytes depend
only on the wheels (sorted names, fixed times and owners), so an unchanged
requirements file gives the same file and shipping it again changes nothing.

The web host installs from it with `pip --no-index`: no package index is
asked, which is most of what a virtualenv build costs, and the host needs no
access to PyPI. Several hosts of one run may ask at once (the free strategy):
a lock file makes the first one download and the others wait and reuse it.

Wheels are chosen for glibc 2.34 or older (manylinux tags up to
manylinux_2_34): every supported platform (Debian 12/13, Ubuntu 22.04/24.04)
has a newer glibc. pip on the host checks the tags again when it installs.

Prints JSON: {"tar": "<path>", "created": true|false, "wheels": N}.
"""
import argparse
import fcntl
import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile

GLIBC_MINOR_MAX = 34


def cpython_tag(python):
    """cp311 for 3.11: the wheel tag of that interpreter and its ABI."""
    return "cp" + python.replace(".", "")


def platforms(arch):
    tags = [f"manylinux_2_{minor}_{arch}" for minor in range(GLIBC_MINOR_MAX, 4, -1)]
    # The legacy aliases of manylinux_2_17, _2_12 and _2_5.
    tags += [f"manylinux{alias}_{arch}" for alias in ("2014", "2010", "1")]
    return tags + ["any"]


def download(requirements, python, arch, dest):
    abi = cpython_tag(python)
    cmd = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        "--dest", dest, "--only-binary=:all:", "--python-version", python,
        "--implementation", "cp", "--abi", abi, "--abi", "abi3", "--abi", "none",
        "--requirement", requirements,
    ]
    for tag in platforms(arch):
        cmd += ["--platform", tag]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        sys.exit(f"pip download failed for CPython {python} on {arch} (set forum_wheelhouse: false to let "
                 f"each web host use the package index instead):\n{done.stdout[-4000:]}")


def pack(src, tar_path):
    def clean(info):
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mtime = 0
        info.mode = 0o644
        return info

    names = sorted(n for n in os.listdir(src) if n.endswith(".whl"))
    with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            tar.add(os.path.join(src, name), arcname=name, filter=clean)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", required=True, help="controller directory of the wheelhouses")
    parser.add_argument("--python", required=True, help="the host's CPython, as X.Y")
    parser.add_argument("--arch", required=True, help="the host's machine, e.g. x86_64 or aarch64")
    args = parser.parse_args()

    requirements = sys.stdin.buffer.read()
    digest = hashlib.sha256(requirements).hexdigest()[:16]
    tag = cpython_tag(args.python)
    os.makedirs(args.cache, exist_ok=True)
    tar_path = os.path.join(args.cache, f"wheels-{tag}-{args.arch}-{digest}.tar")

    with open(tar_path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        created = False
        if not os.path.exists(tar_path):
            with tempfile.TemporaryDirectory(dir=args.cache) as work:
                req = os.path.join(work, "requirements.txt")
                with open(req, "wb") as out:
                    out.write(requirements)
                wheels = os.path.join(work, "wheels")
                download(req, args.python, args.arch, wheels)
                pack(wheels, tar_path + ".partial")
                os.replace(tar_path + ".partial", tar_path)
            created = True
        with tarfile.open(tar_path) as tar:
            count = len(tar.getnames())
    print(json.dumps({"tar": tar_path, "created": created, "wheels": count}))


if __name__ == "__main__":
    main()
