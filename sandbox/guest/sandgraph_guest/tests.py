"""Run pytest in-process and collect a per-test JSON-able report."""

import os
import sys

from .execute import ERROR, MEMORY_ERROR, OK, _flush, _strip_own_frames, print_exception

# Built-in plugins that cannot work in the WASI sandbox or that we don't want:
#   cacheprovider  writes .pytest_cache (and --lf/--ff/--nf need it)
#   stepwise       needs cacheprovider
#   faulthandler   dup()s the stderr fd; no signals in WASI
#   pastebin       network
#   junitxml       writes report files; the JSON report replaces it
#   threadexception, unraisableexception  hooks plus extra gc passes per test; no
#                  threads in WASI anyway
# Kept: debugging (the unittest plugin needs its options; --pdb just sees EOF on
# stdin), legacypath/tmpdir (tmpdir/tmp_path fixtures live under --basetemp in the
# scratch dir), doctest, logging, warnings, monkeypatch, recwarn, subtests, unittest.
DISABLED_PLUGINS = ("cacheprovider", "stepwise", "faulthandler", "pastebin",
                    "junitxml", "threadexception", "unraisableexception")

MAX_MESSAGE = 4000


def _message(report):
    """A short failure/skip message for a test report, or None."""
    if hasattr(report, "wasxfail"):
        return report.wasxfail or None
    longrepr = report.longrepr
    if longrepr is None or report.passed:
        return None
    if isinstance(longrepr, tuple) and len(longrepr) == 3:  # skip: (path, line, reason)
        return str(longrepr[2])
    crash = getattr(longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(longrepr)
    return text[:MAX_MESSAGE]


class ReportCollector:
    """pytest plugin: one entry per test id (plus one per failed collector)."""

    def __init__(self):
        self.tests = {}

    def _entry(self, nodeid):
        entry = self.tests.get(nodeid)
        if entry is None:
            entry = self.tests[nodeid] = {"nodeid": nodeid, "outcome": None,
                                          "duration_seconds": 0.0, "message": None}
        return entry

    def pytest_runtest_logreport(self, report):
        entry = self._entry(report.nodeid)
        entry["duration_seconds"] += float(getattr(report, "duration", 0.0) or 0.0)
        xfail = hasattr(report, "wasxfail")
        if report.when == "call":
            if report.passed:
                outcome = "xpassed" if xfail else "passed"
            elif report.skipped:
                outcome = "xfailed" if xfail else "skipped"
            else:
                outcome = "failed"
        elif report.failed:
            # An error in setup or teardown: the test counts as an error (a passing
            # test whose teardown fails is reported once, as an error).
            outcome = "error"
        elif report.skipped:  # skipped (or xfail(run=False)) during setup
            outcome = "xfailed" if xfail else "skipped"
        else:
            return  # a passing setup/teardown says nothing new
        if entry["outcome"] != "error":
            entry["outcome"] = outcome
            entry["message"] = _message(report)
            if report.when == "teardown" and entry["message"]:
                entry["message"] = "error in teardown: " + entry["message"]

    def pytest_collectreport(self, report):
        if report.failed:
            entry = self._entry(report.nodeid)
            entry["outcome"] = "error"
            entry["message"] = _message(report)

    def report(self, exit_code):
        tests = [t for t in self.tests.values() if t["outcome"] is not None]
        summary = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0,
                   "xfailed": 0, "xpassed": 0}
        key = {"passed": "passed", "failed": "failed", "error": "errors",
               "skipped": "skipped", "xfailed": "xfailed", "xpassed": "xpassed"}
        for t in tests:
            summary[key[t["outcome"]]] += 1
            t["duration_seconds"] = round(t["duration_seconds"], 6)
        return {"summary": summary, "tests": tests, "exit_code": exit_code}


def _has_option(args, *names):
    return any(a == n or a.startswith(n + "=") for a in args for n in names)


def pytest_args(args, scratch):
    """User args plus the flags the sandbox needs (ours win where they conflict)."""
    args = [str(a) for a in args]
    extra = []
    for name in DISABLED_PLUGINS:
        extra += ["-p", f"no:{name}"]
    # fd-level capture needs dup(); "sys" capture works, and -s / --capture=no too.
    if _has_option(args, "--capture"):
        args = ["--capture=sys" if a in ("--capture=fd", "--capture=tee-fd") else a
                for a in args]
    elif "-s" not in args:
        extra.append("--capture=sys")
    # Plugins already in the snapshot (hypothesis's) cannot be assertion-rewritten;
    # pytest would warn about that in every run.
    extra += ["-W", "ignore::pytest.PytestAssertRewriteWarning"]
    if not _has_option(args, "--color"):
        extra.append("--color=no")  # no pygments (not shipped in the snapshot)
    if not _has_option(args, "--rootdir"):
        extra.append(f"--rootdir={scratch}")
    if not _has_option(args, "--basetemp"):
        extra.append(f"--basetemp={os.path.join(scratch, '.pytest-tmp')}")
    return extra + args


def run_tests(args, scratch=None):
    """Run pytest with ``args`` in ``scratch`` (default: cwd).

    Returns ``(status, exit_code, report)``; status as for execute(); exit_code is
    pytest's exit code; report is a dict (see ReportCollector.report)."""
    import pytest

    scratch = os.path.abspath(scratch or os.getcwd())
    collector = ReportCollector()
    saved_path = list(sys.path)
    saved_modules = set(sys.modules)
    saved_dont_write = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # no __pycache__ in the scratch dir
    try:
        try:
            exit_code = int(pytest.main(pytest_args(args, scratch), plugins=[collector]))
            status = OK
        except SystemExit as exc:
            exit_code = exc.code if isinstance(exc.code, int) else 1
            status = OK
        except MemoryError as exc:
            collector.tests.clear()
            status, exit_code = MEMORY_ERROR, 1
            print_exception(exc, _strip_own_frames(exc.__traceback__))
            del exc
        except BaseException as exc:  # noqa: BLE001
            status, exit_code = ERROR, 1
            print_exception(exc, _strip_own_frames(exc.__traceback__))
            del exc
        return status, exit_code, collector.report(exit_code)
    finally:
        sys.dont_write_bytecode = saved_dont_write
        sys.path[:] = saved_path
        # Forget the test modules (matters only when called repeatedly in one process).
        prefix = scratch + os.sep
        for name in set(sys.modules) - saved_modules:
            f = getattr(sys.modules.get(name), "__file__", None) or ""
            if f.startswith(prefix):
                del sys.modules[name]
        _flush()
