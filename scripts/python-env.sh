#!/usr/bin/env bash
# Creates (once) a virtual environment with the pinned boto3, pytest and moto (a real STS for
# the multi-account tests) for the emulator's
# Python contract tests, cached under $HOME keyed by the requirements file. Prints its path.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
req="$repo/emulator/contract-py/requirements.txt"
key=$(sha256sum "$req" | cut -c1-12)
venv="${SITEWISE_VENV_CACHE:-$HOME/.cache/sitewise-operator}/venv-$key"
if [[ ! -x "$venv/bin/pytest" ]]; then
  echo "[python-env] creating $venv with $(tr '\n' ' ' < "$req")" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
fi
echo "$venv"
