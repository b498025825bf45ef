//! The coordinator core through its public interface: events in, actions out.

use iog_core::{Action, Change, CommitOutcome, Config, Core, Event, NewJob, RunningTask};
use iog_sched::{Offer, Requirements};
use iog_types::{BlobId, DeviceKind, JobId, JobState, LeaseToken, TaskId, TaskState, WorkerId};

fn config() -> Config {
    Config {
        heartbeat_interval_ms: 100,
        missed_heartbeats_max: 3,
        max_attempts_default: 3,
        retry_backoff_base_ms: 10,
        retry_backoff_max_ms: 80,
        ..Config::default()
    }
}

fn worker(name: &str) -> WorkerId {
    WorkerId(name.to_owned())
}

fn job(id: u64, n_tasks: u32) -> NewJob {
    NewJob {
        chain: None,
        job_id: JobId(id),
        name: format!("job{id}"),
        workload: "noop".to_owned(),
        spec_json: b"{}".to_vec(),
        max_attempts: None,
        task_timeout_ms: None,
        inputs: (0..n_tasks).map(|idx| BlobId::of(&idx.to_le_bytes())).collect(),
        requirements: Requirements::one(DeviceKind::Cpu),
        submitter: String::new(),
        verify: iog_types::Verify::None,
        sealed: false,
        assets: Vec::new(),
    }
}

fn connect(core: &mut Core, name: &str, now: u64) -> Vec<Action> {
    core.handle(
        Event::WorkerConnected { worker_id: worker(name), offer: Offer::cpu(1), trust: 0, running: vec![] },
        now,
    )
}

fn assigns(actions: &[Action]) -> Vec<(WorkerId, TaskId, LeaseToken)> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Assign { worker_id, task_id, token, .. } => Some((worker_id.clone(), *task_id, *token)),
            _ => None,
        })
        .collect()
}

fn succeed(core: &mut Core, (worker_id, task_id, token): &(WorkerId, TaskId, LeaseToken), now: u64) -> Vec<Action> {
    let output = BlobId::of(task_id.to_string().as_bytes());
    core.handle(
        Event::TaskSucceeded {
            worker_id: worker_id.clone(),
            task_id: *task_id,
            token: *token,
            output,
            duration_ms: 5,
            device: "cpu0".into(),
        },
        now,
    )
}

fn reply(actions: &[Action]) -> Option<CommitOutcome> {
    actions.iter().find_map(|action| match action {
        Action::ResultReply { outcome, .. } => Some(*outcome),
        _ => None,
    })
}

#[test]
fn a_job_runs_to_done_and_is_persisted_before_it_is_announced() {
    let mut core = Core::new(config());
    connect(&mut core, "a", 0);
    connect(&mut core, "b", 0);
    let actions = core.handle(Event::JobSubmitted(job(1, 3)), 1);
    assert!(matches!(actions[0], Action::Persist(Change::JobCreated { .. })));
    assert!(matches!(actions[1], Action::JobAccepted { job_id: JobId(1) }));
    let first = assigns(&actions);
    assert_eq!(first.len(), 2, "one task per free worker");
    assert_ne!(first[0].0, first[1].0);

    let actions = succeed(&mut core, &first[0], 2);
    assert_eq!(reply(&actions), Some(CommitOutcome::Committed));
    let again = succeed(&mut core, &first[0], 2);
    assert_eq!(reply(&again), Some(CommitOutcome::Duplicate));
    assert!(!again.iter().any(|a| matches!(a, Action::Persist(_) | Action::Assign { .. })));
    let next = assigns(&actions);
    assert_eq!(next.len(), 1, "the freed worker takes the last task");
    succeed(&mut core, &first[1], 3);
    let actions = succeed(&mut core, &next[0], 4);
    assert!(actions.contains(&Action::JobFinished { job_id: JobId(1), state: JobState::Done }));
    assert_eq!(core.job(JobId(1)).unwrap().state, JobState::Done);
    core.check_invariants().unwrap();
}

#[test]
fn a_dead_workers_lease_lapses_and_its_late_result_is_stale() {
    let mut core = Core::new(config());
    connect(&mut core, "a", 0);
    let lease_a = assigns(&core.handle(Event::JobSubmitted(job(1, 1)), 0)).remove(0);
    connect(&mut core, "b", 0);
    // b keeps beating, a falls silent.
    for now in (100..=300).step_by(100) {
        core.handle(Event::Heartbeat { worker_id: worker("b"), held: vec![] }, now);
        assert!(core.handle(Event::Tick, now).iter().all(|a| !matches!(a, Action::WorkerDead { .. })));
    }
    let actions = core.handle(Event::Tick, 301);
    assert!(actions.contains(&Action::WorkerDead { worker_id: worker("a") }));
    assert!(actions.iter().any(|a| matches!(a, Action::Persist(Change::TaskRequeued { .. }))));
    // Backoff: not before 301 + 10 ms.
    assert!(assigns(&core.handle(Event::Tick, 305)).is_empty());
    let lease_b = assigns(&core.handle(Event::Tick, 311)).remove(0);
    assert_eq!(lease_b.0, worker("b"));
    assert!(lease_b.2 > lease_a.2, "a new lease has a larger fencing token");

    assert_eq!(reply(&succeed(&mut core, &lease_a, 312)), Some(CommitOutcome::Stale));
    assert_eq!(reply(&succeed(&mut core, &lease_b, 313)), Some(CommitOutcome::Committed));
    // The job ended with that commit and its tasks left memory: a repeat is
    // answered stale, and changes nothing.
    let again = succeed(&mut core, &lease_b, 314);
    assert_eq!(reply(&again), Some(CommitOutcome::Stale));
    assert!(!again.iter().any(|a| matches!(a, Action::Persist(_))), "a duplicate commit changes nothing");
    core.check_invariants().unwrap();
}

