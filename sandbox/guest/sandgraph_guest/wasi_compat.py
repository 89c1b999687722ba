"""Small patches that make stdlib features work under WASI (applied at build time).

asyncio: every selector event loop creates a "self-pipe" with socket.socketpair(),
which WASI cannot do, so asyncio.run() fails.  The self-pipe only wakes the loop up
from other threads or signal handlers, neither of which exists in the sandbox, so
the loop runs fine without it.

pytest: its logging plugin always opens a log file, os.devnull by default, and WASI
has no /dev/null: a missing /dev/null is replaced by an in-memory sink.

importlib.metadata finds no distributions at run time (only imported modules are in
the component), so `pluggy.__version__` (looked up lazily from the metadata; pytest -v
prints it) is resolved at build time and stored.
"""

import io
import os
import sys


def _no_self_pipe(loop):
    loop._ssock = loop._csock = None


def _close_no_self_pipe(loop):
    ssock, csock = loop._ssock, loop._csock
    loop._ssock = loop._csock = None
    for sock in (ssock, csock):
        if sock is not None:
            sock.close()


def _wakeup_noop(loop):
    pass


def patch_asyncio():
    import socket
    from asyncio import selector_events

    try:
        a, b = socket.socketpair()
    except OSError:
        pass
    else:  # socketpair works: nothing to patch
        a.close()
        b.close()
        return False
    cls = selector_events.BaseSelectorEventLoop
    cls._make_self_pipe = _no_self_pipe
    cls._close_self_pipe = _close_no_self_pipe
    cls._write_to_self = _wakeup_noop
    return True


class _NullWriter(io.TextIOBase):
    def writable(self):
        return True

    def write(self, text):
        return len(text)


def patch_pytest_devnull():
    if os.path.exists(os.devnull):
        return False
    from _pytest import logging as pytest_logging

    devnull = os.path.abspath(os.devnull)
    handler_cls = pytest_logging._FileHandler
    original_open = handler_cls._open

    def _open(self):
        if self.baseFilename == devnull:
            return _NullWriter()
        return original_open(self)

    handler_cls._open = _open
    return True


def pin_versions():
    import pluggy

    pluggy.__version__ = pluggy.__version__  # module __getattr__ -> plain attribute
    return True


def apply():
    """Apply every patch that is needed on this platform; returns the names applied."""
    applied = []
    if sys.platform == "wasi" and patch_asyncio():
        applied.append("asyncio-self-pipe")
    if sys.platform == "wasi" and pin_versions():
        applied.append("pluggy-version")
    if sys.platform == "wasi" and patch_pytest_devnull():
        applied.append("pytest-devnull")
    return applied
