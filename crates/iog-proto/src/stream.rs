//! Messages on the worker stream.

use std::net::SocketAddr;

use iog_sched::{Coord, Offer};
use iog_types::{BlobId, Device, LeaseToken, TaskId, WorkerId};
use serde::{Deserialize, Serialize};

/// A task a worker still holds (running, or finished with its result not yet acknowledged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldTask {
    pub task_id: TaskId,
    pub token: LeaseToken,
}

/// Worker to coordinator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WorkerMessage {
    /// First message of every session.
    Hello {
        protocol_version: u32,
        worker_id: WorkerId,
        /// Version of the worker software, for operators.
        agent_version: String,
        devices: Vec<Device>,
        /// What the worker offers: device groups (a CPU group's count is
        /// how many tasks it runs at once), price, region, hours.
        offer: Offer,
        /// Tasks it still holds from an earlier session.
        held: Vec<HeldTask>,
        /// The UDP port on which it answers peers' probes, if it does; the
        /// coordinator pairs it with the address the session comes from.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        probe_port: Option<u16>,
        /// Hex of the worker's ed25519 signature over
        /// [`session_signing_message`](crate::auth::session_signing_message)
        /// of the `SessionChallenge` nonce: the proof that this is
        /// `worker_id`. Nothing else on the session names the worker.
        /// (A default, so that an older worker's hello still parses and is
        /// refused for its protocol version, with the reason.)
        #[serde(default)]
        signature: String,
        /// Hex of the worker's x25519 seal key (see `iog-seal`): what the
        /// submitter of a sealed job wraps task keys to.
        #[serde(default)]
        seal_key: String,
        /// Hex of the worker's ed25519 signature over
        /// `iog_seal::seal_key_signing_message`, so that a submitter can
        /// check the seal key against the worker id without trusting the
        /// coordinator that relays it.
        #[serde(default)]
        seal_key_signature: String,
    },
    /// The worker is alive; `held` is what it holds now, as in `Hello`.
    Heartbeat {
        #[serde(default)]
        held: Vec<HeldTask>,
        /// Round-trip time to the coordinator the worker last measured
        /// (WebSocket ping to pong), for placement's network distance.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rtt_ms: Option<u32>,
        /// Its network coordinate, once it has probed a peer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        coord: Option<Coord>,
    },
    /// The task ran; its output is uploaded as blob `output`.
    TaskDone {
        task_id: TaskId,
        token: LeaseToken,
        output: BlobId,
        /// The output itself when it is at most
        /// [`crate::STREAM_INLINE_BYTES_MAX`] bytes; otherwise it was
        /// uploaded as a blob before this message.
        #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::inline_bytes")]
        output_bytes: Option<Vec<u8>>,
        duration_ms: u64,
        work_units: u64,
        /// Which device ran it, e.g. `cpu0`.
        device: String,
    },
    /// The task's input is sealed: the worker needs the task key, wrapped
    /// to its seal key by the job's submitter. Sent after `Assign` and again
    /// in every new session while the task waits for it.
    KeyWanted { task_id: TaskId, token: LeaseToken },
    /// The task could not run.
    TaskFailed { task_id: TaskId, token: LeaseToken, error: String },
    /// The owner changed the worker's offer; running tasks keep theirs.
    OfferChanged { offer: Offer },
    /// The owner is using the machine: the worker has stopped its tasks
    /// (the coordinator moves them elsewhere) and takes none until `Resume`.
    Pause { reason: String },
    /// The owner's machine is idle again.
    Resume,
    /// The memory challenge's fill is done: reveal the walk's seed.
    ChallengeReady { challenge_id: u64 },
    /// The compute challenge's products or the memory challenge's walk are
    /// done: their Merkle root.
    ChallengeCommitted { challenge_id: u64, commitment: Commitment },
    /// The answer to a challenge (a compute or memory challenge's after the
    /// reveal that follows its commitment).
    ChallengeAnswered { challenge_id: u64, answer: ChallengeAnswer },
    /// The worker could not take the challenge (it counts as failed).
    ChallengeRefused { challenge_id: u64, error: String },
}

