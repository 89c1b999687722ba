//! The Python guest: CPython 3.14 as a component built by componentize-py, with the
//! interpreter, the curated stdlib and the tool packages pre-imported into its snapshot.

use wasmtime::Engine;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::limits::MemoryLimiter;
use super::quota::{HasScratchQuota, ScratchQuota, add_quota_to_linker};

wasmtime::component::bindgen!({
    path: "sandbox/wit",
    world: "python-guest",
    exports: { default: async },
});

pub(crate) use exports::sandgraph::guest::runner::{Outcome, Status};

/// Per-run host state for the Python guest: its WASI context, resource table, memory
/// limiter and scratch quota. Created for one run and dropped with its store.
pub(crate) struct PythonState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) quota: std::sync::Arc<ScratchQuota>,
}

impl WasiView for PythonState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl HasScratchQuota for PythonState {
    fn scratch_quota(&self) -> &std::sync::Arc<ScratchQuota> {
        &self.quota
    }
}

/// Link WASI and shadow the filesystem's byte-moving functions with the write quota.
/// The componentize-py runtime imports `wasi:sockets`, so it must be linked; every run's
/// context denies TCP, UDP and name lookup (see `Sandbox::run_python`), so a socket call
/// fails inside the guest with a permission error.
fn python_linker(engine: &Engine) -> anyhow::Result<Linker<PythonState>> {
    let mut linker = Linker::<PythonState>::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    add_quota_to_linker(&mut linker)?;
    Ok(linker)
}

/// Pre-link the component once per process; each run only instantiates it.
pub(crate) fn prepare(
    engine: &Engine,
    component: &Component,
) -> anyhow::Result<PythonGuestPre<PythonState>> {
    let linker = python_linker(engine)?;
    let pre = linker.instantiate_pre(component)?;
    Ok(PythonGuestPre::new(pre)?)
}
