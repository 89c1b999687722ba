//! The process-wide wasmtime engine, the epoch ticker that drives every store's time
//! limit, and the on-disk cache of compiled guests.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, Module, PoolingAllocationConfig,
};

/// How often the ticker advances the engine's epoch: the granularity of time limits and
/// of the yields that keep a spinning guest from starving its neighbours (a short run
/// queued behind busy guests waits at most about one tick for a thread). A tick costs a
/// guest one check of a deadline and one fiber switch.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(1);

/// What one run may instantiate, used to size the instance pool. The Python guest is a
/// componentize-py component (a handful of core modules sharing one memory of ~30 MiB
/// and two tables of ~5,700 entries); QuickJS is a single core module. [`check_fits_pool`]
/// verifies the loaded guests against these at start-up, so a bigger guest fails loudly
/// instead of at its first run. Each pooled memory reserves 4 GiB of address space (not
/// memory), so one memory per run keeps the reservation at ~4 GiB per concurrent run.
pub(crate) const CORE_INSTANCES_PER_RUN: u32 = 32;
pub(crate) const MEMORIES_PER_RUN: u32 = 1;
pub(crate) const TABLES_PER_RUN: u32 = 4;
pub(crate) const TABLE_ELEMENTS: usize = 1 << 14;

/// How to size the instance pool.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolSizing {
    /// Runs that may hold an instance at once.
    pub(crate) runs: u32,
    /// Bytes of each pooled linear memory kept resident (reset in place from the snapshot
    /// instead of unmapped) when a run ends; dirty pages beyond it go back to the kernel.
    /// Measured here: a `print('hi')` run dirties ~1.7 MiB, a run building 20,000
    /// dataclass instances ~8.5 MiB.
    pub(crate) keep_resident: usize,
}

/// Build the engine every guest shares. With `pool`, instances come from wasmtime's
/// pooling allocator sized for that many concurrent runs: a finished run's memory slot is
/// reset in place (only its dirty pages, found with `PAGEMAP_SCAN` where the kernel has
/// it) rather than unmapped and faulted in copy-on-write again by the next run, which
/// costs a TLB shootdown per page on a multi-threaded host.
pub(crate) fn new_engine(pool: Option<PoolSizing>) -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .wasm_component_model(true)
        .cranelift_opt_level(wasmtime::OptLevel::Speed)
        // Python code that recurses deeply in C must end in a clean trap, not a host crash.
        .max_wasm_stack(4 << 20)
        .async_stack_size(6 << 20)
        // Defense in depth: a run's host stack (which held WASI buffers of the previous
        // request) is zeroed before the next run gets it. Wasm cannot address it, so
        // only a wasmtime bug could expose it. With the pool, the first 256 KiB are
        // zeroed in place and the rest is returned to the kernel: no measurable cost.
        .async_stack_zeroing(true);
    if let Some(sizing) = pool {
        let runs = sizing.runs.max(1);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(runs)
            .total_core_instances(runs * CORE_INSTANCES_PER_RUN)
            .total_memories(runs * MEMORIES_PER_RUN)
            .total_tables(runs * TABLES_PER_RUN)
            .total_stacks(runs)
            .max_core_instances_per_component(CORE_INSTANCES_PER_RUN)
            .max_memories_per_component(MEMORIES_PER_RUN)
            .max_tables_per_component(TABLES_PER_RUN)
            .table_elements(TABLE_ELEMENTS)
            // The memory limiter, not the pool, decides how far a guest may grow.
            .max_memory_size(4 << 30)
            .linear_memory_keep_resident(sizing.keep_resident)
            .table_keep_resident(1 << 20)
            .async_stack_keep_resident(256 << 10)
            .pagemap_scan(Enabled::Auto);
        if !PoolingAllocationConfig::is_pagemap_scan_available() {
            tracing::warn!(
                keep_resident = sizing.keep_resident,
                "PAGEMAP_SCAN is unavailable (Linux < 6.7 or /proc restricted): every pooled \
                 reset copies the first keep_resident bytes of memory; consider a smaller \
                 SANDGRAPH_POOL_KEEP_RESIDENT_BYTES or SANDGRAPH_POOLING=false"
            );
        }
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        return Engine::new(&config).map_err(|e| {
            anyhow::Error::from(e).context(format!(
                "creating the wasmtime engine with an instance pool for {runs} concurrent runs \
                 (~4 GiB of address space each); lower SANDGRAPH_MAX_CONCURRENT_RUNS, raise \
                 `ulimit -v`, or set SANDGRAPH_POOLING=false"
            ))
        });
    }
    Engine::new(&config).map_err(|e| anyhow::Error::from(e).context("creating the wasmtime engine"))
}

