# Sourced by the image and release scripts: sets `target_dir` (Cargo's target directory) and
# `version` (the operator's version) from one `cargo metadata` call. Needs `repo`.
IFS=$'\t' read -r target_dir version < <(cd "$repo" && cargo metadata --format-version 1 --no-deps --locked |
  python3 -c 'import json,sys; m=json.load(sys.stdin); print(m["target_directory"], next(p["version"] for p in m["packages"] if p["name"]=="sitewise-operator"), sep="\t")')
