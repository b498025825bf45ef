//! Placement through the core: offers and requirements, price, fair share,
//! owners taking their machines back, availability windows.

use iog_core::{Action, Change, Config, Core, Event, NewJob};
use iog_ledger::Amount;
use iog_sched::{DeviceGroup, Offer, Requirements, Window};
use iog_types::{BlobId, DeviceKind, JobId, LeaseToken, TaskId, TaskState, WorkerId};

fn config() -> Config {
    Config { heartbeat_interval_ms: 1_000, retry_backoff_base_ms: 10, ..Config::default() }
}

fn io(text: &str) -> Amount {
    text.parse().unwrap()
}

fn gpu_offer(region: &str, price: &str, model: &str, memory_gib: u64, count: u32) -> Offer {
    Offer {
        region: region.to_owned(),
        price_io_per_device_hour: io(price),
        groups: vec![DeviceGroup::gpu(model, memory_gib << 30, count)],
        windows: Vec::new(),
        idle_only: false,
        software: Vec::new(),
    }
}

fn connect(core: &mut Core, name: &str, offer: Offer, now: u64) -> Vec<Action> {
    core.handle(Event::WorkerConnected { worker_id: WorkerId(name.to_owned()), offer, trust: 0, running: vec![] }, now)
}

fn job(id: u64, n_tasks: u32, requirements: Requirements, submitter: &str) -> NewJob {
    NewJob {
        chain: None,
        job_id: JobId(id),
        name: format!("job{id}"),
        workload: "noop".to_owned(),
        spec_json: b"{}".to_vec(),
        max_attempts: None,
        task_timeout_ms: None,
        inputs: (0..n_tasks).map(|idx| BlobId::of(&[id as u8, idx as u8])).collect(),
        requirements,
        submitter: submitter.to_owned(),
        verify: iog_types::Verify::None,
        sealed: false,
        assets: Vec::new(),
    }
}

/// (worker, task, token, price per hour) of every lease in `actions`.
fn leases(actions: &[Action]) -> Vec<(WorkerId, TaskId, LeaseToken, Amount)> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Persist(Change::TaskLeased { worker_id, task_id, token, price_io_per_hour, .. }) => {
                Some((worker_id.clone(), *task_id, *token, *price_io_per_hour))
            }
            _ => None,
        })
        .collect()
}

fn succeed(core: &mut Core, lease: &(WorkerId, TaskId, LeaseToken, Amount), now: u64) -> Vec<Action> {
    let (worker_id, task_id, token, _) = lease;
    let output = BlobId::of(task_id.to_string().as_bytes());
    let event = Event::TaskSucceeded {
        worker_id: worker_id.clone(),
        task_id: *task_id,
        token: *token,
        output,
        duration_ms: 5,
        device: "cpu0".into(),
    };
    let actions = core.handle(event, now);
    core.check_invariants().unwrap();
    actions
}

#[test]
fn a_task_goes_to_the_cheapest_device_that_meets_every_constraint_and_pays_its_ask() {
    let mut core = Core::new(config());
    connect(&mut core, "cheap-small", gpu_offer("eu", "0.2", "RTX 3060", 12, 1), 0);
    connect(&mut core, "cheap-far", gpu_offer("us-east", "0.3", "RTX 4090", 24, 1), 0);
    connect(&mut core, "dear-eu", gpu_offer("eu", "0.9", "A100 80GB", 80, 1), 0);
    connect(&mut core, "mid-eu", gpu_offer("eu", "0.5", "L4", 24, 1), 0);
    let wanted = Requirements {
        memory_bytes_min: 24 << 30,
        regions: vec!["eu".to_owned()],
        price_io_per_device_hour_max: Some(io("1")),
        ..Requirements::one(DeviceKind::Gpu)
    };
    let actions = core.handle(Event::JobSubmitted(job(1, 2, wanted, "a")), 10);
    core.check_invariants().unwrap();
    let placed = leases(&actions);
    let names: Vec<&str> = placed.iter().map(|l| l.0.0.as_str()).collect();
    assert_eq!(names, ["mid-eu", "dear-eu"], "cheapest fitting first; the 12 GiB and the us-east GPUs never");
    assert_eq!((placed[0].3, placed[1].3), (io("0.5"), io("0.9")), "each lease pays its worker's ask");
    // The commit carries the lease's price, which is what payments charge.
    let done = succeed(&mut core, &placed[0], 20);
    assert!(done.iter().any(|a| matches!(
        a,
        Action::Persist(Change::TaskCommitted { price_io_per_hour, .. }) if *price_io_per_hour == io("0.5")
    )));
}

