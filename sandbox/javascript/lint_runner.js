// sandgraph's JavaScript lint (lint_code with language=javascript): appended by the host
// to JSHint's own source (build/guest/jshint.js), with the user's source, as a JSON
// string literal, in place of the placeholder below. Nothing of the user's code runs:
// JSHint parses it. Prints one line, "\u001eSANDGRAPH_LINT_REPORT " + JSON.
(function () {
  "use strict";
  const source = __SANDGRAPH_SOURCE__;
  const options = {
    esversion: 11,   // the newest JSHint 2.13 knows (ES2020); QuickJS runs more
    undef: true,     // W117: a name that is never declared
    unused: true,    // W098: a variable, function or parameter never used
    latedef: "nofunc",
    noarg: true,
    nonew: true,
    maxerr: 1000,
  };
  // What QuickJS gives a script besides the language's own globals.
  const globals = { console: false, print: false, scriptArgs: false, globalThis: false };
  JSHINT(source, options, globals);
  const data = JSHINT.data() || {};
  const diagnostics = (JSHINT.errors || []).filter(Boolean).map((e) => ({
    line: e.line || 1,
    column: e.character || 1,
    code: e.code || "E000",
    message: String(e.reason || e.raw || "error"),
  }));
  const functions = (data.functions || []).map((f) => ({
    name: f.name,
    line: f.line,
    complexity: (f.metrics && f.metrics.complexity) || 1,
  }));
  console.log("\u001eSANDGRAPH_LINT_REPORT " + JSON.stringify({ diagnostics, functions }));
})();
