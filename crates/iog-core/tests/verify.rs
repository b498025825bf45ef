//! Result verification through the core: replicas on distinct workers,
//! quorums, wrong results slashed and unpaid, adaptive checks, restarts.

use std::collections::VecDeque;

use iog_core::{Action, Change, Config, Core, Event, NewJob, RestoredJob, RestoredTask, Snapshot};
use iog_sched::{Offer, Requirements};
use iog_types::{BlobId, DeviceKind, JobId, JobState, LeaseToken, TaskId, TaskState, Verify, WorkerId};

fn job(id: u64, n_tasks: u32, verify: Verify) -> NewJob {
    NewJob {
        chain: None,
        job_id: JobId(id),
        name: format!("job{id}"),
        workload: "noop".to_owned(),
        spec_json: b"{}".to_vec(),
        max_attempts: None,
        task_timeout_ms: None,
        inputs: (0..n_tasks).map(|idx| BlobId::of(&[id as u8, idx as u8])).collect(),
        requirements: Requirements::one(DeviceKind::Cpu),
        submitter: "s".to_owned(),
        verify,
        sealed: false,
        assets: Vec::new(),
    }
}

/// Job 1 of one task, running, as the store would hold it.
fn one_task_job(verify: Verify) -> RestoredJob {
    RestoredJob {
        chain_width: 0,
        job_id: JobId(1),
        state: JobState::Running,
        max_attempts: 5,
        created_ms: 1,
        requirements: Requirements::one(DeviceKind::Cpu),
        submitter: "s".to_owned(),
        task_timeout_ms: None,
        n_tasks: 1,
        verify,
    }
}

/// The right output for an input, and a cheat's.
fn right(input: BlobId) -> BlobId {
    BlobId::of(&input.0)
}

fn wrong(input: BlobId) -> BlobId {
    BlobId::of(&[&input.0[..], b"lie"].concat())
}

/// The right output as a device computing in other precision gives it:
/// other bytes, the same result within the workload's tolerance.
fn right_elsewhere(input: BlobId) -> BlobId {
    BlobId::of(&[&input.0[..], b"f32"].concat())
}

/// What the shell's comparison tells: the first output each agrees with,
/// the two forms of the right output agreeing with each other.
fn classes(input: BlobId, outputs: &[BlobId]) -> Vec<u8> {
    let key = |output: &BlobId| if *output == right_elsewhere(input) { right(input) } else { *output };
    (0..outputs.len()).map(|r| outputs.iter().position(|o| key(o) == key(&outputs[r])).unwrap() as u8).collect()
}

/// A core with workers that answer every assignment at once: honestly, or
/// (for names starting with "cheat") with a wrong output.
struct Net {
    core: Core,
    now: u64,
    pending: VecDeque<Action>,
    log: Vec<Action>,
}

impl Net {
    fn new(workers: &[&str], slots: u32) -> Net {
        let config = Config { heartbeat_interval_ms: 1_000_000, verify_key: 7, ..Config::default() };
        let mut net = Net { core: Core::new(config), now: 0, pending: VecDeque::new(), log: Vec::new() };
        for name in workers {
            let event = Event::WorkerConnected {
                worker_id: WorkerId((*name).to_owned()),
                offer: Offer::cpu(slots),
                trust: 0,
                running: vec![],
            };
            net.step(event);
        }
        net
    }

    fn step(&mut self, event: Event) {
        self.now += 1;
        let actions = self.core.handle(event, self.now);
        self.core.check_invariants().unwrap();
        self.pending.extend(actions);
    }

    /// A core restored at `now` from what the store would hold.
    fn restored(snapshot: Snapshot, now: u64) -> Net {
        let config = Config { heartbeat_interval_ms: 1_000_000, ..Config::default() };
        let core = Core::restore(config, snapshot, now).unwrap();
        Net { core, now, pending: VecDeque::new(), log: Vec::new() }
    }

    /// Runs until no worker has anything left to answer. Workers named
    /// "cheat…" answer wrongly, "gpu…" rightly in other bytes.
    fn run(&mut self) {
        while let Some(action) = self.pending.pop_front() {
            if let Action::Assign { worker_id, task_id, token, input } = &action {
                let output = if worker_id.0.starts_with("cheat") {
                    wrong(*input)
                } else if worker_id.0.starts_with("gpu") {
                    right_elsewhere(*input)
                } else {
                    right(*input)
                };
                let event = Event::TaskSucceeded {
                    worker_id: worker_id.clone(),
                    task_id: *task_id,
                    token: *token,
                    output,
                    duration_ms: 10,
                    device: "cpu0".into(),
                };
                self.log.push(action);
                self.step(event);
            } else if let Action::SpotCheck { task_id, input, output, .. } = &action {
                // The coordinator's recomputed sample matches the right output only.
                let passed = *output == right(*input);
                let event = Event::SpotChecked { task_id: *task_id, passed, detail: "sample 3 differs".into() };
                self.log.push(action);
                self.step(event);
            } else if let Action::CompareOutputs { task_id, input, outputs } = &action {
                let event = Event::OutputsCompared {
                    task_id: *task_id,
                    outputs: outputs.clone(),
                    classes: classes(*input, outputs),
                };
                self.log.push(action);
                self.step(event);
            } else {
                self.log.push(action);
            }
        }
    }

