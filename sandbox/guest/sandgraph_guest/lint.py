"""Lint a snippet with pyflakes, pycodestyle and mccabe, flake8-style, in memory."""

import ast
import copy
import json
import re

import mccabe
import pycodestyle
import pyflakes.checker

FILENAME = "main.py"

# flake8's table (flake8/plugins/pyflakes.py); unknown message classes get F999.
PYFLAKES_CODES = {
    "UnusedImport": "F401",
    "ImportShadowedByLoopVar": "F402",
    "ImportStarUsed": "F403",
    "LateFutureImport": "F404",
    "ImportStarUsage": "F405",
    "ImportStarNotPermitted": "F406",
    "FutureFeatureNotDefined": "F407",
    "PercentFormatInvalidFormat": "F501",
    "PercentFormatExpectedMapping": "F502",
    "PercentFormatExpectedSequence": "F503",
    "PercentFormatExtraNamedArguments": "F504",
    "PercentFormatMissingArgument": "F505",
    "PercentFormatMixedPositionalAndNamed": "F506",
    "PercentFormatPositionalCountMismatch": "F507",
    "PercentFormatStarRequiresSequence": "F508",
    "PercentFormatUnsupportedFormatCharacter": "F509",
    "StringDotFormatInvalidFormat": "F521",
    "StringDotFormatExtraNamedArguments": "F522",
    "StringDotFormatExtraPositionalArguments": "F523",
    "StringDotFormatMissingArgument": "F524",
    "StringDotFormatMixingAutomatic": "F525",
    "FStringMissingPlaceholders": "F541",
    "TStringMissingPlaceholders": "F542",
    "MultiValueRepeatedKeyLiteral": "F601",
    "MultiValueRepeatedKeyVariable": "F602",
    "TooManyExpressionsInStarredAssignment": "F621",
    "TwoStarredExpressions": "F622",
    "AssertTuple": "F631",
    "IsLiteral": "F632",
    "InvalidPrintSyntax": "F633",
    "IfTuple": "F634",
    "BreakOutsideLoop": "F701",
    "ContinueOutsideLoop": "F702",
    "YieldOutsideFunction": "F704",
    "ReturnOutsideFunction": "F706",
    "DefaultExceptNotLast": "F707",
    "LazyImportNotAtModuleScope": "F708",
    "LazyImportStarNotPermitted": "F709",
    "DoctestSyntaxError": "F721",
    "ForwardAnnotationSyntaxError": "F722",
    "RedefinedWhileUnused": "F811",
    "UndefinedName": "F821",
    "UndefinedExport": "F822",
    "UndefinedLocal": "F823",
    "UnusedIndirectAssignment": "F824",
    "DuplicateArgument": "F831",
    "UnusedVariable": "F841",
    "UnusedAnnotation": "F842",
    "EagerUseOfLazyImport": "F851",
    "RaiseNotImplemented": "F901",
}

# pyflakes findings that mean the code is wrong (fails or misbehaves at run time);
# every other F-code is a "warning".
PYFLAKES_ERRORS = {
    "F402", "F404", "F406", "F407", "F501", "F502", "F503", "F504", "F505", "F506",
    "F507", "F508", "F509", "F521", "F522", "F523", "F524", "F525", "F601", "F602",
    "F621", "F622", "F631", "F632", "F633", "F634", "F701", "F702", "F704", "F706",
    "F707", "F708", "F709", "F722", "F821", "F822", "F823", "F831", "F901",
}

# Severity: E999/E9xx (syntax, tokenizer) are errors; pyflakes see above; pycodestyle
# W6xx (deprecated constructs) and mccabe C901 are warnings; the rest of pycodestyle
# (E1-E7, W1-W5) is "convention".

# Default ignore list = pycodestyle's/flake8's default (E121,E123,E126,E226,E24,E704,
# W503,W504): W503/W504 contradict each other, the others are the checks PEP 8 itself
# leaves open.  This makes `linter_output` match what a plain `flake8 main.py`
# prints.  Options: "ignore" replaces this list, "extend_ignore" adds to it, "select"
# restricts to the given prefixes; as in flake8 the longest matching prefix wins.
DEFAULT_IGNORE = tuple(pycodestyle.DEFAULT_IGNORE.split(","))
DEFAULT_MAX_LINE_LENGTH = 79
DEFAULT_MAX_COMPLEXITY = 10

