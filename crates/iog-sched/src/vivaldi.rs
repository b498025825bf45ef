//! Network coordinates from round-trip times: Vivaldi (Dabek, Cox, Kaashoek
//! and Morris, "Vivaldi: a decentralized network coordinate system",
//! SIGCOMM 2004) with the paper's height vectors.
//!
//! Each worker keeps a [`Coord`]: a point in a small euclidean space and a
//! height. The estimated round-trip time between two workers is the distance
//! between their points plus both heights ([`Coord::distance_ms`]); the
//! height stands for the access link that every packet of a worker crosses
//! whichever way it goes, which a point in the plane cannot express. With
//! coordinates the coordinator estimates the latency of any of the n² pairs
//! from n small records instead of measuring every pair.
//!
//! A worker refines its own coordinate with each round-trip time it measures
//! to a peer the coordinator names, moving it along the line to the peer's
//! coordinate as a spring would ([`Coord::update`]). The step is the paper's
//! adaptive timestep: it grows with the worker's own error estimate and
//! shrinks with the peer's, so a new worker moves fast and a settled one is
//! not dragged about by a newcomer that knows nothing yet.
//!
//! The core draws no random numbers. The paper picks a random direction
//! when two coordinates coincide (as all do at the start); here that
//! direction is derived from a hash of both coordinates and the measured
//! round-trip time, which differ between nodes, so the result is reproducible
//! and nodes that all start at the origin still spread out.
//!
//! Accuracy: on a three-continent synthetic topology (135 nodes, round trips
//! of 80–250 ms between continents and up to about 50 ms within one, ±5 %
//! measurement jitter, 4 random peers sampled per node and round; see
//! `tests/vivaldi.rs`), the median relative error of the estimates over all
//! pairs is about 0.011 and the 90th percentile about 0.09 after 150 rounds
//! (after 50 rounds: 0.013 and 0.17). Pairs within a continent, whose round
//! trips are short, have a median relative error of about 0.05.

use serde::{Deserialize, Serialize};

/// Dimensions of the euclidean part of a coordinate.
///
/// The paper finds that two dimensions plus a height fit Internet latencies
/// about as well as higher dimensions without a height; a third dimension
/// costs eight bytes per worker and leaves room for layouts, such as three
/// continents with spread inside each, that a plane fits less well.
pub const DIMENSIONS: usize = 3;

/// Weight of a new sample in the moving average of the error estimate (the
/// paper's `c_e`); the paper finds 0.25 a good trade between following
/// change and smoothing out noisy samples.
pub const CE: f64 = 0.25;

/// Fraction of the remaining spring force applied per sample (the paper's
/// `c_c`); the paper's 0.25 converges quickly without oscillating.
pub const CC: f64 = 0.25;

/// Smallest height. A height of zero would let two coordinates at the same
/// point have a distance of zero, leaving no direction to move along.
pub const HEIGHT_MS_MIN: f64 = 0.1;

/// Largest height a sane coordinate has.
pub const HEIGHT_MS_MAX: f64 = 100_000.0;

/// Largest absolute value of a position component in a sane coordinate.
/// Real round trips stay below [`RTT_MS_MAX`], so a coordinate beyond this
/// is corrupt or hostile rather than far away.
pub const POSITION_MS_MAX: f64 = 100_000.0;

/// Error estimate of a new coordinate: it knows nothing, so its estimates
/// are off by as much as they are worth.
pub const ERROR_INITIAL: f64 = 1.0;

/// Smallest error estimate [`Coord::update`] leaves. Both errors at zero
/// would make the sample weight 0/0.
pub const ERROR_MIN: f64 = 0.001;

/// Largest error estimate; a wildly wrong sample raises the error to this
/// and no further, so one outlier cannot make a settled node move like a
/// new one for long.
pub const ERROR_MAX: f64 = 1.5;

/// Longest round-trip time accepted as a sample. Anything longer is a
/// stalled connection or a clock fault rather than the network's latency.
pub const RTT_MS_MAX: f64 = 10_000.0;

/// Positions closer than this are treated as the same point, whose
/// direction to each other is undefined.
const COINCIDENT_MS: f64 = 0.001;

/// How many hashed candidate directions are tried before falling back to
/// the first axis; each is accepted with a probability above one half, so
/// the fallback is practically never used.
const DIRECTION_TRIES: usize = 16;