    fn verified(&self) -> Vec<(BlobId, Vec<String>, Vec<String>)> {
        self.log
            .iter()
            .filter_map(|action| match action {
                Action::Persist(Change::TaskVerified { output, valid, wrong, .. }) => Some((
                    *output,
                    valid.iter().map(|r| r.worker_id.0.clone()).collect(),
                    wrong.iter().map(|r| r.worker_id.0.clone()).collect(),
                )),
                _ => None,
            })
            .collect()
    }

    fn slashed(&self) -> Vec<String> {
        self.log
            .iter()
            .filter_map(|action| match action {
                Action::SlashStake { worker_id, .. } => Some(worker_id.0.clone()),
                _ => None,
            })
            .collect()
    }

    /// Why the (one) job ended.
    /// The first task assigned and not yet run, leaving nothing else pending.
    fn take_assign(&mut self) -> (WorkerId, TaskId, LeaseToken, BlobId) {
        let Some(Action::Assign { worker_id, task_id, token, input }) =
            self.pending.iter().find(|a| matches!(a, Action::Assign { .. })).cloned()
        else {
            panic!("nothing assigned")
        };
        self.pending.clear();
        (worker_id, task_id, token, input)
    }

    /// Reports a task run by `worker_id` with `output`.
    fn succeed(&mut self, worker_id: &WorkerId, task_id: TaskId, token: LeaseToken, output: BlobId) {
        self.step(Event::TaskSucceeded {
            worker_id: worker_id.clone(),
            task_id,
            token,
            output,
            duration_ms: 5,
            device: "cpu0".into(),
        });
    }

    /// The first `n` tasks assigned and not yet run, leaving nothing else
    /// pending.
    fn take_assigns(&mut self, n: usize) -> Vec<(WorkerId, TaskId, LeaseToken, BlobId)> {
        let assigns: Vec<_> = self
            .pending
            .iter()
            .filter_map(|action| match action {
                Action::Assign { worker_id, task_id, token, input } => {
                    Some((worker_id.clone(), *task_id, *token, *input))
                }
                _ => None,
            })
            .take(n)
            .collect();
        assert_eq!(assigns.len(), n, "{:?}", self.pending);
        self.pending.clear();
        assigns
    }

    fn end_reason(&self) -> String {
        self.log
            .iter()
            .find_map(|action| match action {
                Action::Persist(Change::JobEnded { reason, .. }) => reason.clone(),
                _ => None,
            })
            .expect("a job ended with a reason")
    }

    fn job_state(&self, id: u64) -> Option<JobState> {
        self.log.iter().find_map(|action| match action {
            Action::JobFinished { job_id, state } if *job_id == JobId(id) => Some(*state),
            _ => None,
        })
    }
}

#[test]
fn replicas_run_on_distinct_workers_and_agreeing_results_are_accepted() {
    let mut net = Net::new(&["a", "b"], 4);
    net.step(Event::JobSubmitted(job(1, 3, Verify::Replicate { replicas: 2, replicas_max: 5 })));
    net.run();
    assert_eq!(net.job_state(1), Some(JobState::Done));
    let verified = net.verified();
    assert_eq!(verified.len(), 3);
    for (_, mut valid, wrong) in verified {
        valid.sort();
        assert_eq!(valid, ["a", "b"], "both replicas paid, on distinct workers");
        assert!(wrong.is_empty());
    }
    assert!(net.slashed().is_empty());
}

#[test]
fn one_worker_cannot_confirm_itself() {
    let mut net = Net::new(&["a"], 4);
    net.step(Event::JobSubmitted(job(1, 2, Verify::Replicate { replicas: 2, replicas_max: 5 })));
    net.run();
    assert_eq!(net.job_state(1), None, "the second replicas wait for a second worker");
    assert_eq!(net.core.job(JobId(1)).unwrap().n_settled, 0);
    let reason = net.core.waiting_reason(JobId(1)).unwrap();
    assert!(reason.contains("run on distinct workers") && reason.contains("1 connected workers fit"), "{reason}");
    // A second worker joins and confirms.
    net.step(Event::WorkerConnected {
        worker_id: WorkerId("b".into()),
        offer: Offer::cpu(1),
        trust: 0,
        running: vec![],
    });
    net.run();
    assert_eq!(net.job_state(1), Some(JobState::Done));
}

