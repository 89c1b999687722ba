//! Per-caller, per-endpoint rate limits (GCRA via `governor`), on REST and MCP alike.
//! One caller's burst never spends another caller's budget: each (endpoint, caller)
//! pair has its own cell.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::auth::Endpoint;
use crate::config::RateLimitSettings;

/// Parse `"N/second"`, `"N/minute"`, `"N/hour"` with an optional `" burst M"`.
pub fn parse_quota(text: &str) -> anyhow::Result<Quota> {
    let bad = || {
        anyhow::anyhow!(
            "rate limit {text:?} is not valid: use N/second, N/minute or N/hour, optionally followed by `burst M`"
        )
    };
    let mut words = text.split_whitespace();
    let rate = words.next().ok_or_else(bad)?;
    let (count, period) = rate.split_once('/').ok_or_else(bad)?;
    let count: NonZeroU32 = count.parse().map_err(|_| bad())?;
    let quota = match period {
        "s" | "sec" | "second" => Quota::per_second(count),
        "m" | "min" | "minute" => Quota::per_minute(count),
        "h" | "hour" => Quota::per_hour(count),
        _ => return Err(bad()),
    };
    match (words.next(), words.next(), words.next()) {
        (None, _, _) => Ok(quota),
        (Some("burst"), Some(burst), None) => {
            Ok(quota.allow_burst(burst.parse().map_err(|_| bad())?))
        }
        _ => Err(bad()),
    }
}

/// The limiters, one per endpoint, keyed by caller id.
pub struct RateLimits {
    limiters: HashMap<Endpoint, DefaultKeyedRateLimiter<String>>,
    clock: DefaultClock,
}

impl RateLimits {
    /// Build every endpoint's limiter from the settings.
    pub fn new(settings: &RateLimitSettings) -> anyhow::Result<Self> {
        for name in settings.endpoints.keys() {
            if !Endpoint::ALL.iter().any(|e| e.name() == name) {
                let known: Vec<_> = Endpoint::ALL.iter().map(|e| e.name()).collect();
                anyhow::bail!(
                    "rate limit for unknown endpoint {name:?}; known: {}",
                    known.join(", ")
                );
            }
        }
        let default = parse_quota(&settings.default)?;
        let mut limiters = HashMap::new();
        for endpoint in Endpoint::ALL {
            let quota = match settings.endpoints.get(endpoint.name()) {
                Some(text) => parse_quota(text)?,
                None => default,
            };
            limiters.insert(endpoint, RateLimiter::keyed(quota));
        }
        Ok(Self {
            limiters,
            clock: DefaultClock::default(),
        })
    }

    /// Spend one request of `caller` on `endpoint`, or say how long to wait.
    pub fn check(&self, endpoint: Endpoint, caller: &str) -> Result<(), Duration> {
        let Some(limiter) = self.limiters.get(&endpoint) else {
            return Ok(());
        };
        limiter
            .check_key(&caller.to_owned())
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }
}

/// `Retry-After` seconds for a wait: rounded up, at least 1.
pub fn retry_after_seconds(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates_and_bursts() {
        assert!(parse_quota("10/second").is_ok());
        assert!(parse_quota("600/minute burst 100").is_ok());
        assert!(parse_quota("5/fortnight").is_err());
        assert!(parse_quota("0/second").is_err());
        assert!(parse_quota("5/minute burst").is_err());
    }

    #[test]
    fn one_callers_burst_does_not_spend_anothers_budget() {
        let settings = RateLimitSettings {
            default: "2/minute".to_owned(),
            endpoints: Default::default(),
            ..Default::default()
        };
        let limits = RateLimits::new(&settings).unwrap();
        assert!(limits.check(Endpoint::ExecuteCode, "a").is_ok());
        assert!(limits.check(Endpoint::ExecuteCode, "a").is_ok());
        let wait = limits.check(Endpoint::ExecuteCode, "a").unwrap_err();
        assert!(retry_after_seconds(wait) >= 1 && retry_after_seconds(wait) <= 30);
        assert!(limits.check(Endpoint::ExecuteCode, "b").is_ok());
        assert!(limits.check(Endpoint::LintCode, "a").is_ok());
    }
}
