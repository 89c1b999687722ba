"""The guest's third-party packages, at build time: bytecode, snapshot, import check.

sandbox/build.sh installs the pinned wheels into a site directory, which
componentize-py mounts (read-write) while it runs ``app.py``'s top level, and which
the host mounts again, read-only and at the same guest path, into every run.  So:

* modules imported now are in the snapshot: a run pays nothing to use them;
* any other module of the site is imported on first use at run time, from bytecode
  compiled now by this very interpreter (unchecked-hash .pyc files: no source stat,
  no recompilation, nothing to write on the read-only mount);
* package data (tzdata's zone files, pygal's CSS) is read from the mount at run time.

The manifest (``sandgraph-packages.json``, written by sandbox/guest_site.py) lists
each distribution's top-level modules; every module of a ``preloaded`` package is
imported here (that is the import check: one that fails fails the build with the
package's name), and the manifest is rewritten with the guest's mount point and
version for the host.
"""

import importlib
import json
import os
import sys

MANIFEST = "sandgraph-packages.json"


def site_dir():
    """The sys.path entry holding the manifest (the mounted site directory)."""
    for entry in sys.path:
        if entry and os.path.isfile(os.path.join(entry, MANIFEST)):
            return entry
    raise ImportError(f"sandgraph guest build: no {MANIFEST} on sys.path {sys.path!r} "
                      "(build the guest with sandbox/build.sh)")


def load_manifest(site):
    with open(os.path.join(site, MANIFEST), encoding="utf-8") as f:
        return json.load(f)


def compile_bytecode(site):
    """Compile every module of the site to unchecked-hash bytecode; returns False if
    some file did not compile (it then fails at import, with its own SyntaxError)."""
    import compileall
    import py_compile
    import re
    import warnings

    with warnings.catch_warnings():  # e.g. SyntaxWarnings in sympy's own test runner
        warnings.simplefilter("ignore")
        return bool(compileall.compile_dir(
            site, quiet=2, workers=1, rx=re.compile(r"/tests?/"),  # packages' own tests
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH))


def _import_all(packages, failures):
    for package in packages:
        for name in package["modules"]:
            try:
                importlib.import_module(name)
            except Exception as exc:  # noqa: BLE001 -- report every failure at once
                failures.append(f"package {package['name']} {package['version']} "
                                f"({package['requirements']}): import {name} failed: "
                                f"{type(exc).__name__}: {exc}")


def preload(manifest):
    """Import every package's top-level modules into the snapshot; raise ImportError
    naming each package that does not import."""
    expected = manifest.get("python")
    actual = ".".join(map(str, sys.version_info[:3]))
    if expected and expected != actual:
        raise ImportError(f"sandgraph guest build: the guest's CPython is {actual}, but the "
                          f"requirements were resolved for {expected} (GUEST_PYTHON in "
                          "sandbox/build.sh)")
    failures = []
    _import_all([p for p in manifest["packages"] if p["preloaded"]], failures)
    if failures:
        raise ImportError("sandgraph guest build: packages that do not import in the guest "
                          "(pure Python on CPython " + actual + " under WASI):\n  "
                          + "\n  ".join(failures))


def write_manifest(site, manifest):
    """Record where the site is mounted and what the guest is, for the host."""
    manifest = dict(manifest, site_mount=site, python=sys.version.split()[0],
                    implementation=f"CPython {sys.version.split()[0]} ({sys.platform})")
    with open(os.path.join(site, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
