"""Build-time imports.

componentize-py snapshots the interpreter after running ``app.py``'s top level, and
only modules imported by then exist inside the component.  So we import everything
a user snippet (or the tools we run) can plausibly need, and fail the build loudly if
something we expect is missing.
"""

import importlib
import pkgutil
import sys

# Standard library modules a user snippet, a test file or the tools may use.
STDLIB = """
    __future__ abc argparse array ast asyncio atexit base64 bdb binascii bisect
    builtins calendar cmath code codecs codeop collections collections.abc colorsys
    compileall concurrent.futures configparser contextlib contextvars copy copyreg
    cProfile csv dataclasses datetime decimal difflib dis doctest
    email email.message email.mime.multipart email.mime.text email.parser email.policy
    email.utils encodings encodings.idna encodings.latin_1 encodings.ascii
    encodings.utf_16 encodings.utf_32 encodings.cp1252 encodings.unicode_escape
    encodings.raw_unicode_escape encodings.cp437 encodings.cp850 encodings.utf_8_sig
    encodings.utf_16_le encodings.utf_16_be encodings.iso8859_1 encodings.iso8859_15
    encodings.mac_roman encodings.cp1251 encodings.base64_codec encodings.hex_codec
    encodings.zlib_codec encodings.punycode enum errno faulthandler filecmp fileinput fnmatch
    fractions functools gc genericpath getopt getpass gettext glob graphlib gzip
    hashlib heapq hmac html html.entities html.parser http http.client
    http.cookies http.server imaplib importlib importlib.abc importlib.machinery
    importlib.metadata importlib.resources importlib.util inspect io ipaddress
    itertools json json.decoder json.encoder keyword linecache locale logging
    logging.config logging.handlers mailbox marshal math mimetypes
    multiprocessing numbers opcode operator optparse os os.path pathlib pdb pickle
    pickletools pkgutil platform plistlib posixpath pprint profile pstats py_compile
    queue quopri random re reprlib rlcompleter runpy sched secrets select selectors
    shelve shlex shutil signal site smtplib socket socketserver sqlite3 stat
    statistics string string.templatelib stringprep struct subprocess symtable
    sys sysconfig tabnanny tarfile tempfile textwrap threading time timeit token
    tokenize tomllib trace traceback tracemalloc types typing typing_extensions?
    unicodedata unittest unittest.mock urllib urllib.error urllib.parse
    urllib.request urllib.response uu? uuid warnings wave weakref webbrowser
    wsgiref wsgiref.simple_server xml xml.dom xml.dom.minidom xml.etree.ElementTree
    xml.parsers.expat xml.sax xml.sax.saxutils xmlrpc.client zipapp zipfile
    zipimport zlib zoneinfo annotationlib _colorize _suggestions? _pyrepl?
    dbm dbm.dumb compression compression.gzip compression.zlib
"""

# Absent from componentize-py's WASI build of CPython (verified at build time: each of
# these must fail to import; if one starts working, move it into STDLIB).
EXPECTED_UNAVAILABLE = """
    ssl _ssl ctypes _ctypes bz2 _bz2 lzma _lzma compression.bz2 compression.lzma
    compression.zstd _zstd readline curses _curses termios tty pty fcntl resource
    grp pwd mmap _hashlib tkinter turtle _posixsubprocess _multiprocessing
    _interpreters concurrent.interpreters
"""

# Third-party packages we ship: every submodule is imported.
TOOL_PACKAGES = ("pyflakes", "pycodestyle", "mccabe", "pytest", "_pytest", "pluggy",
                 "iniconfig", "packaging")

# Submodules of the tool packages that cannot be imported (they need something the
# WASI build lacks or are entry points with side effects).  Anything else failing is a
# build error.
TOOL_SKIP = {
    "pyflakes.__main__",       # runs the CLI on import
    "pytest.__main__",         # runs pytest on import
    "pyflakes.test",           # pyflakes' own test-suite (not shipped in the wheel anyway)
}


def _names(block):
    """(required, optional) module names from a whitespace-separated block; a trailing
    '?' marks a module that may legitimately be missing in this Python version."""
    required, optional = [], []
    for word in block.split():
        (optional if word.endswith("?") else required).append(word.rstrip("?"))
    return required, optional


def preload():
    """Import everything; raise ImportError listing every unexpected failure."""
    failures = []
    required, optional = _names(STDLIB)
    for name in required:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 -- report them all at once
            failures.append(f"{name}: {exc!r}")
    for name in optional:
        try:
            importlib.import_module(name)
        except ImportError:
            pass

    for name in EXPECTED_UNAVAILABLE.split():
        try:
            importlib.import_module(name)
        except ImportError:
            continue
        # It works after all: harmless, but keep the list honest.
        failures.append(f"{name}: listed in EXPECTED_UNAVAILABLE but imports fine")

    for top in TOOL_PACKAGES:
        try:
            pkg = importlib.import_module(top)
        except Exception as exc:  # noqa: BLE001
            failures.append(f"{top}: {exc!r}")
            continue
        path = getattr(pkg, "__path__", None)
        if path is None:
            continue
        for info in pkgutil.walk_packages(path, prefix=top + "."):
            if info.name in TOOL_SKIP or any(info.name.startswith(s + ".") for s in TOOL_SKIP):
                continue
            try:
                importlib.import_module(info.name)
            except Exception as exc:  # noqa: BLE001
                failures.append(f"{info.name}: {exc!r}")

    if failures:
        raise ImportError(
            "sandgraph guest build: unexpected import failures (fix the module lists in "
            "sandbox/guest/sandgraph_guest/preload.py):\n  " + "\n  ".join(failures))
    return len(sys.modules)
