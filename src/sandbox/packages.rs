//! What the guests can import: the manifest the guest build writes next to the
//! components (`packages.json`, see `sandbox/build.sh` and `docs/packages.md`), and the
//! Python guest's site directory, mounted read-only into every Python run at the guest
//! path it had at build time (so the snapshot's module paths stay valid and modules not
//! in the snapshot import on first use from their precompiled bytecode).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The manifest's file name in the guest directory.
pub const MANIFEST_FILE: &str = "packages.json";
/// The Python guest's site directory, inside the guest directory.
pub const PYTHON_SITE_DIR: &str = "python-site";

/// Everything each guest can import beyond its language's standard library.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PackageManifest {
    /// The Python guest.
    pub python: PythonPackages,
    /// The JavaScript guest.
    pub javascript: JavascriptModules,
}

/// The Python guest's interpreter and packages.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PythonPackages {
    /// e.g. `CPython 3.14.0 (wasi)`.
    pub implementation: String,
    /// Where the packages are mounted (read-only) inside the guest; none for a guest
    /// built without packages.
    #[serde(default)]
    pub site_mount: Option<String>,
    /// Every installed distribution, sorted by name.
    pub packages: Vec<PythonPackage>,
}

/// One installed Python distribution.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PythonPackage {
    /// Project name as published.
    pub name: String,
    /// Installed version.
    pub version: String,
    /// The project's one-line summary.
    pub summary: String,
    /// Top-level modules it provides (what `import` takes).
    pub modules: Vec<String>,
    /// Imported into the snapshot at build time (free to import); otherwise imported
    /// on first use in a run, from precompiled bytecode.
    pub preloaded: bool,
    /// The requirements file that pinned it (the curated set or an operator's file).
    pub requirements: String,
    /// Source patches sandgraph applied to make it work under WASI, with the reason.
    #[serde(default)]
    pub patched: Vec<String>,
}

/// The JavaScript guest's runtime and bundled modules.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct JavascriptModules {
    /// e.g. `QuickJS-NG`.
    pub runtime: String,
    /// ES modules bundled into the guest (empty: standard library only).
    pub modules: Vec<JavascriptModule>,
}

/// One bundled ES module.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct JavascriptModule {
    /// npm package name.
    pub name: String,
    /// Installed version.
    pub version: String,
    /// What to `import ... from`.
    pub specifier: String,
    /// What it is for.
    pub summary: String,
}

/// The manifest and where the Python site lives on the host.
#[derive(Debug, Clone)]
pub(crate) struct GuestPackages {
    pub(crate) manifest: PackageManifest,
    /// The host directory mounted at `site_mount`, when there is one.
    pub(crate) python_site: Option<PathBuf>,
}

impl GuestPackages {
    /// Read `packages.json` from a guest directory built by `sandbox/build.sh`.
    pub(crate) fn load(guest_dir: &Path) -> anyhow::Result<Self> {
        let path = guest_dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {} (build the guest with `make guest`)",
                path.display()
            )
        })?;
        let manifest: PackageManifest = serde_json::from_str(&text)
            .with_context(|| format!("parsing {} (rebuild with `make guest`)", path.display()))?;
        let python_site = match &manifest.python.site_mount {
            None => None,
            Some(mount) => {
                let site = guest_dir.join(PYTHON_SITE_DIR);
                anyhow::ensure!(
                    site.is_dir(),
                    "{} is missing (rebuild the guest with `make guest`)",
                    site.display()
                );
                anyhow::ensure!(
                    mount.starts_with('/') && mount != crate::sandbox::GUEST_SCRATCH,
                    "{}: python.site_mount {mount:?} must be an absolute guest path other than \
                     the scratch dir",
                    path.display(),
                );
                Some(site)
            }
        };
        Ok(Self {
            manifest,
            python_site,
        })
    }
}