#[test]
fn a_wrong_result_is_outvoted_slashed_unpaid_and_its_reputation_reset() {
    let mut net = Net::new(&["cheat", "a", "b"], 1);
    // Build some reputation for the cheat first, on a job that does not verify.
    net.step(Event::JobSubmitted(job(1, 6, Verify::None)));
    net.run();
    let before = net.core.workers().into_iter().find(|w| w.worker_id.0 == "cheat").unwrap().reputation;
    assert!(before.tasks_committed > 0);
    net.log.clear();

    net.step(Event::JobSubmitted(job(2, 3, Verify::Replicate { replicas: 2, replicas_max: 5 })));
    net.run();
    assert_eq!(net.job_state(2), Some(JobState::Done));
    for (_, valid, wrong) in net.verified() {
        assert!(!valid.contains(&"cheat".to_owned()), "a wrong result is never accepted: {valid:?}");
        assert!(valid.len() >= 2);
        if !wrong.is_empty() {
            assert_eq!(wrong, ["cheat"]);
        }
    }
    let n_wrong: usize = net.verified().iter().map(|(_, _, wrong)| wrong.len()).sum();
    assert!(n_wrong >= 1, "the cheat ran at least one replica");
    assert_eq!(net.slashed().len(), n_wrong, "each wrong result slashes once");
    assert!(net.slashed().iter().all(|name| name == "cheat"), "honest workers are never slashed");
    let after = net.core.workers().into_iter().find(|w| w.worker_id.0 == "cheat").unwrap().reputation;
    assert_eq!(after.results_wrong, n_wrong as u64);
    assert_eq!((after.tasks_committed, after.valid_streak), (0, 0), "its reputation starts over");
    let cheat = net.core.workers().into_iter().find(|w| w.worker_id.0 == "cheat").unwrap();
    assert!(!cheat.available, "a worker proven wrong takes no new tasks for a while: {cheat:?}");
    // Its suspension ends after wrong_result_suspend_ms.
    net.now += iog_core::Config::default().wrong_result_suspend_ms;
    net.step(Event::Heartbeat { worker_id: WorkerId("cheat".into()), held: vec![] });
    net.step(Event::Tick);
    assert!(net.core.workers().into_iter().find(|w| w.worker_id.0 == "cheat").unwrap().available);
    assert!(after.score_milli() < before.score_milli());
}

#[test]
fn colluders_that_agree_on_a_wrong_result_win_only_a_quorum_they_fill() {
    // Two cheats return the same wrong output; with replicate 2 and two
    // honest workers, a task both cheats ran is accepted wrong. This is the
    // limit of replication that the docs state; the test pins it.
    let mut net = Net::new(&["cheat1", "cheat2"], 1);
    net.step(Event::JobSubmitted(job(1, 1, Verify::Replicate { replicas: 2, replicas_max: 5 })));
    net.run();
    let verified = net.verified();
    assert_eq!(verified.len(), 1);
    assert_eq!(verified[0].0, wrong(BlobId::of(&[1, 0])));
}

#[test]
fn no_quorum_within_the_limit_fails_the_job() {
    let mut net = Net::new(&["a", "cheat"], 1);
    net.step(Event::JobSubmitted(job(1, 1, Verify::Replicate { replicas: 2, replicas_max: 2 })));
    net.run();
    assert_eq!(net.job_state(1), Some(JobState::Failed));
    let reason = net.end_reason();
    assert!(reason.contains("no agreed result") && reason.contains("2 different outputs"), "{reason}");
    assert!(net.slashed().is_empty(), "no one is proven wrong without a quorum");
}

#[test]
fn adaptive_checks_new_workers_always_and_trusted_ones_rarely() {
    let mut net = Net::new(&["a", "b"], 1);
    // Jobs one after another: a job's first runs are all placed before
    // any check of them, so streaks grow from job to job.
    let (n_jobs, n_tasks) = (30u64, 20u32);
    for id in 1..=n_jobs {
        net.step(Event::JobSubmitted(job(id, n_tasks, Verify::Adaptive { replicas_max: 5 })));
        net.run();
        assert_eq!(net.job_state(id), Some(JobState::Done));
    }
    let verified = net.verified();
    let total = (n_jobs * u64::from(n_tasks)) as usize;
    assert_eq!(verified.len(), total);
    let checked = verified.iter().filter(|(_, valid, _)| valid.len() == 2).count();
    // Both start unknown: checked until their streaks reach 10, then about
    // one in 10 to one in 20.
    assert!(checked >= 20, "{checked}");
    assert!(checked < total / 5, "{checked} of {total} checked");
    let runs = net.core.workers().iter().map(|w| w.reputation.tasks_committed).sum::<u64>();
    assert_eq!(runs, (total + checked) as u64);
}

