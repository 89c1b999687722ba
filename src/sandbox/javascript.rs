//! The JavaScript guest: the QuickJS-NG command module (WASI preview 1), run as
//! `qjs -e <code>` with no filesystem at all: QuickJS's `std`/`os` modules would
//! otherwise give scripts file access that the preview-1 host cannot meter.

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
