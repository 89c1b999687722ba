//! Captured stdout/stderr: a stream that keeps the first `cap` bytes, counts the rest
//! and never fails. wasmtime-wasi's `MemoryOutputPipe` traps the guest when full; we
//! want the run to go on with its output truncated and flagged instead.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// CPython's stdout is unbuffered inside the guest, and a raw write that the stream
/// accepts only in part is not retried by `print`: the tail would be lost. So permit any
/// write a guest can make (no guest may hold more than the 1 GiB memory ceiling).
const WRITE_PERMIT: usize = 1 << 30;

#[derive(Debug, Default)]
struct Buffer {
    kept: Vec<u8>,
    total: u64,
}

/// A capped, shareable output sink; clones write to the same buffer.
#[derive(Debug, Clone)]
pub(crate) struct CappedOutput {
    cap: usize,
    buffer: Arc<Mutex<Buffer>>,
}

/// What a [`CappedOutput`] captured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Captured {
    /// The first `cap` bytes.
    pub(crate) bytes: Vec<u8>,
    /// Every byte the guest wrote, kept or not.
    pub(crate) total: u64,
}

impl Captured {
    /// Whether bytes were dropped.
    pub(crate) fn truncated(&self) -> bool {
        self.total > self.bytes.len() as u64
    }
}

impl CappedOutput {
    pub(crate) fn new(cap: u64) -> Self {
        Self {
            cap: usize::try_from(cap).unwrap_or(usize::MAX),
            buffer: Arc::default(),
        }
    }

    fn append(&self, bytes: &[u8]) {
        let mut buffer = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        buffer.total += bytes.len() as u64;
        let room = self.cap.saturating_sub(buffer.kept.len());
        let take = room.min(bytes.len());
        buffer.kept.extend_from_slice(&bytes[..take]);
    }

    /// Take what was captured so far.
    pub(crate) fn take(&self) -> Captured {
        let mut buffer = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        let buffer = std::mem::take(&mut *buffer);
        Captured {
            bytes: buffer.kept,
            total: buffer.total,
        }
    }
}

#[async_trait::async_trait]
impl OutputStream for CappedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT)
    }
}

#[async_trait::async_trait]
impl Pollable for CappedOutput {
    async fn ready(&mut self) {}
}

impl AsyncWrite for CappedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for CappedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_head_and_counts_everything() {
        let mut out = CappedOutput::new(5);
        out.write(Bytes::from_static(b"abc")).unwrap();
        out.write(Bytes::from_static(b"defgh")).unwrap();
        let captured = out.take();
        assert_eq!(captured.bytes, b"abcde");
        assert_eq!(captured.total, 8);
        assert!(captured.truncated());
    }
}
