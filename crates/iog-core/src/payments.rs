//! Payments: the $IO ledger driven by what the core decides.
//!
//! [`Payments`] owns the [`Ledger`] and watches the core's actions: when a
//! paid job's task is verified it pays the workers of its valid results
//! from the job's escrow (a result proven wrong is never paid), when a
//! paid job ends (or its submission is refused) it voids the escrow so the
//! rest goes back to the payer, and when an escrow runs dry before the job
//! is done it asks the core to fail the job. The ledger operations it
//! applies go into the same store transaction as the core changes that
//! caused them, so a verdict and its payments are durable together or not
//! at all.
//!
//! Like the core it takes `now` and returns what to do; it never reads a
//! clock or does IO. The simulator drives it exactly as the coordinator does.

use std::collections::{BTreeSet, HashMap};

use iog_ledger::billing::{self, JobTerms};
use iog_ledger::stake;
use iog_ledger::{AccountId, Amount, Ledger, LedgerError, Op, Outcome, PendingState, TransferId};
use iog_types::{JobId, UnixMs};

use crate::event::{Action, Change, Event, ValidResult};

/// Largest network fee: half of every charge.
pub const FEE_BPS_MAX: u32 = 5_000;

/// A running paid job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PaidJob {
    hold_id: TransferId,
    price_io_per_hour: Amount,
}

/// Why a paid submission was refused before it reached the core.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EscrowError {
    #[error("request id {request_id} was already used by this wallet; sign the submission with a new request id")]
    RequestReused { request_id: String },
    #[error("the budget could not be held in escrow: {0}")]
    Ledger(LedgerError),
}

impl EscrowError {
    /// A stable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            EscrowError::RequestReused { .. } => "request_reused",
            EscrowError::Ledger(err) => err.code().as_str(),
        }
    }
}

/// What a paid job has cost, read from the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EscrowView {
    pub payer: AccountId,
    pub budget: Amount,
    /// Posted out of the escrow so far: the workers' shares and fees.
    pub spent: Amount,
    /// Still held (zero once the job ended).
    pub held: Amount,
    /// Released to the payer when the job ended.
    pub refunded: Amount,
}

/// The network's stake rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StakeRules {
    /// Stake a worker must hold per device it offers to be admitted; zero
    /// (the default) admits every worker, as on a development network.
    pub min_per_device: Amount,
    /// How long unstaked $IO stays slashable before it reaches the wallet.
    pub cooldown_ms: u64,
}

impl Default for StakeRules {
    fn default() -> StakeRules {
        StakeRules { min_per_device: Amount::ZERO, cooldown_ms: DEFAULT_UNSTAKE_COOLDOWN_MS }
    }
}

/// Unstaked $IO waits this long by default: a week, long enough for a
/// cheating worker's results to be checked before its stake leaves.
pub const DEFAULT_UNSTAKE_COOLDOWN_MS: u64 = 7 * 24 * 60 * 60 * 1000;

/// The supply rewards schedule: `per_epoch` minted and shared among the
/// online, admitted workers at the end of every epoch of `epoch_ms`. Off
/// when `per_epoch` is zero (the default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RewardRules {
    pub epoch_ms: u64,
    pub per_epoch: Amount,
}

impl Default for RewardRules {
    fn default() -> RewardRules {
        RewardRules { epoch_ms: DEFAULT_REWARDS_EPOCH_MS, per_epoch: Amount::ZERO }
    }
}

/// An hour: the default rewards epoch.
pub const DEFAULT_REWARDS_EPOCH_MS: u64 = 60 * 60 * 1000;

/// A worker's stake.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StakeView {
    /// Counts toward admission and can be slashed.
    pub active: Amount,
    /// On its way back to the worker's wallet; still slashable.
    pub unstaking: Amount,
}

/// A refused staking operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StakeError {
    #[error("worker id {worker_id} is not an ed25519 public key, so it has no wallet")]
    NoWallet { worker_id: String },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl StakeError {
    /// A stable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            StakeError::NoWallet { .. } => "bad_worker_id",
            StakeError::Ledger(err) => err.code().as_str(),
        }
    }
}

