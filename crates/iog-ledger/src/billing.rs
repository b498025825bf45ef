//! How a job pays for its tasks: the ledger operations of escrow, task
//! payment and refund, as pure functions of the job's terms.
//!
//! A paid job moves money in three steps, each a ledger operation whose id is
//! derived from what it is for, so a retry after a crash computes the same
//! id and the ledger answers it without paying twice:
//!
//! 1. **Escrow.** When the job is accepted its budget is held from the
//!    payer's wallet for the job's escrow account ([`escrow_hold`]). The id
//!    comes from the payer and the submission's request id
//!    ([`escrow_hold_id`]), so a replayed submission finds its id used.
//! 2. **Payment.** Each committed task posts its charge from the hold into
//!    the escrow account and splits it there: the worker's share to its
//!    payout account, the network fee to the fee account
//!    ([`task_payment_ops`]). The charge is the job's price per device-hour
//!    times the task's run time, rounded down, and never more than what the
//!    hold has left ([`task_charge`]).
//! 3. **Refund.** When the job ends (done, failed or cancelled) the hold is
//!    voided and what was not spent goes back to the payer ([`escrow_void`]).
//!
//! The escrow account's own balance is zero between operations: what a post
//! brings in leaves at once to the worker and the fee account.

use crate::account::{AccountId, Address};
use crate::amount::{Amount, BPS_PER_WHOLE};
use crate::ledger::Ledger;
use crate::op::{Op, TransferId};

/// Milliseconds in an hour, the unit prices are quoted in.
pub const MS_PER_HOUR: u64 = 3_600_000;

/// What a paid job's submitter agreed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobTerms {
    /// The wallet the budget is held from.
    pub payer: Address,
    /// Held in escrow when the job is accepted.
    pub budget: Amount,
    /// Paid per device-hour of task run time.
    pub price_io_per_hour: Amount,
}

/// The escrow hold of the submission `request_id` by `payer`.
pub fn escrow_hold_id(payer: &Address, request_id: &str) -> TransferId {
    TransferId::derive(&format!("escrow {payer} {request_id}"))
}

/// Holds the job's budget from the payer's wallet for the job's escrow.
/// Holds have no timeout: the job's end voids them.
pub fn escrow_hold(hold_id: TransferId, job: u64, terms: &JobTerms) -> Op {
    Op::Hold {
        id: hold_id,
        debit: AccountId::Wallet(terms.payer),
        credit: AccountId::Escrow(job),
        amount: terms.budget,
        timeout_ms: None,
    }
}

/// Ends the job's escrow, releasing what was not spent to the payer.
pub fn escrow_void(job: u64, hold_id: TransferId) -> Op {
    Op::Void { id: TransferId::derive(&format!("end j-{job:016x}")), pending_id: hold_id }
}

/// The ids of the operations that pay one task. One set per task, so a
/// task is paid at most once whatever happens around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskPaymentIds {
    /// The post from the job's hold into its escrow account.
    pub post: TransferId,
    /// The worker's share, escrow to payout.
    pub worker: TransferId,
    /// The network fee, escrow to fees.
    pub fee: TransferId,
}

/// The ids of the operations that pay task `task_idx` of `job`.
pub fn task_payment_ids(job: u64, task_idx: u32) -> TaskPaymentIds {
    let id = |share: &str| TransferId::derive(&format!("pay j-{job:016x}/{task_idx} {share}"));
    TaskPaymentIds { post: id("post"), worker: id("worker"), fee: id("fee") }
}

/// How one task's charge divides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskCharge {
    /// Taken from the escrow: `worker + fee`.
    pub gross: Amount,
    /// To the worker's payout account.
    pub worker: Amount,
    /// To the network's fee account.
    pub fee: Amount,
}

/// The shortest run time a committed task is charged for: a task that
/// finished within its first millisecond still used the device.
pub const BILLED_MS_MIN: u64 = 1;

/// The charge for `duration_ms` of run time (at least [`BILLED_MS_MIN`]) at
/// `price_io_per_hour`, rounded down to the base unit, capped at
/// `remaining` (what the escrow still holds), with `fee_bps` basis points
/// of it (rounded down) to the network. No base unit is lost:
/// `worker + fee == gross`.
///
/// `fee_bps` above [`BPS_PER_WHOLE`] is taken as the whole charge.
pub fn task_charge(price_io_per_hour: Amount, duration_ms: u64, fee_bps: u32, remaining: Amount) -> TaskCharge {
    let billed_ms = duration_ms.max(BILLED_MS_MIN);
    // An amount times milliseconds over an hour fits u64 whenever the
    // result does; past that the cap applies anyway.
    let gross = price_io_per_hour.checked_mul_div(billed_ms, MS_PER_HOUR).unwrap_or(Amount::MAX).min(remaining);
    let (fee, worker) = gross.split_bps(fee_bps.min(BPS_PER_WHOLE)).expect("bps is at most the whole");
    TaskCharge { gross, worker, fee }
}

/// The operations that pay task `task_idx` of `job` to `worker_id`: the
/// post from the hold, then the worker's share and the fee out of the
/// escrow. Empty when the charge is zero (the ledger moves no zero amounts).
pub fn task_payment_ops(job: u64, task_idx: u32, worker_id: &str, hold_id: TransferId, charge: TaskCharge) -> Vec<Op> {
    let mut ops = Vec::with_capacity(3);
    if charge.gross.is_zero() {
        return ops;
    }
    let ids = task_payment_ids(job, task_idx);
    ops.push(Op::Post { id: ids.post, pending_id: hold_id, amount: charge.gross });
    if !charge.worker.is_zero() {
        ops.push(Op::Transfer {
            id: ids.worker,
            debit: AccountId::Escrow(job),
            credit: AccountId::Payout(worker_id.to_owned()),
            amount: charge.worker,
        });
    }
    if !charge.fee.is_zero() {
        ops.push(Op::Transfer {
            id: ids.fee,
            debit: AccountId::Escrow(job),
            credit: AccountId::Fees,
            amount: charge.fee,
        });
    }
    ops
}

