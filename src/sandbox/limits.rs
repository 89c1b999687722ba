//! Resource limits for one guest run: the values a caller asks for, the server-wide
//! ceilings they are checked against, and the per-store memory limiter that enforces
//! the memory budget.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The limits one run executes under. Every field is always set: callers override the
/// server defaults field by field, and [`LimitCeilings::resolve`] refuses anything above
/// the server's ceilings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SandboxLimits {
    /// Wall-clock budget for the run, in milliseconds.
    pub timeout_ms: u64,
    /// Linear memory the guest may grow beyond its initial image, in bytes.
    pub memory_bytes: u64,
    /// Bytes the guest may write into its scratch directory.
    pub scratch_bytes: u64,
    /// Bytes of stdout kept; the rest is counted and dropped.
    pub stdout_bytes: u64,
    /// Bytes of stderr kept; the rest is counted and dropped.
    pub stderr_bytes: u64,
}

impl SandboxLimits {
    /// The wall-clock budget as a [`Duration`].
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

impl Default for SandboxLimits {
    fn default() -> Self {
        Self {
            timeout_ms: 8_000,
            memory_bytes: 128 << 20,
            scratch_bytes: 16 << 20,
            stdout_bytes: 1 << 20,
            stderr_bytes: 256 << 10,
        }
    }
}

/// Per-call overrides; a missing field takes the server default.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    /// Memory budget in bytes above the interpreter's initial image.
    pub memory_bytes: Option<u64>,
    /// Scratch-directory write quota in bytes.
    pub scratch_bytes: Option<u64>,
    /// stdout bytes kept before truncation.
    pub stdout_bytes: Option<u64>,
    /// stderr bytes kept before truncation.
    pub stderr_bytes: Option<u64>,
}

/// The server-wide defaults and the largest values a caller may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitCeilings {
    /// Applied when a call does not say.
    pub defaults: SandboxLimits,
    /// No call may exceed these.
    pub maximum: SandboxLimits,
}

impl Default for LimitCeilings {
    fn default() -> Self {
        Self {
            defaults: SandboxLimits::default(),
            maximum: SandboxLimits {
                timeout_ms: 120_000,
                memory_bytes: 1 << 30,
                scratch_bytes: 256 << 20,
                stdout_bytes: 16 << 20,
                stderr_bytes: 16 << 20,
            },
        }
    }
}

/// A requested limit above the server's ceiling.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{field} = {requested} exceeds the server maximum of {maximum}")]
pub struct LimitTooHigh {
    /// Which limit.
    pub field: &'static str,
    /// What the caller asked for.
    pub requested: u64,
    /// The ceiling.
    pub maximum: u64,
}

impl LimitCeilings {
    /// Merge a call's timeout and overrides onto the defaults, refusing values above the
    /// ceilings (a silent clamp would hide a caller's mistake).
    pub fn resolve(
        &self,
        timeout: Option<Duration>,
        overrides: &LimitOverrides,
    ) -> Result<SandboxLimits, LimitTooHigh> {
        let pick = |field: &'static str, asked: Option<u64>, default: u64, maximum: u64| {
            let value = asked.unwrap_or(default);
            if value > maximum {
                Err(LimitTooHigh {
                    field,
                    requested: value,
                    maximum,
                })
            } else {
                Ok(value)
            }
        };
        let (d, m) = (&self.defaults, &self.maximum);
        Ok(SandboxLimits {
            timeout_ms: pick(
                "timeout_ms",
                timeout.map(|t| t.as_millis() as u64),
                d.timeout_ms,
                m.timeout_ms,
            )?,
            memory_bytes: pick(
                "memory_bytes",
                overrides.memory_bytes,
                d.memory_bytes,
                m.memory_bytes,
            )?,
            scratch_bytes: pick(
                "scratch_bytes",
                overrides.scratch_bytes,
                d.scratch_bytes,
                m.scratch_bytes,
            )?,
            stdout_bytes: pick(
                "stdout_bytes",
                overrides.stdout_bytes,
                d.stdout_bytes,
                m.stdout_bytes,
            )?,
            stderr_bytes: pick(
                "stderr_bytes",
                overrides.stderr_bytes,
                d.stderr_bytes,
                m.stderr_bytes,
            )?,
        })
    }
}

/// Enforces a store's memory budget. The initial allocation of each memory is the guest's
/// pre-initialised image (fixed by our build, not by the caller), so it is always allowed;
/// every later growth counts against the budget. A refused growth makes `memory.grow`
/// return -1, which CPython turns into `MemoryError` and QuickJS into an out-of-memory
/// error, so the host is never harmed.
pub(crate) struct MemoryLimiter {
    budget: usize,
    grown: usize,
    denied: bool,
}

impl MemoryLimiter {
    pub(crate) fn new(budget: u64) -> Self {
        Self {
            budget: usize::try_from(budget).unwrap_or(usize::MAX),
            grown: 0,
            denied: false,
        }
    }

    /// Whether any growth was refused during the run.
    pub(crate) fn denied(&self) -> bool {
        self.denied
    }
}

/// Tables hold function references; a guest has no business with millions of them.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if current == 0 {
            return Ok(true);
        }
        let extra = desired.saturating_sub(current);
        if self.grown.saturating_add(extra) > self.budget {
            self.denied = true;
            return Ok(false);
        }
        self.grown += extra;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn initial_image_is_free_and_growth_is_budgeted() {
        let mut limiter = MemoryLimiter::new(100);
        assert!(limiter.memory_growing(0, 1_000_000, None).unwrap());
        assert!(limiter.memory_growing(1_000_000, 1_000_060, None).unwrap());
        assert!(!limiter.memory_growing(1_000_060, 1_000_200, None).unwrap());
        assert!(limiter.denied());
        assert!(limiter.memory_growing(1_000_060, 1_000_100, None).unwrap());
    }

    #[test]
    fn resolve_refuses_values_above_the_ceiling() {
        let ceilings = LimitCeilings::default();
        let err = ceilings
            .resolve(
                None,
                &LimitOverrides {
                    memory_bytes: Some(u64::MAX),
                    ..Default::default()
                },
            )
            .unwrap_err();
        assert_eq!(err.field, "memory_bytes");
        let ok = ceilings
            .resolve(Some(Duration::from_millis(500)), &LimitOverrides::default())
            .unwrap();
        assert_eq!(ok.timeout_ms, 500);
        assert_eq!(ok.memory_bytes, ceilings.defaults.memory_bytes);
    }
}
