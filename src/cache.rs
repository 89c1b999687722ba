//! The result cache: an LRU bounded by entries and bytes, with a TTL, keyed by the
//! SHA-256 of everything that determines a result; identical requests in flight are
//! computed once and shared.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lru::LruCache;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::config::CacheSettings;

/// A cache key: SHA-256 over a canonical JSON of every input that determines a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey([u8; 32]);

impl CacheKey {
    /// Hash `inputs` (serialised as JSON, so field names are part of the key).
    pub fn of(inputs: &impl Serialize) -> Self {
        let bytes = serde_json::to_vec(inputs).unwrap_or_default();
        CacheKey(Sha256::digest(&bytes).into())
    }
}

/// Hit/miss/eviction counts.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct CacheStats {
    /// Answers served from the cache (coalesced followers included).
    pub hits: u64,
    /// Answers that had to be computed.
    pub misses: u64,
    /// Entries dropped to stay within the bounds (TTL expiries not included).
    pub evictions: u64,
    /// Entries dropped because their TTL passed.
    pub expirations: u64,
    /// Entries now.
    pub entries: usize,
    /// Bytes now.
    pub bytes: usize,
}

struct Entry<V> {
    value: V,
    bytes: usize,
    inserted: Instant,
}

struct Lru<V> {
    entries: LruCache<CacheKey, Entry<V>>,
    bytes: usize,
}

/// The cache. `V` is the cached result type.
pub struct ResultCache<V> {
    lru: Mutex<Lru<V>>,
    in_flight: Mutex<HashMap<CacheKey, Arc<OnceCell<V>>>>,
    max_entries: usize,
    max_bytes: usize,
    ttl: Duration,
    hits: AtomicU64,
    misses: AtomicU64,
    evictions: AtomicU64,
    expirations: AtomicU64,
}

/// How a cached answer was obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provenance {
    /// Computed by this request.
    Computed,
    /// Served from the cache, or shared from an identical request in flight.
    Cached,
}

