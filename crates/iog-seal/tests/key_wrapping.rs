//! Wrapping task keys to workers' seal keys through the public interface.

use iog_seal::{
    JobSecret, Purpose, SealError, SealPublic, SealSecret, TaskKey, WRAPPED_KEY_BYTES, WrappedKey,
    seal_key_signing_message, task_context, unwrap, wrap, wrap_with_randomness,
};
use proptest::prelude::*;

const CONTEXT: &[u8] = b"job j1 task 3 worker w1";

fn worker(seed_byte: u8) -> SealSecret {
    SealSecret::derive(&[seed_byte; 32])
}

fn task_key() -> TaskKey {
    JobSecret::from_bytes([7; 32]).task_key(3)
}

#[test]
fn wrap_unwrap_round_trip_and_worker_opens_input() {
    let worker = worker(1);
    let key = task_key();
    let wrapped = wrap(&worker.public(), CONTEXT, &key).expect("wraps");
    let unwrapped = unwrap(&worker, CONTEXT, &wrapped).expect("unwraps");
    assert_eq!(unwrapped, key);

    let input = key.seal(Purpose::Input, b"tile 3 of the scene");
    assert_eq!(unwrapped.open(Purpose::Input, &input).expect("opens"), b"tile 3 of the scene");
}

#[test]
fn wrapping_is_randomised() {
    let public = worker(1).public();
    let a = wrap(&public, CONTEXT, &task_key()).expect("wraps");
    let b = wrap(&public, CONTEXT, &task_key()).expect("wraps");
    assert_ne!(a, b);
}

#[test]
fn wrap_with_randomness_is_deterministic() {
    let public = worker(1).public();
    let a = wrap_with_randomness(&public, CONTEXT, &task_key(), &[9; 32]).expect("wraps");
    let b = wrap_with_randomness(&public, CONTEXT, &task_key(), &[9; 32]).expect("wraps");
    let c = wrap_with_randomness(&public, CONTEXT, &task_key(), &[10; 32]).expect("wraps");
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(unwrap(&worker(1), CONTEXT, &c).expect("unwraps"), task_key());
}

#[test]
fn another_workers_secret_fails() {
    let wrapped = wrap(&worker(1).public(), CONTEXT, &task_key()).expect("wraps");
    assert_eq!(unwrap(&worker(2), CONTEXT, &wrapped), Err(SealError::UnwrapFailed));
}

#[test]
fn wrong_context_fails() {
    let worker = worker(1);
    let wrapped = wrap(&worker.public(), CONTEXT, &task_key()).expect("wraps");
    for context in [&b"job j1 task 4 worker w1"[..], b"job j1 task 3 worker w2", b"job j2 task 3 worker w1", b""] {
        assert_eq!(unwrap(&worker, context, &wrapped), Err(SealError::UnwrapFailed), "{context:?}");
    }
}

#[test]
fn tampering_any_byte_of_a_wrapped_key_fails() {
    let worker = worker(1);
    let bytes = wrap(&worker.public(), CONTEXT, &task_key()).expect("wraps").to_bytes();
    // 0x80 in byte 31 is the bit of the ephemeral key that x25519 itself
    // ignores; the key derivation hashes the raw bytes, so it counts too.
    for idx in 0..WRAPPED_KEY_BYTES {
        for flip in [0x01u8, 0x80] {
            let mut tampered = bytes;
            tampered[idx] ^= flip;
            let result = unwrap(&worker, CONTEXT, &WrappedKey::from_bytes(&tampered));
            assert!(result.is_err(), "byte {idx} flipped by {flip:#x} still unwrapped");
        }
    }
}

#[test]
fn low_order_keys_are_refused() {
    // The identity point and a point of order 8 on curve25519.
    let zero = [0u8; 32];
    let mut order_eight = [0u8; 32];
    hex::decode_to_slice("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", &mut order_eight)
        .expect("hex");
    for point in [zero, order_eight] {
        let public = SealPublic::from_bytes(point);
        assert_eq!(wrap(&public, CONTEXT, &task_key()).unwrap_err(), SealError::LowOrderKey);

        let mut forged = wrap(&worker(1).public(), CONTEXT, &task_key()).expect("wraps").to_bytes();
        forged[..32].copy_from_slice(&point);
        assert_eq!(unwrap(&worker(1), CONTEXT, &WrappedKey::from_bytes(&forged)), Err(SealError::LowOrderKey));
    }
}

#[test]
fn derive_is_deterministic_and_differs_per_seed() {
    assert_eq!(worker(1).public(), worker(1).public());
    assert_ne!(worker(1).public(), worker(2).public());
    let mut seed = [1u8; 32];
    seed[31] = 2;
    assert_ne!(SealSecret::derive(&seed).public(), worker(1).public());
}

#[test]
fn signing_message_names_worker_and_key() {
    let public = worker(1).public();
    let message = String::from_utf8(seal_key_signing_message("w1", &public)).expect("utf-8");
    assert_eq!(message, format!("iog worker seal key v1\nw1\n{}\n", public.to_hex()));
    assert_ne!(seal_key_signing_message("w1", &public), seal_key_signing_message("w2", &public));
    assert_ne!(seal_key_signing_message("w1", &public), seal_key_signing_message("w1", &worker(2).public()));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn round_trip_any_key_context_and_worker(
        key_bytes in any::<[u8; 32]>(),
        seed in any::<[u8; 32]>(),
        context in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        let worker = SealSecret::derive(&seed);
        let key = TaskKey::from_bytes(key_bytes);
        let wrapped = wrap(&worker.public(), &context, &key).expect("wraps");
        let parsed = WrappedKey::from_hex(&wrapped.to_hex()).expect("parses");
        prop_assert_eq!(unwrap(&worker, &context, &parsed).expect("unwraps"), key);
    }
}

#[test]
fn a_key_wrapped_for_one_task_context_opens_for_no_other() {
    let worker = worker(1);
    let context = task_context(0x1234, 3, "w1");
    let wrapped = wrap(&worker.public(), &context, &task_key()).expect("wraps");
    assert_eq!(unwrap(&worker, &context, &wrapped).expect("unwraps"), task_key());
    // Another job, another task or replica, another worker's name.
    for other in [task_context(0x1235, 3, "w1"), task_context(0x1234, 13, "w1"), task_context(0x1234, 3, "w2")] {
        assert_ne!(other, context);
        assert_eq!(unwrap(&worker, &other, &wrapped), Err(SealError::UnwrapFailed));
    }
}
