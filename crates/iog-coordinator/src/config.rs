use std::net::SocketAddr;
use std::path::PathBuf;

/// How to run a coordinator.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// Where the store (`coordinator.db`, `blobs/`) lives.
    pub data_dir: PathBuf,
    /// Address to serve the API and the worker stream on. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Timings and limits of the core.
    pub core: iog_core::Config,
    /// Most commands the engine folds into one store transaction. Default 1024.
    pub batch_max: usize,
    /// Largest grant of the dev-network faucet; `None` (the default) turns
    /// the faucet off, as a production network must.
    pub faucet_max: Option<iog_ledger::Amount>,
    /// The network's share of every task payment, in basis points (at most
    /// [`iog_core::FEE_BPS_MAX`]). Default [`DEFAULT_FEE_BPS`].
    pub fee_bps: u32,
    /// Stake a worker needs per device, and the unstaking cooldown.
    pub stake_rules: iog_core::StakeRules,
    /// The supply rewards schedule; off by default.
    pub reward_rules: iog_core::RewardRules,
    /// How often each worker is named peers to probe for its network
    /// coordinate; 0 turns probing off. Default
    /// [`crate::PROBE_INTERVAL_MS_DEFAULT`].
    pub probe_interval_ms: u64,
    /// Steps of the memory challenge's walk. The default
    /// ([`iog_trust::claim::PROBES_PLAN`], 2^20) proves the most; a shorter
    /// walk tolerates hosts running several workers side by side (a
    /// development network) and proves less (docs/TRUST.md).
    pub challenge_walk_steps: u32,
    /// Added to every challenge deadline on top of twice the worker's round
    /// trip. The default ([`crate::CHALLENGE_ALLOWANCE_MS_DEFAULT`], 200 ms)
    /// covers sending the answer and two busy hosts; a network of several
    /// workers on one machine needs more, and proves less.
    pub challenge_allowance_ms: u64,
    /// How long a bearer token issued against a wallet's signature lives.
    /// Default [`crate::TOKEN_TTL_MS_DEFAULT`] (15 minutes).
    pub token_ttl_ms: u64,
    /// How long a worker holding a task of a sealed job waits for a key
    /// that opens it before the coordinator takes the task back (the
    /// attempt counts against the job, not the worker). Between 1 ms and
    /// [`crate::KEY_WAIT_MS_MAX`]; default [`crate::KEY_WAIT_MS_DEFAULT`].
    pub key_wait_ms: u64,
    /// TLS: a self-signed certificate kept in the data dir (the default),
    /// the operator's own files, or plain HTTP on loopback (`Insecure`).
    pub tls: crate::TlsMode,
    /// Requests a second per address and per identity, and worker sessions
    /// per address.
    pub rate_limits: crate::RateLimits,
    /// Deadlines on the TLS handshake, on request headers and on a quiet
    /// connection.
    pub timeouts: crate::ConnectionTimeouts,
}

/// The network fee unless configured otherwise: 2.5 % of every task payment.
pub const DEFAULT_FEE_BPS: u32 = 250;

impl CoordinatorConfig {
    pub fn new(data_dir: PathBuf, listen: SocketAddr) -> CoordinatorConfig {
        CoordinatorConfig {
            data_dir,
            listen,
            core: iog_core::Config::default(),
            batch_max: 1024,
            faucet_max: None,
            fee_bps: DEFAULT_FEE_BPS,
            stake_rules: iog_core::StakeRules::default(),
            reward_rules: iog_core::RewardRules::default(),
            probe_interval_ms: crate::PROBE_INTERVAL_MS_DEFAULT,
            challenge_walk_steps: iog_trust::claim::PROBES_PLAN,
            challenge_allowance_ms: crate::challenge::NETWORK_ALLOWANCE_MS,
            token_ttl_ms: crate::TOKEN_TTL_MS_DEFAULT,
            key_wait_ms: crate::KEY_WAIT_MS_DEFAULT,
            tls: crate::TlsMode::SelfSigned,
            rate_limits: crate::RateLimits::default(),
            timeouts: crate::ConnectionTimeouts::default(),
        }
    }

    /// How often the engine ticks the core: a quarter of the heartbeat
    /// interval, between 10 ms and 250 ms, so dead workers and ended
    /// backoffs are noticed promptly without busy-looping.
    pub fn tick_interval_ms(&self) -> u64 {
        (self.core.heartbeat_interval_ms / 4).clamp(10, 250)
    }
}

/// Default address of a coordinator on this machine; clients use it when
/// neither `--coordinator` nor `IOG_COORDINATOR` says otherwise.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7070";
