//! The Python guest: CPython 3.14 as a component built by componentize-py, with the
//! interpreter, the curated stdlib and the tool packages pre-imported into its snapshot.

use wasmtime::Engine;
use wasmtime::component::{Component, HasData, Linker, ResourceTable};
use wasmtime_wasi::cli::{WasiCli, WasiCliView};
use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
use wasmtime_wasi::p2::bindings as wasi;
use wasmtime_wasi::random::WasiRandom;
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

/// `wasi:io` host functions operate on the resource table alone.
struct HasIo;

impl HasData for HasIo {
    type Data<'a> = &'a mut ResourceTable;
}

/// Link exactly what the guest needs: io, clocks, random, cli (stdio, exit, an empty
/// environment) and the filesystem (the scratch preopen only, with the write quota).
/// `wasi:sockets` is deliberately not linked: any socket import traps if called.
fn python_linker(engine: &Engine, component: &Component) -> anyhow::Result<Linker<PythonState>> {
    type T = PythonState;
    let mut linker = Linker::<T>::new(engine);
    let l = &mut linker;
    wasmtime_wasi_io::bindings::wasi::io::error::add_to_linker::<T, HasIo>(l, |t| &mut t.table)?;
    wasmtime_wasi_io::bindings::wasi::io::poll::add_to_linker::<T, HasIo>(l, |t| &mut t.table)?;
    wasmtime_wasi_io::bindings::wasi::io::streams::add_to_linker::<T, HasIo>(l, |t| &mut t.table)?;
    wasi::clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    wasi::clocks::monotonic_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
    wasi::random::random::add_to_linker::<T, WasiRandom>(l, |t| t.wasi.random())?;
    wasi::random::insecure::add_to_linker::<T, WasiRandom>(l, |t| t.wasi.random())?;
    wasi::random::insecure_seed::add_to_linker::<T, WasiRandom>(l, |t| t.wasi.random())?;
    wasi::cli::exit::add_to_linker::<T, WasiCli>(l, T::cli)?;
    wasi::cli::environment::add_to_linker::<T, WasiCli>(l, T::cli)?;
    wasi::cli::stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    wasi::cli::stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    wasi::cli::stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    wasi::cli::terminal_input::add_to_linker::<T, WasiCli>(l, T::cli)?;
    wasi::cli::terminal_output::add_to_linker::<T, WasiCli>(l, T::cli)?;
    wasi::cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
    wasi::cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
    wasi::cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
    wasi::filesystem::preopens::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)?;
    wasi::filesystem::types::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)?;
    add_quota_to_linker(l)?;
    linker.define_unknown_imports_as_traps(component)?;
    Ok(linker)
}

/// Pre-link the component once per process; each run only instantiates it.
pub(crate) fn prepare(engine: &Engine, component: &Component) -> anyhow::Result<PythonGuestPre<PythonState>> {
    let linker = python_linker(engine, component)?;
    let pre = linker.instantiate_pre(component)?;
    Ok(PythonGuestPre::new(pre)?)
}
