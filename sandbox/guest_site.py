"""Check the Python guest's site-packages and write its package manifest.

Run by sandbox/build.sh (on the host, in the build venv) after pip has installed the
guest's pinned wheels into the site directory, before componentize-py runs:

    python sandbox/guest_site.py SITE_DIR GUEST_PYTHON REQUIREMENTS_FILE [...]

1. Native code.  The guest is CPython compiled to WebAssembly: it cannot load a
   Linux or macOS extension module.  Every file that is native code (.so, .pyd,
   .dylib, .dll) is traced to the distribution that installed it (its RECORD); a
   distribution listed in OPTIONAL_ACCELERATORS loses those files (its pure-Python
   fallback is what the guest runs), any other makes the build fail with a message
   naming the package and the file.
2. The manifest.  SITE_DIR/sandgraph-packages.json lists every distribution: name,
   version, summary, the top-level modules it provides, which requirements file named
   it, and whether its modules are imported into the snapshot at build time
   (``preloaded``) or on first use at run time from the read-only mounted site.  The
   guest's build step (sandgraph_guest/packages.py) imports every module listed and
   fails the build naming the package when one does not import; the host serves the
   manifest as `list_packages`.

Exit status 1 with a message on stderr for every problem found; nothing is partial.
"""

import email.parser
import json
import os
import re
import sys

MANIFEST = "sandgraph-packages.json"

NATIVE_SUFFIXES = (".so", ".pyd", ".dylib", ".dll")

# Distributions whose native files are optional speed-ups with a pure-Python fallback:
# the files are deleted.  Maps the normalised name to why that is safe.
OPTIONAL_ACCELERATORS = {
    "pyyaml": "yaml/_yaml is libyaml's optional C binding; yaml falls back to its "
              "pure-Python parser and emitter (yaml.__with_libyaml__ is False)",
}

# Minimal source patches for pure-Python packages that import a standard-library
# module the WASI build of CPython lacks, where the use has an exact replacement or a
# clear failure.  Each (old, new) must match exactly once, so a version bump that
# changes the code fails the build instead of silently skipping the patch.
PATCHES = {
    "sympy": [(
        "sympy/external/gmpy.py",
        "no ctypes in the guest: the size of a C long comes from struct instead (same value)",
        [("from ctypes import c_long, sizeof\n", "import struct\n"),
         ("LONG_MAX = (1 << (8*sizeof(c_long) - 1)) - 1",
          "LONG_MAX = (1 << (8*struct.calcsize('l') - 1)) - 1")],
    )],
    "networkx": [(
        "networkx/utils/decorators.py",
        "no bz2 in the guest: opening a .bz2 path raises a clear error instead of the "
        "import of networkx failing",
        [("import bz2\n",
          "try:\n    import bz2\nexcept ImportError:  # sandgraph guest: no bz2 under WASI\n"
          "    bz2 = None\n\n\ndef _no_bz2(*args, **kwargs):\n"
          "    raise ModuleNotFoundError(\"bz2 is not available in the sandbox\")\n\n\n"),
         ('    ".bz2": bz2.BZ2File,\n', '    ".bz2": bz2.BZ2File if bz2 else _no_bz2,\n')],
    )],
}

# Every package's top-level modules are imported into the snapshot when the guest is
# built, so a run pays nothing to import them (measured: from the read-only mount,
# with bytecode, a first `import sympy` costs a run ~2.7 s and `import networkx` ~1.1 s;
# from the snapshot ~0.1 ms; docs/packages.md).  Submodules a top-level import does
# not reach, and package data, are read from the mount at run time.

# Distributions installed only as another package's dependency that provide nothing
# to import on their own (none today); listed here, they are not import-checked.
NOT_IMPORTABLE = set()

# Distributions not imported at build time (only used on demand: they import from the
# mount on first use and are not import-checked).
IMPORT_AT_RUN_TIME_ONLY = {
    "pygments",  # pytest's optional highlighter; the guest runs pytest with --color=no
}


def normalise(name):
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def fail(problems):
    for problem in problems:
        print(f"sandbox/build.sh: error: {problem}", file=sys.stderr)
    sys.exit(1)


def requirement_names(path):
    """Normalised project names pinned in a requirements file (name==version lines)."""
    names = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*==", line)
            if match:
                names.add(normalise(match.group(1)))
    return names


def distributions(site):
    """(dist-info dir, metadata message) for each installed distribution."""
    found = []
    for entry in sorted(os.listdir(site)):
        if entry.endswith(".dist-info"):
            path = os.path.join(site, entry)
            with open(os.path.join(path, "METADATA"), encoding="utf-8") as f:
                meta = email.parser.Parser().parse(f, headersonly=True)
            found.append((path, meta))
    return found


