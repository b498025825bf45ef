//! The identity key file, through the crate's public interface.

use iog_host::{Identity, IdentityError, verify};

#[test]
fn load_or_create_twice_gives_the_same_worker() {
    let dir = tempfile::tempdir().expect("create temp dir");
    // A data dir that does not exist yet, two levels deep.
    let data_dir = dir.path().join("worker").join("data");
    let first = Identity::load_or_create(&data_dir).expect("create identity");
    let second = Identity::load_or_create(&data_dir).expect("load identity");
    assert_eq!(first.worker_id(), second.worker_id());

    // What one signs, the other's id verifies: it really is the same key.
    let signature = second.sign(b"hello");
    verify(&first.worker_id(), b"hello", &signature).expect("signature verifies");

    // Exactly one file, no temp files left behind.
    let names: Vec<_> = std::fs::read_dir(&data_dir)
        .expect("list data dir")
        .map(|entry| entry.expect("dir entry").file_name())
        .collect();
    assert_eq!(names, ["identity.key"]);
    let text = std::fs::read_to_string(data_dir.join("identity.key")).expect("read key file");
    assert_eq!(text.len(), 65, "64 hex digits and a newline: {text:?}");
    assert!(text.ends_with('\n'));
}

#[test]
fn new_identities_differ() {
    let a = tempfile::tempdir().expect("create temp dir");
    let b = tempfile::tempdir().expect("create temp dir");
    let a = Identity::load_or_create(a.path()).expect("create identity");
    let b = Identity::load_or_create(b.path()).expect("create identity");
    assert_ne!(a.worker_id(), b.worker_id());
    assert_ne!(Identity::generate().worker_id(), Identity::generate().worker_id());
}

#[cfg(unix)]
#[test]
fn key_file_is_readable_only_by_its_owner() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().expect("create temp dir");
    Identity::load_or_create(dir.path()).expect("create identity");
    let metadata = std::fs::metadata(dir.path().join("identity.key")).expect("stat key file");
    assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
}

#[test]
fn corrupt_key_file_is_an_error_and_left_untouched() {
    let cases: [(&[u8], &str); 4] = [
        (b"0123abcd\n", "found 8 hex digits, expected 64"),
        (&[b'z'; 64], "character 1 is 'z', not a hex digit"),
        (b"", "the file is empty"),
        (&[0xff; 65], "the file is not text"),
    ];
    for (contents, reason) in cases {
        let dir = tempfile::tempdir().expect("create temp dir");
        let path = dir.path().join("identity.key");
        std::fs::write(&path, contents).expect("write corrupt key file");

        let err = Identity::load_or_create(dir.path()).unwrap_err();
        assert!(matches!(err, IdentityError::CorruptKey { .. }), "{err}");
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "names the file: {message}");
        assert!(message.contains(reason), "says what is wrong: {message}");
        assert!(message.contains("restore it from a backup"), "says what to do: {message}");

        assert_eq!(std::fs::read(&path).expect("read key file"), contents, "file untouched");
    }
}

#[test]
fn key_file_written_by_hand_is_accepted() {
    let dir = tempfile::tempdir().expect("create temp dir");
    let seed = [0x5a; 32];
    let text: String = seed.iter().map(|byte| format!("{byte:02X}")).collect();
    std::fs::write(dir.path().join("identity.key"), format!("{text}\n\n")).expect("write key file");
    let loaded = Identity::load_or_create(dir.path()).expect("load identity");
    assert_eq!(loaded.worker_id(), Identity::from_seed(seed).worker_id());
}

#[test]
fn signatures_check_message_and_signer() {
    let alice = Identity::generate();
    let bob = Identity::generate();
    let signature = alice.sign(b"result of task j-0000000000000001/0");
    verify(&alice.worker_id(), b"result of task j-0000000000000001/0", &signature).expect("verifies");

    let err = verify(&alice.worker_id(), b"result of task j-0000000000000001/1", &signature).unwrap_err();
    assert!(matches!(err, IdentityError::BadSignature { .. }), "{err}");
    let err = verify(&bob.worker_id(), b"result of task j-0000000000000001/0", &signature).unwrap_err();
    assert!(matches!(err, IdentityError::BadSignature { .. }), "{err}");

    let mut flipped = signature;
    flipped[0] ^= 1;
    assert!(verify(&alice.worker_id(), b"result of task j-0000000000000001/0", &flipped).is_err());
}
