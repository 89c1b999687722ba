//! Workspaces: directories that outlive a call, behind server-minted handles.
//!
//! A workspace is a directory under `<data>/workspaces/<id>` plus a row of metadata in a
//! [`WorkspaceStore`] (owner, last use, quotas, usage). The handle (`ws_` + 128 random
//! bits in hex) is passed as a tool argument; only the caller that created it may use
//! it, and to anyone else it does not exist. It expires after its idle TTL; a janitor
//! task removes expired ones and whatever a crash left half-deleted.
//!
//! Every operation on one workspace (a host read or write, a run) holds its lock, so a
//! run sees a stable directory and its usage can be recounted exactly when it ends.
//! The lock is per process; handles served by several replicas will need it in the
//! shared store (the metadata already is behind the trait). Deleting a workspace
//! cancels a run in it, waits for the run to stop (one epoch tick), then removes it.
//!
//! The host never follows a link inside a workspace ([`fs`]); paths are checked by
//! [`path`]; pictures a run writes are prepared for chat clients by [`picture`].

pub mod fs;
pub mod path;
pub mod picture;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;
use tokio::sync::OwnedMutexGuard;
use tokio_util::sync::CancellationToken;

pub use fs::{EntryKind, FsError, Tree};
pub use path::WorkspacePath;
pub use picture::{Picture, PictureKind};

use crate::sandbox::WriteBudget;
use crate::store::workspaces::{Created, WorkspaceMeta, WorkspaceStore};

/// Workspace limits and housekeeping.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkspaceSettings {
    /// Idle time after which a workspace expires, in seconds.
    pub ttl_seconds: u64,
    /// Most bytes one workspace's files may hold.
    pub quota_bytes: u64,
    /// Most entries (files, directories, links) one workspace may hold.
    pub max_files: u64,
    /// Most live workspaces one caller may have.
    pub per_caller: u64,
    /// Most bytes all workspaces together may hold (the global disk cap).
    pub disk_bytes: u64,
    /// How often the janitor looks for expired workspaces, in milliseconds.
    pub sweep_interval_ms: u64,
    /// Largest file written or read through a tool (JSON carries it), in bytes.
    pub max_file_bytes: u64,
    /// Text files a run wrote up to this size come back inline in its result.
    pub inline_text_bytes: u64,
    /// Largest picture (after SVG rendering) returned as image content, in bytes.
    pub image_max_bytes: u64,
    /// Most pictures returned with one result.
    pub images_per_result: usize,
}

impl Default for WorkspaceSettings {
    fn default() -> Self {
        Self {
            ttl_seconds: 30 * 60,
            quota_bytes: 64 << 20,
            max_files: 1000,
            per_caller: 8,
            disk_bytes: 4 << 30,
            sweep_interval_ms: 60_000,
            max_file_bytes: 8 << 20,
            inline_text_bytes: 4096,
            image_max_bytes: 2 << 20,
            images_per_result: 4,
        }
    }
}

