//! Laws of payments under random sequences of verified results, repeats,
//! wrong results and job ends: money is conserved, a result is paid at most
//! once and never beyond its charge, a wrong result is never paid, every
//! escrow ends resolved, and a ledger rebuilt from the journal gives the
//! same payments.

use iog_core::{Action, Change, Event, Payments, ValidResult, WrongResult};
use iog_ledger::billing::{self, CommittedTask, JobTerms};
use iog_ledger::{AccountId, Address, Amount, Ledger, TransferId};
use iog_types::{BlobId, JobId, JobState, TaskId, WorkerId};
use proptest::prelude::*;

const N_JOBS: u64 = 3;
const N_TASKS: u32 = 6;

#[derive(Debug, Clone)]
enum Step {
    /// A task verified: its replica 0 valid, and replica 1 wrong when `wrong`.
    Commit {
        job: u64,
        task_idx: u32,
        worker: u8,
        duration_ms: u64,
        wrong: bool,
    },
    End {
        job: u64,
    },
    Restart,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => (0..N_JOBS, 0..N_TASKS, 0u8..3, 0u64..20_000, prop::bool::weighted(0.2)).prop_map(
            |(job, task_idx, worker, duration_ms, wrong)| Step::Commit { job, task_idx, worker, duration_ms, wrong }
        ),
        1 => (0..N_JOBS).prop_map(|job| Step::End { job }),
        1 => Just(Step::Restart),
    ]
}

fn io(text: &str) -> Amount {
    text.parse().unwrap()
}

