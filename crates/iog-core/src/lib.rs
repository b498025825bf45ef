//! The coordinator's decisions, as a pure state machine.
//!
//! [`Core::handle`] takes one [`Event`] and the current time and returns the
//! [`Action`]s that follow from it. The core never reads a clock, never does
//! IO and never draws random numbers: its shell (the coordinator process, or a
//! simulator) feeds it events and `now`, writes every [`Action::Persist`] to
//! the store in one transaction, and only then sends the messages the other
//! actions describe. Replaying the same events with the same times gives the
//! same actions, which is what makes whole-network simulation possible.

mod config;
mod core;
mod event;
mod model;
mod payments;
mod queue;
pub mod reputation;
pub mod verify;

pub use config::{Config, TASK_TIMEOUT_DEFAULT_MS};
pub use core::{CHAIN_TASKS_MAX, COORD_ERROR_SETTLED, Core, RestoreError};
pub use event::{Action, Change, CommitOutcome, Event, NewJob, RunningTask, ValidResult, WrongResult};
pub use model::{ChallengeRecord, JobView, RestoredJob, RestoredTask, Snapshot, TaskView, WorkerRecord, WorkerView};
pub use payments::{
    DEFAULT_REWARDS_EPOCH_MS, DEFAULT_UNSTAKE_COOLDOWN_MS, EscrowError, EscrowView, FEE_BPS_MAX, Payments, RewardRules,
    StakeError, StakeRules, StakeView, TaskPaid,
};
pub use reputation::Reputation;