/// A hardware challenge (see `iog-trust` and docs/TRUST.md).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Challenge {
    /// Compute the products, send `ChallengeCommitted`, then open the
    /// entries the reveal's seed picks.
    Compute(iog_trust::ComputeChallenge),
    /// The same on the GPU the worker lists as `device` (`gpu0`), with its
    /// kernel: the deadline is sized to that GPU's model.
    DeviceCompute { device: String, challenge: iog_trust::ComputeChallenge },
    /// The puzzle, solved on the GPU `device` with its hash kernel.
    DeviceHash { device: String, challenge: iog_trust::HashChallenge },
    /// Solve the puzzle and send the solutions.
    Hash(iog_trust::HashChallenge),
    /// Fill the memory and send `ChallengeReady`; walk from the first
    /// reveal's seed and send `ChallengeCommitted`; open the `n_checked`
    /// steps the second reveal's seed picks.
    Memory { challenge: iog_trust::MemoryChallenge, n_checked: u32 },
}

/// A commitment to work done, before the coordinator says what to open.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Commitment {
    Compute(iog_trust::ComputeCommitment),
    Memory(iog_trust::MemoryCommitment),
}

/// A worker's answer to a challenge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChallengeAnswer {
    Compute(iog_trust::ComputeAnswer),
    Hash(iog_trust::HashAnswer),
    Memory(iog_trust::MemoryAnswer),
}

/// Coordinator to worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CoordinatorMessage {
    /// First message of every session: the worker signs `nonce` in its
    /// hello. `audience` is the coordinator's public key (base58).
    SessionChallenge { nonce: String, audience: String },
    /// Answer to `Hello`: the session is open.
    Welcome { heartbeat_interval_ms: u64, worker_timeout_ms: u64 },
    /// Run this task under this lease. The input is blob `input`.
    Assign {
        task_id: TaskId,
        token: LeaseToken,
        input: BlobId,
        /// The input itself when the coordinator has it at hand and it is
        /// small; otherwise the worker fetches blob `input`.
        #[serde(default, skip_serializing_if = "Option::is_none", with = "crate::inline_bytes")]
        input_bytes: Option<Vec<u8>>,
    },
    /// The task key of a sealed task, wrapped by the job's submitter to the
    /// worker's seal key under `iog_seal::task_context` (hex of an
    /// `iog_seal::WrappedKey`). The coordinator only relays it.
    TaskKey { task_id: TaskId, token: LeaseToken, wrapped: String },
    /// Stop this task; its lease is gone.
    Revoke { task_id: TaskId, token: LeaseToken, reason: String },
    /// The coordinator recorded (or refused) a result; the worker may forget it.
    ResultAck { task_id: TaskId, token: LeaseToken, outcome: String },
    /// The session cannot go on; the worker should fix what `message` says.
    Refused { code: String, message: String },
    /// Measure the round trip to each of these peers (UDP probes) and
    /// update the network coordinate with it.
    Probe { peers: Vec<ProbePeer> },
    /// Take this hardware challenge now, before the deadline the
    /// coordinator keeps; take no tasks meanwhile.
    Challenge { challenge_id: u64, challenge: Challenge },
    /// The next seed of a challenge: after a compute commitment, the
    /// entries to open; after a memory fill, the walk's seed (the clock
    /// runs from here to the walk's commitment); after a memory commitment,
    /// the steps to open.
    ChallengeReveal { challenge_id: u64, sample_seed: iog_trust::Seed },
}

/// A peer to probe: where it answers and its coordinate as last reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbePeer {
    pub worker_id: WorkerId,
    /// `ip:port` of its probe socket.
    pub addr: SocketAddr,
    pub coord: Coord,
}