#[test]
fn a_job_that_needs_software_goes_only_to_workers_that_offer_it() {
    let mut core = Core::new(config());
    connect(&mut core, "plain", Offer::cpu(4), 0);
    let wasm_job = Requirements { software: vec!["wasm".to_owned()], ..Requirements::one(DeviceKind::Cpu) };
    let actions = core.handle(Event::JobSubmitted(job(1, 3, wasm_job, "a")), 10);
    assert!(leases(&actions).is_empty(), "the only worker runs no wasm: {actions:?}");
    let reason = core.waiting_reason(JobId(1)).unwrap();
    assert!(reason.starts_with("no worker offers a cpu running wasm; 1 does without it"), "{reason}");
    let with_wasm = Offer {
        software: vec![iog_sched::Software { name: "wasm".to_owned(), version: "wasmtime-48 wasip1".to_owned() }],
        ..Offer::cpu(2)
    };
    let actions = connect(&mut core, "runs-wasm", with_wasm, 20);
    let placed = leases(&actions);
    assert_eq!(placed.len(), 2, "two slots, so two of the three tasks");
    assert!(placed.iter().all(|lease| lease.0 == WorkerId("runs-wasm".into())), "{placed:?}");
    core.check_invariants().unwrap();
}

#[test]
fn a_job_that_fits_no_offer_waits_and_says_which_constraint_fails() {
    let mut core = Core::new(config());
    connect(&mut core, "w1", gpu_offer("us-east", "0.3", "RTX 4090", 24, 1), 0);
    connect(&mut core, "w2", Offer::cpu(4), 0);
    let wanted = Requirements {
        memory_bytes_min: 24 << 30,
        regions: vec!["eu".to_owned()],
        ..Requirements::one(DeviceKind::Gpu)
    };
    let actions = core.handle(Event::JobSubmitted(job(1, 3, wanted, "a")), 10);
    assert!(leases(&actions).is_empty(), "nothing fits, so nothing is placed: {actions:?}");
    assert_eq!(
        core.waiting_reason(JobId(1)).unwrap(),
        "no worker offers a gpu with ≥ 24 GiB in region eu; 1 does elsewhere: us-east"
    );
    // A CPU job beside it is not held up.
    let actions = core.handle(Event::JobSubmitted(job(2, 1, Requirements::one(DeviceKind::Cpu), "a")), 20);
    assert_eq!(leases(&actions)[0].0, WorkerId("w2".into()));
    // A worker that fits arrives: the waiting job is placed at once.
    let actions = connect(&mut core, "w3", gpu_offer("eu", "0.4", "L40S", 48, 2), 30);
    assert_eq!(leases(&actions).len(), 2);
    assert_eq!(
        core.waiting_reason(JobId(1)).unwrap(),
        "every device that fits is busy (1 groups on connected workers fit)"
    );
    core.check_invariants().unwrap();
}

/// Fair share, the documented policy: a freed device goes to the submitter
/// holding the fewest devices. A 1000-task job that took the whole fleet
/// first does not starve a 10-task job submitted after it: from the moment
/// the small job arrives, every freed device goes to it until both
/// submitters hold half the fleet, and from then on their shares never
/// differ by more than one device while both have work waiting.
#[test]
fn a_large_job_does_not_starve_a_small_one() {
    const N_WORKERS: u32 = 8;
    let mut core = Core::new(config());
    for idx in 0..N_WORKERS {
        connect(&mut core, &format!("w{idx}"), Offer::cpu(1), 0);
    }
    let cpu = Requirements::one(DeviceKind::Cpu);
    let mut running = leases(&core.handle(Event::JobSubmitted(job(1, 1_000, cpu.clone(), "big")), 10));
    assert_eq!(running.len() as u32, N_WORKERS, "the big job takes every free device");
    running.extend(leases(&core.handle(Event::JobSubmitted(job(2, 10, cpu, "small")), 20)));
    assert_eq!(core.devices_in_use_by("small"), 0, "nothing is free when the small job arrives");
    let mut now = 30;
    let mut small_done = 0;
    let mut completions = 0;
    while small_done < 10 {
        // The oldest lease finishes; whoever holds fewer devices gets the slot.
        let lease = running.remove(0);
        if lease.1.job_id == JobId(2) {
            small_done += 1;
        }
        let actions = succeed(&mut core, &lease, now);
        running.extend(leases(&actions));
        completions += 1;
        now += 1;
        let (big, small) = (core.devices_in_use_by("big"), core.devices_in_use_by("small"));
        assert_eq!(big + small, u64::from(N_WORKERS), "no device idles while work waits");
        let small_waiting = core.task(TaskId::new(JobId(2), 9)).is_some_and(|t| t.state == TaskState::Queued);
        if completions <= N_WORKERS as usize / 2 {
            assert_eq!(small, completions as u64, "every freed device went to the small job");
        } else if small_waiting {
            assert!(big.abs_diff(small) <= 1, "shares differ by more than one device: big {big}, small {small}");
        }
    }
    // Its first tasks start as the big job's first tasks end; from then on
    // it holds half the fleet, so its 10 tasks take about 2 × 10 completions
    // after the first fleet-full.
    assert!(completions <= N_WORKERS as usize + 20, "the small job took {completions} completions to finish");
}