# Nodes that add a branch to the (module-wide) "complexity" figure.  AsyncFor,
# AsyncWith and TryStar (except*) count like their synchronous/plain counterparts.
_BRANCH_NODES = tuple(
    getattr(ast, name) for name in (
        "If", "For", "While", "With", "Try", "BoolOp", "ExceptHandler",
        "AsyncFor", "AsyncWith", "TryStar",
    ) if hasattr(ast, name))
_FUNCTION_NODES = (ast.FunctionDef, ast.AsyncFunctionDef)

# flake8's `# noqa` / `# noqa: E501,W291` comment.
_NOQA = re.compile(
    r"# noqa(?::[\s]?(?P<codes>([A-Z][0-9]+(?:[,\s]+)?)+))?", re.IGNORECASE)
_NOQA_CODE = re.compile(r"[A-Z][0-9]+", re.IGNORECASE)

# pycodestyle options, built once (at component build time): every check enabled;
# filtering is ours.
_STYLE_OPTIONS = pycodestyle.StyleGuide(
    select=("E", "W", "C"), quiet=True, max_line_length=DEFAULT_MAX_LINE_LENGTH,
).options


class _Report(pycodestyle.BaseReport):
    """Collects pycodestyle results instead of printing them."""

    def __init__(self, options):
        super().__init__(options)
        self.found = []

    def error(self, line_number, offset, text, check):
        code = super().error(line_number, offset, text, check)
        if code:
            self.found.append((line_number, offset + 1, code, text[5:]))
        return code


def _prefixes(value, default):
    if value is None:
        return tuple(default)
    if isinstance(value, str):
        value = value.split(",")
    return tuple(str(v).strip().upper() for v in value if str(v).strip())


def _make_filter(options):
    select = _prefixes(options.get("select"), ())
    ignore = _prefixes(options.get("ignore"), DEFAULT_IGNORE)
    ignore += _prefixes(options.get("extend_ignore"), ())

    def wanted(code):
        sel = max((len(p) for p in select if code.startswith(p)), default=-1)
        if select and sel < 0:
            return False
        ign = max((len(p) for p in ignore if code.startswith(p)), default=-1)
        return ign < 0 or sel > ign
    return wanted


def _int_option(options, key, default):
    value = options.get(key, default)
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _severity(source, code):
    if code.startswith("E9"):
        return "error"
    if source == "pyflakes":
        return "error" if code in PYFLAKES_ERRORS else "warning"
    if source == "mccabe" or code.startswith("W6"):
        return "warning"
    return "convention"


def _diag(line, column, code, message, source):
    return {"line": line, "column": column, "code": code, "message": message,
            "severity": _severity(source, code), "source": source}


def _imports(tree):
    """`import x.y` -> "x", `from x import y` -> "y"; source order, no duplicates."""
    nodes = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    nodes.sort(key=lambda n: (n.lineno, n.col_offset))
    names = []
    for node in nodes:
        for alias in node.names:
            name = alias.name.split(".")[0] if isinstance(node, ast.Import) else alias.name
            if name not in names:
                names.append(name)
    return names


def _noqa_filter(lines, diagnostics):
    kept = []
    for d in diagnostics:
        line = lines[d["line"] - 1] if 0 < d["line"] <= len(lines) else ""
        m = _NOQA.search(line)
        if m is None:
            kept.append(d)
            continue
        codes = m.group("codes")
        if codes is None:
            continue  # bare "# noqa": everything on the line
        if not any(d["code"].startswith(c.upper()) for c in _NOQA_CODE.findall(codes)):
            kept.append(d)
    return kept


def _result(syntax_error, functions, classes, imports, complexity, function_complexity,
            diagnostics):
    diagnostics.sort(key=lambda d: (d["line"], d["column"], d["code"]))
    output = "".join(
        f"{FILENAME}:{d['line']}:{d['column']}: {d['code']} {d['message']}\n"
        for d in diagnostics)
    return {
        "syntax_error": syntax_error,
        "functions": functions,
        "classes": classes,
        "imports": imports,
        "complexity": complexity,
        "function_complexity": function_complexity,
        "diagnostics": diagnostics,
        "linter_output": output,
        "linter_exit_code": 1 if diagnostics else 0,
    }