/// A worker's position in latency space.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Coord {
    /// The euclidean part, in milliseconds.
    pub position: [f64; DIMENSIONS],
    /// Latency added to every round trip of this worker whatever the peer,
    /// such as its access link, in milliseconds.
    pub height_ms: f64,
    /// How far off this coordinate's estimates are believed to be, as a
    /// relative error: 1.0 for a new one, near 0 for a settled one.
    pub error: f64,
}

impl Coord {
    /// Where every worker starts: the origin, the smallest height and
    /// complete ignorance.
    pub const ORIGIN: Coord = Coord { position: [0.0; DIMENSIONS], height_ms: HEIGHT_MS_MIN, error: ERROR_INITIAL };

    /// A new coordinate at [`Coord::ORIGIN`].
    pub fn new() -> Coord {
        Coord::ORIGIN
    }

    /// The estimated round-trip time to `other`: the euclidean distance of
    /// the positions plus both heights.
    pub fn distance_ms(&self, other: &Coord) -> f64 {
        norm(&gap(&self.position, &other.position)) + self.height_ms + other.height_ms
    }

    /// Whether every field is finite and within bounds. The coordinator
    /// refuses coordinates reported by workers that fail this, and
    /// [`Coord::update`] ignores samples against them.
    pub fn is_sane(&self) -> bool {
        self.position.iter().all(|component| component.is_finite() && component.abs() <= POSITION_MS_MAX)
            && self.height_ms.is_finite()
            && (HEIGHT_MS_MIN..=HEIGHT_MS_MAX).contains(&self.height_ms)
            && self.error.is_finite()
            && (0.0..=ERROR_MAX).contains(&self.error)
    }

    /// Moves this coordinate toward agreement with one measured round-trip
    /// time to `remote`, with the adaptive timestep of the paper.
    ///
    /// Returns whether the sample was used. It is ignored, leaving the
    /// coordinate as it was, when `rtt_ms` is not finite, not positive or
    /// above [`RTT_MS_MAX`], or when either coordinate is not sane.
    ///
    /// When both positions coincide the direction to move in is derived
    /// from a hash of both coordinates and `rtt_ms`. Two nodes in exactly the
    /// same state that measure exactly the same round-trip time therefore
    /// move alike; measured times differ in practice, and once one of them
    /// has moved the positions no longer coincide.
    pub fn update(&mut self, rtt_ms: f64, remote: &Coord) -> bool {
        if !(rtt_ms.is_finite() && rtt_ms > 0.0 && rtt_ms <= RTT_MS_MAX) {
            return false;
        }
        if !self.is_sane() || !remote.is_sane() {
            return false;
        }
        // A reported error of zero is sane but would make the weight 0/0
        // if both were zero, so the weights see at least the minimum.
        let error_local = self.error.max(ERROR_MIN);
        let error_remote = remote.error.max(ERROR_MIN);
        let weight = error_local / (error_local + error_remote);
        let distance_ms = self.distance_ms(remote);
        let sample_error = (distance_ms - rtt_ms).abs() / rtt_ms;
        let error = sample_error * CE * weight + error_local * (1.0 - CE * weight);
        // A round trip far below a microsecond can make the sample error
        // infinite, but never NaN: the distance is finite and the weight
        // positive. Clamping turns infinity into the bound.
        let error = error.clamp(ERROR_MIN, ERROR_MAX);

        // Positive when the coordinates are too close, negative when too far.
        let force_ms = CC * weight * (rtt_ms - distance_ms);
        let gap_position = gap(&self.position, &remote.position);
        if norm(&gap_position) < COINCIDENT_MS && force_ms > 0.0 {
            // Pushing apart two points at the same place: the paper's unit
            // vector has no position part, so pick a direction.
            let direction = direction(self, remote, rtt_ms);
            for (component, unit) in self.position.iter_mut().zip(direction) {
                *component += force_ms * unit;
            }
        } else {
            // The paper's unit vector with heights: the position gap and the
            // sum of the heights, both divided by the distance, so that
            // moving by `force_ms` changes the distance by exactly that much
            // (unless the height reaches its minimum). The distance is at
            // least twice the minimum height, so the division is safe.
            let scale = force_ms / distance_ms;
            for (component, gap_ms) in self.position.iter_mut().zip(gap_position) {
                *component += scale * gap_ms;
            }
            self.height_ms += scale * (self.height_ms + remote.height_ms);
        }
        // The force is bounded by the round trip and the distance, so only a
        // coordinate already at the bounds can be pushed past them; clamping
        // keeps the result sane whatever the inputs.
        for component in &mut self.position {
            *component = component.clamp(-POSITION_MS_MAX, POSITION_MS_MAX);
        }
        self.height_ms = self.height_ms.clamp(HEIGHT_MS_MIN, HEIGHT_MS_MAX);
        self.error = error;
        true
    }
}

