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
use wasmtime::{Config, Engine, Module};

/// How often the ticker advances the engine's epoch: the granularity of time limits and
/// of the yields that keep a spinning guest from starving its neighbours.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Build the engine every guest shares.
pub(crate) fn new_engine() -> anyhow::Result<Engine> {
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .wasm_component_model(true)
        .cranelift_opt_level(wasmtime::OptLevel::Speed)
        // Python code that recurses deeply in C must end in a clean trap, not a host crash.
        .max_wasm_stack(4 << 20)
        .async_stack_size(6 << 20);
    Engine::new(&config).map_err(|e| anyhow::Error::from(e).context("creating the wasmtime engine"))
}

/// Advances the engine's epoch every [`EPOCH_TICK`] on one thread, for all stores.
/// Stops when dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub(crate) fn start(engine: &Engine) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let flag = stop.clone();
        std::thread::Builder::new()
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
        Ok(Self { stop })
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
