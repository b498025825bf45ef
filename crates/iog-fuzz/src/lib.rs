//! The bodies of iog's fuzz targets, as plain functions: `fuzz/` (cargo
//! fuzz, nightly) drives them with libFuzzer, and `tests/regressions.rs`
//! runs every saved input through them on stable in `cargo test`, so an
//! input that once crashed stays a test.
//!
//! Each takes arbitrary bytes, as an attacker would send them, and must
//! neither panic nor hang; where the input is accepted it also checks a
//! law (a decoded message encodes and decodes to itself, a stored blob
//! reads back as sent).

use std::path::PathBuf;
use std::sync::OnceLock;

use iog_proto::stream::{ChallengeAnswer, Commitment, WorkerMessage};
use iog_types::BlobId;

/// Inputs larger than this are cut: the stream refuses messages over
/// `iog_proto::STREAM_MESSAGE_BYTES_MAX`, and small inputs keep a run fast.
const INPUT_BYTES_MAX: usize = 64 * 1024;

/// A worker-stream message, as the coordinator decodes and checks it:
/// JSON into a [`WorkerMessage`], then the checks each kind gets before
/// anything is done with it (an offer's validity, a coordinate's sanity, a
/// challenge answer's shape and content against a small fixed challenge).
pub fn worker_message(data: &[u8]) {
    let data = &data[..data.len().min(INPUT_BYTES_MAX)];
    let Ok(message) = serde_json::from_slice::<WorkerMessage>(data) else { return };
    let encoded = serde_json::to_vec(&message).expect("a decoded message encodes");
    let again: WorkerMessage = serde_json::from_slice(&encoded).expect("an encoded message decodes");
    assert_eq!(again, message, "a message survives a round trip");
    match message {
        WorkerMessage::Hello { offer, .. } | WorkerMessage::OfferChanged { offer } => {
            let _ = offer.validate().map(|()| offer.cpu_memory_bytes());
        }
        WorkerMessage::Heartbeat { coord: Some(coord), .. } => {
            let _ = coord.is_sane();
        }
        WorkerMessage::ChallengeCommitted { commitment: Commitment::Compute(commitment), .. } => {
            let answer = iog_trust::ComputeAnswer { openings: Vec::new() };
            let _ = iog_trust::compute::check(&compute_challenge(), &commitment, &[2; 32], &answer);
        }
        WorkerMessage::ChallengeAnswered { answer, .. } => match answer {
            ChallengeAnswer::Compute(answer) => {
                let commitment = iog_trust::ComputeCommitment { root: [0; 32] };
                let _ = iog_trust::compute::check(&compute_challenge(), &commitment, &[2; 32], &answer);
            }
            ChallengeAnswer::Memory(answer) => {
                let commitment = iog_trust::MemoryCommitment { root: [0; 32] };
                let _ = iog_trust::memory::check(&memory_challenge(), &[3; 32], &commitment, &[4; 32], 8, &answer);
            }
            ChallengeAnswer::Hash(answer) => {
                let challenge = iog_trust::HashChallenge { seed: [5; 32], difficulty_bits: 4, n_solutions: 4 };
                let _ = iog_trust::puzzle::check(&challenge, &answer);
            }
        },
        _ => {}
    }
}

fn compute_challenge() -> iog_trust::ComputeChallenge {
    iog_trust::ComputeChallenge { seed: [1; 32], n: 64, n_products: 1, n_samples: 4 }
}

fn memory_challenge() -> iog_trust::MemoryChallenge {
    iog_trust::MemoryChallenge { seed: [6; 32], memory_bytes: 1 << 20, chunks_per_block: 16, n_probes: 64 }
}

/// A job spec, as `POST /v1/jobs` takes it (JSON) and as `iog job submit`
/// reads it (TOML, scene files refused): parsed, validated, and planned
/// into tasks when it is accepted.
pub fn job_spec(data: &[u8]) {
    let data = &data[..data.len().min(INPUT_BYTES_MAX)];
    let mut specs = Vec::new();
    if let Ok(spec) = iog_workloads::parse_job_json(data) {
        specs.push(spec);
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(spec) = iog_workloads::parse_job_file_with(text, &mut |_| Err("no files here".to_owned()))
    {
        specs.push(spec);
    }
    for spec in specs {
        let _ = spec.requirements();
        let _ = spec.verify();
        let Ok(workload) = spec.workload() else { continue };
        // Planning a valid spec is bounded by the spec's own limits; a
        // spec that passes validation and still cannot be planned fast is
        // a finding (libFuzzer reports it as a timeout).
        let _ = iog_workloads::plan(&workload);
    }
}

/// The blob upload path: `PUT /v1/blobs/{id}` with a body. The input is the
/// id as text, a newline, and the body. A body that does not hash to the
/// id is refused and leaves nothing behind; one that does is stored and
/// reads back as sent.
pub fn blob_upload(data: &[u8]) {
    let data = &data[..data.len().min(INPUT_BYTES_MAX)];
    let (id_text, body) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let store = blob_store();
    let parsed = std::str::from_utf8(id_text).ok().and_then(|text| text.parse::<BlobId>().ok());
    let honest = BlobId::of(body);
    if let Some(claimed) = parsed {
        let stored = store.put_verified(claimed, body);
        assert_eq!(stored.is_ok(), claimed == honest, "only a body that hashes to its id is stored");
        if claimed != honest {
            assert!(
                !store.contains(&claimed)
                    || store.get(&claimed).ok().flatten().is_some_and(|b| BlobId::of(&b) == claimed)
            );
        }
    }
    store.put_verified(honest, body).expect("a body under its own id is stored");
    assert_eq!(store.get(&honest).expect("read the blob").as_deref(), Some(body), "a blob reads back as sent");
}

/// One blob store per process, in a temporary directory of its own.
fn blob_store() -> &'static iog_store::BlobStore {
    static STORE: OnceLock<iog_store::BlobStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let root: PathBuf = std::env::temp_dir().join(format!("iog-fuzz-blobs-{}", std::process::id()));
        iog_store::BlobStore::open(&root).expect("open a blob store in the temporary directory")
    })
}
