//! Worker stake as ledger operations: staking, unstaking through a
//! cooldown, and slashing; and withdrawing earnings.
//!
//! A worker's id is the base58 of its ed25519 public key, which is also a
//! wallet address: the worker's own wallet. Stake moves from that wallet to
//! the worker's stake account, signed by the worker's key. Unstaking is a
//! hold from the stake account back to the wallet, posted once the cooldown
//! has passed; until then the stake can still be slashed, which voids the
//! unstaking holds and moves the slashed amount to the rewards pool.

use std::str::FromStr;

use crate::account::{AccountId, Address, AddressParseError};
use crate::amount::Amount;
use crate::op::{Op, TransferId};

/// The wallet of the worker with id `worker_id`.
pub fn worker_wallet(worker_id: &str) -> Result<Address, AddressParseError> {
    Address::from_str(worker_id)
}

/// Moves `amount` from the worker's wallet into its stake.
pub fn stake_op(worker_id: &str, wallet: Address, amount: Amount, request_id: &str) -> Op {
    Op::Transfer {
        id: TransferId::derive(&format!("stake {worker_id} {request_id}")),
        debit: AccountId::Wallet(wallet),
        credit: AccountId::Stake(worker_id.to_owned()),
        amount,
    }
}

/// Moves `amount` of the worker's earnings from its payout account to its
/// own wallet.
pub fn withdraw_op(worker_id: &str, wallet: Address, amount: Amount, request_id: &str) -> Op {
    Op::Transfer {
        id: TransferId::derive(&format!("withdraw {worker_id} {request_id}")),
        debit: AccountId::Payout(worker_id.to_owned()),
        credit: AccountId::Wallet(wallet),
        amount,
    }
}

/// Starts returning `amount` of the worker's stake to its wallet: a hold
/// that is posted when the cooldown has passed.
pub fn unstake_op(worker_id: &str, wallet: Address, amount: Amount, request_id: &str) -> Op {
    Op::Hold {
        id: TransferId::derive(&format!("unstake {worker_id} {request_id}")),
        debit: AccountId::Stake(worker_id.to_owned()),
        credit: AccountId::Wallet(wallet),
        amount,
        timeout_ms: None,
    }
}

/// Completes an unstaking hold whose cooldown has passed.
pub fn release_op(hold_id: TransferId, amount: Amount) -> Op {
    Op::Post { id: TransferId::derive(&format!("release {hold_id}")), pending_id: hold_id, amount }
}

/// Stops an unstaking hold so that the stake it held can be slashed.
pub fn cancel_unstake_op(hold_id: TransferId, reason_key: &str) -> Op {
    Op::Void { id: TransferId::derive(&format!("slash {reason_key} stops {hold_id}")), pending_id: hold_id }
}

/// Moves `amount` of the worker's stake to the rewards pool; `reason_key`
/// names the proof of cheating, so one proof slashes once.
pub fn slash_op(worker_id: &str, amount: Amount, reason_key: &str) -> Op {
    Op::Transfer {
        id: TransferId::derive(&format!("slash {worker_id} {reason_key}")),
        debit: AccountId::Stake(worker_id.to_owned()),
        credit: AccountId::Rewards,
        amount,
    }
}
