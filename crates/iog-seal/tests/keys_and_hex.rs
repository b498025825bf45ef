//! Text and wire forms of secrets, public keys and wrapped keys.

use iog_seal::{JobSecret, SealError, SealPublic, SealSecret, TaskKey, WrappedKey, wrap};

#[test]
fn job_secret_hex_round_trips() {
    let secret = JobSecret::generate();
    let text = secret.to_hex();
    assert_eq!(text.len(), 64);
    assert_eq!(text, text.to_lowercase());
    let parsed = JobSecret::from_hex(&text).expect("parses");
    assert_eq!(parsed.as_bytes(), secret.as_bytes());
    assert_eq!(parsed.task_key(5), secret.task_key(5));
    // As read back from a file, and written by hand in upper case.
    assert_eq!(JobSecret::from_hex(&format!("{text}\n")).expect("parses").as_bytes(), secret.as_bytes());
    assert_eq!(JobSecret::from_hex(&text.to_uppercase()).expect("parses").as_bytes(), secret.as_bytes());
}

#[test]
fn bad_hex_is_an_error_that_says_what_was_expected() {
    let cases = ["", "abc", &"a".repeat(63), &"a".repeat(66), &format!("{}zz", "a".repeat(62)), &"é".repeat(32)];
    for text in cases {
        let err = JobSecret::from_hex(text).unwrap_err();
        assert!(matches!(err, SealError::BadHex { what: "job secret", expected_digits: 64, .. }), "{text:?}: {err}");
        assert!(err.to_string().starts_with("bad hex for job secret: "), "{err}");
        assert!(SealPublic::from_hex(text).is_err(), "{text:?}");
    }
    let err = WrappedKey::from_hex("00").unwrap_err();
    assert_eq!(err.to_string(), "bad hex for wrapped key: found 2 characters; expected 208 hex digits");
}

#[test]
fn bad_hex_error_does_not_echo_the_text() {
    let text = format!("{}g", "5".repeat(63));
    let err = JobSecret::from_hex(&text).unwrap_err().to_string();
    assert!(!err.contains("55555"), "{err}");
}

#[test]
fn seal_public_hex_parse_display_and_serde() {
    let public = SealSecret::derive(&[3; 32]).public();
    let text = public.to_hex();
    assert_eq!(text.len(), 64);
    assert_eq!(public.to_string(), text);
    assert_eq!(text.parse::<SealPublic>().expect("parses"), public);
    assert_eq!(SealPublic::from_bytes(*public.as_bytes()), public);

    let json = serde_json::to_string(&public).expect("serialises");
    assert_eq!(json, format!("\"{text}\""));
    assert_eq!(serde_json::from_str::<SealPublic>(&json).expect("deserialises"), public);
    let err = serde_json::from_str::<SealPublic>("\"xyz\"").unwrap_err();
    assert!(err.to_string().contains("bad hex for seal public key"), "{err}");
    assert!(serde_json::from_str::<SealPublic>("42").is_err());
}

#[test]
fn wrapped_key_hex_and_serde_round_trip() {
    let public = SealSecret::derive(&[3; 32]).public();
    let wrapped = wrap(&public, b"ctx", &TaskKey::from_bytes([1; 32])).expect("wraps");
    let text = wrapped.to_hex();
    assert_eq!(text.len(), 208);
    assert_eq!(text, text.to_lowercase());
    assert_eq!(wrapped.to_string(), text);
    assert_eq!(text.parse::<WrappedKey>().expect("parses"), wrapped);
    let json = serde_json::to_string(&wrapped).expect("serialises");
    assert_eq!(serde_json::from_str::<WrappedKey>(&json).expect("deserialises"), wrapped);
}

#[test]
fn debug_never_shows_secrets() {
    let secret = JobSecret::from_bytes([0xcd; 32]);
    let key = TaskKey::from_bytes([0xef; 32]);
    let seal_secret = SealSecret::derive(&[0xcd; 32]);
    for text in [format!("{secret:?}"), format!("{key:?}"), format!("{seal_secret:?}")] {
        assert!(!text.contains("cdcd") && !text.contains("efef"), "{text}");
    }
}

#[test]
fn error_messages_say_what_is_wrong() {
    assert_eq!(
        SealError::UnsupportedVersion { version: 9 }.to_string(),
        "unsupported version 9 of sealed data; this build reads version 1, upgrade iog to open it"
    );
    assert!(SealError::NotSealed.to_string().starts_with("not sealed data"));
    assert!(SealError::Tampered.to_string().starts_with("wrong key or tampered data"));
}
