//! The JavaScript guest: the QuickJS-NG command module (WASI preview 1), run as
//! `qjs -e <code>` with no filesystem at all: QuickJS's `std`/`os` modules would
//! otherwise give scripts file access that the preview-1 host cannot meter.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use wasmtime::{Engine, InstancePre, Linker, Module};
use wasmtime_wasi::p1::WasiP1Ctx;

use super::limits::MemoryLimiter;

/// Per-run host state for the JavaScript guest.
pub(crate) struct JavascriptState {
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) limiter: MemoryLimiter,
}

/// Pre-link the module once per process. Imports outside `wasi_snapshot_preview1`
/// (there should be none) trap if called.
pub(crate) fn prepare(
    engine: &Engine,
    module: &Module,
) -> anyhow::Result<InstancePre<JavascriptState>> {
    let mut linker = Linker::<JavascriptState>::new(engine);
    wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s| &mut s.wasi)?;
    linker.define_unknown_imports_as_traps(module)?;
    Ok(linker.instantiate_pre(module)?)
}

/// The argv QuickJS is started with.
pub(crate) fn argv(code: &str) -> Vec<String> {
    vec!["qjs".to_owned(), "-e".to_owned(), code.to_owned()]
}

/// JSHint's file in the guest directory (`sandbox/build.sh` fetches it).
const LINTER_FILE: &str = "jshint.js";
/// The glue that runs JSHint on the user's source and prints the report.
const LINT_RUNNER: &str = include_str!("../../sandbox/javascript/lint_runner.js");
/// Where the runner takes the user's source (a JSON string literal).
const SOURCE_PLACEHOLDER: &str = "__SANDGRAPH_SOURCE__";
/// What starts the runner's report line (an ASCII record separator first: QuickJS prints
/// strings as C strings, so not a NUL).
const LINT_REPORT_MARKER: &str = "\u{1e}SANDGRAPH_LINT_REPORT ";

/// Read JSHint's source from a guest directory.
pub(crate) fn load_linter(guest_dir: &Path) -> anyhow::Result<Arc<str>> {
    let path = guest_dir.join(LINTER_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (the JavaScript linter; build the guest with `make guest`)",
            path.display()
        )
    })?;
    Ok(text.into())
}

/// JSHint, then the runner with `code` in it: one script for `qjs -e`.
pub(crate) fn lint_program(jshint: &str, code: &str) -> anyhow::Result<String> {
    let literal = serde_json::to_string(code).context("encoding the source")?;
    let mut program = String::with_capacity(jshint.len() + LINT_RUNNER.len() + literal.len() + 32);
    // JSHint's bundle assigns an undeclared `window`, which `qjs -e` (strict) refuses.
    program.push_str("var window = {};\n");
    program.push_str(jshint);
    program.push('\n');
    program.push_str(&LINT_RUNNER.replacen(SOURCE_PLACEHOLDER, &literal, 1));
    Ok(program)
}

/// Take the runner's report line off `stdout`; its JSON, if the run got that far.
pub(crate) fn take_lint_report(stdout: &mut String) -> Option<String> {
    let at = stdout.rfind(LINT_REPORT_MARKER)?;
    let report = stdout[at + LINT_REPORT_MARKER.len()..]
        .trim_end()
        .to_owned();
    stdout.truncate(at);
    Some(report)
}