def _function_complexity(tree):
    """mccabe's complexity of every function, by line; ``column`` is 1-based and only
    for the C901 finding (the caller drops it)."""
    visitor = mccabe.PathGraphingAstVisitor()
    visitor.preorder(tree, visitor)
    found = [{"name": g.entity, "line": g.lineno, "column": g.column + 1,
              "complexity": g.complexity()} for g in visitor.graphs.values()]
    found.sort(key=lambda f: f["line"])
    return found


def lint(code, options=None):
    """Lint ``code``; ``options`` is a dict or a JSON object string.  Returns a dict.

    With ``{"summary_only": true}`` only the AST summary is computed (syntax error,
    functions, classes, imports, complexity, mccabe per function) and ``diagnostics`` is
    empty.  The server computes this summary itself from ruff's parser
    (src/tools/lint_summary.rs); tests/lint_summary.rs checks it against this one.
    """
    if isinstance(options, str):
        options = json.loads(options) if options.strip() else {}
    if not isinstance(options, dict):
        options = {}
    summary_only = options.get("summary_only") is True
    max_line_length = _int_option(options, "max_line_length", DEFAULT_MAX_LINE_LENGTH)
    max_complexity = _int_option(options, "max_complexity", DEFAULT_MAX_COMPLEXITY)
    wanted = _make_filter(options)

    try:
        tree = ast.parse(code, filename=FILENAME)
    except (SyntaxError, ValueError) as exc:
        # A syntax error: no other tool runs.  functions/classes/imports are empty and
        # complexity is the minimum, 1 (as for an empty module).
        line = getattr(exc, "lineno", None) or 1
        column = getattr(exc, "offset", None) or 1
        message = getattr(exc, "msg", None) or str(exc)
        name = type(exc).__name__ if isinstance(exc, SyntaxError) else "SyntaxError"
        diag = _diag(line, column, "E999", f"{name}: {message}", "pycodestyle")
        return _result({"line": line, "column": column, "message": message},
                       [], [], [], 1, [], [] if summary_only else [diag])

    functions, classes, branches = [], [], 0
    for node in ast.walk(tree):
        if isinstance(node, _FUNCTION_NODES):
            functions.append(node.name)
        elif isinstance(node, ast.ClassDef):
            classes.append(node.name)
        if isinstance(node, _BRANCH_NODES):
            branches += 1
    complexity = branches + max(len(functions), 1)

    diagnostics = []
    if summary_only:
        function_complexity = _function_complexity(tree)
        for f in function_complexity:
            del f["column"]
        return _result(None, functions, classes, _imports(tree), complexity,
                       function_complexity, diagnostics)
    # pyflakes
    for msg in pyflakes.checker.Checker(tree, filename=FILENAME).messages:
        code_ = PYFLAKES_CODES.get(type(msg).__name__, "F999")
        if wanted(code_):
            diagnostics.append(_diag(msg.lineno, getattr(msg, "col", 0) + 1, code_,
                                     msg.message % msg.message_args, "pyflakes"))

    # pycodestyle, on the lines in memory
    lines = code.splitlines(True)
    style_options = copy.copy(_STYLE_OPTIONS)
    style_options.max_line_length = max_line_length
    report = _Report(style_options)
    pycodestyle.Checker(FILENAME, lines=list(lines), options=style_options,
                        report=report).check_all()
    for line, column, code_, message in report.found:
        if wanted(code_):
            diagnostics.append(_diag(line, column, code_, message, "pycodestyle"))

    # mccabe
    function_complexity = _function_complexity(tree)
    for f in function_complexity:
        if max_complexity >= 0 and f["complexity"] > max_complexity and wanted("C901"):
            diagnostics.append(_diag(f["line"], f["column"], "C901",
                                     f"{f['name']!r} is too complex ({f['complexity']})",
                                     "mccabe"))
    for f in function_complexity:
        del f["column"]

    diagnostics = _noqa_filter(lines, diagnostics)
    return _result(None, functions, classes, _imports(tree), complexity,
                   function_complexity, diagnostics)