#[test]
fn retries_are_bounded_and_the_job_fails_with_the_reason() {
    let mut core = Core::new(config());
    core.handle(Event::WorkerConnected { worker_id: worker("a"), offer: Offer::cpu(2), trust: 0, running: vec![] }, 0);
    let mut actions = core.handle(Event::JobSubmitted(job(7, 2)), 0);
    // `a` keeps running task 1 throughout and says so in its heartbeats.
    let task_1 = assigns(&actions).into_iter().find(|l| l.1.task_idx == 1).expect("task 1 is leased");
    let mut now = 0;
    for attempt in 1..=3 {
        let lease = assigns(&actions).into_iter().find(|l| l.1.task_idx == 0).expect("task 0 is leased");
        let failed = Event::TaskFailed {
            worker_id: lease.0.clone(),
            task_id: lease.1,
            token: lease.2,
            error: "out of memory".to_owned(),
        };
        actions = core.handle(failed, now);
        if attempt < 3 {
            now += 50;
            // Any event lets the core place the task once its backoff ended.
            let held = vec![RunningTask { task_id: task_1.1, token: task_1.2 }];
            let mut later = core.handle(Event::Heartbeat { worker_id: worker("a"), held }, now);
            actions.append(&mut later);
        }
    }
    let reason = actions.iter().find_map(|a| match a {
        Action::Persist(Change::JobEnded { state: JobState::Failed, reason, .. }) => reason.clone(),
        _ => None,
    });
    assert_eq!(reason.as_deref(), Some("task j-0000000000000007/0 failed after 3 attempts: out of memory"));
    // The other task was running; its holder is told to stop, and the
    // finished job's tasks leave memory (the store keeps them).
    assert!(actions.iter().any(|a| matches!(a, Action::Revoke { task_id, .. } if task_id.task_idx == 1)));
    assert!(core.task(TaskId::new(JobId(7), 1)).is_none());
    core.check_invariants().unwrap();
}

#[test]
fn cancelling_revokes_running_tasks() {
    let mut core = Core::new(config());
    connect(&mut core, "a", 0);
    let lease = assigns(&core.handle(Event::JobSubmitted(job(2, 5)), 0)).remove(0);
    let actions = core.handle(Event::CancelJob { job_id: JobId(2) }, 1);
    assert!(actions.iter().any(|a| matches!(a, Action::Revoke { task_id, .. } if *task_id == lease.1)));
    assert_eq!(core.job(JobId(2)).unwrap().state, JobState::Cancelled);
    assert_eq!(reply(&succeed(&mut core, &lease, 2)), Some(CommitOutcome::Stale));
    core.check_invariants().unwrap();
}

#[test]
fn a_reconnecting_worker_keeps_what_it_runs_and_loses_what_it_forgot() {
    let mut core = Core::new(Config { ..config() });
    core.handle(Event::WorkerConnected { worker_id: worker("a"), offer: Offer::cpu(2), trust: 0, running: vec![] }, 0);
    let leases = assigns(&core.handle(Event::JobSubmitted(job(3, 2)), 0));
    assert_eq!(leases.len(), 2);
    core.handle(Event::WorkerDisconnected { worker_id: worker("a") }, 10);
    let keep = RunningTask { task_id: leases[0].1, token: leases[0].2 };
    let actions = core.handle(
        Event::WorkerConnected { worker_id: worker("a"), offer: Offer::cpu(2), trust: 0, running: vec![keep] },
        20,
    );
    // The forgotten task was requeued; the kept one is still leased.
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Persist(Change::TaskRequeued { task_id, .. }) if *task_id == leases[1].1))
    );
    assert_eq!(core.task(leases[0].1).unwrap().state, TaskState::Leased);
    core.check_invariants().unwrap();
}

#[test]
fn bad_submissions_are_rejected_without_changes() {
    let mut core = Core::new(config());
    let actions = core.handle(Event::JobSubmitted(job(4, 0)), 0);
    assert_eq!(actions, vec![Action::JobRejected { job_id: JobId(4), reason: "a job needs at least one task".into() }]);
    let mut too_many = job(5, 1);
    too_many.max_attempts = Some(1_000);
    let actions = core.handle(Event::JobSubmitted(too_many), 0);
    assert_eq!(
        actions,
        vec![Action::JobRejected {
            job_id: JobId(5),
            reason: "job.max_attempts must be between 1 and 100, got 1000".into()
        }]
    );
    assert!(core.job(JobId(5)).is_none());
}