#[test]
fn an_owner_taking_the_machine_back_moves_its_tasks_without_counting_the_attempt() {
    let mut core = Core::new(config());
    let cpu = Requirements::one(DeviceKind::Cpu);
    connect(&mut core, "home", Offer { price_io_per_device_hour: io("0.1"), ..Offer::cpu(2) }, 0);
    let placed = leases(&core.handle(Event::JobSubmitted(job(1, 2, cpu, "a")), 10));
    assert!(placed.iter().all(|l| l.0.0 == "home"));
    connect(&mut core, "dc", Offer { price_io_per_device_hour: io("0.5"), ..Offer::cpu(2) }, 20);
    let pause = Event::WorkerPaused { worker_id: WorkerId("home".into()), paused: true, reason: "game started".into() };
    let actions = core.handle(pause, 30);
    core.check_invariants().unwrap();
    let yielded: Vec<u32> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Persist(Change::TaskYielded { attempts, .. }) => Some(*attempts),
            _ => None,
        })
        .collect();
    assert_eq!(yielded, [0, 0], "both tasks yielded, their attempts not counted");
    let revoked =
        actions.iter().filter(|a| matches!(a, Action::Revoke { worker_id, .. } if worker_id.0 == "home")).count();
    assert_eq!(revoked, 2);
    let moved = leases(&actions);
    assert_eq!(moved.len(), 2);
    assert!(moved.iter().all(|l| l.0.0 == "dc" && l.3 == io("0.5")), "moved to the other worker: {moved:?}");
    for lease in &moved {
        assert_eq!(core.task(lease.1).unwrap().attempts, 1, "the yielded attempt does not count");
    }
    // A late result from the paused worker is stale: the submitter pays for
    // the work that commits, not for the lost attempt.
    let late = succeed(&mut core, &placed[0], 40);
    assert!(!late.iter().any(|a| matches!(a, Action::Persist(Change::TaskCommitted { .. }))));
    // Back to idle: the worker takes work again.
    let resume = Event::WorkerPaused { worker_id: WorkerId("home".into()), paused: false, reason: String::new() };
    core.handle(resume, 50);
    let more = leases(&core.handle(Event::JobSubmitted(job(2, 1, Requirements::one(DeviceKind::Cpu), "a")), 60));
    assert_eq!(more[0].0.0, "home", "the cheaper worker is back in placement");
    core.check_invariants().unwrap();
}

#[test]
fn a_worker_takes_tasks_only_inside_its_hours() {
    // Monday 2026-11-23 00:00 UTC.
    const MONDAY_MS: u64 = 1_795_392_000_000;
    const HOUR_MS: u64 = 3_600_000;
    let mut core = Core::new(config());
    let offer = Offer { windows: vec![Window::parse("mon-fri 18:00-08:00").unwrap()], ..Offer::cpu(1) };
    let noon = MONDAY_MS + 12 * HOUR_MS;
    connect(&mut core, "evenings", offer, noon);
    let actions = core.handle(Event::JobSubmitted(job(1, 1, Requirements::one(DeviceKind::Cpu), "a")), noon);
    assert!(leases(&actions).is_empty(), "out of hours at noon");
    assert!(core.waiting_reason(JobId(1)).unwrap().contains("outside their owners' hours"));
    // The worker keeps heartbeating; the tick after 18:00 opens its window.
    let evening = MONDAY_MS + 18 * HOUR_MS + 1;
    let worker_id = WorkerId("evenings".into());
    core.handle(Event::Heartbeat { worker_id, held: vec![] }, evening);
    let actions = core.handle(Event::Tick, evening);
    assert_eq!(leases(&actions).len(), 1, "placed when the window opens");
    core.check_invariants().unwrap();
}

