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
    preloaded = [p for p in manifest["packages"] if p["preloaded"]]
    _import_all(preloaded, failures)
    if failures:
        raise ImportError("sandgraph guest build: packages that do not import in the guest "
                          "(pure Python on CPython " + actual + " under WASI):\n  "
                          + "\n  ".join(failures))
    _import_submodules(preloaded)


# Packages too large to snapshot whole (sympy alone has ~1,500 modules): their top
# level and the submodules below are in the snapshot, anything else is imported from
# the mounted site's bytecode on first use (docs/packages.md has the costs).
TOP_LEVEL_ONLY = {"sympy", "isympy", "networkx", "hypothesis", "mpmath", "pygments"}
EXTRA_SUBMODULES = ("sympy.stats", "sympy.physics.units", "sympy.parsing.sympy_parser",
                    "hypothesis.extra.dateutil")


def _import_submodules(packages):
    """Import every submodule of the smaller packages (a first `from dateutil import
    rrule` in a run costs nothing then).  A submodule that does not import (an optional
    dependency we do not ship, a Windows-only module) stays out and is reported on
    stderr: the package's top level imported, so the package itself works."""
    import pkgutil

    skipped = []
    for package in packages:
        for top in package["modules"]:
            if top in TOP_LEVEL_ONLY:
                continue
            path = getattr(sys.modules.get(top), "__path__", None)
            if path is None:
                continue
            for info in pkgutil.walk_packages(path, prefix=top + ".",
                                              onerror=lambda name: skipped.append(name)):
                parts = info.name.split(".")
                if {"tests", "test", "testing", "__main__", "conftest"} & set(parts):
                    continue
                try:
                    importlib.import_module(info.name)
                except Exception as exc:  # noqa: BLE001 -- optional, reported
                    skipped.append(f"{info.name} ({type(exc).__name__}: {exc})")
    for name in EXTRA_SUBMODULES:
        importlib.import_module(name)
    if skipped:
        print("sandgraph guest build: submodules left out of the snapshot (they do not "
              "import in the guest):\n  " + "\n  ".join(skipped), file=sys.stderr)


def write_manifest(site, manifest):
    """Record where the site is mounted and what the guest is, for the host."""
    manifest = dict(manifest, site_mount=site, python=sys.version.split()[0],
                    implementation=f"CPython {sys.version.split()[0]} ({sys.platform})")
    with open(os.path.join(site, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")


def settle_hypothesis(site):
    """Tell hypothesis where the guest's libraries and the run's files live, and let it
    look at every module loaded now, once, at build time.

    Before its first examples hypothesis collects constants from the source of every
    loaded module it takes for the user's own code: one that is neither under
    sysconfig's stdlib directory nor under a directory named site-packages.  The guest's
    standard library is at ``/python`` (not where sysconfig says) and its packages at
    the site mount (``/1``), so it took all of sympy, networkx, pytest, ... for user
    code, resolved ~1,800 paths and parsed their sources in every run (longer than any
    time limit).  Classified correctly and marked as seen in the snapshot, a run only
    looks at the modules it imports itself (the test file)."""
    if "hypothesis" not in sys.modules:
        return
    from pathlib import Path

    try:
        from hypothesis.internal import scrutineer
        from hypothesis.internal.conjecture import providers
        scrutineer.STDLIB_DIRS.add(Path(os.path.dirname(os.__file__)).resolve())
        scrutineer.SITE_PACKAGES_DIRS.add(Path(site).resolve())
        # The guest's own code, componentize-py's bindings: every path entry of the
        # build but the scratch dir, where a run's own modules (test files) live.
        for entry in sys.path:
            if entry.startswith("/") and entry != "/scratch" and os.path.isdir(entry):
                scrutineer.SITE_PACKAGES_DIRS.add(Path(entry).resolve())
        found = providers._get_local_constants()
        # Its example database defaults to ``.hypothesis`` under the cwd *at import*,
        # i.e. at build time, a directory that does not exist at run time (and looking
        # for a usable parent of it never ends under WASI, where "/" is no directory):
        # point it at the run's own cwd, the scratch dir (or workspace).
        from hypothesis import configuration
        if "__hypothesis_home_directory_default" not in configuration.__dict__:
            raise AttributeError("hypothesis.configuration.__hypothesis_home_directory_default")
        configuration.__dict__["__hypothesis_home_directory_default"] = Path(
            "/scratch/.hypothesis")
        from hypothesis.internal.constants_ast import is_local_module_file
        local = sorted(name for name, module in list(sys.modules.items())
                       if isinstance(getattr(module, "__file__", None), str)
                       and is_local_module_file(module.__file__))
    except (ImportError, AttributeError) as exc:
        raise ImportError("sandgraph guest build: hypothesis internals changed "
                          f"({type(exc).__name__}: {exc}); update settle_hypothesis in "
                          "sandbox/guest/sandgraph_guest/packages.py") from exc
    # Nothing the guest itself loaded is user code.
    if local:
        raise ImportError("sandgraph guest build: hypothesis still takes guest modules for "
                          f"user code ({len(found)} constants found): {local[:20]}")