/// Refuse to start with a guest that needs more memories or tables per run than the pool
/// gives one run.
pub(crate) fn check_fits_pool(
    name: &str,
    required: Option<wasmtime::ResourcesRequired>,
) -> anyhow::Result<()> {
    let Some(required) = required else {
        return Ok(());
    };
    let table_elements = required.max_initial_table_size.unwrap_or(0);
    anyhow::ensure!(
        required.num_memories <= MEMORIES_PER_RUN
            && required.num_tables <= TABLES_PER_RUN
            && table_elements <= TABLE_ELEMENTS as u64,
        "guest {name} needs {} memories, {} tables of up to {table_elements} elements per run; \
         the instance pool gives {MEMORIES_PER_RUN}, {TABLES_PER_RUN} and {TABLE_ELEMENTS} \
         (raise the constants in src/sandbox/engine.rs or set SANDGRAPH_POOLING=false)",
        required.num_memories,
        required.num_tables,
    );
    Ok(())
}

/// A module whose one-page memory holds a 16 KiB "snapshot" of 0xAB at offset 16 KiB.
const CANARY_WAT: &str = r#"(module (memory (export "memory") 1)
    (data (i32.const 16384) "\ab\ab\ab\ab\ab\ab\ab\ab\ab\ab\ab\ab\ab\ab\ab\ab"))"#;
const CANARY_IMAGE: std::ops::Range<usize> = 16384..16384 + 16;

/// Prove, at start-up, that the pooled engine hands a reused memory slot over pristine on
/// this kernel: dirty every host page (and grown memory) of a canary instance, drop it,
/// and check the next instance in the same slot. Resetting relies on Linux page-table
/// reporting (`PAGEMAP_SCAN`) whose semantics have changed between kernels; a kernel
/// that reported dirty pages differently must make the server refuse to start, never
/// leak one run's memory into the next.
pub(crate) fn verify_pool_reset(engine: &Engine) -> anyhow::Result<()> {
    use wasmtime::{Instance, Store};
    let module = Module::new(engine, CANARY_WAT)
        .map_err(|e| anyhow::Error::from(e).context("compiling the pool canary"))?;
    let expected = |addr: usize| {
        if CANARY_IMAGE.contains(&addr) {
            0xab
        } else {
            0
        }
    };
    let mut last_base = None;
    let mut reused = false;
    for round in 0..4 {
        let mut store = Store::new(engine, ());
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = Instance::new(&mut store, &module, &[])?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .context("canary memory")?;
        let base = memory.data_ptr(&store) as usize;
        reused |= last_base == Some(base);
        last_base = Some(base);
        anyhow::ensure!(
            memory.size(&store) == 1,
            "pooled memory kept the previous instance's size ({} pages, round {round})",
            memory.size(&store)
        );
        let probes: Vec<usize> = (0..16).map(|page| page * 4096 + 7).chain([16384]).collect();
        for &addr in &probes {
            let got = memory.data(&store)[addr];
            anyhow::ensure!(
                got == expected(addr),
                "pooled memory kept the previous instance's byte at {addr:#x} \
                 ({got:#x}, round {round})"
            );
        }
        memory.grow(&mut store, 1)?;
        let data = memory.data_mut(&mut store);
        for &addr in &probes {
            data[addr] = 0x5a;
        }
        data[65536 + 7] = 0x5a;
    }
    if !reused {
        tracing::warn!("instance pool canary never reused a slot; reset not verified");
    }
    Ok(())
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on one thread, for all stores.
///
/// A thread of its own, not a task: it must keep ticking while every async worker is
/// busy with guests (the ticks are what make those guests yield). It runs until the
/// drain is over ([`EpochTicker::stop`], called by the app once no run is left) or the
/// engine is dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl EpochTicker {
    pub(crate) fn start(engine: &Engine) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sandgraph-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .context("starting the epoch ticker thread")?;
        Ok(Self {
            stop,
            thread: std::sync::Mutex::new(Some(thread)),
        })
    }

    /// Stop ticking and wait for the thread (at most one tick). Runs still in flight
    /// would no longer be interrupted, so only call this when none is left.
    pub(crate) fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!("the epoch ticker thread panicked");
        }
    }

    /// Whether the thread is still ticking.
    pub(crate) fn is_running(&self) -> bool {
        self.thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|t| !t.is_finished())
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The file a compiled artifact is cached in: keyed by the guest's bytes and the
/// engine's compatibility hash, so a new wasmtime or new flags never load a stale file.
fn cache_path(engine: &Engine, cache_dir: &Path, name: &str, wasm: &[u8]) -> PathBuf {
    let mut engine_hash = DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hash);
    let mut digest = Sha256::new();
    digest.update(wasm);
    digest.update(engine_hash.finish().to_le_bytes());
    let key = hex::encode(&digest.finalize()[..16]);
    cache_dir.join(format!("{name}-{key}.cwasm"))
}

