//! Supply rewards: each epoch of a schedule mints a fixed amount into the
//! rewards pool, by a rule the mint's reason spells out, and shares the
//! pool among the workers that earned it.

use crate::account::AccountId;
use crate::amount::Amount;
use crate::op::{Op, TransferId};

/// The id of epoch `epoch`'s mint; answered once the epoch is paid.
pub fn epoch_mint_id(epoch: u64) -> TransferId {
    TransferId::derive(&format!("rewards epoch {epoch} mint"))
}

/// Mints `per_epoch` into the rewards pool for `epoch` of `epoch_ms`, with
/// the rule in the reason.
pub fn epoch_mint(epoch: u64, epoch_ms: u64, per_epoch: Amount) -> Op {
    Op::Mint {
        id: epoch_mint_id(epoch),
        credit: AccountId::Rewards,
        amount: per_epoch,
        reason: format!("rewards epoch {epoch}: the schedule mints {per_epoch} per epoch of {epoch_ms} ms"),
    }
}

/// Shares `pool` (the rewards pool's available balance after the mint)
/// equally among `workers` into their payout accounts; the base units that
/// do not divide evenly stay in the pool for the next epoch.
pub fn epoch_shares(epoch: u64, pool: Amount, workers: &[String]) -> Vec<Op> {
    let Some(share) = pool.checked_mul_div(1, workers.len() as u64) else {
        return Vec::new();
    };
    if share.is_zero() {
        return Vec::new();
    }
    workers
        .iter()
        .map(|worker_id| Op::Transfer {
            id: TransferId::derive(&format!("rewards epoch {epoch} {worker_id}")),
            debit: AccountId::Rewards,
            credit: AccountId::Payout(worker_id.clone()),
            amount: share,
        })
        .collect()
}
