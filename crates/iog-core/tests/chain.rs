//! Chained jobs through the core: links of tasks that run one after
//! another, each link made by the shell from the accepted results of the
//! link before (one task a link for the time windows of a simulation, K
//! for the rounds of training across K workers), across verification,
//! failures and restarts.

use iog_core::{Action, Change, Config, Core, Event, NewJob, RestoredJob, RestoredTask, Snapshot};
use iog_sched::{Offer, Requirements};
use iog_types::{BlobId, DeviceKind, JobId, JobState, TaskId, TaskState, Verify, WorkerId};

fn chained(id: u64, n_tasks: u32, verify: Verify) -> NewJob {
    NewJob {
        job_id: JobId(id),
        name: format!("job{id}"),
        workload: "nbody".to_owned(),
        spec_json: b"{}".to_vec(),
        max_attempts: None,
        task_timeout_ms: None,
        inputs: vec![BlobId::of(b"window 0")],
        chain: Some(n_tasks),
        requirements: Requirements::one(DeviceKind::Cpu),
        submitter: "s".to_owned(),
        verify,
        sealed: false,
        assets: Vec::new(),
    }
}

/// What an honest worker returns for an input, and the next input the
/// shell makes from an output.
fn output_of(input: BlobId) -> BlobId {
    BlobId::of(&[&input.0[..], b" run"].concat())
}

fn next_input(output: BlobId) -> BlobId {
    BlobId::of(&[&output.0[..], b" next"].concat())
}

struct Net {
    core: Core,
    now: u64,
    log: Vec<Action>,
    /// Whether the shell answers `ChainInput`; when false, the asks are kept.
    make_inputs: bool,
    asked: Vec<Action>,
    /// Most tasks of the job queued or leased at one time.
    most_open: usize,
}

impl Net {
    fn new(workers: &[&str]) -> Net {
        let config = Config { heartbeat_interval_ms: 1_000_000, ..Config::default() };
        Net::with(Core::new(config), workers, 0)
    }

    fn with(core: Core, workers: &[&str], now: u64) -> Net {
        let mut net = Net { core, now, log: Vec::new(), make_inputs: true, asked: Vec::new(), most_open: 0 };
        for name in workers {
            let worker_id = WorkerId((*name).to_owned());
            net.step(Event::WorkerConnected { worker_id, offer: Offer::cpu(2), trust: 0, running: vec![] });
        }
        net
    }

    /// Applies an event and everything it leads to.
    fn step(&mut self, event: Event) {
        let mut events = vec![event];
        while let Some(event) = events.pop() {
            self.now += 1;
            let actions = self.core.handle(event, self.now);
            self.core.check_invariants().unwrap();
            for action in actions {
                match &action {
                    Action::Assign { worker_id, task_id, token, input } => events.push(Event::TaskSucceeded {
                        worker_id: worker_id.clone(),
                        task_id: *task_id,
                        token: *token,
                        output: output_of(*input),
                        duration_ms: 5,
                        device: "cpu0".into(),
                    }),
                    Action::ChainInput { job_id, task_idx, previous } if self.make_inputs => {
                        events.push(Event::ChainInputReady {
                            job_id: *job_id,
                            task_idx: *task_idx,
                            inputs: previous.iter().map(|(_, output)| next_input(*output)).collect(),
                        })
                    }
                    Action::ChainInput { .. } => self.asked.push(action.clone()),
                    _ => {}
                }
                self.log.push(action);
            }
            let open = (0..64u32)
                .filter_map(|idx| self.core.task(TaskId::new(JobId(1), idx)))
                .filter(|task| matches!(task.state, TaskState::Queued | TaskState::Leased))
                .map(|task| task.task_id.task_idx % 8)
                .collect::<std::collections::BTreeSet<_>>()
                .len();
            self.most_open = self.most_open.max(open);
        }
    }

    /// The tasks stored after their job, as they were made.
    fn added_tasks(&self) -> Vec<u32> {
        self.log
            .iter()
            .filter_map(|action| match action {
                Action::Persist(Change::TaskAdded { task_id, .. }) => Some(task_id.task_idx),
                _ => None,
            })
            .collect()
    }