/// What the core persists when a task's result is accepted: `valid` paid,
/// `wrong` (replica `N_TASKS + task_idx`, on another worker) not.
fn verified(job: u64, task_idx: u32, worker: &str, duration_ms: u64, price: Amount, wrong: bool) -> Action {
    let task_id = TaskId::new(JobId(job), task_idx);
    let wrong = wrong.then(|| WrongResult {
        task_id: TaskId::new(JobId(job), N_TASKS + task_idx),
        worker_id: WorkerId("cheat".to_owned()),
        output: BlobId::of(b"wrong"),
    });
    Action::Persist(Change::TaskVerified {
        task_id,
        output: BlobId::of(b"out"),
        valid: vec![ValidResult {
            task_id,
            worker_id: WorkerId(worker.to_owned()),
            duration_ms,
            price_io_per_hour: price,
        }],
        wrong: wrong.into_iter().collect(),
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn money_is_conserved_and_each_task_paid_at_most_once(
        budgets in prop::collection::vec(1u64..20_000_000, N_JOBS as usize),
        fee_bps in 0u32..=5_000,
        steps in prop::collection::vec(step(), 1..60),
    ) {
        let payer = Address::from_public_key([3; 32]);
        let price = io("36");
        let mut ledger = Ledger::new();
        ledger.mint(TransferId::derive("funds"), AccountId::Wallet(payer), io("1000"), "test".into(), 0).unwrap();
        let mut payments = Payments::new(ledger, fee_bps, &[]);
        for (job, budget) in budgets.iter().enumerate() {
            let terms = JobTerms { payer, budget: Amount::from_base_units(*budget), price_io_per_hour: price };
            payments.hold_escrow(JobId(job as u64), &format!("r{job}"), &terms, 1).unwrap();
            // The same request id is never held twice.
            let again = payments.hold_escrow(JobId(job as u64), &format!("r{job}"), &terms, 1);
            prop_assert!(again.is_err());
        }
        let mut ended = [false; N_JOBS as usize];
        let mut commits: Vec<Vec<CommittedTask<'static>>> = vec![Vec::new(); N_JOBS as usize];
        let workers = ["w0", "w1", "w2"];
        let mut now = 2;
        for step in steps {
            now += 1;
            match step {
                Step::Commit { job, task_idx, worker, duration_ms, wrong } => {
                    // The core verifies a task once, and never after its job ended.
                    let first = !commits[job as usize].iter().any(|c| c.task_idx == task_idx);
                    // Each worker asks its own price, within the job's cap.
                    let asked = price.checked_mul_div(u64::from(worker) + 1, 3).unwrap();
                    let action = verified(job, task_idx, workers[worker as usize], duration_ms, asked, wrong);
                    if first && !ended[job as usize] {
                        commits[job as usize].push(CommittedTask {
                            task_idx,
                            accepted: true,
                            worker_id: workers[worker as usize],
                            duration_ms,
                            price_io_per_hour: asked,
                        });
                        if wrong {
                            commits[job as usize].push(CommittedTask {
                                task_idx: N_TASKS + task_idx,
                                accepted: false,
                                worker_id: "cheat",
                                duration_ms,
                                price_io_per_hour: asked,
                            });
                        }
                        if let Some(Event::FailJob { job_id, .. }) = payments.settle(&action, now) {
                            prop_assert_eq!(job_id, JobId(job));
                            let escrow = payments.escrow(job_id).unwrap();
                            prop_assert_eq!(escrow.spent, escrow.budget, "only a spent escrow fails a job");
                            // The core fails the job in the same step.
                            payments.check().map_err(TestCaseError::fail)?;
                            let ended_action = Action::Persist(Change::JobEnded {
                                job_id,
                                state: JobState::Failed,
                                reason: None,
                                ended_ms: now,
                            });
                            prop_assert!(payments.settle(&ended_action, now).is_none());
                            ended[job as usize] = true;
                        }
                    } else if ended[job as usize] {
                        // A job that ended pays nothing more.
                        let n_entries = payments.ledger().journal().len();
                        prop_assert!(payments.settle(&action, now).is_none());
                        prop_assert_eq!(payments.ledger().journal().len(), n_entries);
                    }
                }
                Step::End { job } => {
                    let action = Action::Persist(Change::JobEnded {
                        job_id: JobId(job),
                        state: JobState::Cancelled,
                        reason: None,
                        ended_ms: now,
                    });
                    payments.settle(&action, now);
                    ended[job as usize] = true;
                }
                Step::Restart => {
                    let replayed = Ledger::replay(payments.ledger().journal().entries()).unwrap();
                    let running: Vec<(JobId, Amount)> =
                        (0..N_JOBS).filter(|job| !ended[*job as usize]).map(|job| (JobId(job), price)).collect();
                    let restarted = Payments::new(replayed, fee_bps, &running);
                    prop_assert_eq!(restarted.ledger(), payments.ledger());
                    payments = restarted;
                }
            }
            payments.check().map_err(TestCaseError::fail)?;
        }
        for job in 0..N_JOBS {
            let hold_id = billing::escrow_hold_id(&payer, &format!("r{job}"));
            billing::check_job_payments(payments.ledger(), job, hold_id, price, &commits[job as usize])
                .map_err(TestCaseError::fail)?;
        }
        // Everything minted is still somewhere.
        let total: i128 = payments
            .ledger()
            .accounts()
            .filter(|(account, _)| **account != AccountId::Mint)
            .map(|(_, balance)| balance.posted.0)
            .sum();
        prop_assert_eq!(total, 1_000_000_000_000i128);
    }
}

#[test]
fn a_task_paid_from_another_jobs_escrow_is_caught() {
    let payer = Address::from_public_key([3; 32]);
    let mut ledger = Ledger::new();
    ledger.mint(TransferId::derive("funds"), AccountId::Wallet(payer), io("10"), "test".into(), 0).unwrap();
    let mut payments = Payments::new(ledger, 0, &[]);
    let terms = JobTerms { payer, budget: io("1"), price_io_per_hour: io("3600") };
    payments.hold_escrow(JobId(1), "a", &terms, 1).unwrap();
    let commit = |task_idx| verified(1, task_idx, "w", 100, io("3600"), false);
    payments.settle(&commit(0), 2);
    payments.settle(&commit(1), 2);
    let hold_id = billing::escrow_hold_id(&payer, "a");
    let task = |task_idx| CommittedTask {
        task_idx,
        accepted: true,
        worker_id: "w",
        duration_ms: 100,
        price_io_per_hour: io("3600"),
    };
    billing::check_job_payments(payments.ledger(), 1, hold_id, io("3600"), &[task(0), task(1)]).unwrap();
    // The store forgot a commit: its payment now belongs to no committed task.
    let err = billing::check_job_payments(payments.ledger(), 1, hold_id, io("3600"), &[task(0)]).unwrap_err();
    assert!(err.contains("money left the escrow for no accepted result"), "{err}");
    // A commit by another worker than the one paid.
    let other = CommittedTask { worker_id: "x", ..task(1) };
    let err = billing::check_job_payments(payments.ledger(), 1, hold_id, io("3600"), &[task(0), other]).unwrap_err();
    assert!(err.contains("went to payout:w, not payout:x"), "{err}");
    // A commit that was never paid.
    let err = billing::check_job_payments(payments.ledger(), 1, hold_id, io("3600"), &[task(0), task(1), task(2)])
        .unwrap_err();
    assert!(err.contains("is accepted but was never paid"), "{err}");
    // A paid result the store says was wrong.
    let wrong = CommittedTask { accepted: false, ..task(1) };
    let err = billing::check_job_payments(payments.ledger(), 1, hold_id, io("3600"), &[task(0), wrong]).unwrap_err();
    assert!(err.contains("was paid but its result was not accepted"), "{err}");
}

#[test]
fn stake_unstakes_through_the_cooldown_and_stays_slashable() {
    use iog_core::{StakeRules, StakeView};
    let key = iog_host_free_key();
    let worker = key.to_string();
    let mut ledger = Ledger::new();
    ledger.mint(TransferId::derive("funds"), AccountId::Wallet(key), io("10"), "test".into(), 0).unwrap();
    let rules = StakeRules { min_per_device: io("2"), cooldown_ms: 1_000 };
    let mut payments = Payments::new(ledger, 0, &[]).with_stake_rules(rules);
    let err = payments.admission(&worker, 2).unwrap_err();
    assert!(err.contains("has 0 IO staked") && err.contains("4 IO for its 2 devices"), "{err}");

    payments.stake(&worker, io("6"), "s1", 10).unwrap();
    payments.admission(&worker, 3).unwrap();
    assert!(payments.stake(&worker, io("5"), "s2", 11).is_err(), "the wallet holds only 4 IO more");
    let due = payments.unstake(&worker, io("3"), "u1", 100).unwrap();
    assert_eq!(due, 1_100);
    assert_eq!(payments.stake_of(&worker), StakeView { active: io("3"), unstaking: io("3") });
    assert!(payments.admission(&worker, 2).is_err(), "unstaking stake does not admit");
    payments.release_unstaked(1_099);
    assert_eq!(payments.stake_of(&worker).unstaking, io("3"), "not before the cooldown ends");
    payments.check().unwrap();

    // Proven cheating slashes the stake on its way out too.
    let slashed = payments.slash(&worker, io("5"), "proof 1", 500).unwrap();
    assert_eq!(slashed, io("5"));
    assert_eq!(payments.stake_of(&worker), StakeView { active: io("1"), unstaking: Amount::ZERO });
    assert_eq!(payments.ledger().balance(&AccountId::Rewards).posted.to_amount(), Some(io("5")));
    payments.check().unwrap();

    // A restart keeps the cooldowns; a released unstake reaches the wallet.
    payments.unstake(&worker, io("1"), "u2", 600).unwrap();
    let replayed = Ledger::replay(payments.ledger().journal().entries()).unwrap();
    let mut payments = Payments::new(replayed, 0, &[]).with_stake_rules(rules);
    payments.release_unstaked(1_599);
    assert_eq!(payments.stake_of(&worker).unstaking, io("1"));
    payments.release_unstaked(1_600);
    assert_eq!(payments.stake_of(&worker), StakeView::default());
    assert_eq!(payments.ledger().balance(&AccountId::Wallet(key)).available.to_amount(), Some(io("5")));
    payments.check().unwrap();
}

/// A worker id that is a valid address, without the host crate.
fn iog_host_free_key() -> Address {
    Address::from_public_key([9; 32])
}

#[test]
fn rewards_mint_by_the_schedule_and_share_the_pool() {
    use iog_core::RewardRules;
    let rules = RewardRules { epoch_ms: 1_000, per_epoch: io("1") };
    let mut payments = Payments::new(Ledger::new(), 0, &[]).with_reward_rules(rules);
    // Epochs count from the first one that starts after the coordinator did.
    assert_eq!(payments.reward_epoch_due(5_500), None);
    assert_eq!(payments.reward_epoch_due(6_999), None);
    assert_eq!(payments.reward_epoch_due(7_000), Some(6));
    let workers = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
    assert_eq!(payments.pay_rewards(6, &workers, 7_000).unwrap(), io("0.333333333"));
    assert_eq!(payments.reward_epoch_due(7_500), None, "an epoch is paid once");
    // The base unit that did not divide stays in the pool for the next epoch.
    assert_eq!(payments.ledger().balance(&AccountId::Rewards).posted.0, 1);
    assert_eq!(payments.pay_rewards(7, &workers[..2], 8_000).unwrap(), io("0.5"));
    let payout = |w: &str| payments.ledger().balance(&AccountId::Payout(w.into())).posted.to_amount().unwrap();
    assert_eq!((payout("a"), payout("c")), (io("0.833333333"), io("0.333333333")));
    assert_eq!(payments.ledger().supply(), io("2"));
    let (op, _) = payments.ledger().answer(&iog_ledger::rewards::epoch_mint_id(7)).unwrap();
    assert!(op.to_string().contains("the schedule mints 1 IO per epoch of 1000 ms"), "{op}");
    payments.check().unwrap();
    // Nobody online: the mint waits in the pool.
    payments.pay_rewards(8, &[], 9_000).unwrap();
    assert_eq!(payments.ledger().balance(&AccountId::Rewards).posted.to_amount(), Some(io("1.000000001")));
}