/// What one task was paid, read from the ledger.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskPaid {
    pub gross: Amount,
    pub worker: Amount,
    pub fee: Amount,
}

/// The ledger, with the escrows of paid jobs. See the module documentation.
#[derive(Debug, Clone)]
pub struct Payments {
    ledger: Ledger,
    fee_bps: u32,
    running: HashMap<JobId, PaidJob>,
    /// The escrow hold of every paid job, running or ended: one small entry
    /// per paid job, so a finished job's bill can still be read.
    escrows: HashMap<JobId, TransferId>,
    stake_rules: StakeRules,
    reward_rules: RewardRules,
    /// Epochs before this one are never paid: rewards are for epochs this
    /// coordinator watched from their start.
    first_rewarded_epoch: Option<u64>,
    /// Open unstaking holds by the time their cooldown ends.
    unstaking: BTreeSet<(UnixMs, TransferId)>,
}

impl Payments {
    /// Payments over `ledger` (rebuilt from the journal after a restart),
    /// taking `fee_bps` basis points of every charge (at most
    /// [`FEE_BPS_MAX`]). `running` lists the paid jobs that are still
    /// running with their price; their escrows are found in the ledger.
    pub fn new(ledger: Ledger, fee_bps: u32, running: &[(JobId, Amount)]) -> Payments {
        let mut escrows = HashMap::new();
        for (hold_id, hold) in ledger.holds() {
            if let AccountId::Escrow(job) = hold.credit {
                escrows.insert(JobId(job), *hold_id);
            }
        }
        let mut payments = Payments {
            ledger,
            fee_bps: fee_bps.min(FEE_BPS_MAX),
            running: HashMap::new(),
            escrows: HashMap::new(),
            stake_rules: StakeRules::default(),
            reward_rules: RewardRules::default(),
            first_rewarded_epoch: None,
            unstaking: BTreeSet::new(),
        };
        for &(job_id, price_io_per_hour) in running {
            let open = escrows.get(&job_id).filter(|hold_id| {
                payments.ledger.pending_transfer(hold_id).is_some_and(|h| h.state == PendingState::Open)
            });
            if let Some(&hold_id) = open {
                payments.running.insert(job_id, PaidJob { hold_id, price_io_per_hour });
            }
        }
        payments.escrows = escrows;
        payments.index_unstaking();
        payments
    }

    /// The same payments under other stake rules.
    pub fn with_stake_rules(mut self, rules: StakeRules) -> Payments {
        self.stake_rules = rules;
        self.index_unstaking();
        self
    }

    pub fn stake_rules(&self) -> StakeRules {
        self.stake_rules
    }

    /// The same payments under a rewards schedule.
    pub fn with_reward_rules(mut self, rules: RewardRules) -> Payments {
        self.reward_rules = RewardRules { epoch_ms: rules.epoch_ms.max(1), ..rules };
        self
    }

    /// The epoch that ended last at `now`, if the schedule is on, this
    /// coordinator watched it from its start, and it is not paid yet. The
    /// first call fixes which epochs count: those that start after it.
    pub fn reward_epoch_due(&mut self, now: UnixMs) -> Option<u64> {
        if self.reward_rules.per_epoch.is_zero() {
            return None;
        }
        let current = now / self.reward_rules.epoch_ms;
        let first = *self.first_rewarded_epoch.get_or_insert(current + 1);
        let ended = current.checked_sub(1)?;
        (ended >= first && self.ledger.answer(&iog_ledger::rewards::epoch_mint_id(ended)).is_none()).then_some(ended)
    }

    /// Pays epoch `epoch`'s rewards: mints the schedule's amount into the
    /// pool, by the rule written in the journal, and shares the pool
    /// equally among `workers` (the online, admitted ones). Returns each
    /// worker's share.
    pub fn pay_rewards(&mut self, epoch: u64, workers: &[String], now: UnixMs) -> Result<Amount, LedgerError> {
        let rules = self.reward_rules;
        self.ledger.apply(iog_ledger::rewards::epoch_mint(epoch, rules.epoch_ms, rules.per_epoch), now)?;
        let pool = self.ledger.balance(&AccountId::Rewards).available.to_amount().unwrap_or(Amount::ZERO);
        let mut share = Amount::ZERO;
        for op in iog_ledger::rewards::epoch_shares(epoch, pool, workers) {
            if let Op::Transfer { amount, .. } = &op {
                share = *amount;
            }
            self.ledger.apply(op, now)?;
        }
        Ok(share)
    }