/// Which kind of artifact to compile.
#[derive(Clone, Copy)]
pub(crate) enum ArtifactKind {
    Component,
    Module,
}

/// Load a compiled guest from the cache, or compile and cache it. The cache file is
/// written atomically (temp file + rename) so concurrent servers never see half a file.
pub(crate) fn load_or_compile(
    engine: &Engine,
    cache_dir: &Path,
    name: &str,
    wasm_path: &Path,
    kind: ArtifactKind,
) -> anyhow::Result<Artifact> {
    let wasm = std::fs::read(wasm_path).with_context(|| {
        format!(
            "reading guest {} (build it with `make guest`)",
            wasm_path.display()
        )
    })?;
    let cached = cache_path(engine, cache_dir, name, &wasm);
    if cached.exists() {
        // SAFETY: the file was written by `serialize` below with this engine's
        // compatibility hash in its name; nothing but this process family writes there.
        let loaded = unsafe {
            match kind {
                ArtifactKind::Component => {
                    Component::deserialize_file(engine, &cached).map(Artifact::Component)
                }
                ArtifactKind::Module => {
                    Module::deserialize_file(engine, &cached).map(Artifact::Module)
                }
            }
        };
        match loaded {
            Ok(artifact) => return Ok(artifact),
            Err(err) => {
                tracing::warn!(path = %cached.display(), error = %err, "ignoring unreadable compiled-guest cache")
            }
        }
    }
    tracing::info!(
        guest = name,
        "compiling guest (first start only; cached afterwards)"
    );
    let (artifact, bytes) = match kind {
        ArtifactKind::Component => {
            let component = Component::new(engine, &wasm).map_err(|e| {
                anyhow::Error::from(e).context(format!("compiling {}", wasm_path.display()))
            })?;
            let bytes = component.serialize()?;
            (Artifact::Component(component), bytes)
        }
        ArtifactKind::Module => {
            let module = Module::new(engine, &wasm).map_err(|e| {
                anyhow::Error::from(e).context(format!("compiling {}", wasm_path.display()))
            })?;
            let bytes = module.serialize()?;
            (Artifact::Module(module), bytes)
        }
    };
    std::fs::create_dir_all(cache_dir)
        .with_context(|| format!("creating {}", cache_dir.display()))?;
    let tmp = tempfile::NamedTempFile::new_in(cache_dir)?;
    std::fs::write(tmp.path(), bytes)?;
    tmp.persist(&cached)
        .with_context(|| format!("writing {}", cached.display()))?;
    Ok(artifact)
}

/// A compiled guest.
pub(crate) enum Artifact {
    Component(Component),
    Module(Module),
}

#[cfg(test)]
mod tests {
    //! The pooled engine hands a finished run's memory slot to the next run. These tests
    //! prove the next run sees pristine memory however the previous one dirtied it,
    //! which is what the `PAGEMAP_SCAN` reset (vendored fix, see vendor/README.md) and
    //! the decommit fallback must guarantee.

    use super::*;
    use wasmtime::{Instance, Store};

    const WASM_PAGE: usize = 64 << 10;
    const HOST_PAGE: usize = 4 << 10;
    /// Initial memory: 64 wasm pages (4 MiB, 1,024 host pages).
    const INITIAL_PAGES: usize = 64;
    /// The "snapshot": 256 KiB of 0xAB starting at 64 KiB.
    const IMAGE_START: usize = WASM_PAGE;
    const IMAGE_LEN: usize = 256 << 10;

