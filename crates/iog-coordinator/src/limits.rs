//! Rate limits per address and per identity, and the cap on worker sessions
//! from one address: what keeps one client from flooding the coordinator.
//!
//! Limits are token buckets (GCRA, the `governor` crate) keyed by the
//! caller's IP address — an IPv6 address by its /64, since one host
//! usually holds a whole /64 — and, for authenticated requests, by the
//! wallet address too, so that spreading requests over many addresses
//! does not lift one identity's limit.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use iog_ledger::Address;

use crate::api::Failure;
use crate::listener::PeerAddr;
use crate::server::AppState;

/// Requests a second one address or identity may make, sustained, unless
/// configured otherwise.
pub const REQUESTS_PER_S_DEFAULT: u32 = 100;
/// Requests one address or identity may make at once after a quiet spell.
pub const REQUESTS_BURST_DEFAULT: u32 = 400;
/// Worker sessions open at once from one address unless configured otherwise.
pub const SESSIONS_PER_ADDRESS_DEFAULT: u32 = 64;
/// How often limiter state of quiet keys is dropped.
const FORGET_EVERY: Duration = Duration::from_secs(60);

/// The coordinator's limits on what one client may ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Requests a second per address and per identity; 0 turns request
    /// limits off (benchmarks, a coordinator behind a limiting proxy).
    pub requests_per_s: u32,
    /// Requests at once after a quiet spell.
    pub requests_burst: u32,
    /// Worker sessions open at once from one address; 0: no cap.
    pub sessions_per_address: u32,
}

impl Default for RateLimits {
    fn default() -> RateLimits {
        RateLimits {
            requests_per_s: REQUESTS_PER_S_DEFAULT,
            requests_burst: REQUESTS_BURST_DEFAULT,
            sessions_per_address: SESSIONS_PER_ADDRESS_DEFAULT,
        }
    }
}

/// The key an IP address is limited by: itself, or its /64 for IPv6.
pub(crate) fn ip_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

pub(crate) struct Limiter {
    limits: RateLimits,
    by_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    by_address: Option<DefaultKeyedRateLimiter<Address>>,
    sessions: Mutex<HashMap<IpAddr, u32>>,
}

impl Limiter {
    pub(crate) fn new(limits: RateLimits) -> Arc<Limiter> {
        let quota = NonZeroU32::new(limits.requests_per_s).map(|per_s| {
            let burst = NonZeroU32::new(limits.requests_burst).unwrap_or(per_s);
            Quota::per_second(per_s).allow_burst(burst)
        });
        let limiter = Arc::new(Limiter {
            limits,
            by_ip: quota.map(DefaultKeyedRateLimiter::dashmap),
            by_address: quota.map(DefaultKeyedRateLimiter::dashmap),
            sessions: Mutex::default(),
        });
        if quota.is_some() {
            // Forget the buckets of keys that have been quiet, so that a
            // stream of new addresses costs no lasting memory.
            let weak = Arc::downgrade(&limiter);
            tokio::spawn(async move {
                let mut every = tokio::time::interval(FORGET_EVERY);
                loop {
                    every.tick().await;
                    let Some(limiter) = weak.upgrade() else { return };
                    if let Some(by_ip) = &limiter.by_ip {
                        by_ip.retain_recent();
                    }
                    if let Some(by_address) = &limiter.by_address {
                        by_address.retain_recent();
                    }
                }
            });
        }
        limiter
    }

    fn refusal(&self, who: &str, retry_after: Duration) -> Failure {
        let retry_after_s = retry_after.as_secs().max(1);
        let message = format!(
            "too many requests from {who}: at most {} a second (bursts of {}); retry in {retry_after_s} s",
            self.limits.requests_per_s, self.limits.requests_burst
        );
        Failure::rate_limited(message, retry_after_s)
    }

    /// One request from `ip`.
    pub(crate) fn check_ip(&self, ip: IpAddr) -> Result<(), Failure> {
        let Some(by_ip) = &self.by_ip else { return Ok(()) };
        by_ip.check_key(&ip_key(ip)).map_err(|not_until| {
            self.refusal(&format!("address {ip}"), not_until.wait_time_from(DefaultClock::default().now()))
        })
    }

    /// One authenticated request by `address`.
    pub(crate) fn check_address(&self, address: &Address) -> Result<(), Failure> {
        let Some(by_address) = &self.by_address else { return Ok(()) };
        by_address.check_key(address).map_err(|not_until| {
            self.refusal(&format!("wallet {address}"), not_until.wait_time_from(DefaultClock::default().now()))
        })
    }

    /// Counts a worker session from `ip` while the returned guard lives;
    /// `None` when the address has as many open as it may.
    pub(crate) fn open_session(self: &Arc<Limiter>, ip: IpAddr) -> Option<SessionGuard> {
        let key = ip_key(ip);
        let mut sessions = self.sessions.lock().expect("session count lock");
        let open = sessions.entry(key).or_insert(0);
        if self.limits.sessions_per_address > 0 && *open >= self.limits.sessions_per_address {
            return None;
        }
        *open += 1;
        Some(SessionGuard { limiter: self.clone(), key })
    }

    pub(crate) fn sessions_per_address(&self) -> u32 {
        self.limits.sessions_per_address
    }
}

/// One open worker session of an address; closing it frees its place.
pub(crate) struct SessionGuard {
    limiter: Arc<Limiter>,
    key: IpAddr,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let mut sessions = self.limiter.sessions.lock().expect("session count lock");
        if let Some(open) = sessions.get_mut(&self.key) {
            *open -= 1;
            if *open == 0 {
                sessions.remove(&self.key);
            }
        }
    }
}

/// Middleware: every request counts against its address.
pub(crate) async fn by_address(
    State(state): State<AppState>,
    ConnectInfo(PeerAddr(remote)): ConnectInfo<PeerAddr>,
    request: Request,
    next: Next,
) -> Response {
    match state.limiter.check_ip(remote.ip()) {
        Ok(()) => next.run(request).await,
        Err(refusal) => refusal.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_hosts_are_limited_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ip_key(a), ip_key(b));
        assert_ne!(ip_key(a), ip_key(c));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(ip_key(mapped), "10.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[tokio::test]
    async fn a_burst_passes_and_the_next_request_is_refused_with_a_retry_time() {
        let limiter = Limiter::new(RateLimits { requests_per_s: 1, requests_burst: 3, sessions_per_address: 2 });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..3 {
            limiter.check_ip(ip).unwrap();
        }
        let refusal = limiter.check_ip(ip).unwrap_err();
        assert_eq!(refusal.2, Some(1));
        limiter.check_ip("192.0.2.2".parse().unwrap()).expect("another address has its own bucket");

        let first = limiter.open_session(ip).unwrap();
        let _second = limiter.open_session(ip).unwrap();
        assert!(limiter.open_session(ip).is_none(), "two sessions at most");
        drop(first);
        assert!(limiter.open_session(ip).is_some(), "a closed session frees its place");
    }
}