    /// Rebuilds the cooldown index from the ledger's open unstaking holds.
    fn index_unstaking(&mut self) {
        let cooldown_ms = self.stake_rules.cooldown_ms;
        self.unstaking = self
            .ledger
            .holds()
            .filter(|(_, hold)| hold.state == PendingState::Open && matches!(hold.debit, AccountId::Stake(_)))
            .map(|(id, hold)| (hold.created_ms.saturating_add(cooldown_ms), *id))
            .collect();
    }

    /// A worker's stake.
    pub fn stake_of(&self, worker_id: &str) -> StakeView {
        let balance = self.ledger.balance(&AccountId::Stake(worker_id.to_owned()));
        StakeView { active: balance.available.to_amount().unwrap_or(Amount::ZERO), unstaking: balance.pending_debits }
    }

    /// Why a worker offering `n_devices` is not admitted, if it is not.
    pub fn admission(&self, worker_id: &str, n_devices: usize) -> Result<(), String> {
        let needed = self.stake_rules.min_per_device.checked_mul_div(n_devices as u64, 1).unwrap_or(Amount::MAX);
        let active = self.stake_of(worker_id).active;
        if active >= needed {
            return Ok(());
        }
        Err(format!(
            "worker {worker_id} has {active} staked; this network asks {} per device, {needed} for its {n_devices} \
             devices: send $IO to the worker's own wallet (its id) and run `iog worker stake` with its data dir",
            self.stake_rules.min_per_device
        ))
    }

    /// Moves `amount` from the worker's own wallet into its stake.
    pub fn stake(&mut self, worker_id: &str, amount: Amount, request_id: &str, now: UnixMs) -> Result<(), StakeError> {
        let wallet =
            stake::worker_wallet(worker_id).map_err(|_| StakeError::NoWallet { worker_id: worker_id.into() })?;
        self.ledger.apply(stake::stake_op(worker_id, wallet, amount, request_id), now)?;
        Ok(())
    }

    /// Starts returning `amount` of the worker's active stake to its
    /// wallet; returns when it arrives (after the cooldown).
    pub fn unstake(
        &mut self,
        worker_id: &str,
        amount: Amount,
        request_id: &str,
        now: UnixMs,
    ) -> Result<UnixMs, StakeError> {
        let wallet =
            stake::worker_wallet(worker_id).map_err(|_| StakeError::NoWallet { worker_id: worker_id.into() })?;
        let op = stake::unstake_op(worker_id, wallet, amount, request_id);
        let hold_id = op.id();
        self.ledger.apply(op, now)?;
        let hold = self.ledger.pending_transfer(&hold_id).expect("the hold was accepted");
        let due = hold.created_ms.saturating_add(self.stake_rules.cooldown_ms);
        if hold.state == PendingState::Open {
            self.unstaking.insert((due, hold_id));
        }
        Ok(due)
    }

    /// Completes every unstaking whose cooldown ended by `now`.
    pub fn release_unstaked(&mut self, now: UnixMs) {
        while let Some(&(due, hold_id)) = self.unstaking.first() {
            if due > now {
                break;
            }
            self.unstaking.pop_first();
            let remaining = self.ledger.pending(&hold_id).unwrap_or(Amount::ZERO);
            if !remaining.is_zero() {
                let result = self.ledger.apply(stake::release_op(hold_id, remaining), now);
                debug_assert!(result.is_ok(), "releasing an unstaking hold is refused: {result:?}");
            }
        }
    }

