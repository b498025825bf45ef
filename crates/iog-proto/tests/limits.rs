//! The largest answers a worker may send fit in one stream message.

use iog_proto::STREAM_MESSAGE_BYTES_MAX;
use iog_proto::stream::{ChallengeAnswer, WorkerMessage};
use iog_trust::memory::{CHECKED_MAX, MemoryAnswer, MemoryOpening, PROBES_MAX, STEPS_PER_LEAF};

#[test]
fn the_largest_memory_answer_fits_a_stream_message() {
    // Every checked step and its predecessor in leaves of their own, of the
    // longest walk (the deepest tree), with digits as wide as JSON makes them.
    let n_leaves = PROBES_MAX.div_ceil(STEPS_PER_LEAF);
    let depth = (n_leaves as f64).log2().ceil() as usize;
    let opening = |leaf_idx| MemoryOpening {
        leaf_idx,
        chunks: vec![[255; 32]; STEPS_PER_LEAF as usize],
        proof: vec![[255; 32]; depth],
    };
    let openings = (0..2 * CHECKED_MAX).map(|idx| opening(u32::MAX - idx)).collect();
    let message = WorkerMessage::ChallengeAnswered {
        challenge_id: u64::MAX,
        answer: ChallengeAnswer::Memory(MemoryAnswer { openings }),
    };
    let bytes = serde_json::to_vec(&message).unwrap().len();
    assert!(bytes < STREAM_MESSAGE_BYTES_MAX, "{bytes} bytes");
}
