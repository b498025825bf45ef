//! The owner watch through its public API, on the machine running the tests.

use iog_host::{OwnerPolicy, OwnerState, OwnerWatch};

#[test]
fn default_policy_is_inactive_and_always_idle() {
    let mut watch = OwnerWatch::new(OwnerPolicy::default());
    assert!(!watch.is_active());
    for _ in 0..3 {
        assert_eq!(watch.check(), OwnerState::Idle);
    }
    assert!(watch.notes().is_empty());
}

#[test]
fn each_signal_makes_the_policy_active() {
    assert!(OwnerPolicy { gpu_busy: true, ..OwnerPolicy::default() }.is_active());
    assert!(OwnerPolicy { busy_file: Some("/x".into()), ..OwnerPolicy::default() }.is_active());
    assert!(OwnerPolicy { busy_command: Some("true".into()), ..OwnerPolicy::default() }.is_active());
}

#[test]
fn busy_while_the_file_exists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("owner-busy");
    let mut watch = OwnerWatch::new(OwnerPolicy { busy_file: Some(path.clone()), ..OwnerPolicy::default() });
    assert!(watch.is_active());
    assert_eq!(watch.check(), OwnerState::Idle);

    std::fs::write(&path, b"").expect("create busy file");
    assert_eq!(watch.check(), OwnerState::Busy(format!("file {} exists", path.display())));

    std::fs::remove_file(&path).expect("remove busy file");
    assert_eq!(watch.check(), OwnerState::Idle);
    assert!(watch.notes().is_empty());
}

#[test]
fn busy_while_the_command_exits_zero() {
    let mut watch = OwnerWatch::new(OwnerPolicy { busy_command: Some("true".into()), ..OwnerPolicy::default() });
    assert_eq!(watch.check(), OwnerState::Busy("command `true` exited 0".to_owned()));
    let mut watch = OwnerWatch::new(OwnerPolicy { busy_command: Some("false".into()), ..OwnerPolicy::default() });
    assert_eq!(watch.check(), OwnerState::Idle);
}

#[test]
fn the_file_answers_before_the_command_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let busy_file = dir.path().join("busy");
    let ran = dir.path().join("ran");
    std::fs::write(&busy_file, b"").expect("create busy file");
    let policy = OwnerPolicy {
        busy_file: Some(busy_file.clone()),
        busy_command: Some(format!("touch '{}'", ran.display())),
        ..OwnerPolicy::default()
    };
    let mut watch = OwnerWatch::new(policy);
    assert!(watch.check().is_busy());
    assert!(!ran.exists(), "the command ran although the file already said busy");

    // Once the file is gone the command is asked, and `touch` exits 0.
    std::fs::remove_file(&busy_file).expect("remove busy file");
    assert!(matches!(watch.check(), OwnerState::Busy(reason) if reason.starts_with("command `touch")));
    assert!(ran.exists());
}

#[test]
fn gpu_signal_without_nvml_is_idle_and_says_why() {
    let mut watch = OwnerWatch::new(OwnerPolicy { gpu_busy: true, ..OwnerPolicy::default() });
    assert!(watch.is_active());
    let state = watch.check();
    let notes = watch.notes();
    if notes.iter().any(|note| note.starts_with("nvml unavailable: ")) {
        assert_eq!(state, OwnerState::Idle);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("gpu_busy ignored"), "{notes:?}");
        // The note is given once, not on every check.
        assert_eq!(watch.check(), OwnerState::Idle);
        assert!(watch.notes().is_empty());
    } else {
        // A host with a driver: the tests themselves use no GPU, so anything
        // that makes this busy is another process, and the reason names it.
        if let OwnerState::Busy(reason) = state {
            assert!(reason.starts_with("process ") && reason.contains(" uses GPU "), "{reason}");
        }
    }
}

#[test]
fn policy_parses_from_toml() {
    let policy: OwnerPolicy = toml::from_str(
        r#"
        gpu_busy = true
        busy_file = "/run/user/1000/iog-busy"
        busy_command = "pgrep -x steam"
        "#,
    )
    .expect("policy parses");
    assert_eq!(
        policy,
        OwnerPolicy {
            gpu_busy: true,
            busy_file: Some("/run/user/1000/iog-busy".into()),
            busy_command: Some("pgrep -x steam".into()),
            ..OwnerPolicy::default()
        }
    );
    assert!(policy.gpu_ignore.iter().any(|name| name == "Xorg"), "a desktop's display server is ignored by default");
    let own: OwnerPolicy = toml::from_str("gpu_busy = true\ngpu_ignore = [\"my-compositor\"]").expect("parses");
    assert_eq!(own.gpu_ignore, ["my-compositor"], "an owner's list replaces the default");
    let empty: OwnerPolicy = toml::from_str("").expect("empty policy parses");
    assert_eq!(empty, OwnerPolicy::default());
    assert!(!empty.is_active());

    let round_trip: OwnerPolicy = toml::from_str(&toml::to_string(&policy).expect("serialises")).expect("parses");
    assert_eq!(round_trip, policy);
}

#[test]
fn policy_refuses_unknown_keys() {
    let err = toml::from_str::<OwnerPolicy>("gpu_busy = true\nbusy_fiel = \"/tmp/x\"\n").expect_err("typo refused");
    assert!(err.to_string().contains("busy_fiel"), "{err}");
}
