//! The scratch directory's write quota. wasmtime-wasi has no hook for it, so the four
//! `wasi:filesystem/types` functions that move bytes into files (write-via-stream,
//! append-via-stream, write, set-size) are shadowed in the linker by wrappers that
//! charge every byte against a per-run budget before delegating to wasmtime-wasi.
//! A write past the budget fails inside the guest (an `OSError` in Python: `EDQUOT`, or
//! `EIO` for a buffered write) and never reaches the host filesystem.
//!
//! A run in a workspace also has an entry budget (files, directories and links it may
//! add): the four functions that create a name (open-at with `create`,
//! create-directory-at, symlink-at, link-at) charge one entry each when the budget is
//! limited. Both budgets only ever shrink during a run: space a run frees is available
//! from the next call on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::WasiView;
use wasmtime_wasi::filesystem::WasiFilesystemView;
use wasmtime_wasi::p2::bindings::filesystem::types::{
    Descriptor, DescriptorFlags, ErrorCode, HostDescriptor, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::{
    DynOutputStream, FsResult, OutputStream, Pollable, StreamError, StreamResult,
};

/// The `wasi:filesystem/types` version our wasmtime-wasi defines; guests importing any
/// compatible 0.2.x version resolve to it.
const FILESYSTEM_TYPES: &str = "wasi:filesystem/types@0.2.12";

/// Linux `EDQUOT`, for a refused stream write. (The Python guest's libc reports a failed
/// stream write as `EIO` whatever the host says; a refused `write`, `set-size` or
/// create is `EDQUOT`. The sandbox adds a `sandbox:` note to stderr either way.)
const EDQUOT: i32 = 122;

/// Bytes (and, when limited, new directory entries) a run may still write into its
/// scratch directory.
#[derive(Debug)]
pub(crate) struct ScratchQuota {
    remaining: AtomicU64,
    /// `None`: entries are not counted (a fresh scratch dir; bytes bound it).
    entries: Option<AtomicU64>,
    exceeded: AtomicBool,
}

impl ScratchQuota {
    pub(crate) fn new(bytes: u64, entries: Option<u64>) -> Arc<Self> {
        Arc::new(Self {
            remaining: AtomicU64::new(bytes),
            entries: entries.map(AtomicU64::new),
            exceeded: AtomicBool::new(false),
        })
    }

    /// Reserve `bytes`, or refuse (and remember the refusal) if they do not fit.
    fn charge(&self, bytes: u64) -> bool {
        self.take(&self.remaining, bytes)
    }

    /// Reserve one new directory entry, if entries are counted.
    fn charge_entry(&self) -> bool {
        match &self.entries {
            Some(entries) => self.take(entries, 1),
            None => true,
        }
    }

    /// Give back an entry whose creation failed.
    fn refund_entry(&self) {
        if let Some(entries) = &self.entries {
            entries.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn counts_entries(&self) -> bool {
        self.entries.is_some()
    }

    fn take(&self, budget: &AtomicU64, amount: u64) -> bool {
        let fits = budget
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                left.checked_sub(amount)
            })
            .is_ok();
        if !fits {
            self.exceeded.store(true, Ordering::Release);
        }
        fits
    }

    /// Whether the guest ever tried to write past its budget.
    pub(crate) fn exceeded(&self) -> bool {
        self.exceeded.load(Ordering::Acquire)
    }
}

/// Store state that carries a scratch quota.
pub(crate) trait HasScratchQuota {
    fn scratch_quota(&self) -> &Arc<ScratchQuota>;
}

/// An output stream into a scratch file that charges each write to the quota.
struct QuotaOutputStream {
    inner: DynOutputStream,
    quota: Arc<ScratchQuota>,
}

#[async_trait::async_trait]
impl OutputStream for QuotaOutputStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        if !self.quota.charge(bytes.len() as u64) {
            let err = std::io::Error::from_raw_os_error(EDQUOT);
            return Err(StreamError::LastOperationFailed(err.into()));
        }
        self.inner.write(bytes)
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        self.inner.check_write()
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await
    }
}

