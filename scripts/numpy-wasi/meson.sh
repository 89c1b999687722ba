#!/bin/sh
# numpy's vendored meson, run by the build machine's CPython posing as the wasm32-wasi 3.14.
SP=/tmp/np/venv/lib/python3.11/site-packages
PATH=/tmp/np/venv/bin:$PATH exec env PYTHONHOME=/tmp/np/pyroot _PYTHON_SYSCONFIGDATA_NAME=_sysconfigdata__wasi_wasm32-wasi \
  PYTHONPATH=/tmp/np/pyroot/sysconfig:$SP /root/.pyenv/versions/3.11.7/bin/python3.11 /tmp/np/numpy-2.3.5/vendored-meson/meson/meson.py "$@"
