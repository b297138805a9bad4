#!/usr/bin/env bash
# Pack the app directory's working tree into a git bundle whose commit id
# depends only on the content (fixed author and dates), so an unchanged app
# gives the same release id and an unchanged deploy changes nothing.
# Prints JSON: {"commit": "<sha>", "bundle": "<path>"}.
set -euo pipefail
src=$(cd "$1" && pwd)
out=$2
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export GIT_DIR="$work/git" GIT_WORK_TREE="$src"
export GIT_AUTHOR_NAME=forum-stack GIT_AUTHOR_EMAIL=forum-stack@localhost
export GIT_COMMITTER_NAME=forum-stack GIT_COMMITTER_EMAIL=forum-stack@localhost
export GIT_AUTHOR_DATE="2000-01-01T00:00:00Z" GIT_COMMITTER_DATE="2000-01-01T00:00:00Z"
git init -q -b main
# Honour the app's .gitignore; never ship local virtualenvs or databases.
printf '%s\n' .venv/ venv/ instance/ __pycache__/ '*.pyc' .pytest_cache/ '*.sqlite' '*.db' .env >"$GIT_DIR/info/exclude"
git add -A
git commit -q -m "forum release" --no-gpg-sign
sha=$(git rev-parse HEAD)
bundle="$out/forum-$sha.bundle"
# Written under a name of its own, then renamed: runs side by side (several
# web hosts under the free strategy, where run_once is not once) each write
# their own copy, and the bundle in place is always whole.
if [ ! -s "$bundle" ]; then
  git bundle create --quiet "$work/release.bundle" main
  tmp=$(mktemp "$out/.forum-$sha.XXXXXX")
  cp "$work/release.bundle" "$tmp"
  chmod 0644 "$tmp"
  mv -f "$tmp" "$bundle"
fi
printf '{"commit": "%s", "bundle": "%s"}\n' "$sha" "$bundle"
