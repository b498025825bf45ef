//! Placement as a pure core.
//!
//! The scheduler decides which free device runs which task. It reads no
//! clock, does no IO and draws no random numbers: callers pass `now` where
//! time matters, so the coordinator's core and the simulator drive it alike.
//!
//! - [`offer`]: what a worker offers (device groups, price, region, trust,
//!   availability windows) and [`request`]: what a task needs.
//! - [`index`]: the free capacity of every worker, kept in pools of
//!   identical hard-constraint attributes, each ordered by rank and by price,
//!   and each requirement class keeps a tournament tree over its pools'
//!   best entries, so finding the best device for a single-device task
//!   costs O(log pools) and taking it O(log n), never a scan of the fleet.
//! - [`fair`]: fair share between submitters.
//! - [`vivaldi`]: network coordinates from round-trip times.
//! - [`gang`]: choosing a group of workers whose pairwise latency stays
//!   under a bound.
//! - [`query`]: the market search language (`gpu_mem>=24 price<=0.8 region=eu`).
//! - [`explain`]: why a request matches no offer, in words.

pub mod explain;
pub mod fair;
pub mod gang;
pub mod index;
pub mod offer;
pub mod query;
pub mod request;
pub mod vivaldi;

pub use explain::explain_unplaceable;
pub use fair::FairShare;
pub use index::{EntryId, Index, Placement};
pub use offer::{DeviceGroup, Offer, OfferError, Software, Window};
pub use request::{Requirements, RequirementsError};
pub use vivaldi::Coord;
