#!/bin/sh
# The collection scenario's dependency step: build bulwark.hardening from
# the repository and install the tarball, offline, into an empty directory,
# the only place the scenario's ANSIBLE_COLLECTIONS_PATH names. The
# collections it depends on (ansible.posix, community.general) are the
# copies the venv's ansible package bundles; ansible-galaxy finds them
# installed and installs nothing else.
#
# Usage: install-collection.sh REPOSITORY EPHEMERAL_DIRECTORY
set -eu
repo=$1
dest="$2/collections"
build="$2/build"
rm -rf "$dest" "$build"
mkdir -p "$dest" "$build"
ansible-galaxy collection build "$repo/collections/ansible_collections/bulwark/hardening" \
  --output-path "$build"
# Only the empty directory counts as installed collections (and the venv's):
# the repository's own copy must not satisfy the install.
ANSIBLE_COLLECTIONS_PATH="$dest" \
  ansible-galaxy collection install --offline -p "$dest" "$build"/bulwark-hardening-*.tar.gz
