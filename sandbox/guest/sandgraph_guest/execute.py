"""Run a user snippet as ``__main__`` the way ``python main.py`` would."""

import atexit
import builtins
import gc
import linecache
import os
import sys
import traceback
import types

OK, ERROR, MEMORY_ERROR = "ok", "error", "memory-error"

_HERE = os.path.dirname(os.path.abspath(__file__))
_S32_MIN, _S32_MAX = -(2 ** 31), 2 ** 31 - 1


def _is_own_frame(tb):
    filename = tb.tb_frame.f_code.co_filename
    return os.path.dirname(os.path.abspath(filename)) == _HERE if filename else False


def _strip_own_frames(tb):
    """Drop the leading traceback entries that belong to this package."""
    while tb is not None and _is_own_frame(tb):
        tb = tb.tb_next
    return tb


def _stderr():
    err = sys.stderr
    return err if err is not None and not getattr(err, "closed", False) else sys.__stderr__


def _raw_write(text):
    try:
        os.write(2, text.encode("utf-8", "replace"))
    except BaseException:  # noqa: BLE001 -- nothing left to do
        pass


def print_exception(exc, tb):
    """Print ``exc`` like the interpreter does for an uncaught exception."""
    try:
        traceback.print_exception(type(exc), exc, tb, file=_stderr())
    except MemoryError:
        _raw_write(f"{type(exc).__name__}\n")
    except BaseException:  # noqa: BLE001 -- a broken sys.stderr must not hide the error
        _raw_write("".join(traceback.format_exception_only(type(exc), exc)))


def _flush():
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except BaseException:  # noqa: BLE001
            pass


def exit_code_of(exc):
    """Exit code for a ``SystemExit``, printing a non-int code as CPython does."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code if _S32_MIN <= code <= _S32_MAX else 1
    try:
        print(code, file=_stderr())
    except BaseException:  # noqa: BLE001
        _raw_write(f"{code!r}\n")
    return 1


def execute(code, filename="main.py", run_atexit=False):
    """Run ``code`` as ``__main__``; return ``(status, exit_code)``.

    status is "ok" (ran to the end or ``sys.exit``), "error" (uncaught exception or
    syntax error; the traceback went to stderr without this package's frames) or
    "memory-error" (uncaught ``MemoryError``).
    """
    main = types.ModuleType("__main__")
    g = main.__dict__
    g["__builtins__"] = builtins
    g["__file__"] = filename
    g["__cached__"] = None
    # Let tracebacks and inspect.getsource() show the snippet's lines.
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)

    saved = (sys.modules.get("__main__"), sys.argv, list(sys.path))
    try:
        try:
            compiled = compile(code, filename, "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as exc:  # ValueError: NUL bytes (Python < 3.12)
            print_exception(exc, None)
            return ERROR, 1

        sys.modules["__main__"] = main
        sys.argv = [filename]
        sys.path.insert(0, os.path.dirname(os.path.abspath(filename)))
        try:
            exec(compiled, g)
            result = (OK, 0)
        except SystemExit as exc:
            result = (OK, exit_code_of(exc))
        except MemoryError as exc:
            result = (MEMORY_ERROR, 1)
            try:
                tb = _strip_own_frames(exc.__traceback__)
                # Free what we can before formatting anything: the snippet's globals
                # and the locals of the frames in the traceback.
                g.clear()
                sys.modules["__main__"] = saved[0]
                main = None
                traceback.clear_frames(tb)
                gc.collect()
                print_exception(exc, tb)
                del tb
            except BaseException:  # noqa: BLE001 -- still out of memory
                _raw_write("MemoryError\n")
            del exc
        except BaseException as exc:  # noqa: BLE001 -- user code may raise anything
            result = (ERROR, 1)
            print_exception(exc, _strip_own_frames(exc.__traceback__))
            del exc

        if run_atexit:
            # Handlers registered by the snippet (the build-time ones were cleared).
            try:
                atexit._run_exitfuncs()
            except BaseException:  # noqa: BLE001
                pass
        return result
    finally:
        if saved[0] is None:
            sys.modules.pop("__main__", None)
        else:
            sys.modules["__main__"] = saved[0]
        sys.argv = saved[1]
        sys.path[:] = saved[2]
        _flush()
