//! The operations the ledger applies, their ids and their outcomes.

use std::fmt;
use std::str::FromStr;

use crate::account::AccountId;
use crate::amount::Amount;

/// Context string for [`TransferId::derive`]; changing it changes every
/// derived id, so it carries a version.
const DERIVE_CONTEXT: &str = "iog-ledger 2025 transfer id v1";

/// The caller-chosen id of one operation, the key of its idempotency.
///
/// A `u128`, as in TigerBeetle, rather than a string: fixed size in the
/// journal and the store, cheap to compare, and no length limit to police.
/// Callers that have a meaningful key ("pay task j-…/3") derive the id from
/// it with [`TransferId::derive`], so a retry after a crash computes the same
/// id without having stored it. Written as `t-` and 32 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TransferId(pub u128);

impl TransferId {
    /// The id for a caller's key: the first 16 bytes of a blake3 key
    /// derivation over `key`, so distinct keys give distinct ids.
    pub fn derive(key: &str) -> TransferId {
        let hash = blake3::derive_key(DERIVE_CONTEXT, key.as_bytes());
        let mut first = [0u8; 16];
        first.copy_from_slice(&hash[..16]);
        TransferId(u128::from_be_bytes(first))
    }
}

impl fmt::Display for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t-{:032x}", self.0)
    }
}

/// Text that is not a [`TransferId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid transfer id {text:?}: a transfer id is `t-` and 32 hex digits")]
pub struct TransferIdParseError {
    pub text: String,
}

impl FromStr for TransferId {
    type Err = TransferIdParseError;

    fn from_str(text: &str) -> Result<TransferId, TransferIdParseError> {
        let err = || TransferIdParseError { text: text.to_owned() };
        let hex = text.strip_prefix("t-").ok_or_else(err)?;
        if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(err());
        }
        u128::from_str_radix(hex, 16).map(TransferId).map_err(|_| err())
    }
}

/// One operation on the ledger: what a call asks for, what the journal
/// records, and the body that idempotency compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Moves `amount` from `debit` to `credit` at once.
    Transfer { id: TransferId, debit: AccountId, credit: AccountId, amount: Amount },
    /// Holds `amount` of `debit`'s available balance for `credit`, until it
    /// is posted (in parts) or voided. A hold with a timeout can no longer be
    /// posted once `now_ms` reaches its creation time plus `timeout_ms`.
    Hold { id: TransferId, debit: AccountId, credit: AccountId, amount: Amount, timeout_ms: Option<u64> },
    /// Moves `amount` of the hold `pending_id` from its debit to its credit.
    Post { id: TransferId, pending_id: TransferId, amount: Amount },
    /// Releases what remains of the hold `pending_id` back to its debit.
    Void { id: TransferId, pending_id: TransferId },
    /// Creates `amount` of new $IO in `credit`, debiting [`AccountId::Mint`].
    Mint { id: TransferId, credit: AccountId, amount: Amount, reason: String },
}

impl Op {
    pub fn id(&self) -> TransferId {
        match self {
            Op::Transfer { id, .. } | Op::Hold { id, .. } | Op::Post { id, .. } | Op::Void { id, .. } => *id,
            Op::Mint { id, .. } => *id,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Transfer { id, debit, credit, amount } => write!(f, "{id} transfer {amount} {debit} -> {credit}"),
            Op::Hold { id, debit, credit, amount, timeout_ms } => {
                write!(f, "{id} hold {amount} {debit} -> {credit}")?;
                match timeout_ms {
                    Some(timeout_ms) => write!(f, " for {timeout_ms} ms"),
                    None => Ok(()),
                }
            }
            Op::Post { id, pending_id, amount } => write!(f, "{id} post {amount} of {pending_id}"),
            Op::Void { id, pending_id } => write!(f, "{id} void {pending_id}"),
            Op::Mint { id, credit, amount, reason } => write!(f, "{id} mint {amount} -> {credit} ({reason:?})"),
        }
    }
}

/// What an accepted operation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Transferred,
    /// The hold is in place; it can no longer be posted from `expires_at_ms`.
    Held {
        expires_at_ms: Option<u64>,
    },
    /// Part of a hold moved; `remaining` is still held (0: fully posted).
    Posted {
        remaining: Amount,
    },
    /// The hold ended; `released` went back to its debit account.
    Voided {
        released: Amount,
    },
    /// New $IO exists; `supply` is the total minted so far.
    Minted {
        supply: Amount,
    },
}
