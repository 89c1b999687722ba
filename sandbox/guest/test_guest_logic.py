"""Native (host CPython) tests of the guest logic in sandgraph_guest/.

Run:  python3 -m pytest sandbox/guest/test_guest_logic.py
(needs the guest libraries: sandbox/build.sh installs them into build/guest-site,
which is put on sys.path below).  The real component is tested end to end by the
Rust host.
"""

import os
import sys
import textwrap

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SITE = os.path.join(HERE, "..", "..", "build", "guest-site")
sys.path[:0] = [HERE] + ([os.path.abspath(SITE)] if os.path.isdir(SITE) else [])

from sandgraph_guest import execute as ex  # noqa: E402
from sandgraph_guest import lint as lt  # noqa: E402
from sandgraph_guest import tests as tr  # noqa: E402


# ---------------------------------------------------------------- execute

def run(code, capsys):
    result = ex.execute(code)
    out, err = capsys.readouterr()
    return result, out, err


def test_execute_ok(capsys):
    result, out, err = run("import sys\nprint('hi', __name__, sys.argv)\n", capsys)
    assert result == ("ok", 0)
    assert out == "hi __main__ ['main.py']\n" and err == ""


@pytest.mark.parametrize("code, expected, stderr", [
    ("import sys; sys.exit()", 0, ""),
    ("import sys; sys.exit(0)", 0, ""),
    ("import sys; sys.exit(3)", 3, ""),
    ("raise SystemExit(True)", 1, ""),
    ("import sys; sys.exit('bye')", 1, "bye\n"),
    ("import sys; sys.exit(2**40)", 1, ""),
])
def test_execute_exit_codes(capsys, code, expected, stderr):
    result, _, err = run(code, capsys)
    assert result == ("ok", expected)
    assert err == stderr


def test_execute_traceback_has_no_guest_frames(capsys):
    code = "def f():\n    return 1 / 0\n\nf()\n"
    result, _, err = run(code, capsys)
    assert result == ("error", 1)
    assert err.startswith("Traceback (most recent call last):\n")
    assert 'File "main.py", line 4, in <module>' in err
    assert 'File "main.py", line 2, in f' in err
    assert "return 1 / 0" in err  # source lines come from linecache
    assert "ZeroDivisionError: division by zero" in err
    assert "sandgraph_guest" not in err and "execute.py" not in err


def test_execute_chained_exception(capsys):
    code = "try:\n    {}['k']\nexcept KeyError as e:\n    raise ValueError('v') from e\n"
    result, _, err = run(code, capsys)
    assert result == ("error", 1)
    assert "KeyError: 'k'" in err and "ValueError: v" in err
    assert "sandgraph_guest" not in err


def test_execute_syntax_error(capsys):
    result, _, err = run("x = (\n", capsys)
    assert result == ("error", 1)
    assert 'File "main.py", line 1' in err
    assert "SyntaxError" in err and "Traceback" not in err


def test_execute_recursion_error(capsys):
    result, _, err = run("def r(): r()\nr()\n", capsys)
    assert result == ("error", 1)
    assert "RecursionError" in err


def test_execute_memory_error(capsys):
    code = "big = [0] * 1000\ndef f():\n    local = [1] * 1000\n    raise MemoryError\nf()\n"
    result, _, err = run(code, capsys)
    assert result == ("memory-error", 1)
    assert err.rstrip().endswith("MemoryError")
    assert "sandgraph_guest" not in err


def test_execute_fresh_namespace_and_main_module(capsys):
    code = ("from dataclasses import dataclass\nimport pickle, sys\n"
            "@dataclass\nclass P:\n    x: int\n"
            "print(pickle.loads(pickle.dumps(P(1))), sys.modules['__main__'].P is P)\n")
    result, out, _ = run(code, capsys)
    assert result == ("ok", 0) and out == "P(x=1) True\n"
    result, _, err = run("print(P)\n", capsys)
    assert result == ("error", 1) and "NameError" in err


def test_execute_atexit(capsys):
    result = ex.execute("import atexit; atexit.register(print, 'bye')\n", run_atexit=True)
    assert result == ("ok", 0)
    assert capsys.readouterr().out == "bye\n"


def test_execute_inspect_getsource(capsys):
    result, out, _ = run("import inspect\ndef f():\n    return 1\nprint(inspect.getsource(f))\n",
                         capsys)
    assert result == ("ok", 0) and "return 1" in out


# ---------------------------------------------------------------- lint

SAMPLE = textwrap.dedent('''\
    import os
    import os.path
    from collections import OrderedDict, defaultdict
    import json


    def complicated(a, b):
        if a and b:
            for i in range(a):
                while b:
                    if i > 2:
                        b -= 1
                    elif i:
                        pass
                    else:
                        break
        return missing_name


    async def fetch():
        x=1
        return os.sep


    class Widget:
        def method(self):
            with open("f") as fh:
                return fh.read()


    print(json.dumps({}), defaultdict)
''')


def codes_at(result):
    return {(d["code"], d["line"]) for d in result["diagnostics"]}


