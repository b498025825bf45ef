//! A seeded, single-threaded simulation of a whole iog network.
//!
//! The real [`iog_core::Core`] runs against a model of its store
//! ([`DurableModel`]), simulated workers and a network that drops, delays,
//! duplicates and reorders messages, partitions workers, crashes and restarts
//! workers and the coordinator, jumps the coordinator's clock, and has
//! workers' owners take their machines back for a while. Some jobs are
//! gangs, whose tasks run all at once on distinct workers or not at all.
//! Time is virtual; every random choice comes from one seed, so a seed
//! replays exactly. After every step the invariants of [`invariants`] are
//! checked.
//!
//! Jobs may verify their results by replication ([`VerifyMix`]), and some
//! workers cheat ([`Cheats`], [`CheatClass`]): every verdict of the core is
//! checked against what the simulator knows to be right, and counted in
//! [`VerifyStats`].

mod cheat;
mod durable;
pub mod invariants;
mod sim;
mod verify;
mod worker;

pub use cheat::{CheatClass, Cheats};
pub use durable::DurableModel;
pub use invariants::Violation;
pub use iog_types::Verify;
pub use sim::{Faults, Outcome, SimConfig, Stats, run};
pub use verify::{Policy, PolicyCounts, VerifyMix, VerifyStats, WrongCounts};