impl Default for Coord {
    fn default() -> Coord {
        Coord::ORIGIN
    }
}

fn gap(from: &[f64; DIMENSIONS], to: &[f64; DIMENSIONS]) -> [f64; DIMENSIONS] {
    std::array::from_fn(|axis| from[axis] - to[axis])
}

fn norm(vector: &[f64; DIMENSIONS]) -> f64 {
    vector.iter().map(|component| component * component).sum::<f64>().sqrt()
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// The splitmix64 step: a cheap bijective mixer whose output bits each
/// depend on every input bit, which is all a direction needs.
fn splitmix64(state: u64) -> u64 {
    let mut z = state.wrapping_add(GOLDEN_GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A unit vector that depends on every bit of both coordinates and of the
/// round-trip time, standing in for the paper's random direction.
fn direction(local: &Coord, remote: &Coord, rtt_ms: f64) -> [f64; DIMENSIONS] {
    let mut state = 0;
    let fields = |coord: &Coord| {
        let mut fields = [0.0; DIMENSIONS + 2];
        fields[..DIMENSIONS].copy_from_slice(&coord.position);
        fields[DIMENSIONS] = coord.height_ms;
        fields[DIMENSIONS + 1] = coord.error;
        fields
    };
    for value in fields(local).into_iter().chain(fields(remote)).chain([rtt_ms]) {
        state = splitmix64(state ^ value.to_bits());
    }
    for _ in 0..DIRECTION_TRIES {
        let candidate: [f64; DIMENSIONS] = std::array::from_fn(|_| {
            state = splitmix64(state);
            // The top 53 bits as a uniform value in [-1, 1).
            (state >> 11) as f64 * (2.0 / (1u64 << 53) as f64) - 1.0
        });
        let length = norm(&candidate);
        // Keeping only points inside the unit ball makes every direction
        // equally likely; very short vectors are dropped because
        // normalising them magnifies rounding.
        if (0.1..=1.0).contains(&length) {
            return candidate.map(|component| component / length);
        }
    }
    std::array::from_fn(|axis| if axis == 0 { 1.0 } else { 0.0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relative_error(estimate_ms: f64, true_ms: f64) -> f64 {
        (estimate_ms - true_ms).abs() / true_ms
    }

    #[test]
    fn two_nodes_converge_to_their_rtt() {
        let rtt_ms = 42.0;
        let mut a = Coord::new();
        let mut b = Coord::new();
        for round in 0..100 {
            // Slightly different measurements, as two real ends would see.
            let jitter_ms = if round % 2 == 0 { 0.5 } else { -0.5 };
            assert!(a.update(rtt_ms + jitter_ms, &b));
            assert!(b.update(rtt_ms - jitter_ms, &a));
        }
        assert!(relative_error(a.distance_ms(&b), rtt_ms) < 0.02, "{a:?} {b:?}");
        assert!(a.error < 0.1 && b.error < 0.1, "{a:?} {b:?}");
        assert!(a.is_sane() && b.is_sane());
    }

    #[test]
    fn three_nodes_fit_a_triangle() {
        // 10, 20 and 25 ms form a valid triangle, which a plane fits exactly.
        let rtt_ms = [[0.0, 10.0, 20.0], [10.0, 0.0, 25.0], [20.0, 25.0, 0.0]];
        let mut coords = [Coord::new(); 3];
        for _ in 0..300 {
            for i in 0..3 {
                for j in 0..3 {
                    if i != j {
                        let remote = coords[j];
                        assert!(coords[i].update(rtt_ms[i][j], &remote));
                    }
                }
            }
        }
        for i in 0..3 {
            for j in 0..3 {
                if i != j {
                    let estimate_ms = coords[i].distance_ms(&coords[j]);
                    assert!(relative_error(estimate_ms, rtt_ms[i][j]) < 0.05, "{i}-{j}: {estimate_ms}");
                }
            }
        }
    }

    #[test]
    fn bad_samples_are_ignored() {
        let remote = Coord { position: [5.0, 0.0, 0.0], height_ms: 1.0, error: 0.5 };
        let start = Coord::new();
        for rtt_ms in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0, -3.0, RTT_MS_MAX + 1.0, f64::MAX] {
            let mut coord = start;
            assert!(!coord.update(rtt_ms, &remote), "{rtt_ms}");
            assert_eq!(coord, start);
        }
        let mut coord = start;
        assert!(coord.update(RTT_MS_MAX, &remote));
        assert_ne!(coord, start);
    }

    #[test]
    fn samples_against_insane_coordinates_are_ignored() {
        let sane = Coord { position: [5.0, 0.0, 0.0], height_ms: 1.0, error: 0.5 };
        let insane = [
            Coord { position: [f64::NAN, 0.0, 0.0], ..sane },
            Coord { position: [0.0, f64::INFINITY, 0.0], ..sane },
            Coord { position: [0.0, 0.0, -POSITION_MS_MAX * 2.0], ..sane },
            Coord { height_ms: 0.0, ..sane },
            Coord { height_ms: -1.0, ..sane },
            Coord { height_ms: HEIGHT_MS_MAX * 2.0, ..sane },
            Coord { error: -0.1, ..sane },
            Coord { error: ERROR_MAX * 2.0, ..sane },
            Coord { error: f64::NAN, ..sane },
        ];
        for bad in insane {
            assert!(!bad.is_sane(), "{bad:?}");
            let mut coord = Coord::new();
            assert!(!coord.update(30.0, &bad), "{bad:?}");
            assert_eq!(coord, Coord::new());
            let mut coord = bad;
            assert!(!coord.update(30.0, &sane), "{bad:?}");
        }
        assert!(Coord::ORIGIN.is_sane());
        assert!(Coord { error: 0.0, ..sane }.is_sane());
    }

    #[test]
    fn origin_nodes_separate() {
        let mut a = Coord::new();
        let b = Coord::new();
        assert!(a.update(50.0, &b));
        assert_ne!(a.position, b.position);
        // The distance moved by the force: half the error weight times
        // `CC` times the shortfall, all of it in position.
        let moved_ms = norm(&a.position);
        let expected_ms = CC * 0.5 * (50.0 - 2.0 * HEIGHT_MS_MIN);
        assert!((moved_ms - expected_ms).abs() < 1e-9, "{moved_ms} {expected_ms}");
        assert_eq!(a.height_ms, HEIGHT_MS_MIN);

        // Other round trips give other directions, so a crowd at the origin
        // spreads out instead of moving as one.
        let mut c = Coord::new();
        assert!(c.update(50.001, &b));
        assert_ne!(a.position, c.position);
        let cosine: f64 = a.position.iter().zip(c.position).map(|(x, y)| x * y).sum::<f64>()
            / (norm(&a.position) * norm(&c.position));
        assert!(cosine < 0.999, "{cosine}");

        // The other side, updating against the moved coordinate, moves away
        // from it, and the pair then converges as any other.
        let mut b = b;
        assert!(b.update(50.0, &a));
        assert!(b.distance_ms(&a) > a.distance_ms(&Coord::ORIGIN));
    }

    #[test]
    fn direction_is_a_deterministic_unit_vector() {
        let a = Coord::new();
        let b = Coord { error: 0.5, ..Coord::new() };
        for rtt_ms in [1.0, 2.0, 33.3, 1e-300] {
            let first = direction(&a, &b, rtt_ms);
            assert_eq!(first, direction(&a, &b, rtt_ms));
            assert!((norm(&first) - 1.0).abs() < 1e-12);
        }
        assert_ne!(direction(&a, &b, 10.0), direction(&b, &a, 10.0));
    }

    #[test]
    fn equidistant_nodes_converge() {
        // Four nodes whose round trips are all 30 ms: a regular tetrahedron
        // fits, and so do equal heights; either way the estimates converge.
        let mut coords = [Coord::new(); 4];
        for _ in 0..300 {
            for i in 0..coords.len() {
                for j in 0..coords.len() {
                    if i != j {
                        let remote = coords[j];
                        assert!(coords[i].update(30.0, &remote));
                    }
                }
            }
        }
        for i in 0..coords.len() {
            for j in 0..coords.len() {
                if i != j {
                    assert!(relative_error(coords[i].distance_ms(&coords[j]), 30.0) < 0.05);
                }
            }
        }
    }

    #[test]
    fn a_tiny_round_trip_leaves_the_coordinate_sane() {
        let mut coord = Coord { position: [100.0, 0.0, 0.0], height_ms: 3.0, error: 0.2 };
        assert!(coord.update(f64::MIN_POSITIVE, &Coord::new()));
        assert!(coord.is_sane(), "{coord:?}");
        assert_eq!(coord.error, ERROR_MAX);
    }
}
