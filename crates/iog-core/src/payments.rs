//! Payments: the $IO ledger driven by what the core decides.
//!
//! [`Payments`] owns the [`Ledger`] and watches the core's actions: when a
//! paid job's task commits it pays the worker from the job's escrow, when a
//! paid job ends (or its submission is refused) it voids the escrow so the
//! rest goes back to the payer, and when an escrow runs dry before the job
//! is done it asks the core to fail the job. The ledger operations it
//! applies go into the same store transaction as the core changes that
//! caused them, so a commit and its payment are durable together or not at
//! all.
//!
//! Like the core it takes `now` and returns what to do; it never reads a
//! clock or does IO. The simulator drives it exactly as the coordinator does.

use std::collections::HashMap;

use iog_ledger::billing::{self, JobTerms};
use iog_ledger::{AccountId, Amount, Ledger, LedgerError, Op, Outcome, PendingState, TransferId};
use iog_types::{JobId, UnixMs};

use crate::event::{Action, Change, Event};

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
        let mut payments =
            Payments { ledger, fee_bps: fee_bps.min(FEE_BPS_MAX), running: HashMap::new(), escrows: HashMap::new() };
        for &(job_id, price_io_per_hour) in running {
            let open = escrows.get(&job_id).filter(|hold_id| {
                payments.ledger.pending_transfer(hold_id).is_some_and(|h| h.state == PendingState::Open)
            });
            if let Some(&hold_id) = open {
                payments.running.insert(job_id, PaidJob { hold_id, price_io_per_hour });
            }
        }
        payments.escrows = escrows;
        payments
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

    /// Follows one action of the core: pays a committed task of a paid
    /// job, voids the escrow of a paid job that ended or was refused.
    /// Returns an event for the core when an escrow ran dry with tasks left.
    pub fn settle(&mut self, action: &Action, now: UnixMs) -> Option<Event> {
        match action {
            Action::Persist(Change::TaskCommitted { task_id, worker_id, duration_ms, .. }) => {
                let paid = *self.running.get(&task_id.job_id)?;
                let remaining = self.ledger.pending(&paid.hold_id).unwrap_or(Amount::ZERO);
                let charge = billing::task_charge(paid.price_io_per_hour, *duration_ms, self.fee_bps, remaining);
                let ops =
                    billing::task_payment_ops(task_id.job_id.0, task_id.task_idx, &worker_id.0, paid.hold_id, charge);
                for op in ops {
                    let result = self.ledger.apply(op, now);
                    debug_assert!(result.is_ok(), "a payment within the escrow is refused: {result:?}");
                }
                let left = self.ledger.pending(&paid.hold_id).unwrap_or(Amount::ZERO);
                // The job may be done with this very commit; the core ignores
                // the event then.
                left.is_zero().then(|| Event::FailJob {
                    job_id: task_id.job_id,
                    reason: format!(
                        "its escrow is spent: the budget paid for the tasks committed so far; \
                         submit again with a larger payment.budget for the rest (task {task_id} \
                         was paid {} of its {})",
                        charge.gross,
                        billing::task_charge(paid.price_io_per_hour, *duration_ms, 0, Amount::MAX).gross,
                    ),
                })
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
        Ok(())
    }
}