def test_lint_fields():
    r = lt.lint(SAMPLE, '{"max_complexity": 5}')
    assert r["syntax_error"] is None
    assert r["functions"] == ["complicated", "fetch", "method"]
    assert r["classes"] == ["Widget"]
    assert r["imports"] == ["os", "OrderedDict", "defaultdict", "json"]
    # If x3, For, While, With, BoolOp = 7 branches + 3 functions
    assert r["complexity"] == 7 + 3
    fc = {f["name"]: f for f in r["function_complexity"]}
    assert fc["complicated"]["line"] == 7 and fc["complicated"]["complexity"] == 6
    assert fc["Widget.method"]["complexity"] == 1
    found = codes_at(r)
    assert ("F401", 3) in found          # OrderedDict unused
    assert ("F821", 17) in found         # missing_name
    assert ("F841", 21) in found         # x assigned, never used
    assert ("E225", 21) in found         # x=1
    assert ("C901", 7) in found
    c901 = next(d for d in r["diagnostics"] if d["code"] == "C901")
    assert c901["message"] == "'complicated' is too complex (6)"
    assert c901["source"] == "mccabe" and c901["severity"] == "warning" and c901["column"] == 1
    f821 = next(d for d in r["diagnostics"] if d["code"] == "F821")
    assert f821 == {"line": 17, "column": 12, "code": "F821",
                    "message": "undefined name 'missing_name'", "severity": "error",
                    "source": "pyflakes"}
    keys = [(d["line"], d["column"]) for d in r["diagnostics"]]
    assert keys == sorted(keys)
    assert r["linter_exit_code"] == 1
    assert "main.py:17:12: F821 undefined name 'missing_name'\n" in r["linter_output"]
    assert r["linter_output"].count("\n") == len(r["diagnostics"])


def test_lint_clean_and_defaults():
    r = lt.lint("x = 1\n", "{}")
    assert r["diagnostics"] == [] and r["linter_exit_code"] == 0 and r["linter_output"] == ""
    assert r["complexity"] == 1 and r["functions"] == [] and r["imports"] == []
    # default max_complexity 10: not reported
    assert "C901" not in {d["code"] for d in lt.lint(SAMPLE, "{}")["diagnostics"]}
    # default ignore list includes E226 (pycodestyle/flake8 default)
    assert lt.lint("x = 1*2\n", "{}")["diagnostics"] == []


def test_lint_options():
    long = "x = '" + "a" * 90 + "'\n"
    assert [d["code"] for d in lt.lint(long, {})["diagnostics"]] == ["E501"]
    assert lt.lint(long, {"max_line_length": 120})["diagnostics"] == []
    r = lt.lint("import os\nx=1\n", {"select": ["F"]})
    assert [d["code"] for d in r["diagnostics"]] == ["F401"]
    r = lt.lint("import os\nx=1\n", {"ignore": ["F401"]})
    assert [d["code"] for d in r["diagnostics"]] == ["E225"]
    r = lt.lint("x = 1*2\n", {"ignore": []})
    assert [d["code"] for d in r["diagnostics"]] == ["E226"]
    r = lt.lint("import os  # noqa\nimport sys  # noqa: E501\n", {})
    assert [(d["code"], d["line"]) for d in r["diagnostics"]] == [("F401", 2)]


def test_lint_syntax_error():
    r = lt.lint("def f(:\n    pass\n", "{}")
    assert r["syntax_error"] == {"line": 1, "column": 7, "message": "invalid syntax"}
    assert r["functions"] == [] and r["classes"] == [] and r["imports"] == []
    assert r["complexity"] == 1 and r["function_complexity"] == []
    assert [d["code"] for d in r["diagnostics"]] == ["E999"]
    assert r["linter_output"] == "main.py:1:7: E999 SyntaxError: invalid syntax\n"
    assert r["linter_exit_code"] == 1


def test_lint_imports_semantics():
    code = ("import os.path\nfrom a import b\nimport x.y.z as q, os\n"
            "from . import rel\nfrom m import b\n")
    assert lt.lint(code, {})["imports"] == ["os", "b", "x", "rel"]


def test_lint_async_and_branch_nodes():
    code = textwrap.dedent('''\
        async def f(items):
            async for i in items:
                async with i:
                    try:
                        pass
                    except* ValueError:
                        pass
    ''')
    r = lt.lint(code, {})
    assert r["functions"] == ["f"]
    # AsyncFor + AsyncWith + TryStar + ExceptHandler + 1 function
    assert r["complexity"] == 5


# ---------------------------------------------------------------- run_tests