#[test]
fn a_changed_offer_takes_effect_and_running_tasks_keep_their_price() {
    let mut core = Core::new(config());
    connect(&mut core, "w", Offer { price_io_per_device_hour: io("0.2"), ..Offer::cpu(1) }, 0);
    let capped = Requirements { price_io_per_device_hour_max: Some(io("0.5")), ..Requirements::one(DeviceKind::Cpu) };
    let first = leases(&core.handle(Event::JobSubmitted(job(1, 2, capped, "a")), 10));
    assert_eq!(first.len(), 1);
    let raise = Event::OfferChanged {
        worker_id: WorkerId("w".into()),
        offer: Offer { price_io_per_device_hour: io("0.8"), ..Offer::cpu(1) },
    };
    core.handle(raise, 20);
    core.check_invariants().unwrap();
    let done = succeed(&mut core, &first[0], 30);
    assert!(
        done.iter().any(|a| matches!(
            a,
            Action::Persist(Change::TaskCommitted { price_io_per_hour, .. }) if *price_io_per_hour == io("0.2")
        )),
        "the running task kept its price"
    );
    assert!(leases(&done).is_empty(), "the raised price is above the job's cap, so the second task waits");
    assert!(core.waiting_reason(JobId(1)).unwrap().contains("the cheapest asks 0.8 IO"));
}

/// Regression: a dead worker held two leases of a job with one attempt per
/// task. Lapsing the first failed the job, whose end released the second
/// lease — whose devices belonged to the dead worker's removed entry.
#[test]
fn a_dead_worker_with_several_leases_of_a_job_that_fails_releases_cleanly() {
    let mut core = Core::new(Config::default());
    connect(&mut core, "w0", Offer::cpu(2), 0);
    let mut one_attempt = job(1, 2, Requirements::one(DeviceKind::Cpu), "a");
    one_attempt.max_attempts = Some(1);
    assert_eq!(leases(&core.handle(Event::JobSubmitted(one_attempt), 0)).len(), 2);
    let actions = core.handle(Event::Tick, 60_000);
    assert!(actions.iter().any(|a| matches!(a, Action::WorkerDead { .. })));
    assert_eq!(core.job(JobId(1)).unwrap().state, iog_types::JobState::Failed);
    core.check_invariants().unwrap();
}

#[test]
fn of_two_equal_offers_the_nearer_worker_gets_the_task() {
    let mut core = Core::new(config());
    connect(&mut core, "far", Offer::cpu(1), 0);
    connect(&mut core, "near", Offer::cpu(1), 0);
    core.handle(Event::WorkerRtt { worker_id: WorkerId("far".into()), rtt_ms: 180 }, 1);
    core.handle(Event::WorkerRtt { worker_id: WorkerId("near".into()), rtt_ms: 12 }, 1);
    core.check_invariants().unwrap();
    let placed = leases(&core.handle(Event::JobSubmitted(job(1, 1, Requirements::one(DeviceKind::Cpu), "a")), 10));
    assert_eq!(placed[0].0.0, "near");
    assert_eq!(core.workers().iter().find(|w| w.worker_id.0 == "far").unwrap().rtt_ms, 180);
}

fn gang(latency_ms_max: u32) -> Requirements {
    Requirements { gang_latency_ms_max: Some(latency_ms_max), ..Requirements::one(DeviceKind::Cpu) }
}

fn set_rtt(core: &mut Core, name: &str, rtt_ms: u32) {
    core.handle(Event::WorkerRtt { worker_id: WorkerId(name.to_owned()), rtt_ms }, 1);
}