    fn module(engine: &Engine) -> Module {
        let image = "\\ab".repeat(IMAGE_LEN);
        let wat = format!(
            r#"(module
                (memory (export "memory") {INITIAL_PAGES})
                (data (i32.const {IMAGE_START}) "{image}")
                (func (export "store") (param i32 i32) (i32.store8 (local.get 0) (local.get 1)))
                (func (export "load") (param i32) (result i32) (i32.load8_u (local.get 0)))
                (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
                (func (export "size") (result i32) (memory.size)))"#
        );
        Module::new(engine, wat).expect("test module compiles")
    }

    fn instance(engine: &Engine, module: &Module) -> (Store<()>, Instance) {
        let mut store = Store::new(engine, ());
        store.set_epoch_deadline(u64::MAX / 2);
        let instance = Instance::new(&mut store, module, &[]).expect("instantiates");
        (store, instance)
    }

    fn pristine(addr: usize) -> u32 {
        if (IMAGE_START..IMAGE_START + IMAGE_LEN).contains(&addr) {
            0xab
        } else {
            0
        }
    }

    /// Dirty every other host page of the initial memory (512 separate regions, more
    /// than one `PAGEMAP_SCAN` call returns) plus pages in memory grown at run time,
    /// then check that the next instance in the same slot sees the original contents
    /// and the original size.
    fn dirty_then_check(keep_resident: usize) {
        let engine = new_engine(Some(PoolSizing {
            runs: 1,
            keep_resident,
        }))
        .unwrap();
        let module = module(&engine);
        let written: Vec<usize> = (0..INITIAL_PAGES * WASM_PAGE / HOST_PAGE)
            .step_by(2)
            .map(|page| page * HOST_PAGE + 123)
            .collect();
        let grown = INITIAL_PAGES * WASM_PAGE + 5 * HOST_PAGE;

        for round in 0..3 {
            let (mut store, instance) = instance(&engine, &module);
            let store_fn = instance
                .get_typed_func::<(i32, i32), ()>(&mut store, "store")
                .unwrap();
            let load = instance
                .get_typed_func::<i32, i32>(&mut store, "load")
                .unwrap();
            let size = instance
                .get_typed_func::<(), i32>(&mut store, "size")
                .unwrap();
            let grow = instance
                .get_typed_func::<i32, i32>(&mut store, "grow")
                .unwrap();

            assert_eq!(size.call(&mut store, ()).unwrap(), INITIAL_PAGES as i32);
            for &addr in &written {
                let got = load.call(&mut store, addr as i32).unwrap() as u32;
                assert_eq!(
                    got,
                    pristine(addr),
                    "round {round}: byte {addr:#x} kept the previous run's value"
                );
            }
            assert_eq!(grow.call(&mut store, 4).unwrap(), INITIAL_PAGES as i32);
            assert_eq!(
                load.call(&mut store, grown as i32).unwrap(),
                0,
                "round {round}: grown memory kept the previous run's value"
            );

            for &addr in &written {
                store_fn.call(&mut store, (addr as i32, 0x5a)).unwrap();
            }
            store_fn.call(&mut store, (grown as i32, 0x5a)).unwrap();
        }
    }

    #[test]
    fn a_reused_slot_is_pristine_when_every_dirty_page_fits_the_budget() {
        dirty_then_check(16 << 20);
    }

    #[test]
    fn a_reused_slot_is_pristine_when_the_budget_runs_out() {
        // 64 KiB of budget for ~2 MiB of dirty pages: most must be decommitted instead.
        dirty_then_check(64 << 10);
    }

    #[test]
    fn a_reused_slot_is_pristine_with_no_budget() {
        dirty_then_check(0);
    }

    #[test]
    fn the_start_up_canary_passes_on_a_pool_that_resets() {
        for keep_resident in [16 << 20, 0] {
            let engine = new_engine(Some(PoolSizing {
                runs: 4,
                keep_resident,
            }))
            .unwrap();
            verify_pool_reset(&engine).unwrap();
        }
    }

    #[test]
    fn the_unpooled_engine_gives_fresh_memory_too() {
        let engine = new_engine(None).unwrap();
        let module = module(&engine);
        for _ in 0..2 {
            let (mut store, instance) = instance(&engine, &module);
            let load = instance
                .get_typed_func::<i32, i32>(&mut store, "load")
                .unwrap();
            let store_fn = instance
                .get_typed_func::<(i32, i32), ()>(&mut store, "store")
                .unwrap();
            assert_eq!(load.call(&mut store, 8192).unwrap(), 0);
            store_fn.call(&mut store, (8192, 0x5a)).unwrap();
        }
    }
}