#[test]
fn a_lease_its_holder_never_mentions_lapses_after_two_heartbeats() {
    let mut core = Core::new(config());
    connect(&mut core, "a", 0);
    // The assignment is lost on the way: `a` never learns of it.
    let lease = assigns(&core.handle(Event::JobSubmitted(job(9, 1)), 0)).remove(0);
    let beat = |core: &mut Core, now| core.handle(Event::Heartbeat { worker_id: worker("a"), held: vec![] }, now);
    assert!(!beat(&mut core, 100).iter().any(|a| matches!(a, Action::Persist(_))), "one miss may cross the assignment");
    let actions = beat(&mut core, 200);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Persist(Change::TaskRequeued { task_id, .. }) if *task_id == lease.1))
    );
    // Once its backoff ends it goes out again, under a larger token.
    let again = assigns(&core.handle(Event::Heartbeat { worker_id: worker("a"), held: vec![] }, 300)).remove(0);
    assert!(again.2 > lease.2);
    // A worker that holds a task without a current lease is told to drop it.
    let stale = vec![RunningTask { task_id: lease.1, token: lease.2 }];
    let actions = core.handle(Event::Heartbeat { worker_id: worker("a"), held: stale }, 310);
    assert!(actions.iter().any(|a| matches!(a, Action::Revoke { token, .. } if *token == lease.2)));
    core.check_invariants().unwrap();
}

#[test]
fn a_key_never_given_takes_the_task_back_without_blaming_the_worker() {
    let mut core = Core::new(config());
    connect(&mut core, "a", 0);
    let mut actions = core.handle(Event::JobSubmitted(NewJob { sealed: true, ..job(9, 1) }), 0);
    let mut now = 0;
    for attempt in 1..=3 {
        let (worker_id, task_id, token) = assigns(&actions).remove(0);
        // A stale lease's timeout changes nothing.
        let stale =
            Event::KeyNotGiven { worker_id: worker_id.clone(), task_id, token: LeaseToken(token.0 + 99), waited_ms: 1 };
        assert!(core.handle(stale, now).is_empty());
        let waited = Event::KeyNotGiven { worker_id: worker_id.clone(), task_id, token, waited_ms: 300_000 };
        actions = core.handle(waited, now);
        assert!(
            actions.iter().any(|a| matches!(a, Action::Revoke { worker_id: w, task_id: t, reason, .. }
                if *w == worker_id && *t == task_id && reason.contains("within 300 s"))),
            "{actions:?}"
        );
        if attempt < 3 {
            now += 100;
            actions = core.handle(Event::Tick, now);
        }
    }
    assert_eq!(core.job(JobId(9)).unwrap().state, JobState::Failed);
    let reason = actions.iter().find_map(|a| match a {
        Action::Persist(Change::JobEnded { state: JobState::Failed, reason, .. }) => reason.clone(),
        _ => None,
    });
    assert!(
        reason.as_deref().is_some_and(|r| r.contains("after 3 attempts") && r.contains("no task key")),
        "{reason:?}"
    );
    let record = core.workers().into_iter().find(|w| w.worker_id == worker("a")).unwrap().reputation;
    assert_eq!((record.tasks_failed, record.leases_lapsed), (0, 0), "{record:?}");
    core.check_invariants().unwrap();
}

#[test]
fn a_job_without_a_task_timeout_gets_the_networks_default() {
    // A worker that keeps saying it runs the task (its heartbeats list the
    // lease) but never finishes holds it only until the default timeout.
    let mut core = Core::new(Config { task_timeout_default_ms: 1_000, heartbeat_interval_ms: 10_000, ..config() });
    connect(&mut core, "a", 0);
    let (worker_id, task_id, token) = assigns(&core.handle(Event::JobSubmitted(job(3, 1)), 0)).remove(0);
    let held = vec![RunningTask { task_id, token }];
    assert!(core.handle(Event::Heartbeat { worker_id: worker_id.clone(), held: held.clone() }, 999).is_empty());
    let actions = core.handle(Event::Tick, 1_000);
    assert!(
        actions.iter().any(|a| matches!(a, Action::Revoke { task_id: t, reason, .. }
            if *t == task_id && reason.contains("default task timeout of 1000 ms"))),
        "{actions:?}"
    );
    let record = core.workers().into_iter().find(|w| w.worker_id == worker_id).unwrap().reputation;
    assert_eq!(record.leases_lapsed, 1);
    // With the default off, nothing lapses.
    let mut core = Core::new(Config { task_timeout_default_ms: 0, heartbeat_interval_ms: 10_000, ..config() });
    connect(&mut core, "a", 0);
    let (worker_id, task_id, token) = assigns(&core.handle(Event::JobSubmitted(job(3, 1)), 0)).remove(0);
    core.handle(Event::Heartbeat { worker_id, held: vec![RunningTask { task_id, token }] }, 5_000);
    assert!(!core.handle(Event::Tick, 5_001).iter().any(|a| matches!(a, Action::Revoke { .. })));
    core.check_invariants().unwrap();
}