#[test]
fn a_gang_starts_all_at_once_on_distinct_workers_within_its_latency_bound() {
    let mut core = Core::new(config());
    for (name, rtt_ms) in [("a", 5), ("b", 8), ("far", 150), ("c", 6)] {
        connect(&mut core, name, Offer::cpu(2), 0);
        set_rtt(&mut core, name, rtt_ms);
    }
    // Each worker has two slots, but a gang needs distinct workers; the far
    // one is over the bound with anyone (estimated at the sum of round trips).
    let placed = leases(&core.handle(Event::JobSubmitted(job(1, 3, gang(30), "a")), 10));
    core.check_invariants().unwrap();
    let mut names: Vec<&str> = placed.iter().map(|l| l.0.0.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["a", "b", "c"]);
    // Four members cannot stay under 30 ms with the far worker among them.
    let actions = core.handle(Event::JobSubmitted(job(2, 4, gang(30), "b")), 20);
    assert!(leases(&actions).iter().all(|l| l.1.job_id != JobId(2)), "no partial gang starts");
    core.check_invariants().unwrap();
}

/// Four workers far from the coordinator: by the path through it (the sum
/// of round trips) no two are within 30 ms, but three of them report
/// settled coordinates a few milliseconds apart, and the gang goes there.
/// A coordinate that has not settled is not trusted.
#[test]
fn settled_coordinates_form_a_gang_the_round_trips_alone_would_not() {
    let mut core = Core::new(config());
    let at = |x: f64, error: f64| iog_sched::Coord { position: [x, 0.0, 0.0], height_ms: 1.0, error };
    for (name, coord) in [("a", at(100.0, 0.1)), ("b", at(104.0, 0.1)), ("c", at(108.0, 0.1)), ("d", at(300.0, 0.1))] {
        connect(&mut core, name, Offer::cpu(1), 0);
        set_rtt(&mut core, name, 100);
        core.handle(Event::WorkerCoord { worker_id: WorkerId(name.to_owned()), coord }, 1);
    }
    // c's coordinate is still unsettled: without it there is no gang of three.
    core.handle(Event::WorkerCoord { worker_id: WorkerId("c".into()), coord: at(108.0, 0.9) }, 2);
    assert!(leases(&core.handle(Event::JobSubmitted(job(1, 3, gang(30), "s")), 10)).is_empty());
    // Once it settles, the waiting gang starts at once.
    let placed =
        leases(&core.handle(Event::WorkerCoord { worker_id: WorkerId("c".into()), coord: at(108.0, 0.2) }, 20));
    let mut names: Vec<&str> = placed.iter().map(|l| l.0.0.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(core.workers().iter().find(|w| w.worker_id.0 == "a").unwrap().coord, Some(at(100.0, 0.1)));
    core.check_invariants().unwrap();
}

#[test]
fn a_waiting_gang_holds_devices_until_it_is_whole_or_its_hold_times_out() {
    let config = Config { gang_reserve_ms: 1_000, gang_retry_ms: 500, ..config() };
    let mut core = Core::new(config);
    connect(&mut core, "a", Offer::cpu(1), 0);
    connect(&mut core, "b", Offer::cpu(1), 0);
    let actions = core.handle(Event::JobSubmitted(job(1, 3, gang(1_000), "a")), 10);
    assert!(leases(&actions).is_empty(), "two workers cannot hold a gang of three");
    core.check_invariants().unwrap();
    assert_eq!(
        core.waiting_reason(JobId(1)).unwrap(),
        "the gang of 3 needs 3 distinct workers within 1000 ms of each other; 2 that fit are free now, 2 of them held for it"
    );
    // The held devices are not given to a small job meanwhile.
    let small = core.handle(Event::JobSubmitted(job(2, 1, Requirements::one(DeviceKind::Cpu), "b")), 20);
    assert!(leases(&small).is_empty(), "the gang holds both free devices");
    // A third worker arrives within the hold: the gang starts at once.
    let placed = leases(&connect(&mut core, "c", Offer::cpu(1), 500));
    assert_eq!(placed.len(), 3, "{placed:?}");
    assert!(placed.iter().all(|l| l.1.job_id == JobId(1)));
    core.check_invariants().unwrap();

    // The first member to finish frees its device for the small job.
    let done = succeed(&mut core, &placed[0], 600);
    assert_eq!(leases(&done)[0].1.job_id, JobId(2));
}

#[test]
fn a_gang_hold_is_released_when_it_times_out() {
    let config = Config { gang_reserve_ms: 1_000, gang_retry_ms: 500, heartbeat_interval_ms: 10_000, ..config() };
    let mut core = Core::new(config);
    connect(&mut core, "a", Offer::cpu(1), 0);
    assert!(leases(&core.handle(Event::JobSubmitted(job(1, 2, gang(1_000), "a")), 10)).is_empty());
    assert!(
        leases(&core.handle(Event::JobSubmitted(job(2, 1, Requirements::one(DeviceKind::Cpu), "b")), 20)).is_empty()
    );
    assert!(leases(&core.handle(Event::Tick, 900)).is_empty(), "still held before the deadline");
    let released = leases(&core.handle(Event::Tick, 1_011));
    assert_eq!(released.len(), 1, "{released:?}");
    assert_eq!(released[0].1.job_id, JobId(2), "the small job gets the released device");
    core.check_invariants().unwrap();
}

#[test]
fn when_one_member_of_a_running_gang_fails_the_others_stop_and_it_restarts_together() {
    let mut core = Core::new(config());
    for name in ["a", "b", "c"] {
        connect(&mut core, name, Offer::cpu(1), 0);
    }
    let placed = leases(&core.handle(Event::JobSubmitted(job(1, 3, gang(1_000), "a")), 10));
    assert_eq!(placed.len(), 3);
    let (worker_id, task_id, token, _) = placed[0].clone();
    let failed = core.handle(Event::TaskFailed { worker_id, task_id, token, error: "oom".into() }, 20);
    core.check_invariants().unwrap();
    let revoked = failed.iter().filter(|a| matches!(a, Action::Revoke { .. })).count();
    assert_eq!(revoked, 2, "the two running members are stopped: {failed:?}");
    assert!(leases(&failed).is_empty(), "no member restarts while the failed one backs off");
    // After the backoff the whole gang starts again, together.
    let again = leases(&core.handle(Event::Tick, 1_000));
    assert_eq!(again.len(), 3, "{again:?}");
    for lease in &again {
        let attempts = core.task(lease.1).unwrap().attempts;
        let expected = if lease.1 == task_id { 2 } else { 1 };
        assert_eq!(attempts, expected, "only the failed member's attempt counts");
    }
    core.check_invariants().unwrap();
}

/// Regression: after a gang's hold timed out, the end of its retry wait
/// called for no placement round, so in a quiet network it waited forever
/// with every device free.
#[test]
fn a_gang_whose_hold_timed_out_is_placed_when_its_wait_ends() {
    let config = Config { heartbeat_interval_ms: 1_000_000, gang_reserve_ms: 1_000, gang_retry_ms: 500, ..config() };
    let mut core = Core::new(config);
    connect(&mut core, "a", Offer::cpu(1), 0);
    assert!(leases(&core.handle(Event::JobSubmitted(job(1, 2, gang(1_000), "s")), 10)).is_empty());
    core.handle(Event::Tick, 1_011);
    assert!(leases(&connect(&mut core, "b", Offer::cpu(1), 1_100)).is_empty(), "still in its wait");
    let mut placed = Vec::new();
    for now in (1_250..=3_000).step_by(250) {
        placed.extend(leases(&core.handle(Event::Tick, now)));
    }
    assert_eq!(placed.len(), 2, "placed once its wait ended");
    core.check_invariants().unwrap();
}

/// Regression: a gang's hold kept devices of a worker that disconnected,
/// and the gang then started a member there.
#[test]
fn a_gang_does_not_start_on_a_worker_that_went_away_while_held() {
    let mut core = Core::new(config());
    connect(&mut core, "a", Offer::cpu(1), 0);
    connect(&mut core, "b", Offer::cpu(1), 0);
    assert!(leases(&core.handle(Event::JobSubmitted(job(1, 3, gang(1_000), "s")), 10)).is_empty());
    core.handle(Event::WorkerDisconnected { worker_id: WorkerId("a".into()) }, 20);
    core.check_invariants().unwrap();
    let placed = leases(&connect(&mut core, "c", Offer::cpu(1), 30));
    assert!(placed.iter().all(|l| l.0.0 != "a"), "{placed:?}");
    assert!(placed.is_empty(), "two connected workers cannot hold a gang of three");
    let placed = leases(&connect(&mut core, "d", Offer::cpu(1), 40));
    let mut names: Vec<&str> = placed.iter().map(|l| l.0.0.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["b", "c", "d"]);
    core.check_invariants().unwrap();
}
