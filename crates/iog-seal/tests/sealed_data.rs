//! Sealing and opening task data through the public interface.

use iog_seal::{JobSecret, Purpose, SEALED_OVERHEAD_BYTES, SealError, TaskKey, is_sealed};
use proptest::prelude::*;

fn key(task_idx: u32) -> TaskKey {
    JobSecret::from_bytes([42; 32]).task_key(task_idx)
}

#[test]
fn round_trips_for_both_purposes_and_empty_data() {
    let key = key(0);
    for purpose in [Purpose::Input, Purpose::Output] {
        for plaintext in [&b""[..], b"x", b"scene.json contents", &[0u8; 1000]] {
            let sealed = key.seal(purpose, plaintext);
            assert!(is_sealed(&sealed));
            assert_eq!(sealed.len(), plaintext.len() + SEALED_OVERHEAD_BYTES);
            assert_eq!(key.open(purpose, &sealed).expect("opens"), plaintext);
        }
    }
}

#[test]
fn tampering_any_byte_fails() {
    let key = key(1);
    let sealed = key.seal(Purpose::Output, b"the rendered tile");
    for idx in 0..sealed.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut tampered = sealed.clone();
            tampered[idx] ^= flip;
            let result = key.open(Purpose::Output, &tampered);
            assert!(result.is_err(), "byte {idx} flipped by {flip:#x} still opened");
        }
    }
}

#[test]
fn tampering_reports_what_is_wrong() {
    let key = key(1);
    let sealed = key.seal(Purpose::Input, b"abc");
    let with = |idx: usize, byte: u8| {
        let mut bytes = sealed.clone();
        bytes[idx] = byte;
        key.open(Purpose::Input, &bytes).unwrap_err()
    };
    assert_eq!(with(0, b'X'), SealError::NotSealed);
    assert_eq!(with(4, 2), SealError::UnsupportedVersion { version: 2 });
    assert_eq!(with(5, 0), SealError::UnknownPurpose { byte: 0 });
    assert_eq!(with(5, 2), SealError::PurposeMismatch { sealed: Purpose::Output, opened: Purpose::Input });
    assert_eq!(with(10, sealed[10] ^ 1), SealError::Tampered);
    assert_eq!(with(sealed.len() - 1, sealed[sealed.len() - 1] ^ 1), SealError::Tampered);
}

#[test]
fn truncation_and_extension_fail() {
    let key = key(2);
    let sealed = key.seal(Purpose::Input, b"0123456789");
    for len in 0..sealed.len() {
        assert!(key.open(Purpose::Input, &sealed[..len]).is_err(), "cut to {len} bytes still opened");
    }
    assert_eq!(key.open(Purpose::Input, &sealed[..4]), Err(SealError::Truncated { len_bytes: 4, min_bytes: 46 }));
    assert_eq!(key.open(Purpose::Input, &sealed[..45]), Err(SealError::Truncated { len_bytes: 45, min_bytes: 46 }));
    let mut longer = sealed.clone();
    longer.push(0);
    assert_eq!(key.open(Purpose::Input, &longer), Err(SealError::Tampered));
}

#[test]
fn wrong_task_key_fails() {
    let sealed = key(3).seal(Purpose::Input, b"input of task 3");
    assert_eq!(key(4).open(Purpose::Input, &sealed), Err(SealError::Tampered));
    let other_job = JobSecret::from_bytes([43; 32]).task_key(3);
    assert_eq!(other_job.open(Purpose::Input, &sealed), Err(SealError::Tampered));
}

#[test]
fn purpose_swap_fails() {
    let key = key(5);
    let input = key.seal(Purpose::Input, b"same bytes");
    let err = key.open(Purpose::Output, &input).unwrap_err();
    assert_eq!(err, SealError::PurposeMismatch { sealed: Purpose::Input, opened: Purpose::Output });
    assert_eq!(err.to_string(), "purpose mismatch: sealed as input, opened as output");

    // Relabelling the header does not help: the purpose is authenticated.
    let mut relabelled = input.clone();
    relabelled[5] = 2;
    assert_eq!(key.open(Purpose::Output, &relabelled), Err(SealError::Tampered));
}

#[test]
fn same_plaintext_same_key_gives_identical_bytes() {
    // Two replicas of one task, each holding the task key, sealing the same
    // output: the coordinator sees equal digests.
    let replica_a = key(6);
    let replica_b = JobSecret::from_bytes([42; 32]).task_key(6);
    assert_eq!(replica_a.seal(Purpose::Output, b"result"), replica_b.seal(Purpose::Output, b"result"));
    assert_ne!(replica_a.seal(Purpose::Output, b"result"), replica_a.seal(Purpose::Output, b"resulT"));
}

#[test]
fn different_task_or_purpose_gives_different_bytes() {
    let a = key(7).seal(Purpose::Output, b"result");
    let b = key(8).seal(Purpose::Output, b"result");
    let c = key(7).seal(Purpose::Input, b"result");
    assert_ne!(a, b);
    assert_ne!(a[6..], c[6..]);
}

#[test]
fn plaintext_does_not_appear_in_the_sealed_bytes() {
    let plaintext = b"a recognisable plaintext that must not leak";
    let sealed = key(9).seal(Purpose::Input, plaintext);
    assert!(!sealed.windows(8).any(|window| plaintext.windows(8).any(|p| p == window)));
}

#[test]
fn is_sealed_checks_only_the_magic() {
    assert!(is_sealed(b"iogS"));
    assert!(is_sealed(b"iogS and anything"));
    assert!(!is_sealed(b"iog"));
    assert!(!is_sealed(b""));
    assert!(!is_sealed(b"{\"plain\": true}"));
    assert_eq!(key(0).open(Purpose::Input, b"{\"plain\": true}"), Err(SealError::NotSealed));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip_any_plaintext(
        plaintext in proptest::collection::vec(any::<u8>(), 0..64 * 1024),
        task_idx in any::<u32>(),
        output in any::<bool>(),
    ) {
        let purpose = if output { Purpose::Output } else { Purpose::Input };
        let key = key(task_idx);
        let sealed = key.seal(purpose, &plaintext);
        prop_assert_eq!(sealed.len(), plaintext.len() + SEALED_OVERHEAD_BYTES);
        prop_assert_eq!(&sealed, &key.seal(purpose, &plaintext));
        prop_assert_eq!(key.open(purpose, &sealed).expect("opens"), plaintext);
    }

    #[test]
    fn any_single_byte_change_is_rejected(
        plaintext in proptest::collection::vec(any::<u8>(), 0..4096),
        position in any::<prop::sample::Index>(),
        flip in 1u8..,
    ) {
        let key = key(11);
        let mut sealed = key.seal(Purpose::Output, &plaintext);
        let idx = position.index(sealed.len());
        sealed[idx] ^= flip;
        prop_assert!(key.open(Purpose::Output, &sealed).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_open_or_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let key = key(12);
        let mut with_header = b"iogS\x01\x01".to_vec();
        with_header.extend_from_slice(&bytes);
        prop_assert!(key.open(Purpose::Input, &bytes).is_err());
        prop_assert!(key.open(Purpose::Input, &with_header).is_err());
    }
}