    /// Why the job ended, as stored.
    fn end_reason(&self) -> Option<String> {
        self.log.iter().find_map(|action| match action {
            Action::Persist(Change::JobEnded { reason, .. }) => reason.clone(),
            _ => None,
        })
    }

    fn job_state(&self) -> Option<JobState> {
        self.log.iter().find_map(|action| match action {
            Action::JobFinished { state, .. } => Some(*state),
            _ => None,
        })
    }

    /// Each ask of a one-task link: the next task and the task before's
    /// input and output.
    fn chain_asks(&self) -> Vec<(u32, BlobId, BlobId)> {
        self.link_asks()
            .into_iter()
            .map(|(task_idx, previous)| {
                assert_eq!(previous.len(), 1, "a link of one task");
                (task_idx, previous[0].0, previous[0].1)
            })
            .collect()
    }

    fn link_asks(&self) -> Vec<(u32, Vec<(BlobId, BlobId)>)> {
        self.log
            .iter()
            .filter_map(|action| match action {
                Action::ChainInput { task_idx, previous, .. } => Some((*task_idx, previous.clone())),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn a_chained_jobs_tasks_run_one_after_another_each_from_the_last_accepted_result() {
    let mut net = Net::new(&["a", "b"]);
    net.step(Event::JobSubmitted(chained(1, 4, Verify::None)));
    assert_eq!(net.job_state(), Some(JobState::Done));
    assert_eq!(net.most_open, 1, "one window at a time, though two workers with two slots each were free");
    // Each next input was made from the one before's input and output.
    let mut input = BlobId::of(b"window 0");
    let asks = net.chain_asks();
    assert_eq!(asks.len(), 3);
    for (step, (task_idx, previous_input, previous_output)) in asks.into_iter().enumerate() {
        assert_eq!((task_idx, previous_input, previous_output), (step as u32 + 1, input, output_of(input)));
        input = next_input(output_of(input));
    }
    // Tasks made after submission are stored as they are made.
    let added = net.added_tasks();
    assert_eq!(added, [1, 2, 3]);
}

#[test]
fn a_replicated_chain_makes_each_next_input_from_the_agreed_result() {
    let mut net = Net::new(&["a", "b"]);
    net.step(Event::JobSubmitted(chained(1, 3, Verify::Replicate { replicas: 2, replicas_max: 4 })));
    assert_eq!(net.job_state(), Some(JobState::Done));
    let verified = net.log.iter().filter(|a| matches!(a, Action::Persist(Change::TaskVerified { .. }))).count();
    assert_eq!(verified, 3);
    let runs = net.log.iter().filter(|a| matches!(a, Action::Assign { .. })).count();
    assert_eq!(runs, 6, "two replicas of each window");
    assert_eq!(net.chain_asks().len(), 2);
}

#[test]
fn a_next_input_that_cannot_be_made_fails_the_job_and_late_reports_are_ignored() {
    let mut net = Net::new(&["a"]);
    net.make_inputs = false;
    net.step(Event::JobSubmitted(chained(1, 3, Verify::None)));
    assert_eq!(net.asked.len(), 1);
    let reason = "the output holds 63 particles, not 64".to_owned();
    net.step(Event::ChainInputFailed { job_id: JobId(1), task_idx: 1, reason });
    assert_eq!(net.job_state(), Some(JobState::Failed));
    let why = net.end_reason().unwrap();
    assert!(
        why.contains("task j-0000000000000001/1's input could not be made") && why.contains("63 particles"),
        "{why}"
    );
    let before = net.log.len();
    net.step(Event::ChainInputReady { job_id: JobId(1), task_idx: 1, inputs: vec![BlobId::of(b"late")] });
    assert_eq!(net.log.len(), before, "nothing follows a late report");
}

#[test]
fn a_next_input_lost_in_a_restart_is_asked_for_again_and_one_never_made_fails_the_job() {
    let mut net = Net::new(&["a"]);
    net.make_inputs = false;
    net.step(Event::JobSubmitted(chained(1, 3, Verify::None)));
    let first_input = BlobId::of(b"window 0");
    assert_eq!(net.chain_asks(), [(1, first_input, output_of(first_input))]);
    // The coordinator stops before the input is made; the store holds task 0, accepted.
    let snapshot = Snapshot {
        jobs: vec![RestoredJob {
            job_id: JobId(1),
            state: JobState::Running,
            max_attempts: 3,
            created_ms: 1,
            requirements: Requirements::one(DeviceKind::Cpu),
            submitter: "s".to_owned(),
            task_timeout_ms: None,
            n_tasks: 3,
            verify: Verify::None,
            chain_width: 1,
        }],
        tasks: vec![RestoredTask {
            task_id: TaskId::new(JobId(1), 0),
            state: TaskState::Committed,
            input: first_input,
            attempts: 1,
            token: Some(iog_types::LeaseToken(1)),
            holder: None,
            not_before_ms: 0,
            output: Some(output_of(first_input)),
            price_io_per_hour: iog_ledger::Amount::ZERO,
            committed_by: Some(WorkerId("a".into())),
            duration_ms: 5,
            accepted: Some(output_of(first_input)),
            verdict: Some(true),
            model: None,
        }],
        workers: vec![],
    };
    let config = Config { heartbeat_interval_ms: 1_000_000, ..Config::default() };
    let net2 = Net::with(Core::restore(config.clone(), snapshot.clone(), 100).unwrap(), &["a"], 100);
    assert_eq!(net2.chain_asks()[0], (1, first_input, output_of(first_input)), "asked again after the restart");
    assert_eq!(net2.job_state(), Some(JobState::Done), "the chain goes on from there");
    assert_eq!(net2.chain_asks().len(), 2);

    // One that is never made is asked for three times, then fails the job.
    let core = Core::restore(config, snapshot, 100).unwrap();
    let mut net3 = Net { core, now: 100, log: Vec::new(), make_inputs: false, asked: Vec::new(), most_open: 0 };
    net3.step(Event::Tick);
    let timeout_ms = Config::default().spot_check_timeout_ms;
    for _ in 0..3 {
        net3.now += timeout_ms;
        net3.step(Event::Tick);
    }
    assert_eq!(net3.chain_asks().len(), 3);
    assert_eq!(net3.job_state(), Some(JobState::Failed));
}

#[test]
fn chains_that_cannot_work_are_refused() {
    let mut core = Core::new(Config::default());
    let two_inputs = NewJob { inputs: vec![BlobId::of(b"0"), BlobId::of(b"1")], ..chained(1, 3, Verify::None) };
    let sealed = NewJob { sealed: true, ..chained(2, 3, Verify::None) };
    let empty = chained(3, 0, Verify::None);
    let endless = chained(4, iog_core::CHAIN_TASKS_MAX + 1, Verify::None);
    let cases = [
        (two_inputs, "whole links of that many; it gives 2"),
        (sealed, "cannot be sealed"),
        (empty, "at least one"),
        (endless, "at most 1000000 tasks"),
    ];
    for (job, words) in cases {
        let actions = core.handle(Event::JobSubmitted(job), 1);
        let refused = actions.iter().find_map(|action| match action {
            Action::JobRejected { reason, .. } => Some(reason.clone()),
            _ => None,
        });
        assert!(refused.as_deref().is_some_and(|reason| reason.contains(words)), "{refused:?}");
    }
}

/// The inputs of a wide chain's first link.
fn first_link(width: u32) -> Vec<BlobId> {
    (0..width).map(|k| BlobId::of(format!("round 0, worker {k}").as_bytes())).collect()
}

fn wide(id: u64, n_tasks: u32, width: u32) -> NewJob {
    let inputs = first_link(width);
    NewJob { inputs, ..chained(id, n_tasks, Verify::None) }
}

#[test]
fn a_wide_chain_makes_each_link_from_every_result_of_the_link_before_in_order() {
    let mut net = Net::new(&["a", "b", "c"]);
    net.step(Event::JobSubmitted(wide(1, 9, 3)));
    assert_eq!(net.job_state(), Some(JobState::Done));
    assert_eq!(net.most_open, 3, "one link of three at a time, on six free slots");
    let asks = net.link_asks();
    assert_eq!(asks.iter().map(|(task_idx, _)| *task_idx).collect::<Vec<_>>(), [3, 6]);
    let mut inputs = first_link(3);
    for (_, previous) in &asks {
        let want: Vec<(BlobId, BlobId)> = inputs.iter().map(|input| (*input, output_of(*input))).collect();
        assert_eq!(previous, &want, "every task of the link before, in task order");
        inputs = want.iter().map(|(_, output)| next_input(*output)).collect();
    }
    let added = net.added_tasks();
    assert_eq!(added, [3, 4, 5, 6, 7, 8], "the first link is stored with the job, the others as made");
}

#[test]
fn a_link_made_with_the_wrong_number_of_inputs_fails_the_job() {
    let mut net = Net::new(&["a", "b"]);
    net.make_inputs = false;
    net.step(Event::JobSubmitted(wide(1, 4, 2)));
    assert_eq!(net.link_asks().len(), 1);
    net.step(Event::ChainInputReady { job_id: JobId(1), task_idx: 2, inputs: vec![BlobId::of(b"one")] });
    assert_eq!(net.job_state(), Some(JobState::Failed));
    let why = net.end_reason().unwrap();
    assert!(
        why.contains("tasks 2..4 could not be made") && why.contains("1 inputs were made for a link of 2"),
        "{why}"
    );
}

/// A restart in the middle of a link asks for nothing until the link's
/// last task settles, then for the next link from all of it; a restart
/// after the link settled asks at once.
#[test]
fn a_restart_mid_link_waits_for_the_whole_link_and_one_after_it_asks_again() {
    let inputs = first_link(3);
    let restored = |settled: &[u32]| Snapshot {
        jobs: vec![RestoredJob {
            job_id: JobId(1),
            state: JobState::Running,
            max_attempts: 3,
            created_ms: 1,
            requirements: Requirements::one(DeviceKind::Cpu),
            submitter: "s".to_owned(),
            task_timeout_ms: None,
            n_tasks: 6,
            verify: Verify::None,
            chain_width: 3,
        }],
        tasks: (0..3u32)
            .map(|k| {
                let done = settled.contains(&k);
                RestoredTask {
                    task_id: TaskId::new(JobId(1), k),
                    state: if done { TaskState::Committed } else { TaskState::Queued },
                    input: inputs[k as usize],
                    attempts: u32::from(done),
                    token: done.then_some(iog_types::LeaseToken(u64::from(k) + 1)),
                    holder: None,
                    not_before_ms: 0,
                    output: done.then(|| output_of(inputs[k as usize])),
                    price_io_per_hour: iog_ledger::Amount::ZERO,
                    committed_by: done.then(|| WorkerId("a".into())),
                    duration_ms: 5,
                    accepted: done.then(|| output_of(inputs[k as usize])),
                    verdict: done.then_some(true),
                    model: None,
                }
            })
            .collect(),
        workers: vec![],
    };
    let config = Config { heartbeat_interval_ms: 1_000_000, ..Config::default() };
    let whole: Vec<(BlobId, BlobId)> = inputs.iter().map(|input| (*input, output_of(*input))).collect();
    // Two of three settled: the third runs, then the next link is asked for.
    let mut net = Net::with(Core::restore(config.clone(), restored(&[0, 2]), 100).unwrap(), &[], 100);
    assert!(net.link_asks().is_empty());
    net.step(Event::WorkerConnected {
        worker_id: WorkerId("b".into()),
        offer: Offer::cpu(2),
        trust: 0,
        running: vec![],
    });
    assert_eq!(net.link_asks(), [(3, whole.clone())]);
    assert_eq!(net.job_state(), Some(JobState::Done));
    // All three settled: asked for at once.
    let net = Net::with(Core::restore(config, restored(&[0, 1, 2]), 100).unwrap(), &["a"], 100);
    assert_eq!(net.link_asks()[0], (3, whole));
    assert_eq!(net.job_state(), Some(JobState::Done));
}