TEST_FILE = textwrap.dedent('''\
    import unittest
    import pytest


    def add(a, b):
        return a + b


    def test_pass():
        assert add(1, 1) == 2


    def test_fail():
        assert add(1, 1) == 3


    @pytest.fixture
    def broken():
        raise RuntimeError("fixture boom")


    def test_fixture_error(broken):
        pass


    @pytest.mark.skip(reason="not today")
    def test_skipped():
        pass


    @pytest.mark.parametrize("x", [1, 2, 3])
    def test_param(x):
        assert x < 3


    @pytest.mark.xfail(reason="known")
    def test_xfail():
        assert 0


    @pytest.mark.xfail(reason="fixed?")
    def test_xpass():
        pass


    def test_tmp_and_capsys(tmp_path, capsys):
        (tmp_path / "f.txt").write_text("x")
        print("hello")
        assert capsys.readouterr().out == "hello\\n"


    class TestCase(unittest.TestCase):
        def test_ok(self):
            self.assertEqual(1, 1)

        def test_bad(self):
            self.assertEqual(1, 2)
''')


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_run_tests_outcomes(scratch, capsys):
    (scratch / "test_sample_outcomes.py").write_text(TEST_FILE)
    status, exit_code, report = tr.run_tests(["-q"], str(scratch))
    out, _ = capsys.readouterr()
    assert (status, exit_code, report["exit_code"]) == ("ok", 1, 1)
    outcomes = {t["nodeid"].split("::", 1)[1]: t for t in report["tests"]}
    got = {k: v["outcome"] for k, v in outcomes.items()}
    assert got == {
        "test_pass": "passed", "test_fail": "failed", "test_fixture_error": "error",
        "test_skipped": "skipped", "test_param[1]": "passed", "test_param[2]": "passed",
        "test_param[3]": "failed", "test_xfail": "xfailed", "test_xpass": "xpassed",
        "test_tmp_and_capsys": "passed", "TestCase::test_ok": "passed",
        "TestCase::test_bad": "failed",
    }
    assert report["summary"] == {"passed": 5, "failed": 3, "errors": 1, "skipped": 1,
                                 "xfailed": 1, "xpassed": 1}
    # assertion rewriting: introspection in the message
    assert outcomes["test_fail"]["message"] == "assert 2 == 3\n +  where 2 = add(1, 1)"
    assert outcomes["test_param[3]"]["message"] == "assert 3 < 3"
    assert "fixture boom" in outcomes["test_fixture_error"]["message"]
    assert outcomes["test_skipped"]["message"] == "Skipped: not today"
    assert outcomes["test_xfail"]["message"] == "known"
    assert "1 != 2" in outcomes["TestCase::test_bad"]["message"]
    assert outcomes["test_pass"]["message"] is None
    assert all(t["duration_seconds"] >= 0 for t in report["tests"])
    assert "3 failed" in out
    # nothing written outside the scratch dir's basetemp; no cache dir, no pycache
    assert not (scratch / ".pytest_cache").exists()
    assert not (scratch / "__pycache__").exists()


def test_run_tests_all_pass_and_select(scratch, capsys):
    (scratch / "test_sample_select.py").write_text(TEST_FILE)
    status, exit_code, report = tr.run_tests(
        ["-q", "test_sample_select.py::test_pass", "-k", "pass"], str(scratch))
    capsys.readouterr()
    assert (status, exit_code) == ("ok", 0)
    assert [t["outcome"] for t in report["tests"]] == ["passed"]


def test_run_tests_collection_error(scratch, capsys):
    (scratch / "test_sample_broken.py").write_text("import no_such_module_xyz\n")
    status, exit_code, report = tr.run_tests([], str(scratch))
    capsys.readouterr()
    assert (status, exit_code) == ("ok", 2)
    assert report["summary"]["errors"] == 1
    assert report["tests"][0]["nodeid"] == "test_sample_broken.py"
    assert "no_such_module_xyz" in report["tests"][0]["message"]


def test_run_tests_no_tests(scratch, capsys):
    status, exit_code, report = tr.run_tests([], str(scratch))
    capsys.readouterr()
    assert (status, exit_code) == ("ok", 5) and report["tests"] == []


def test_pytest_args():
    args = tr.pytest_args(["--capture=fd", "-x"], "/scratch")
    assert "--capture=sys" in args and "--capture=fd" not in args
    assert args[-2:] == ["--capture=sys", "-x"]
    assert "--rootdir=/scratch" in args and "--color=no" in args
    assert "-p" in args and "no:cacheprovider" in args
    assert "--capture=sys" not in tr.pytest_args(["-s"], "/scratch")


def test_lint_summary_only():
    code = textwrap.dedent("""\
        import os.path
        from collections import OrderedDict

        def f(a):
            if a and a > 1:
                return 1
            return undefined

        class K:
            async def m(self):
                pass
        """)
    full = lt.lint(code, "{}")
    summary = lt.lint(code, '{"summary_only": true}')
    assert summary["diagnostics"] == [] and summary["linter_output"] == ""
    assert summary["linter_exit_code"] == 0
    for key in ("functions", "classes", "imports", "complexity", "function_complexity",
                "syntax_error"):
        assert summary[key] == full[key], key
    assert summary["function_complexity"] == [
        {"name": "f", "line": 4, "complexity": 2},  # mccabe: `and` adds none
        {"name": "K.m", "line": 10, "complexity": 1},
    ]
    broken = lt.lint("def f(:\n", '{"summary_only": true}')
    assert broken["syntax_error"]["line"] == 1 and broken["diagnostics"] == []
