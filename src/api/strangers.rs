//! Requests that fail authentication, kept cheap for the server and visible to admins.
//!
//! A stranger without a valid token could otherwise make the server do a durable audit
//! write per request (2,000 requests = 2,000 events and megabytes of database). Here
//! failures are:
//!
//! * **rate-limited per source address** (GCRA via `governor`): past the rate, a failing
//!   request is answered 429 with `Retry-After` instead of 401, and costs nothing else;
//! * **folded**: every failure (refused or rate-limited) is counted per source address,
//!   and each window (a minute by default, and at shutdown) one audit event per source says how many
//!   there were, of which kind, when, and on which route
//!   (`SANDGRAPH_AUTH_FAILURE_WINDOW_MS`). Admins still see every attack, as numbers.
//!
//! Both maps are keyed by address and bounded: past [`MAX_SOURCES`] addresses in one
//! window, further addresses share one key (`::`, "other sources"), so no input grows
//! them without bound. Addresses are the TCP peer's: behind a proxy every request comes
//! from the proxy, so there one stranger's failures also rate-limit the others'
//! (callers with valid tokens are never affected).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::audit::{AuditEvent, AuditSink, Transport};

/// Most source addresses tracked apart in one window (and in the rate limiter).
pub const MAX_SOURCES: usize = 10_000;

/// The key that addresses past [`MAX_SOURCES`] share.
const OTHERS: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

/// The key a source address is counted under: an IPv4 address as itself (also when it
/// arrives IPv4-mapped in IPv6), an IPv6 address by its /64 (one subscriber's block,
/// which a stranger can otherwise walk through for a fresh key per request).
pub fn source_key(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let bits = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(bits))
        }
        v4 => v4,
    }
}

/// What one source's failures in the current window add up to.
#[derive(Debug, Clone)]
struct Fold {
    first: chrono::DateTime<chrono::Utc>,
    last: chrono::DateTime<chrono::Utc>,
    missing: u64,
    invalid: u64,
    limited: u64,
    route: &'static str,
    transport: Transport,
}

/// Why a request failed authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No bearer token.
    Missing,
    /// A token that is not (or no longer) valid.
    Invalid,
}

/// The failed-authentication ledger of one server.
pub struct Strangers {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
    folds: Mutex<HashMap<IpAddr, Fold>>,
}

impl Strangers {
    /// A ledger that lets each source fail at `quota`.
    pub fn new(quota: Quota) -> Self {
        Self {
            limiter: RateLimiter::keyed(quota),
            clock: DefaultClock::default(),
            folds: Mutex::new(HashMap::new()),
        }
    }

    /// Count one failure from `source` on `route`; `Err(wait)` if the source is over
    /// its rate (answer 429 with `Retry-After`).
    pub fn failed(
        &self,
        source: IpAddr,
        route: &'static str,
        transport: Transport,
        failure: Failure,
    ) -> Result<(), Duration> {
        let source = source_key(source);
        let now = chrono::Utc::now();
        let mut folds = self.folds.lock().unwrap_or_else(|e| e.into_inner());
        // The window's ledger decides who has a key of their own; the limiter's cells
        // for quiet sources are dropped at each window's end, so it stays as bounded.
        let key = if folds.len() >= MAX_SOURCES && !folds.contains_key(&source) {
            OTHERS
        } else {
            source
        };
        let limited = self
            .limiter
            .check_key(&key)
            .err()
            .map(|not_until| not_until.wait_time_from(self.clock.now()));
        let fold = folds.entry(key).or_insert_with(|| Fold {
            first: now,
            last: now,
            missing: 0,
            invalid: 0,
            limited: 0,
            route,
            transport,
        });
        fold.last = now;
        fold.route = route;
        fold.transport = transport;
        match failure {
            Failure::Missing => fold.missing += 1,
            Failure::Invalid => fold.invalid += 1,
        }
        match limited {
            Some(wait) => {
                fold.limited += 1;
                Err(wait)
            }
            None => Ok(()),
        }
    }

    /// The window's failures as audit events (one per source), and a fresh window.
    pub fn drain(&self) -> Vec<AuditEvent> {
        let folds = std::mem::take(&mut *self.folds.lock().unwrap_or_else(|e| e.into_inner()));
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        let mut events: Vec<AuditEvent> = folds
            .into_iter()
            .map(|(source, fold)| event(source, &fold))
            .collect();
        events.sort_by_key(|a| a.ts);
        events
    }

    /// Write the window's failures to `audit`.
    pub fn flush(&self, audit: &dyn AuditSink) {
        for event in self.drain() {
            audit.record(event);
        }
    }