/// Why a workspace operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkspaceError {
    /// The id is not shaped like a handle.
    #[error(
        "workspace_id {0:?} is not a workspace handle: handles look like ws_ followed by 32 hex digits (create_workspace makes one)"
    )]
    BadId(String),
    /// No such workspace for this caller (never says whether another caller has it).
    #[error(
        "no workspace {0}: it does not exist, has expired or was deleted (create_workspace makes a new one)"
    )]
    NotFound(String),
    /// The workspace was deleted while the call used it.
    #[error("workspace {0} was deleted while the call was using it")]
    DeletedDuringCall(String),
    /// A path was refused.
    #[error("{0}")]
    Path(String),
    /// A file operation failed.
    #[error(transparent)]
    Fs(#[from] FsError),
    /// A quota or the global disk cap would be exceeded.
    #[error("{0}")]
    Quota(String),
    /// The call was cancelled while it waited for the workspace.
    #[error("the call was cancelled")]
    Cancelled,
    /// Something on the host failed.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// What `create_workspace` and a workspace's listing report about it.
#[derive(Debug, Clone, serde::Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkspaceInfo {
    /// The handle: pass it as `workspace_id`.
    pub workspace_id: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it expires unless used again (RFC 3339); every call naming it extends it.
    pub expires_at: String,
    /// Idle time after which it expires, in seconds.
    pub ttl_seconds: u64,
    /// Most bytes its files may hold.
    pub quota_bytes: u64,
    /// Most entries (files, directories, links) it may hold.
    pub max_files: u64,
    /// Bytes its files hold now.
    pub used_bytes: u64,
    /// Entries it holds now.
    pub used_files: u64,
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl WorkspaceInfo {
    fn of(meta: &WorkspaceMeta) -> Self {
        Self {
            workspace_id: meta.id.clone(),
            created_at: rfc3339(meta.created_ms),
            expires_at: rfc3339(meta.expires_ms()),
            ttl_seconds: (meta.ttl_ms / 1000).max(0) as u64,
            quota_bytes: meta.quota_bytes,
            max_files: meta.max_files,
            used_bytes: meta.used_bytes,
            used_files: meta.used_files,
        }
    }
}

/// One workspace's in-process coordination: its lock, and the token of the run in it.
#[derive(Default)]
struct Slot {
    lock: Arc<tokio::sync::Mutex<()>>,
    run: Mutex<Option<CancellationToken>>,
    deleted: AtomicBool,
}

/// Exclusive use of a workspace for one call.
pub struct Lease {
    meta: WorkspaceMeta,
    dir: PathBuf,
    root: cap_std::fs::Dir,
    granted_bytes: u64,
    disk_limited: bool,
    slot: Arc<Slot>,
    _guard: OwnedMutexGuard<()>,
}

impl Lease {
    /// The workspace as of the start of the call.
    pub fn meta(&self) -> &WorkspaceMeta {
        &self.meta
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        *self.slot.run.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// A file's listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize, schemars::JsonSchema)]
pub struct FileInfo {
    /// Path from the workspace root.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content (hex).
    pub sha256: String,
    /// MIME type, from the file name.
    pub mime: String,
}

/// A host write to make before a run (the `files` argument).
#[derive(Debug, Clone)]
pub struct InputFile {
    /// Where.
    pub path: WorkspacePath,
    /// What.
    pub bytes: Vec<u8>,
}

/// Where a run happens and what it may add: a workspace, or a directory that lives only
/// for the call (files in, no workspace).
pub struct RunScope {
    dir: PathBuf,
    root: cap_std::fs::Dir,
    before: Tree,
    budget: WriteBudget,
    cancel: CancellationToken,
    place: Place,
}

enum Place {
    Workspace(Lease),
    Ephemeral(tempfile::TempDir),
}

impl RunScope {
    /// The host directory to run in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What the run may add.
    pub fn budget(&self) -> WriteBudget {
        self.budget
    }

    /// The run's cancellation: the call's, and fired if the workspace is deleted.
    pub fn cancel(&self) -> &CancellationToken {
        &self.cancel
    }

    /// The workspace id, if the run is in one.
    pub fn workspace_id(&self) -> Option<&str> {
        match &self.place {
            Place::Workspace(lease) => Some(&lease.meta.id),
            Place::Ephemeral(_) => None,
        }
    }
}

/// A file a run created or changed.
#[derive(Debug, Clone)]
pub struct ChangedFile {
    /// Path, size, hash, type.
    pub info: FileInfo,
    /// Whether it is new (else it was modified).
    pub created: bool,
    /// Its text, if it is a small UTF-8 text file.
    pub text: Option<String>,
}

/// What a run did to its directory.
#[derive(Debug, Clone, Default)]
pub struct RunChanges {
    /// Regular files created or modified, by path.
    pub changed: Vec<ChangedFile>,
    /// Paths that existed before and are gone.
    pub removed: Vec<String>,
    /// Pictures among the changed files, ready to show: (path, picture).
    pub pictures: Vec<(String, Picture)>,
    /// Why a picture was not returned, one line each.
    pub picture_notes: Vec<String>,
    /// Whether more files changed than are listed.
    pub truncated: bool,
    /// Bytes and entries the directory holds after the run.
    pub usage: (u64, u64),
}

/// Most changed files a result lists.
pub const MAX_LISTED_CHANGES: usize = 200;

/// The workspaces of this server.
pub struct Workspaces {
    store: Arc<dyn WorkspaceStore>,
    root: PathBuf,
    settings: WorkspaceSettings,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

/// The MIME type of a path, from its extension.
pub fn mime_of(path: &str) -> String {
    mime_guess::from_path(path)
        .first_or_octet_stream()
        .essence_str()
        .to_owned()
}

fn is_text_mime(mime: &str) -> bool {
    mime.starts_with("text/")
        || matches!(
            mime,
            "application/json" | "application/xml" | "image/svg+xml" | "application/toml"
        )
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Whether `id` has the shape of a handle this server mints.
pub fn valid_id(id: &str) -> bool {
    id.len() == 35
        && id.starts_with("ws_")
        && id[3..]
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, WorkspaceError> + Send + 'static,
) -> Result<T, WorkspaceError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| WorkspaceError::Internal(e.into()))?
}

impl Workspaces {
    /// Workspaces under `root` (created if missing), with metadata in `store`.
    pub fn open(
        root: PathBuf,
        store: Arc<dyn WorkspaceStore>,
        settings: WorkspaceSettings,
    ) -> anyhow::Result<Self> {
        for dir in [root.clone(), root.join(".tmp"), root.join(".trash")] {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        Ok(Self {
            store,
            root,
            settings,
            slots: Mutex::new(HashMap::new()),
        })
    }

    /// The limits.
    pub fn settings(&self) -> &WorkspaceSettings {
        &self.settings
    }

    fn dir_of(&self, id: &str) -> PathBuf {
        self.root.join(id)
    }

    fn slot(&self, id: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(id.to_owned()).or_default().clone()
    }

    /// Create a workspace for `owner`.
    pub async fn create(&self, owner: &str) -> Result<WorkspaceInfo, WorkspaceError> {
        let now = now_ms();
        let id = format!("ws_{}", hex::encode(rand::random::<[u8; 16]>()));
        let meta = WorkspaceMeta {
            id: id.clone(),
            owner: owner.to_owned(),
            created_ms: now,
            last_used_ms: now,
            ttl_ms: i64::try_from(self.settings.ttl_seconds.saturating_mul(1000))
                .unwrap_or(i64::MAX),
            quota_bytes: self.settings.quota_bytes,
            max_files: self.settings.max_files,
            used_bytes: 0,
            used_files: 0,
        };
        // The directory first: a row never names a directory that does not exist (a
        // directory without a row is removed by the janitor).
        let dir = self.dir_of(&id);
        std::fs::create_dir(&dir)
            .with_context(|| format!("creating {}", dir.display()))
            .map_err(WorkspaceError::Internal)?;
        match self
            .store
            .create(&meta, self.settings.per_caller, now)
            .await
        {
            Ok(Created::Yes) => Ok(WorkspaceInfo::of(&meta)),
            Ok(Created::OverCap(live)) => {
                let _ = std::fs::remove_dir(&dir);
                Err(WorkspaceError::Quota(format!(
                    "you already have {live} live workspaces, the most one caller may have; \
                     delete one with delete_workspace (or let one expire) first"
                )))
            }
            Err(err) => {
                let _ = std::fs::remove_dir(&dir);
                Err(WorkspaceError::Internal(err))
            }
        }
    }

    /// The metadata of `owner`'s live workspace `id`; anything else is "not found".
    async fn find(&self, owner: &str, id: &str) -> Result<WorkspaceMeta, WorkspaceError> {
        if !valid_id(id) {
            return Err(WorkspaceError::BadId(id.to_owned()));
        }
        let meta = self
            .store
            .get(id)
            .await?
            .filter(|meta| meta.owner == owner)
            .ok_or_else(|| WorkspaceError::NotFound(id.to_owned()))?;
        if meta.expired_at(now_ms()) {
            // Gone for the caller now; the janitor removes its content.
            return Err(WorkspaceError::NotFound(id.to_owned()));
        }
        Ok(meta)
    }

    /// Take `owner`'s workspace `id` for one call, reserving up to `want_bytes`.
    async fn lease(
        &self,
        owner: &str,
        id: &str,
        want_bytes: u64,
        cancel: &CancellationToken,
    ) -> Result<Lease, WorkspaceError> {
        self.find(owner, id).await?;
        let slot = self.slot(id);
        let guard = tokio::select! {
            guard = slot.lock.clone().lock_owned() => guard,
            () = cancel.cancelled() => return Err(WorkspaceError::Cancelled),
        };
        // Deleted (or expired) while we waited?
        let reservation = self
            .store
            .reserve(id, want_bytes, self.settings.disk_bytes, now_ms())
            .await?
            .filter(|r| r.meta.owner == owner)
            .ok_or_else(|| WorkspaceError::NotFound(id.to_owned()))?;
        let dir = self.dir_of(id);
        let root = match fs::open_root(&dir) {
            Ok(root) => root,
            Err(err) => {
                self.store
                    .release(
                        id,
                        reservation.meta.used_bytes,
                        reservation.meta.used_files,
                        now_ms(),
                    )
                    .await?;
                return Err(WorkspaceError::Internal(
                    anyhow::Error::from(err).context(format!("opening {}", dir.display())),
                ));
            }
        };
        Ok(Lease {
            meta: reservation.meta,
            dir,
            root,
            granted_bytes: reservation.granted_bytes,
            disk_limited: reservation.disk_limited,
            slot,
            _guard: guard,
        })
    }

    /// End a call: record the workspace's usage, drop its reservation.
    async fn release(&self, lease: &Lease, usage: (u64, u64)) -> Result<(), WorkspaceError> {
        let exists = self
            .store
            .release(&lease.meta.id, usage.0, usage.1, now_ms())
            .await?;
        if exists {
            Ok(())
        } else {
            Err(WorkspaceError::DeletedDuringCall(lease.meta.id.clone()))
        }
    }

    /// The message for a write that does not fit.
    fn over_quota(&self, lease: &Lease, what: &str, need: u64) -> WorkspaceError {
        if lease.disk_limited {
            WorkspaceError::Quota(format!(
                "the server's workspace storage is full ({} bytes across all workspaces); \
                 {what} needs {need} more bytes: delete files or workspaces you no longer need",
                self.settings.disk_bytes
            ))
        } else {
            WorkspaceError::Quota(format!(
                "{what} would need {need} more bytes, but workspace {} holds {} of its {} bytes; \
                 delete files first",
                lease.meta.id, lease.meta.used_bytes, lease.meta.quota_bytes
            ))
        }
    }

    /// Write `files` into a leased workspace, within its quotas (all or none are
    /// checked before any is written); the usage after.
    async fn write_into(
        &self,
        lease: &Lease,
        files: Vec<InputFile>,
        what: &str,
    ) -> Result<(u64, u64), WorkspaceError> {
        let root = lease.root.try_clone().map_err(FsError::from)?;
        let (used_bytes, used_files) = (lease.meta.used_bytes, lease.meta.used_files);
        let (granted, max_files) = (lease.granted_bytes, lease.meta.max_files);
        let plan = blocking(move || {
            // What the writes add: bytes beyond what they replace, and new entries.
            let mut need_bytes = 0u64;
            let mut new_entries = 0u64;
            let mut seen = std::collections::HashSet::new();
            for file in &files {
                if !seen.insert(file.path.clone()) {
                    return Err(WorkspaceError::Path(format!(
                        "path {} is given twice",
                        file.path
                    )));
                }
                let existing = fs::stat(&root, &file.path)?;
                let replaced = match existing {
                    Some((EntryKind::File, size)) => size,
                    Some((EntryKind::Directory, _)) => {
                        return Err(FsError::NotAFile {
                            path: file.path.to_string(),
                            kind: "directory",
                        }
                        .into());
                    }
                    Some(_) => 0,
                    None => {
                        new_entries += missing_entries(&root, &file.path)?;
                        0
                    }
                };
                need_bytes =
                    need_bytes.saturating_add((file.bytes.len() as u64).saturating_sub(replaced));
            }
            Ok((files, root, need_bytes, new_entries))
        })
        .await?;
        let (files, root, need_bytes, new_entries) = plan;
        if need_bytes > granted {
            return Err(self.over_quota(lease, what, need_bytes));
        }
        if used_files + new_entries > max_files {
            return Err(WorkspaceError::Quota(format!(
                "{what} would add {new_entries} entries, but workspace {} holds {used_files} of \
                 its {max_files} files and directories; delete some first",
                lease.meta.id
            )));
        }
        blocking(move || {
            let mut bytes = used_bytes;
            let mut entries = used_files;
            for file in &files {
                let written = fs::write(&root, &file.path, &file.bytes)?;
                bytes = bytes.saturating_sub(written.replaced_bytes) + file.bytes.len() as u64;
                entries += written.new_entries;
            }
            Ok((bytes, entries))
        })
        .await
    }

    /// Write one file into `owner`'s workspace `id`.
    pub async fn write_file(
        &self,
        owner: &str,
        id: &str,
        file: InputFile,
        cancel: &CancellationToken,
    ) -> Result<FileInfo, WorkspaceError> {
        let want = file.bytes.len() as u64;
        let lease = self.lease(owner, id, want, cancel).await?;
        let info = FileInfo {
            path: file.path.to_string(),
            size: want,
            sha256: sha256_hex(&file.bytes),
            mime: mime_of(file.path.as_str()),
        };
        let what = format!("writing {} ({want} bytes)", file.path);
        let result = self.write_into(&lease, vec![file], &what).await;
        let usage = match &result {
            Ok(usage) => *usage,
            Err(_) => (lease.meta.used_bytes, lease.meta.used_files),
        };
        self.release(&lease, usage).await?;
        result.map(|_| info)
    }

    /// Read one file of `owner`'s workspace `id` (at most `limit` bytes).
    pub async fn read_file(
        &self,
        owner: &str,
        id: &str,
        path: WorkspacePath,
        limit: u64,
        cancel: &CancellationToken,
    ) -> Result<(FileInfo, Vec<u8>), WorkspaceError> {
        let lease = self.lease(owner, id, 0, cancel).await?;
        let root = lease.root.try_clone().map_err(FsError::from)?;
        let read_path = path.clone();
        let result = blocking(move || Ok(fs::read(&root, &read_path, limit)?)).await;
        self.release(&lease, (lease.meta.used_bytes, lease.meta.used_files))
            .await?;
        let bytes = result?;
        let info = FileInfo {
            path: path.to_string(),
            size: bytes.len() as u64,
            sha256: sha256_hex(&bytes),
            mime: mime_of(path.as_str()),
        };
        Ok((info, bytes))
    }

    /// Every entry of `owner`'s workspace `id` (links listed, never followed), and the
    /// workspace's state.
    pub async fn list(
        &self,
        owner: &str,
        id: &str,
        cancel: &CancellationToken,
    ) -> Result<(WorkspaceInfo, Tree), WorkspaceError> {
        let lease = self.lease(owner, id, 0, cancel).await?;
        let root = lease.root.try_clone().map_err(FsError::from)?;
        let limit = self.settings.max_files.saturating_add(1);
        let result = blocking(move || Ok(fs::walk(&root, limit)?)).await;
        let usage = match &result {
            Ok(tree) if !tree.truncated => tree.usage(),
            _ => (lease.meta.used_bytes, lease.meta.used_files),
        };
        self.release(&lease, usage).await?;
        let tree = result?;
        let mut meta = lease.meta.clone();
        (meta.used_bytes, meta.used_files) = usage;
        meta.last_used_ms = now_ms();
        Ok((WorkspaceInfo::of(&meta), tree))
    }

    /// Remove a file, link or directory tree from `owner`'s workspace `id`.
    pub async fn delete_file(
        &self,
        owner: &str,
        id: &str,
        path: WorkspacePath,
        cancel: &CancellationToken,
    ) -> Result<(), WorkspaceError> {
        let lease = self.lease(owner, id, 0, cancel).await?;
        let root = lease.root.try_clone().map_err(FsError::from)?;
        let result = blocking(move || Ok(fs::remove(&root, &path)?)).await;
        let (bytes, files) = (lease.meta.used_bytes, lease.meta.used_files);
        let usage = match &result {
            Ok((entries, freed)) => (bytes.saturating_sub(*freed), files.saturating_sub(*entries)),
            Err(_) => (bytes, files),
        };
        self.release(&lease, usage).await?;
        result.map(|_| ())
    }

    /// Delete `owner`'s workspace `id`: it is gone for every call from now on; a run in
    /// it is cancelled and its content removed once the run has stopped.
    pub async fn delete(&self, owner: &str, id: &str) -> Result<(), WorkspaceError> {
        self.find(owner, id).await?;
        self.remove(id).await
    }

    /// Forget `id` (whoever owns it) and remove its content.
    async fn remove(&self, id: &str) -> Result<(), WorkspaceError> {
        self.store.remove(id).await?;
        let slot = self.slot(id);
        slot.deleted.store(true, Ordering::Release);
        if let Some(run) = slot.run.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            run.cancel();
        }
        let _guard = slot.lock.clone().lock_owned().await;
        let dir = self.dir_of(id);
        let trash = self
            .root
            .join(".trash")
            .join(format!("{id}-{}", hex::encode(rand::random::<[u8; 4]>())));
        blocking(move || {
            match std::fs::rename(&dir, &trash) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(WorkspaceError::Internal(e.into())),
            }
            // Rust's remove_dir_all never follows links out of the tree.
            std::fs::remove_dir_all(&trash)
                .with_context(|| format!("removing {}", trash.display()))?;
            Ok(())
        })
        .await?;
        self.slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        Ok(())
    }

    /// Prepare a run in `owner`'s workspace `id`: take it, write `files` into it, and
    /// reserve what the run may add.
    pub async fn begin_run(
        &self,
        owner: &str,
        id: &str,
        files: Vec<InputFile>,
        cancel: &CancellationToken,
    ) -> Result<RunScope, WorkspaceError> {
        let lease = self
            .lease(owner, id, self.settings.quota_bytes, cancel)
            .await?;
        let mut usage = (lease.meta.used_bytes, lease.meta.used_files);
        if !files.is_empty() {
            let what = format!("writing the {} files given", files.len());
            match self.write_into(&lease, files, &what).await {
                Ok(after) => usage = after,
                Err(err) => {
                    self.release(&lease, usage).await?;
                    return Err(err);
                }
            }
        }
        let root = lease.root.try_clone().map_err(FsError::from)?;
        let limit = self.settings.max_files.saturating_add(1);
        let before = match blocking(move || Ok(fs::walk(&root, limit)?)).await {
            Ok(tree) => tree,
            Err(err) => {
                self.release(&lease, usage).await?;
                return Err(err);
            }
        };
        if !before.truncated {
            usage = before.usage();
        }
        let added = usage.0.saturating_sub(lease.meta.used_bytes);
        let budget = WriteBudget {
            bytes: lease.granted_bytes.saturating_sub(added),
            entries: lease.meta.max_files.saturating_sub(usage.1),
        };
        let run_cancel = cancel.child_token();
        *lease.slot.run.lock().unwrap_or_else(|e| e.into_inner()) = Some(run_cancel.clone());
        // A deletion that came in while we prepared found no run to cancel.
        if lease.slot.deleted.load(Ordering::Acquire) {
            run_cancel.cancel();
        }
        Ok(RunScope {
            dir: lease.dir.clone(),
            root: lease.root.try_clone().map_err(FsError::from)?,
            before,
            budget,
            cancel: run_cancel,
            place: Place::Workspace(lease),
        })
    }

    /// Prepare a run in a directory of its own holding `files` (no workspace): it may
    /// write `scratch_bytes` and as many entries as a workspace may hold.
    pub async fn begin_ephemeral_run(
        &self,
        files: Vec<InputFile>,
        scratch_bytes: u64,
        cancel: &CancellationToken,
    ) -> Result<RunScope, WorkspaceError> {
        let parent = self.root.join(".tmp");
        let max_files = self.settings.max_files;
        let count = files.len() as u64;
        if count > max_files {
            return Err(WorkspaceError::Quota(format!(
                "{count} files given; at most {max_files} may be"
            )));
        }
        let (temp, root, before) = blocking(move || {
            let temp = tempfile::Builder::new()
                .prefix("run-")
                .tempdir_in(&parent)
                .with_context(|| format!("creating a run dir in {}", parent.display()))?;
            let root = fs::open_root(temp.path()).map_err(FsError::from)?;
            for file in &files {
                fs::write(&root, &file.path, &file.bytes)?;
            }
            let before = fs::walk(&root, u64::MAX)?;
            Ok((temp, root, before))
        })
        .await?;
        let entries = max_files.saturating_sub(before.entries.len() as u64);
        Ok(RunScope {
            dir: temp.path().to_owned(),
            root,
            before,
            budget: WriteBudget {
                bytes: scratch_bytes,
                entries,
            },
            cancel: cancel.child_token(),
            place: Place::Ephemeral(temp),
        })
    }

    /// After a run: what it changed (with hashes, small texts inline and, if
    /// `pictures`, the pictures it wrote), and the workspace's new usage recorded.
    pub async fn finish_run(
        &self,
        scope: RunScope,
        pictures: bool,
    ) -> Result<RunChanges, WorkspaceError> {
        let RunScope {
            root,
            before,
            place,
            ..
        } = scope;
        let settings = self.settings.clone();
        let limit = settings
            .max_files
            .saturating_add(1)
            .max(before.entries.len() as u64 + 1);
        let changes = blocking(move || {
            let after = fs::walk(&root, limit.saturating_mul(2))?;
            Ok(diff(&root, &before, &after, &settings, pictures))
        })
        .await;
        match place {
            Place::Workspace(lease) => {
                let usage = match &changes {
                    Ok(changes) => changes.usage,
                    Err(_) => (lease.meta.used_bytes, lease.meta.used_files),
                };
                self.release(&lease, usage).await?;
                changes
            }
            Place::Ephemeral(temp) => {
                let changes = changes?;
                // Removing it may take a moment for a big tree: off the async workers.
                let _ = tokio::task::spawn_blocking(move || drop(temp)).await;
                Ok(changes)
            }
        }
    }

    /// Whether the workspace of a run that just ended was deleted during it (the
    /// deletion cancelled the run).
    pub fn deleted_during(&self, scope: &RunScope) -> bool {
        match &scope.place {
            Place::Workspace(lease) => lease.slot.deleted.load(Ordering::Acquire),
            Place::Ephemeral(_) => false,
        }
    }

    /// Remove expired workspaces (and content a crash left without metadata);
    /// how many were removed.
    pub async fn sweep(&self) -> anyhow::Result<usize> {
        let mut removed = 0;
        loop {
            let expired = self.store.expired(now_ms(), 100).await?;
            if expired.is_empty() {
                break;
            }
            for id in &expired {
                if let Err(err) = self.remove(id).await {
                    tracing::warn!(workspace = %id, error = %err, "removing an expired workspace failed");
                }
                removed += 1;
            }
            if expired.len() < 100 {
                break;
            }
        }
        Ok(removed)
    }

    /// At start-up: no call of this process is in flight, so reservations are stale;
    /// remove half-deleted content, run dirs a crash left, directories without metadata
    /// and metadata without a directory.
    pub async fn recover(&self) -> anyhow::Result<()> {
        self.store.clear_reservations().await?;
        let known: std::collections::HashSet<String> =
            self.store.ids().await?.into_iter().collect();
        let root = self.root.clone();
        let known_for_scan = known.clone();
        let missing = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<String>> {
            for leftovers in [root.join(".trash"), root.join(".tmp")] {
                for entry in std::fs::read_dir(&leftovers)? {
                    let path = entry?.path();
                    let _ = std::fs::remove_dir_all(&path);
                }
            }
            let mut present = std::collections::HashSet::new();
            for entry in std::fs::read_dir(&root)? {
                let entry = entry?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if !valid_id(&name) {
                    continue;
                }
                if known_for_scan.contains(&name) {
                    present.insert(name);
                } else {
                    tracing::info!(workspace = %name, "removing a workspace directory without metadata");
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
            Ok(known_for_scan
                .into_iter()
                .filter(|id| !present.contains(id))
                .collect())
        })
        .await??;
        for id in missing {
            tracing::warn!(workspace = %id, "workspace directory missing; forgetting the workspace");
            self.store.remove(&id).await?;
        }
        Ok(())
    }

    /// Recover, then sweep every `sweep_interval_ms` until the drain begins.
    pub fn spawn_janitor(self: &Arc<Self>, shutdown: &crate::shutdown::Shutdown) {
        let workspaces = self.clone();
        let stop = shutdown.clone();
        let every = Duration::from_millis(self.settings.sweep_interval_ms.max(10));
        shutdown.spawn(async move {
            if let Err(err) = workspaces.recover().await {
                tracing::error!(error = format!("{err:#}"), "workspace recovery failed");
            }
            loop {
                match workspaces.sweep().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(removed = n, "expired workspaces removed"),
                    Err(err) => {
                        tracing::warn!(error = format!("{err:#}"), "workspace sweep failed")
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    () = stop.begun() => return,
                }
            }
        });
    }
}

/// How many components of `path` do not exist yet (each becomes an entry).
fn missing_entries(root: &cap_std::fs::Dir, path: &WorkspacePath) -> Result<u64, FsError> {
    let components: Vec<&str> = path.as_str().split('/').collect();
    for depth in 1..=components.len() {
        let prefix = WorkspacePath::parse(&components[..depth].join("/"))
            .map_err(|e| FsError::Io(std::io::Error::other(e)))?;
        if fs::stat(root, &prefix)?.is_none() {
            return Ok((components.len() - depth + 1) as u64);
        }
    }
    Ok(0)
}

/// Compare two walks of a run's directory.
fn diff(
    root: &cap_std::fs::Dir,
    before: &Tree,
    after: &Tree,
    settings: &WorkspaceSettings,
    want_pictures: bool,
) -> RunChanges {
    let old: HashMap<&str, &fs::Entry> = before
        .entries
        .iter()
        .map(|e| (e.path.as_str(), e))
        .collect();
    let mut changes = RunChanges {
        usage: after.usage(),
        truncated: after.truncated,
        ..RunChanges::default()
    };
    let current: std::collections::HashSet<&str> =
        after.entries.iter().map(|e| e.path.as_str()).collect();
    changes.removed = before
        .entries
        .iter()
        .filter(|e| !current.contains(e.path.as_str()))
        .map(|e| e.path.clone())
        .collect();
    for entry in after.entries.iter().filter(|e| e.kind == EntryKind::File) {
        let created = match old.get(entry.path.as_str()) {
            None => true,
            Some(previous) => {
                if previous.kind == EntryKind::File
                    && previous.size == entry.size
                    && previous.stamp == entry.stamp
                {
                    continue;
                }
                previous.kind != EntryKind::File
            }
        };
        if changes.changed.len() >= MAX_LISTED_CHANGES {
            changes.truncated = true;
            break;
        }
        let Ok(path) = WorkspacePath::parse(&entry.path) else {
            continue;
        };
        let Ok(sha256) = fs::sha256(root, &path) else {
            continue;
        };
        let mime = mime_of(&entry.path);
        let text = (is_text_mime(&mime) && entry.size <= settings.inline_text_bytes)
            .then(|| fs::read(root, &path, settings.inline_text_bytes).ok())
            .flatten()
            .and_then(|bytes| String::from_utf8(bytes).ok());
        if want_pictures && let Some(kind) = PictureKind::of(&entry.path) {
            collect_picture(root, &path, kind, entry.size, settings, &mut changes);
        }
        changes.changed.push(ChangedFile {
            info: FileInfo {
                path: entry.path.clone(),
                size: entry.size,
                sha256,
                mime,
            },
            created,
            text,
        });
    }
    changes
}

/// Add the picture at `path` to the result, or a note on why not.
fn collect_picture(
    root: &cap_std::fs::Dir,
    path: &WorkspacePath,
    kind: PictureKind,
    size: u64,
    settings: &WorkspaceSettings,
    changes: &mut RunChanges,
) {
    if changes.pictures.len() >= settings.images_per_result {
        changes.picture_notes.push(format!(
            "{path}: not shown; at most {} pictures come back with one result (read it with read_file)",
            settings.images_per_result
        ));
        return;
    }
    // An SVG is text: its source may be larger than the picture it renders to, within reason.
    let source_limit = match kind {
        PictureKind::Svg => settings.image_max_bytes.saturating_mul(4),
        _ => settings.image_max_bytes,
    };
    if size > source_limit {
        changes.picture_notes.push(format!(
            "{path}: not shown; {size} bytes is over the {source_limit}-byte limit for pictures"
        ));
        return;
    }
    let prepared = fs::read(root, path, source_limit)
        .map_err(|e| e.to_string())
        .and_then(|bytes| picture::prepare(kind, bytes));
    match prepared {
        Ok(picture) if picture.data.len() as u64 <= settings.image_max_bytes => {
            changes.pictures.push((path.to_string(), picture));
        }
        Ok(picture) => changes.picture_notes.push(format!(
            "{path}: not shown; rendered it is {} bytes, over the {}-byte limit",
            picture.data.len(),
            settings.image_max_bytes
        )),
        Err(why) => changes
            .picture_notes
            .push(format!("{path}: not shown; {why}")),
    }
}