#[test]
fn adaptive_catches_a_cheat_and_keeps_checking_it() {
    let mut net = Net::new(&["a", "b", "cheat"], 1);
    net.step(Event::JobSubmitted(job(1, 60, Verify::Adaptive { replicas_max: 5 })));
    net.run();
    assert_eq!(net.job_state(1), Some(JobState::Done));
    for (output, valid, _) in net.verified() {
        assert!(!valid.contains(&"cheat".to_owned()), "accepted a wrong result");
        assert_ne!(output, BlobId::of(b""));
    }
    assert!(!net.slashed().is_empty());
    assert!(net.slashed().iter().all(|name| name == "cheat"));
}

/// Job 1's two replicas as the store would hold them after a restart:
/// those `worker_id` committed (on `model`, where it was recorded), and
/// the rest queued again.
fn restored_replicas(net: &Net, input: BlobId, worker_id: &WorkerId, model: Option<&str>) -> Vec<RestoredTask> {
    let tasks: Vec<RestoredTask> = (0..2)
        .filter_map(|idx| net.core.task(TaskId::new(JobId(1), idx)))
        .map(|view| RestoredTask {
            task_id: view.task_id,
            state: if view.state == TaskState::Committed { TaskState::Committed } else { TaskState::Queued },
            input,
            attempts: view.attempts,
            token: view.token,
            holder: None,
            not_before_ms: 0,
            output: view.output,
            price_io_per_hour: iog_ledger::Amount::ZERO,
            committed_by: (view.state == TaskState::Committed).then(|| worker_id.clone()),
            duration_ms: 5,
            accepted: None,
            verdict: None,
            model: model.filter(|_| view.state == TaskState::Committed).map(str::to_owned),
        })
        .collect();
    assert_eq!(tasks.len(), 2);
    tasks
}

#[test]
fn verification_survives_a_restart_between_replicas() {
    let mut net = Net::new(&["a", "b"], 1);
    net.step(Event::JobSubmitted(job(1, 1, Verify::Replicate { replicas: 2, replicas_max: 5 })));
    // Answer only the first assignment, then restart from what the store would hold.
    let first = net.pending.iter().position(|a| matches!(a, Action::Assign { .. })).unwrap();
    let Action::Assign { worker_id, task_id, token, input } = net.pending[first].clone() else { unreachable!() };
    net.pending.clear();
    net.succeed(&worker_id, task_id, token, right(input));
    let tasks = restored_replicas(&net, input, &worker_id, None);
    let snapshot = Snapshot {
        jobs: vec![one_task_job(Verify::Replicate { replicas: 2, replicas_max: 5 })],
        tasks,
        workers: vec![],
    };
    let mut net2 = Net::restored(snapshot, 100);
    for name in ["a", "b"] {
        net2.step(Event::WorkerConnected {
            worker_id: WorkerId(name.into()),
            offer: Offer::cpu(1),
            trust: 0,
            running: vec![],
        });
    }
    net2.run();
    assert_eq!(net2.job_state(1), Some(JobState::Done));
    let verified = net2.verified();
    let mut valid = verified[0].1.clone();
    valid.sort();
    assert_eq!(valid, ["a", "b"], "the replica after the restart ran on the other worker");
}

#[test]
fn spot_checked_results_settle_alone_and_wrong_ones_run_again_elsewhere() {
    let mut net = Net::new(&["cheat", "a", "b"], 1);
    net.step(Event::JobSubmitted(job(1, 6, Verify::Spot { replicas_max: 3 })));
    net.run();
    assert_eq!(net.job_state(1), Some(JobState::Done));
    let verified = net.verified();
    assert_eq!(verified.len(), 6);
    for (output, valid, wrong) in &verified {
        assert_eq!(valid.len(), 1, "one checked run settles a task");
        assert!(wrong.is_empty() && valid[0] != "cheat" && *output != BlobId::of(b""), "{verified:?}");
    }
    let rejected: Vec<_> = net
        .log
        .iter()
        .filter_map(|action| match action {
            Action::Persist(Change::ResultRejected { worker_id, reason, .. }) => Some((worker_id.0.clone(), reason)),
            _ => None,
        })
        .collect();
    // The cheat took its next task as it committed its first, before the
    // check reported; then its suspension kept it out.
    assert!((1..=2).contains(&rejected.len()), "{rejected:?}");
    assert!(rejected.iter().all(|(worker, reason)| worker == "cheat" && reason.contains("sample 3 differs")));
    assert_eq!(net.slashed().len(), rejected.len());
    assert!(net.slashed().iter().all(|name| name == "cheat"));
    // Honest runs were checked, and count as confirmed.
    let a = net.core.workers().into_iter().find(|w| w.worker_id.0 == "a").unwrap();
    assert!(a.reputation.results_valid >= 1, "{a:?}");
}