    /// Sources being tracked now (for tests and metrics).
    pub fn tracked_sources(&self) -> usize {
        self.folds.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

fn event(source: IpAddr, fold: &Fold) -> AuditEvent {
    let who = if source == OTHERS {
        "other sources (past the tracked-address limit)".to_owned()
    } else {
        source.to_string()
    };
    let total = fold.missing + fold.invalid;
    let mut kinds = Vec::new();
    if fold.invalid > 0 {
        kinds.push(format!("invalid token: {}", fold.invalid));
    }
    if fold.missing > 0 {
        kinds.push(format!("missing token: {}", fold.missing));
    }
    let detail = format!(
        "{total} request{} from {who} failed authentication between {} and {} ({}; {} answered 429); last route {}",
        if total == 1 { "" } else { "s" },
        fold.first
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        fold.last
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        kinds.join(", "),
        fold.limited,
        fold.route,
    );
    let mut event = AuditEvent::unauthenticated(fold.route, fold.transport, "", &detail);
    event.request_id = format!("auth-failures-{}", event.id);
    event
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::num::NonZeroU32;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, last])
    }

    #[test]
    fn ipv6_sources_are_keyed_by_their_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:ffff:ffff:ffff".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(source_key(a), source_key(b));
        assert_eq!(source_key(a), "2001:db8:1:2::".parse::<IpAddr>().unwrap());
        assert_ne!(source_key(a), source_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(source_key(mapped), ip(7));
        // A stranger walking its /64 shares one rate.
        let strangers = Strangers::new(Quota::per_minute(NonZeroU32::new(1).unwrap()));
        let first = strangers.failed(a, "/x", Transport::Rest, Failure::Missing);
        let second = strangers.failed(b, "/x", Transport::Rest, Failure::Missing);
        assert!(first.is_ok());
        assert!(second.is_err());
    }

    #[test]
    fn failures_fold_into_one_event_per_source_with_counts() {
        let strangers = Strangers::new(Quota::per_second(NonZeroU32::new(1000).unwrap()));
        for _ in 0..30 {
            strangers
                .failed(ip(1), "/execute_code", Transport::Rest, Failure::Invalid)
                .unwrap();
        }
        for _ in 0..7 {
            strangers
                .failed(ip(1), "/history", Transport::Rest, Failure::Missing)
                .unwrap();
        }
        strangers
            .failed(ip(2), "/mcp", Transport::McpHttp, Failure::Invalid)
            .unwrap();
        let events = strangers.drain();
        assert_eq!(events.len(), 2);
        let first = events
            .iter()
            .find(|e| e.detail.as_deref().unwrap().contains("192.0.2.1"))
            .unwrap();
        let detail = first.detail.as_deref().unwrap();
        assert!(
            detail.starts_with("37 requests from 192.0.2.1 failed authentication"),
            "{detail}"
        );
        assert!(
            detail.contains("invalid token: 30, missing token: 7; 0 answered 429"),
            "{detail}"
        );
        assert!(detail.ends_with("last route /history"), "{detail}");
        assert_eq!(first.caller_id, "anonymous");
        assert!(strangers.drain().is_empty(), "a new window starts empty");
    }

    #[test]
    fn a_source_over_its_rate_is_told_to_wait_and_still_counted() {
        let strangers = Strangers::new(Quota::per_minute(NonZeroU32::new(3).unwrap()));
        for _ in 0..3 {
            assert!(
                strangers
                    .failed(ip(9), "/execute_code", Transport::Rest, Failure::Invalid)
                    .is_ok()
            );
        }
        let wait = strangers
            .failed(ip(9), "/execute_code", Transport::Rest, Failure::Invalid)
            .unwrap_err();
        assert!(wait > Duration::ZERO);
        // Another source is not affected.
        assert!(
            strangers
                .failed(ip(10), "/execute_code", Transport::Rest, Failure::Invalid)
                .is_ok()
        );
        let events = strangers.drain();
        let detail = events
            .iter()
            .find_map(|e| e.detail.clone().filter(|d| d.contains("192.0.2.9")))
            .unwrap();
        assert!(
            detail.contains("4 requests") && detail.contains("1 answered 429"),
            "{detail}"
        );
    }

    #[test]
    fn many_sources_never_grow_the_ledger_past_its_bound() {
        let strangers = Strangers::new(Quota::per_second(NonZeroU32::new(1000).unwrap()));
        for i in 0..(MAX_SOURCES as u32 + 500) {
            let source = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            let _ = strangers.failed(source, "/x", Transport::Rest, Failure::Missing);
        }
        assert!(strangers.tracked_sources() <= MAX_SOURCES + 1);
        let events = strangers.drain();
        let others = events
            .iter()
            .find_map(|e| e.detail.clone().filter(|d| d.contains("other sources")))
            .expect("an event for the sources past the limit");
        assert!(others.starts_with("500 requests"), "{others}");
    }
}