impl<V: Clone + Send + Sync + 'static> ResultCache<V> {
    /// An empty cache with the given bounds.
    pub fn new(settings: &CacheSettings) -> Self {
        Self {
            lru: Mutex::new(Lru {
                entries: LruCache::unbounded(),
                bytes: 0,
            }),
            in_flight: Mutex::new(HashMap::new()),
            max_entries: settings.max_entries,
            max_bytes: settings.max_bytes,
            ttl: Duration::from_secs(settings.ttl_seconds),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evictions: AtomicU64::new(0),
            expirations: AtomicU64::new(0),
        }
    }

    fn lookup(&self, key: &CacheKey) -> Option<V> {
        let mut lru = self.lru.lock().unwrap_or_else(|e| e.into_inner());
        let expired = match lru.entries.get(key) {
            None => return None,
            Some(entry) if entry.inserted.elapsed() < self.ttl => return Some(entry.value.clone()),
            Some(_) => true,
        };
        if expired && let Some(entry) = lru.entries.pop(key) {
            lru.bytes -= entry.bytes;
            self.expirations.fetch_add(1, Ordering::Relaxed);
        }
        None
    }

    fn insert(&self, key: CacheKey, value: V, bytes: usize) {
        if bytes > self.max_bytes || self.max_entries == 0 {
            return;
        }
        let mut lru = self.lru.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = lru.entries.put(
            key,
            Entry {
                value,
                bytes,
                inserted: Instant::now(),
            },
        ) {
            lru.bytes -= old.bytes;
        }
        lru.bytes += bytes;
        while lru.entries.len() > self.max_entries || lru.bytes > self.max_bytes {
            match lru.entries.pop_lru() {
                Some((_, entry)) => {
                    lru.bytes -= entry.bytes;
                    self.evictions.fetch_add(1, Ordering::Relaxed);
                }
                None => break,
            }
        }
    }

    /// The cached value for `key`, or compute it once for every identical request in
    /// flight. `admit` says whether a computed value may be stored, and its size.
    pub async fn get_or_compute<E, Fut>(
        &self,
        key: CacheKey,
        admit: impl Fn(&V) -> Option<usize>,
        compute: impl FnOnce() -> Fut,
    ) -> Result<(V, Provenance), E>
    where
        Fut: Future<Output = Result<V, E>>,
    {
        if let Some(value) = self.lookup(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok((value, Provenance::Cached));
        }
        let cell = self
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key)
            .or_default()
            .clone();
        let computed_here = AtomicBool::new(false);
        let result = cell
            .get_or_try_init(|| {
                computed_here.store(true, Ordering::Relaxed);
                compute()
            })
            .await
            .cloned();
        let computed_here = computed_here.load(Ordering::Relaxed);
        if computed_here {
            if let Ok(value) = &result
                && let Some(bytes) = admit(value)
            {
                self.insert(key, value.clone(), bytes);
            }
            let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
            if in_flight.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                in_flight.remove(&key);
            }
        }
        let value = result?;
        if computed_here {
            self.misses.fetch_add(1, Ordering::Relaxed);
            Ok((value, Provenance::Computed))
        } else {
            self.hits.fetch_add(1, Ordering::Relaxed);
            Ok((value, Provenance::Cached))
        }
    }

    /// Current counts.
    pub fn stats(&self) -> CacheStats {
        let lru = self.lru.lock().unwrap_or_else(|e| e.into_inner());
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evictions: self.evictions.load(Ordering::Relaxed),
            expirations: self.expirations.load(Ordering::Relaxed),
            entries: lru.entries.len(),
            bytes: lru.bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn settings(entries: usize, bytes: usize, ttl: u64) -> CacheSettings {
        CacheSettings {
            max_entries: entries,
            max_bytes: bytes,
            ttl_seconds: ttl,
        }
    }

    async fn get(
        cache: &ResultCache<String>,
        key: &str,
        runs: &AtomicUsize,
    ) -> (String, Provenance) {
        cache
            .get_or_compute::<(), _>(
                CacheKey::of(&key),
                |v| Some(v.len()),
                || async {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok(format!("value-{key}"))
                },
            )
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn second_call_is_a_hit_and_any_key_change_misses() {
        let cache = ResultCache::new(&settings(10, 1000, 60));
        let runs = AtomicUsize::new(0);
        assert_eq!(get(&cache, "a", &runs).await.1, Provenance::Computed);
        assert_eq!(get(&cache, "a", &runs).await.1, Provenance::Cached);
        assert_eq!(get(&cache, "b", &runs).await.1, Provenance::Computed);
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        assert_eq!(cache.stats().hits, 1);
        assert_eq!(cache.stats().misses, 2);
    }

    #[tokio::test]
    async fn entries_expire_after_the_ttl() {
        let cache = ResultCache::new(&settings(10, 1000, 0));
        let runs = AtomicUsize::new(0);
        get(&cache, "a", &runs).await;
        assert_eq!(get(&cache, "a", &runs).await.1, Provenance::Computed);
        assert_eq!(cache.stats().expirations, 1);
    }

    #[tokio::test]
    async fn the_byte_bound_evicts_least_recently_used() {
        // Each value is 7 bytes ("value-x"); 20 bytes hold two.
        let cache = ResultCache::new(&settings(100, 20, 60));
        let runs = AtomicUsize::new(0);
        get(&cache, "a", &runs).await;
        get(&cache, "b", &runs).await;
        get(&cache, "a", &runs).await; // a is now most recent
        get(&cache, "c", &runs).await; // evicts b
        assert_eq!(cache.stats().evictions, 1);
        assert_eq!(cache.stats().bytes, 14);
        assert_eq!(get(&cache, "a", &runs).await.1, Provenance::Cached);
        assert_eq!(get(&cache, "b", &runs).await.1, Provenance::Computed);
    }

    #[tokio::test]
    async fn identical_concurrent_requests_compute_once() {
        let cache = Arc::new(ResultCache::<String>::new(&settings(10, 1000, 60)));
        let runs = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (cache, runs) = (cache.clone(), runs.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_compute::<(), _>(
                        CacheKey::of(&"same"),
                        |_| None,
                        || async {
                            runs.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok("v".to_owned())
                        },
                    )
                    .await
                    .unwrap()
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap().0, "v");
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }
}