#[test]
fn a_task_whose_runs_all_fail_their_spot_checks_fails_its_job() {
    let mut net = Net::new(&["cheat1", "cheat2"], 1);
    net.step(Event::JobSubmitted(job(1, 1, Verify::Spot { replicas_max: 2 })));
    net.run();
    assert_eq!(net.job_state(1), Some(JobState::Failed));
    let reason = net.end_reason();
    assert!(reason.contains("no result that passed its spot check after 2 runs"), "{reason}");
}

#[test]
fn a_spot_check_lost_in_a_restart_is_asked_for_again() {
    let mut net = Net::new(&["a"], 1);
    net.step(Event::JobSubmitted(job(1, 1, Verify::Spot { replicas_max: 3 })));
    let (worker_id, task_id, token, input) = net.take_assign();
    net.succeed(&worker_id, task_id, token, right(input));
    assert!(net.pending.iter().any(|a| matches!(a, Action::SpotCheck { .. })));
    // The coordinator stops before the check reports.
    let snapshot = Snapshot {
        jobs: vec![one_task_job(Verify::Spot { replicas_max: 3 })],
        tasks: vec![RestoredTask {
            task_id,
            state: TaskState::Committed,
            input,
            attempts: 1,
            token: Some(token),
            holder: None,
            not_before_ms: 0,
            output: Some(right(input)),
            price_io_per_hour: iog_ledger::Amount::ZERO,
            committed_by: Some(worker_id),
            duration_ms: 5,
            accepted: None,
            verdict: None,
            model: None,
        }],
        workers: vec![],
    };
    let mut net2 = Net::restored(snapshot, 100);
    net2.step(Event::Tick);
    assert!(net2.pending.iter().any(|a| matches!(a, Action::SpotCheck { .. })), "{:?}", net2.pending);
    net2.run();
    assert_eq!(net2.job_state(1), Some(JobState::Done));
}

#[test]
fn a_spot_check_that_never_reports_is_asked_again_then_fails_its_job() {
    let mut net = Net::new(&["a"], 1);
    net.step(Event::JobSubmitted(job(1, 1, Verify::Spot { replicas_max: 3 })));
    let (worker_id, task_id, token, input) = net.take_assign();
    net.succeed(&worker_id, task_id, token, right(input));
    let asks = |net: &Net| net.pending.iter().filter(|a| matches!(a, Action::SpotCheck { .. })).count();
    assert_eq!(asks(&net), 1);
    let timeout_ms = Config::default().spot_check_timeout_ms;
    net.now += timeout_ms;
    net.step(Event::Tick);
    assert_eq!(asks(&net), 2, "asked again after spot_check_timeout_ms");
    net.now += timeout_ms;
    net.step(Event::Tick);
    assert_eq!(asks(&net), 3);
    net.now += timeout_ms;
    net.step(Event::Tick);
    net.pending.retain(|a| !matches!(a, Action::SpotCheck { .. }));
    net.run();
    assert_eq!(net.job_state(1), Some(JobState::Failed));
    // A report that comes after all is ignored.
    net.step(Event::SpotChecked { task_id, passed: true, detail: String::new() });
    assert!(net.pending.is_empty(), "{:?}", net.pending);
}

#[test]
fn replicas_that_differ_in_bytes_but_agree_within_tolerance_are_one_result() {
    let mut net = Net::new(&["a", "gpu"], 4);
    net.step(Event::JobSubmitted(job(1, 3, Verify::Replicate { replicas: 2, replicas_max: 5 })));
    net.run();
    assert_eq!(net.job_state(1), Some(JobState::Done));
    let compares = net.log.iter().filter(|a| matches!(a, Action::CompareOutputs { .. })).count();
    assert_eq!(compares, 3, "every task's two digests differed, so each was compared once");
    for (_, mut valid, wrong) in net.verified() {
        valid.sort();
        assert_eq!(valid, ["a", "gpu"], "both paid");
        assert!(wrong.is_empty());
    }
    assert!(net.slashed().is_empty(), "an honest device of other precision is never slashed");
}