/// A committed task (or replica of one) of a paid job, as the
/// coordinator's store records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommittedTask<'a> {
    pub task_idx: u32,
    /// Its result was accepted by verification (or needed none), so it is
    /// paid; a result not accepted (proven wrong, or still waiting for
    /// its replicas) must not be.
    pub accepted: bool,
    pub worker_id: &'a str,
    pub duration_ms: u64,
    /// The committing lease's price per hour (the worker's ask times the
    /// devices the task used).
    pub price_io_per_hour: Amount,
}

/// Checks that the job `job` paid each of its accepted results exactly
/// once, to the worker that committed it, and nothing else: no result that
/// was not accepted (a wrong one) is paid, every payment names an accepted
/// result (what the hold posted is the sum of their payments),
/// no task's price exceeds `price_io_per_hour_max` (the job's cap for all
/// of a task's devices), no payment exceeds the task's charge at its
/// price, each worker
/// share goes to the committing worker's payout account, and a task goes
/// unpaid only when its charge was zero or the escrow was spent.
pub fn check_job_payments(
    ledger: &Ledger,
    job: u64,
    hold_id: TransferId,
    price_io_per_hour_max: Amount,
    committed: &[CommittedTask<'_>],
) -> Result<(), String> {
    let job_name = format!("j-{job:016x}");
    let hold =
        ledger.pending_transfer(&hold_id).ok_or_else(|| format!("job {job_name}: its escrow hold is missing"))?;
    let exhausted = hold.posted == hold.amount;
    let mut paid_total: u128 = 0;
    for task in committed {
        let ids = task_payment_ids(job, task.task_idx);
        let task_name = format!("task {job_name}/{}", task.task_idx);
        if !task.accepted {
            if ledger.answer(&ids.post).is_some() {
                return Err(format!("{task_name} was paid but its result was not accepted"));
            }
            continue;
        }
        if task.price_io_per_hour > price_io_per_hour_max {
            return Err(format!(
                "{task_name} ran at {} per hour, above the job's cap of {price_io_per_hour_max}",
                task.price_io_per_hour
            ));
        }
        let full_charge = task_charge(task.price_io_per_hour, task.duration_ms, 0, Amount::MAX).gross;
        match ledger.answer(&ids.post) {
            Some((Op::Post { pending_id, amount, .. }, Ok(_))) if *pending_id == hold_id => {
                if *amount > full_charge {
                    return Err(format!("{task_name} was paid {amount}, more than its charge {full_charge}"));
                }
                paid_total += u128::from(amount.base_units());
                let mut shares: u128 = 0;
                for id in [ids.worker, ids.fee] {
                    match ledger.answer(&id) {
                        Some((Op::Transfer { debit, credit, amount, .. }, Ok(_))) => {
                            if *debit != AccountId::Escrow(job) {
                                return Err(format!("{task_name}: a share of its pay came from {debit}"));
                            }
                            let expected = if id == ids.worker {
                                AccountId::Payout(task.worker_id.to_owned())
                            } else {
                                AccountId::Fees
                            };
                            if *credit != expected {
                                return Err(format!(
                                    "{task_name}: a share of its pay went to {credit}, not {expected}"
                                ));
                            }
                            shares += u128::from(amount.base_units());
                        }
                        Some((op, result)) => {
                            return Err(format!("{task_name}: pay share {id} is {op} with result {result:?}"));
                        }
                        None => {}
                    }
                }
                if shares != u128::from(amount.base_units()) {
                    return Err(format!(
                        "{task_name}: {amount} was posted but its shares add up to {shares} base units"
                    ));
                }
            }
            Some((op, result)) => return Err(format!("{task_name}: its payment id holds {op} with result {result:?}")),
            None if full_charge.is_zero() || exhausted => {}
            None => return Err(format!("{task_name} is accepted but was never paid")),
        }
    }
    if paid_total != u128::from(hold.posted.base_units()) {
        return Err(format!(
            "job {job_name}: its escrow posted {} but its accepted results were paid {paid_total} base units: \
             money left the escrow for no accepted result",
            hold.posted
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn io(text: &str) -> Amount {
        text.parse().expect("test amount")
    }

    #[test]
    fn charge_is_price_times_time_capped_by_remaining() {
        let charge = task_charge(io("3.6"), 1_000, 250, io("100"));
        assert_eq!(charge.gross, io("0.001"));
        assert_eq!(charge.fee, io("0.000025"));
        assert_eq!(charge.worker, io("0.000975"));
        let capped = task_charge(io("3.6"), 1_000, 250, io("0.0005"));
        assert_eq!(capped.gross, io("0.0005"));
        let huge = task_charge(Amount::MAX, u64::MAX, 0, io("7"));
        assert_eq!(huge, TaskCharge { gross: io("7"), worker: io("7"), fee: Amount::ZERO });
    }

    #[test]
    fn zero_charge_moves_nothing() {
        assert_eq!(task_charge(io("3.6"), 0, 0, io("1")).gross, io("0.000001"), "a millisecond at least");
        let charge = task_charge(io("1"), 10, 500, Amount::ZERO);
        assert!(charge.gross.is_zero());
        assert!(task_payment_ops(1, 0, "w", TransferId(1), charge).is_empty());
    }
}