#[async_trait::async_trait]
impl Pollable for QuotaOutputStream {
    async fn ready(&mut self) {
        self.inner.ready().await
    }
}

/// Turn wasmtime-wasi's `FsResult` into what a raw linker function returns: a guest-visible
/// error code, or a trap.
fn lower<T>(result: FsResult<T>) -> wasmtime::Result<(Result<T, ErrorCode>,)> {
    match result {
        Ok(value) => Ok((Ok(value),)),
        Err(err) => Ok((Err(err.downcast()?),)),
    }
}

/// Replace a freshly created file stream with one that charges the quota.
fn wrap_stream<T: WasiView + HasScratchQuota>(
    state: &mut T,
    stream: FsResult<Resource<DynOutputStream>>,
) -> FsResult<Resource<DynOutputStream>> {
    let stream = stream?;
    let quota = state.scratch_quota().clone();
    let table = state.ctx().table;
    let inner = table.delete(stream)?;
    let wrapped: DynOutputStream = Box::new(QuotaOutputStream { inner, quota });
    Ok(table.push(wrapped)?)
}

/// Shadow the byte-moving filesystem functions with quota-charging wrappers. Must run
/// after wasmtime-wasi's own definitions were added to `linker`.
pub(crate) fn add_quota_to_linker<T>(linker: &mut Linker<T>) -> wasmtime::Result<()>
where
    T: WasiView + HasScratchQuota + 'static,
{
    linker.allow_shadowing(true);
    let mut types = linker.instance(FILESYSTEM_TYPES)?;

    types.func_wrap_async(
        "[method]descriptor.write-via-stream",
        |mut store, (fd, offset): (Resource<Descriptor>, u64)| {
            Box::new(async move {
                let state = store.data_mut();
                let stream = HostDescriptor::write_via_stream(&mut state.filesystem(), fd, offset);
                lower(wrap_stream(state, stream))
            })
        },
    )?;

    types.func_wrap_async(
        "[method]descriptor.append-via-stream",
        |mut store, (fd,): (Resource<Descriptor>,)| {
            Box::new(async move {
                let state = store.data_mut();
                let stream = HostDescriptor::append_via_stream(&mut state.filesystem(), fd);
                lower(wrap_stream(state, stream))
            })
        },
    )?;

    types.func_wrap_async(
        "[method]descriptor.write",
        |mut store, (fd, buffer, offset): (Resource<Descriptor>, Vec<u8>, u64)| {
            Box::new(async move {
                let state = store.data_mut();
                if !state.scratch_quota().charge(buffer.len() as u64) {
                    return Ok((Err(ErrorCode::Quota),));
                }
                lower(HostDescriptor::write(&mut state.filesystem(), fd, buffer, offset).await)
            })
        },
    )?;

    types.func_wrap_async(
        "[method]descriptor.set-size",
        |mut store, (fd, size): (Resource<Descriptor>, u64)| {
            Box::new(async move {
                let state = store.data_mut();
                let probe = Resource::<Descriptor>::new_borrow(fd.rep());
                let current = match HostDescriptor::stat(&mut state.filesystem(), probe).await {
                    Ok(stat) => stat.size,
                    Err(err) => return Ok((Err(err.downcast()?),)),
                };
                if !state.scratch_quota().charge(size.saturating_sub(current)) {
                    return Ok((Err(ErrorCode::Quota),));
                }
                lower(HostDescriptor::set_size(&mut state.filesystem(), fd, size).await)
            })
        },
    )?;

    types.func_wrap_async(
        "[method]descriptor.open-at",
        |mut store,
         (fd, path_flags, path, open_flags, flags): (
            Resource<Descriptor>,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )| {
            Box::new(async move {
                let state = store.data_mut();
                if open_flags.contains(OpenFlags::CREATE) && state.scratch_quota().counts_entries()
                {
                    // Only a name that does not exist yet costs an entry.
                    let probe = Resource::<Descriptor>::new_borrow(fd.rep());
                    let missing = match HostDescriptor::stat_at(
                        &mut state.filesystem(),
                        probe,
                        PathFlags::empty(),
                        path.clone(),
                    )
                    .await
                    {
                        Ok(_) => false,
                        Err(err) => matches!(err.downcast()?, ErrorCode::NoEntry),
                    };
                    if missing && !state.scratch_quota().charge_entry() {
                        return Ok((Err(ErrorCode::Quota),));
                    }
                    let opened = HostDescriptor::open_at(
                        &mut state.filesystem(),
                        fd,
                        path_flags,
                        path,
                        open_flags,
                        flags,
                    )
                    .await;
                    if missing && opened.is_err() {
                        state.scratch_quota().refund_entry();
                    }
                    return lower(opened);
                }
                lower(
                    HostDescriptor::open_at(
                        &mut state.filesystem(),
                        fd,
                        path_flags,
                        path,
                        open_flags,
                        flags,
                    )
                    .await,
                )
            })
        },
    )?;

    types.func_wrap_async(
        "[method]descriptor.create-directory-at",
        |mut store, (fd, path): (Resource<Descriptor>, String)| {
            Box::new(async move {
                let state = store.data_mut();
                if !state.scratch_quota().charge_entry() {
                    return Ok((Err(ErrorCode::Quota),));
                }
                let created =
                    HostDescriptor::create_directory_at(&mut state.filesystem(), fd, path).await;
                if created.is_err() {
                    state.scratch_quota().refund_entry();
                }
                lower(created)
            })
        },
    )?;

    types.func_wrap_async(
        "[method]descriptor.symlink-at",
        |mut store, (fd, old_path, new_path): (Resource<Descriptor>, String, String)| {
            Box::new(async move {
                let state = store.data_mut();
                if !state.scratch_quota().charge_entry() {
                    return Ok((Err(ErrorCode::Quota),));
                }
                let created =
                    HostDescriptor::symlink_at(&mut state.filesystem(), fd, old_path, new_path)
                        .await;
                if created.is_err() {
                    state.scratch_quota().refund_entry();
                }
                lower(created)
            })
        },
    )?;

    types.func_wrap_async(
        "[method]descriptor.link-at",
        |mut store,
         (fd, old_flags, old_path, new_fd, new_path): (
            Resource<Descriptor>,
            PathFlags,
            String,
            Resource<Descriptor>,
            String,
        )| {
            Box::new(async move {
                let state = store.data_mut();
                if !state.scratch_quota().charge_entry() {
                    return Ok((Err(ErrorCode::Quota),));
                }
                let created = HostDescriptor::link_at(
                    &mut state.filesystem(),
                    fd,
                    old_flags,
                    old_path,
                    new_fd,
                    new_path,
                )
                .await;
                if created.is_err() {
                    state.scratch_quota().refund_entry();
                }
                lower(created)
            })
        },
    )?;

    linker.allow_shadowing(false);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_until_the_budget_is_spent() {
        let quota = ScratchQuota::new(10, None);
        assert!(quota.charge(6));
        assert!(!quota.charge(5));
        assert!(quota.exceeded());
        assert!(quota.charge(4));
        assert!(!quota.charge(1));
        assert!(
            quota.charge_entry(),
            "entries are not counted without a budget"
        );
    }

    #[test]
    fn counts_entries_only_when_limited() {
        let quota = ScratchQuota::new(0, Some(2));
        assert!(quota.charge_entry());
        assert!(quota.charge_entry());
        assert!(!quota.exceeded());
        assert!(!quota.charge_entry());
        assert!(quota.exceeded());
    }
}