    /// Slashes up to `amount` of a worker's stake, unstaking included, into
    /// the rewards pool, for the proof named by `reason_key` (one proof
    /// slashes once). Returns what was slashed. For the trust checks to call
    /// when cheating is proven.
    pub fn slash(
        &mut self,
        worker_id: &str,
        amount: Amount,
        reason_key: &str,
        now: UnixMs,
    ) -> Result<Amount, StakeError> {
        let stake_account = AccountId::Stake(worker_id.to_owned());
        let pending: Vec<(UnixMs, TransferId)> = self
            .unstaking
            .iter()
            .filter(|(_, id)| self.ledger.pending_transfer(id).is_some_and(|hold| hold.debit == stake_account))
            .copied()
            .collect();
        for entry in pending {
            self.unstaking.remove(&entry);
            self.ledger.apply(stake::cancel_unstake_op(entry.1, reason_key), now)?;
        }
        let slashed = amount.min(self.stake_of(worker_id).active);
        if !slashed.is_zero() {
            self.ledger.apply(stake::slash_op(worker_id, slashed, reason_key), now)?;
        }
        Ok(slashed)
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn fee_bps(&self) -> u32 {
        self.fee_bps
    }

    /// Applies an operation asked for from outside (a faucet grant, a
    /// transfer between wallets). Escrow accounts are the jobs' own: a
    /// request naming one is refused here, so only [`Payments`] moves them.
    pub fn apply(&mut self, op: Op, now: UnixMs) -> Result<Outcome, LedgerError> {
        self.ledger.apply(op, now)
    }

    /// Holds a paid job's budget in escrow before the job goes to the core.
    /// On success the job is known as paid; if the core then refuses it,
    /// [`settle`](Self::settle) voids the hold.
    pub fn hold_escrow(
        &mut self,
        job_id: JobId,
        request_id: &str,
        terms: &JobTerms,
        now: UnixMs,
    ) -> Result<(), EscrowError> {
        let hold_id = billing::escrow_hold_id(&terms.payer, request_id);
        if self.ledger.answer(&hold_id).is_some() {
            return Err(EscrowError::RequestReused { request_id: request_id.to_owned() });
        }
        self.ledger.apply(billing::escrow_hold(hold_id, job_id.0, terms), now).map_err(EscrowError::Ledger)?;
        self.running.insert(job_id, PaidJob { hold_id, price_io_per_hour: terms.price_io_per_hour });
        self.escrows.insert(job_id, hold_id);
        Ok(())
    }

    /// Follows one action of the core: pays the valid results of a paid
    /// job, voids the escrow of a paid job that ended or was refused.
    /// Returns an event for the core when an escrow ran dry with tasks left.
    pub fn settle(&mut self, action: &Action, now: UnixMs) -> Option<Event> {
        match action {
            Action::Persist(Change::TaskVerified { valid, .. }) => {
                let mut dry = None;
                for result in valid {
                    let paid = *self.running.get(&result.task_id.job_id)?;
                    dry = self.pay_result(paid, result, now).or(dry);
                }
                dry
            }
            Action::SlashStake { worker_id, bps, reason_key } => {
                let active = self.stake_of(&worker_id.0).active;
                let amount = active.checked_mul_div(u64::from(*bps), 10_000).unwrap_or(active);
                // The shell logs the action. A slash within the active stake
                // cannot be refused; a reason already used was slashed before
                // (one proof slashes once), and a worker id that is no
                // address has no stake to slash.
                let result = self.slash(&worker_id.0, amount, reason_key, now);
                debug_assert!(
                    matches!(
                        result,
                        Ok(_) | Err(StakeError::Ledger(LedgerError::IdReused { .. }) | StakeError::NoWallet { .. })
                    ),
                    "slashing within the stake is refused: {result:?}"
                );
                None
            }
            Action::Persist(Change::JobEnded { job_id, .. }) | Action::JobRejected { job_id, .. } => {
                let paid = self.running.remove(job_id)?;
                // A budget spent to the last base unit left nothing to void.
                if self.ledger.pending(&paid.hold_id).is_some_and(|remaining| !remaining.is_zero()) {
                    let result = self.ledger.apply(billing::escrow_void(job_id.0, paid.hold_id), now);
                    debug_assert!(result.is_ok(), "voiding an open escrow is refused: {result:?}");
                }
                None
            }
            _ => None,
        }
    }

    /// Pays one valid result from its job's escrow. Returns an event for
    /// the core when the escrow ran dry.
    fn pay_result(&mut self, paid: PaidJob, result: &ValidResult, now: UnixMs) -> Option<Event> {
        let (task_id, price_io_per_hour, duration_ms) = (result.task_id, result.price_io_per_hour, result.duration_ms);
        let remaining = self.ledger.pending(&paid.hold_id).unwrap_or(Amount::ZERO);
        // The task pays its lease's price: the worker's ask times the
        // devices it used, which placement kept within the job's cap.
        let charge = billing::task_charge(price_io_per_hour, duration_ms, self.fee_bps, remaining);
        let ops =
            billing::task_payment_ops(task_id.job_id.0, task_id.task_idx, &result.worker_id.0, paid.hold_id, charge);
        for op in ops {
            let result = self.ledger.apply(op, now);
            debug_assert!(result.is_ok(), "a payment within the escrow is refused: {result:?}");
        }
        let left = self.ledger.pending(&paid.hold_id).unwrap_or(Amount::ZERO);
        // The job may be done with this very result; the core ignores the
        // event then.
        left.is_zero().then(|| Event::FailJob {
            job_id: task_id.job_id,
            reason: format!(
                "its escrow is spent: the budget paid for the results accepted so far; \
                 submit again with a larger payment.budget for the rest (task {task_id} \
                 was paid {} of its {})",
                charge.gross,
                billing::task_charge(price_io_per_hour, duration_ms, 0, Amount::MAX).gross,
            ),
        })
    }

    /// What the paid job `job_id` has cost so far; `None` for a free job.
    pub fn escrow(&self, job_id: JobId) -> Option<EscrowView> {
        let hold = self.ledger.pending_transfer(self.escrows.get(&job_id)?)?;
        let refunded = match hold.state {
            PendingState::Voided => hold.amount.checked_sub(hold.posted).expect("posted within the hold"),
            PendingState::Open | PendingState::Posted => Amount::ZERO,
        };
        Some(EscrowView {
            payer: hold.debit.clone(),
            budget: hold.amount,
            spent: hold.posted,
            held: hold
                .amount
                .checked_sub(hold.posted)
                .expect("posted within the hold")
                .checked_sub(refunded)
                .expect("refund within the rest"),
            refunded,
        })
    }

    /// What task `task_idx` of `job_id` was paid (zero when it was not).
    pub fn task_paid(&self, job_id: JobId, task_idx: u32) -> TaskPaid {
        let ids = billing::task_payment_ids(job_id.0, task_idx);
        let amount_of = |id: &TransferId| match self.ledger.answer(id) {
            Some((Op::Post { amount, .. } | Op::Transfer { amount, .. }, Ok(_))) => *amount,
            _ => Amount::ZERO,
        };
        TaskPaid { gross: amount_of(&ids.post), worker: amount_of(&ids.worker), fee: amount_of(&ids.fee) }
    }

    /// Checks the money rules beyond the ledger's own: the escrow of an
    /// ended job is resolved and a running job's is not voided, and every
    /// escrow account is empty between operations (what a post brings in
    /// leaves at once).
    pub fn check(&self) -> Result<(), String> {
        self.ledger.check()?;
        for (job_id, hold_id) in &self.escrows {
            let escrow = AccountId::Escrow(job_id.0);
            let balance = self.ledger.balance(&escrow);
            if balance.posted.0 != 0 {
                return Err(format!("{escrow} keeps {} between operations", balance.posted));
            }
            let state = self.ledger.pending_transfer(hold_id).map(|hold| hold.state);
            let running = self.running.contains_key(job_id);
            // A running job's escrow is open, or spent and about to fail the
            // job; an ended job's escrow is resolved.
            let fine = match state {
                Some(PendingState::Open) => running,
                Some(PendingState::Posted) => true,
                Some(PendingState::Voided) => !running,
                None => false,
            };
            if !fine {
                return Err(format!("escrow of {job_id}: hold {state:?} while the job is running: {running}"));
            }
        }
        for (_, hold_id) in &self.unstaking {
            if self.ledger.pending_transfer(hold_id).is_none_or(|hold| hold.state != PendingState::Open) {
                return Err(format!("unstaking {hold_id} is waited for but is not an open hold"));
            }
        }
        Ok(())
    }
}