def record_files(dist_info):
    """Paths (relative to the site) the distribution installed, from its RECORD."""
    files = []
    with open(os.path.join(dist_info, "RECORD"), encoding="utf-8") as f:
        for line in f:
            path = line.rsplit(",", 2)[0].strip().strip('"')
            if path:
                files.append(path)
    return files


def top_level_modules(site, dist_info, files):
    """The importable top-level names a distribution provides."""
    names = set()
    for path in files:
        if path.startswith("..") or os.path.isabs(path):
            continue  # scripts installed outside the site (bin/)
        head = path.split("/", 1)[0]
        if head.endswith((".dist-info", ".data")) or head == "__pycache__":
            continue
        if "/" in path:
            if os.path.isfile(os.path.join(site, head, "__init__.py")):
                names.add(head)
        elif head.endswith(".py"):
            names.add(head[:-3])
    # Private helpers (pyyaml's _yaml shim, hypothesis's pytest plugin) are not what a
    # user imports; they count only for a distribution that has nothing else.
    public = {n for n in names if not n.startswith("_")}
    return sorted(n for n in (public or names) if n.isidentifier())


def strip_or_refuse_native(site, dists):
    """Delete optional accelerators; return problems for every other native file."""
    problems = []
    owner = {}
    for dist_info, meta in dists:
        for path in record_files(dist_info):
            owner[os.path.normpath(path)] = meta
    for root, _dirs, files in os.walk(site):
        for name in files:
            if not name.endswith(NATIVE_SUFFIXES) and ".so." not in name:
                continue
            full = os.path.join(root, name)
            rel = os.path.normpath(os.path.relpath(full, site))
            meta = owner.get(rel)
            if meta is None:
                problems.append(f"{rel} in the guest site belongs to no installed package")
                continue
            project = normalise(meta["Name"])
            if project in OPTIONAL_ACCELERATORS:
                os.remove(full)
                continue
            problems.append(
                f"package {meta['Name']} {meta['Version']} ships native code ({rel}); the "
                "Python guest is CPython compiled to WebAssembly and runs only pure-Python "
                "wheels. Remove it from the requirements file or choose a pure-Python "
                "alternative (see docs/packages.md)")
    return problems


def apply_patches(site, dists):
    """Apply PATCHES to the installed files; returns (problems, {project: [why]})."""
    problems, applied = [], {}
    versions = {normalise(meta["Name"]): meta["Version"] for _, meta in dists}
    for project, patches in PATCHES.items():
        if project not in versions:
            continue
        for rel, why, edits in patches:
            path = os.path.join(site, rel)
            with open(path, encoding="utf-8") as f:
                text = f.read()
            for old, new in edits:
                if text.count(old) != 1:
                    problems.append(
                        f"package {project} {versions[project]}: the sandgraph patch for "
                        f"{rel} no longer applies ({old.strip()!r} found {text.count(old)} "
                        "times); update PATCHES in sandbox/guest_site.py")
                    break
                text = text.replace(old, new)
            else:
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
                applied.setdefault(project, []).append(f"{rel}: {why}")
    return problems, applied


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    site, python, requirement_files = argv[1], argv[2], argv[3:]
    dists = distributions(site)
    problems = strip_or_refuse_native(site, dists)
    patch_problems, patched = apply_patches(site, dists)
    problems += patch_problems
    if problems:
        fail(problems)

    named_by = {}
    for path in requirement_files:
        for name in requirement_names(path):
            if name in named_by:
                problems.append(f"package {name} is pinned in both {named_by[name]} and {path}")
            named_by[name] = path
    packages = []
    for dist_info, meta in dists:
        project = normalise(meta["Name"])
        source = named_by.get(project)
        if source is None:
            problems.append(f"package {meta['Name']} was installed but no requirements "
                            "file names it")
            continue
        files = record_files(dist_info)
        modules = [] if project in NOT_IMPORTABLE else top_level_modules(site, dist_info, files)
        if not modules and project not in NOT_IMPORTABLE:
            problems.append(f"package {meta['Name']} {meta['Version']} provides no importable "
                            "top-level module")
        packages.append({
            "name": meta["Name"],
            "version": meta["Version"],
            "summary": (meta.get("Summary") or "").strip(),
            "modules": modules,
            "requirements": os.path.relpath(source),
            "preloaded": project not in IMPORT_AT_RUN_TIME_ONLY,
            "import_check": project not in IMPORT_AT_RUN_TIME_ONLY,
            "patched": patched.get(project, []),
        })
    missing = sorted(set(named_by) - {normalise(p["name"]) for p in packages})
    for name in missing:
        problems.append(f"package {name} is pinned in {named_by[name]} but was not installed")
    if problems:
        fail(problems)
    packages.sort(key=lambda p: normalise(p["name"]))
    with open(os.path.join(site, MANIFEST), "w", encoding="utf-8") as f:
        json.dump({"packages": packages, "python": python}, f, indent=1, sort_keys=True)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