#[test]
fn a_cheat_among_devices_of_other_precision_is_still_outvoted() {
    let mut net = Net::new(&["cheat", "gpu", "a"], 1);
    net.step(Event::JobSubmitted(job(1, 4, Verify::Replicate { replicas: 2, replicas_max: 5 })));
    net.run();
    assert_eq!(net.job_state(1), Some(JobState::Done));
    let inputs: Vec<BlobId> = (0..4).map(|idx| BlobId::of(&[1, idx])).collect();
    for (output, valid, wrong) in net.verified() {
        assert!(inputs.iter().any(|input| output == right(*input) || output == right_elsewhere(*input)));
        assert!(!valid.contains(&"cheat".to_owned()) && valid.len() >= 2, "{valid:?}");
        assert!(wrong.iter().all(|name| name == "cheat"), "{wrong:?}");
    }
    assert!(!net.slashed().is_empty() && net.slashed().iter().all(|name| name == "cheat"));
}

#[test]
fn a_comparison_lost_in_a_restart_is_asked_for_again_and_stale_reports_are_ignored() {
    let mut net = Net::new(&["a", "gpu"], 1);
    net.step(Event::JobSubmitted(job(1, 1, Verify::Replicate { replicas: 2, replicas_max: 5 })));
    let mut committed = Vec::new();
    for (worker_id, task_id, token, input) in net.take_assigns(2) {
        let output = if worker_id.0 == "gpu" { right_elsewhere(input) } else { right(input) };
        let device = "gpu0".into();
        net.step(Event::TaskSucceeded { worker_id: worker_id.clone(), task_id, token, output, duration_ms: 5, device });
        committed.push((worker_id, task_id, token, input, output));
    }
    let asked = |net: &Net| {
        net.pending
            .iter()
            .filter_map(|a| match a {
                Action::CompareOutputs { task_id, outputs, .. } => Some((*task_id, outputs.clone())),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let first = asked(&net);
    assert_eq!(first.len(), 1, "{:?}", net.pending);
    let (task_id, outputs) = first[0].clone();
    assert_eq!(outputs, committed.iter().map(|c| c.4).collect::<Vec<_>>());
    // A report about other outputs settles nothing.
    net.pending.clear();
    net.step(Event::OutputsCompared { task_id, outputs: vec![outputs[1], outputs[0]], classes: vec![0, 0] });
    assert!(net.pending.is_empty(), "{:?}", net.pending);
    // The coordinator stops before the comparison reports.
    let tasks = committed
        .iter()
        .map(|(worker_id, task_id, token, input, output)| RestoredTask {
            task_id: *task_id,
            state: TaskState::Committed,
            input: *input,
            attempts: 1,
            token: Some(*token),
            holder: None,
            not_before_ms: 0,
            output: Some(*output),
            price_io_per_hour: iog_ledger::Amount::ZERO,
            committed_by: Some(worker_id.clone()),
            duration_ms: 5,
            accepted: None,
            verdict: None,
            model: None,
        })
        .collect();
    let snapshot = Snapshot {
        jobs: vec![one_task_job(Verify::Replicate { replicas: 2, replicas_max: 5 })],
        tasks,
        workers: vec![],
    };
    let mut net2 = Net::restored(snapshot, 100);
    net2.step(Event::Tick);
    assert_eq!(asked(&net2), first, "asked again after the restart");
    net2.run();
    assert_eq!(net2.job_state(1), Some(JobState::Done));
    assert!(net2.slashed().is_empty());
}

#[test]
fn a_comparison_that_never_reports_is_asked_again_then_fails_its_job() {
    let mut net = Net::new(&["a", "gpu"], 1);
    net.step(Event::JobSubmitted(job(1, 1, Verify::Replicate { replicas: 2, replicas_max: 5 })));
    for (worker_id, task_id, token, input) in net.take_assigns(2) {
        let output = if worker_id.0 == "gpu" { right_elsewhere(input) } else { right(input) };
        net.step(Event::TaskSucceeded { worker_id, task_id, token, output, duration_ms: 5, device: "cpu0".into() });
    }
    let asks = |net: &Net| net.pending.iter().filter(|a| matches!(a, Action::CompareOutputs { .. })).count();
    assert_eq!(asks(&net), 1);
    let timeout_ms = Config::default().spot_check_timeout_ms;
    for expected in [2, 3] {
        net.now += timeout_ms;
        net.step(Event::Tick);
        assert_eq!(asks(&net), expected, "asked again after spot_check_timeout_ms");
    }
    net.now += timeout_ms;
    net.step(Event::Tick);
    net.pending.retain(|a| !matches!(a, Action::CompareOutputs { .. }));
    net.run();
    assert_eq!(net.job_state(1), Some(JobState::Failed));
    assert!(net.end_reason().contains("could not be compared"), "{}", net.end_reason());
    assert!(net.slashed().is_empty(), "the coordinator's trouble is not the workers'");
}

/// A CPU worker of this model with one slot.
fn cpu_of_model(model: &str) -> Offer {
    let mut offer = Offer::cpu(1);
    offer.groups[0].model = model.to_owned();
    offer
}

fn connect_model(net: &mut Net, name: &str, model: &str) {
    net.step(Event::WorkerConnected {
        worker_id: WorkerId(name.into()),
        offer: cpu_of_model(model),
        trust: 0,
        running: vec![],
    });
}

fn same_model_job(id: u64, n_tasks: u32) -> NewJob {
    let mut job = job(id, n_tasks, Verify::Replicate { replicas: 2, replicas_max: 5 });
    job.requirements.replicas_same_model = true;
    job
}

#[test]
fn replicas_of_a_job_that_asks_for_it_run_on_devices_of_one_model() {
    let mut net = Net::new(&[], 1);
    for (name, model) in [("a", "EPYC 7B13"), ("b", "Xeon 8480"), ("c", "EPYC 7B13"), ("d", "Xeon 8480")] {
        connect_model(&mut net, name, model);
    }
    net.step(Event::JobSubmitted(same_model_job(1, 6)));
    net.run();
    assert_eq!(net.job_state(1), Some(JobState::Done));
    let verified = net.verified();
    assert_eq!(verified.len(), 6);
    for (_, mut valid, _) in verified {
        valid.sort();
        assert!(valid == ["a", "c"] || valid == ["b", "d"], "replicas on one model: {valid:?}");
    }
    // One task on a, b (the same model, far away) and c (another model,
    // near): the second replica would go to c, but for the requirement.
    for (same_model, expected) in [(false, ["a", "c"]), (true, ["a", "b"])] {
        let mut net = Net::new(&[], 1);
        for (name, model, rtt_ms) in [("a", "EPYC 7B13", 1), ("b", "EPYC 7B13", 900), ("c", "Xeon 8480", 2)] {
            connect_model(&mut net, name, model);
            net.step(Event::WorkerRtt { worker_id: WorkerId(name.into()), rtt_ms });
        }
        let mut job = same_model_job(1, 1);
        job.requirements.replicas_same_model = same_model;
        net.step(Event::JobSubmitted(job));
        net.run();
        let mut valid = net.verified()[0].1.clone();
        valid.sort();
        assert_eq!(valid, expected, "replicas_same_model = {same_model}");
    }
}

#[test]
fn a_replica_waits_for_a_busy_device_of_its_model_and_goes_elsewhere_when_there_is_none() {
    let mut net = Net::new(&[], 1);
    connect_model(&mut net, "a", "EPYC 7B13");
    net.step(Event::JobSubmitted(same_model_job(1, 1)));
    let (worker_id, task_id, token, input) = net.take_assign();
    assert_eq!(worker_id.0, "a");
    // "c" has the model but its owner is using the machine.
    connect_model(&mut net, "c", "EPYC 7B13");
    net.step(Event::WorkerPaused { worker_id: WorkerId("c".into()), paused: true, reason: "owner".into() });
    net.succeed(&worker_id, task_id, token, right(input));
    connect_model(&mut net, "b", "Xeon 8480");
    assert!(
        !net.pending.iter().any(|a| matches!(a, Action::Assign { worker_id, .. } if worker_id.0 == "b")),
        "a free worker of another model does not take the replica while one of its model exists"
    );
    let reason = net.core.waiting_reason(JobId(1)).unwrap();
    assert!(reason.contains("of the model \"EPYC 7B13\""), "{reason}");
    net.step(Event::WorkerPaused { worker_id: WorkerId("c".into()), paused: false, reason: String::new() });
    let (worker_id, ..) = net.take_assign();
    assert_eq!(worker_id.0, "c");

    // No other worker of the model, or only one the job cannot use (in
    // another region): the replica goes to any that fits.
    for far_twin in [false, true] {
        let mut net = Net::new(&[], 1);
        connect_model(&mut net, "a", "EPYC 7B13");
        connect_model(&mut net, "b", "Xeon 8480");
        if far_twin {
            let mut offer = cpu_of_model("EPYC 7B13");
            offer.region = "us".into();
            net.step(Event::WorkerConnected { worker_id: WorkerId("c".into()), offer, trust: 0, running: vec![] });
        }
        let mut job = same_model_job(1, 1);
        job.requirements.regions = vec!["any".into()];
        net.step(Event::JobSubmitted(job));
        net.run();
        assert_eq!(net.job_state(1), Some(JobState::Done), "far twin: {far_twin}");
        let mut valid = net.verified()[0].1.clone();
        valid.sort();
        assert_eq!(valid, ["a", "b"]);
    }
}

#[test]
fn after_a_restart_the_model_of_a_committed_replica_is_read_from_the_store_or_its_workers_offer() {
    let mut net = Net::new(&[], 1);
    connect_model(&mut net, "a", "EPYC 7B13");
    net.step(Event::JobSubmitted(same_model_job(1, 1)));
    let (worker_id, task_id, token, input) = net.take_assign();
    net.succeed(&worker_id, task_id, token, right(input));
    // The model comes from the store's record of the commit, or, where
    // none was recorded, from the offer of its worker once it is back.
    for recorded in [false, true] {
        let tasks = restored_replicas(&net, input, &worker_id, recorded.then_some("EPYC 7B13"));
        let mut job = one_task_job(Verify::Replicate { replicas: 2, replicas_max: 5 });
        job.requirements.replicas_same_model = true;
        let mut net = Net::restored(Snapshot { jobs: vec![job], tasks, workers: vec![] }, 100);
        if !recorded {
            connect_model(&mut net, "a", "EPYC 7B13");
        }
        connect_model(&mut net, "c", "EPYC 7B13");
        net.step(Event::WorkerPaused { worker_id: WorkerId("c".into()), paused: true, reason: "owner".into() });
        net.pending.retain(|a| !matches!(a, Action::Assign { .. }));
        // Whatever "c" was given went back when it paused; "b" is free and of another model.
        connect_model(&mut net, "b", "Xeon 8480");
        assert!(
            !net.pending.iter().any(|a| matches!(a, Action::Assign { worker_id, .. } if worker_id.0 == "b")),
            "recorded: {recorded}"
        );
        net.step(Event::WorkerPaused { worker_id: WorkerId("c".into()), paused: false, reason: String::new() });
        net.run();
        assert_eq!(net.job_state(1), Some(JobState::Done));
        let mut valid = net.verified()[0].1.clone();
        valid.sort();
        assert_eq!(valid, ["a", "c"]);
    }
}

#[test]
fn a_lease_carried_over_a_restart_commits_with_its_model() {
    let mut net = Net::new(&[], 1);
    connect_model(&mut net, "a", "EPYC 7B13");
    net.step(Event::JobSubmitted(same_model_job(1, 1)));
    let (worker_id, task_id, token, input) = net.take_assign();
    let view = net.core.task(task_id).unwrap();
    let task = RestoredTask {
        task_id,
        state: TaskState::Leased,
        input,
        attempts: view.attempts,
        token: Some(token),
        holder: Some(worker_id.clone()),
        not_before_ms: 0,
        output: None,
        price_io_per_hour: iog_ledger::Amount::ZERO,
        committed_by: None,
        duration_ms: 0,
        accepted: None,
        verdict: None,
        model: None,
    };
    let mut job = one_task_job(Verify::Replicate { replicas: 2, replicas_max: 5 });
    job.requirements.replicas_same_model = true;
    let mut net = Net::restored(Snapshot { jobs: vec![job], tasks: vec![task], workers: vec![] }, 100);
    let mut offer = cpu_of_model("EPYC 7B13");
    offer.groups[0].count = 2;
    let running = vec![iog_core::RunningTask { task_id, token }];
    net.step(Event::WorkerConnected { worker_id: worker_id.clone(), offer, trust: 0, running });
    net.pending.clear();
    net.log.clear();
    net.succeed(&worker_id, task_id, token, right(input));
    net.run();
    let model = net.log.iter().find_map(|action| match action {
        Action::Persist(Change::TaskCommitted { model, .. }) => Some(model.clone()),
        _ => None,
    });
    assert_eq!(model, Some(Some("EPYC 7B13".to_owned())), "the commit stores the model the lease ran on");
}

#[test]
fn a_run_that_ends_without_a_result_pins_no_model() {
    let mut net = Net::new(&[], 1);
    connect_model(&mut net, "c", "EPYC 7B13");
    net.step(Event::JobSubmitted(same_model_job(1, 1)));
    let (worker_id, ..) = net.take_assign();
    assert_eq!(worker_id.0, "c");
    // Its owner takes the machine back before the run reports: the
    // replica goes back to the queue, and neither replica has run.
    net.step(Event::WorkerPaused { worker_id, paused: true, reason: "owner".into() });
    net.pending.clear();
    connect_model(&mut net, "b", "Xeon 8480");
    connect_model(&mut net, "e", "Xeon 8480");
    let mut placed: Vec<String> = net.take_assigns(2).into_iter().map(|(worker_id, ..)| worker_id.0).collect();
    placed.sort();
    assert_eq!(placed, ["b", "e"], "both replicas start afresh on the model at hand");
}
