//! Why the ledger refuses an operation, and why a journal does not replay.

use std::fmt;

use crate::account::AccountId;
use crate::amount::Amount;
use crate::journal::VerifyError;
use crate::ledger::{HOLD_TIMEOUT_MS_MAX, MINT_REASON_BYTES_MAX};
use crate::op::TransferId;

/// An operation the ledger refused.
///
/// Two kinds, told apart by [`LedgerError::is_recorded`]:
///
/// - Refusals that follow from the call alone (a malformed body, an id
///   already used for another body) are not recorded: the ledger and its
///   journal stay as they were and the id stays free. Retrying the same body
///   gives the same refusal anyway.
/// - Refusals by the ledger's state (not enough funds, a hold that is gone)
///   are recorded like successes: the journal holds the operation with the
///   refusal's code, the id is spent, and a retry with the same body answers
///   the same refusal even if the state has changed since. This is
///   TigerBeetle's rule, and it keeps a timed-out caller that retries from
///   getting a payment through later that it had already seen refused (and
///   perhaps made again under a new id).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("transfer id {id} was already used for a different operation")]
    IdReused { id: TransferId },
    #[error("invalid account {account}: {reason}")]
    InvalidAccount { account: AccountId, reason: &'static str },
    #[error("the mint account moves only through mint")]
    MintAccount,
    #[error("debit and credit are the same account {account}")]
    SameAccount { account: AccountId },
    #[error("amount must be more than 0 IO")]
    ZeroAmount,
    #[error("hold timeout must be 1 to {HOLD_TIMEOUT_MS_MAX} ms, got {timeout_ms}")]
    InvalidTimeout { timeout_ms: u64 },
    #[error("mint reason must be 1 to {MINT_REASON_BYTES_MAX} bytes, got {bytes}")]
    InvalidReason { bytes: usize },
    #[error("insufficient funds in {account}: {balance} available, {needed} needed")]
    InsufficientFunds { account: AccountId, balance: Amount, needed: Amount },
    #[error("minting {amount} would take the supply past {}: {supply} already minted", Amount::MAX)]
    SupplyOverflow { supply: Amount, amount: Amount },
    #[error("pending transfer {pending_id} not found")]
    PendingNotFound { pending_id: TransferId },
    #[error("pending transfer {pending_id} is already fully posted")]
    PendingPosted { pending_id: TransferId },
    #[error("pending transfer {pending_id} is already voided")]
    PendingVoided { pending_id: TransferId },
    #[error("pending transfer {pending_id} expired at {expires_at_ms} ms and can only be voided")]
    PendingExpired { pending_id: TransferId, expires_at_ms: u64 },
    #[error("cannot post {requested} of pending transfer {pending_id}: only {remaining} remains")]
    ExceedsPending { pending_id: TransferId, remaining: Amount, requested: Amount },
}

impl LedgerError {
    /// The stable code of this refusal, for APIs and the journal.
    pub fn code(&self) -> ErrorCode {
        match self {
            LedgerError::IdReused { .. } => ErrorCode::IdReused,
            LedgerError::InvalidAccount { .. } => ErrorCode::InvalidAccount,
            LedgerError::MintAccount => ErrorCode::MintAccount,
            LedgerError::SameAccount { .. } => ErrorCode::SameAccount,
            LedgerError::ZeroAmount => ErrorCode::ZeroAmount,
            LedgerError::InvalidTimeout { .. } => ErrorCode::InvalidTimeout,
            LedgerError::InvalidReason { .. } => ErrorCode::InvalidReason,
            LedgerError::InsufficientFunds { .. } => ErrorCode::InsufficientFunds,
            LedgerError::SupplyOverflow { .. } => ErrorCode::SupplyOverflow,
            LedgerError::PendingNotFound { .. } => ErrorCode::PendingNotFound,
            LedgerError::PendingPosted { .. } => ErrorCode::PendingPosted,
            LedgerError::PendingVoided { .. } => ErrorCode::PendingVoided,
            LedgerError::PendingExpired { .. } => ErrorCode::PendingExpired,
            LedgerError::ExceedsPending { .. } => ErrorCode::ExceedsPending,
        }
    }

    /// Whether the refusal spent the id and went into the journal; see the
    /// type's documentation.
    pub fn is_recorded(&self) -> bool {
        self.code().is_recorded()
    }
}

/// The stable code of a [`LedgerError`]: its name in APIs
/// ([`ErrorCode::as_str`]) and its number in the journal
/// ([`ErrorCode::number`]). Neither ever changes meaning; new codes get new
/// names and numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorCode {
    IdReused,
    InvalidAccount,
    MintAccount,
    SameAccount,
    ZeroAmount,
    InvalidTimeout,
    InvalidReason,
    InsufficientFunds,
    SupplyOverflow,
    PendingNotFound,
    PendingPosted,
    PendingVoided,
    PendingExpired,
    ExceedsPending,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 14] = [
        ErrorCode::IdReused,
        ErrorCode::InvalidAccount,
        ErrorCode::MintAccount,
        ErrorCode::SameAccount,
        ErrorCode::ZeroAmount,
        ErrorCode::InvalidTimeout,
        ErrorCode::InvalidReason,
        ErrorCode::InsufficientFunds,
        ErrorCode::SupplyOverflow,
        ErrorCode::PendingNotFound,
        ErrorCode::PendingPosted,
        ErrorCode::PendingVoided,
        ErrorCode::PendingExpired,
        ErrorCode::ExceedsPending,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::IdReused => "id_reused",
            ErrorCode::InvalidAccount => "invalid_account",
            ErrorCode::MintAccount => "mint_account",
            ErrorCode::SameAccount => "same_account",
            ErrorCode::ZeroAmount => "zero_amount",
            ErrorCode::InvalidTimeout => "invalid_timeout",
            ErrorCode::InvalidReason => "invalid_reason",
            ErrorCode::InsufficientFunds => "insufficient_funds",
            ErrorCode::SupplyOverflow => "supply_overflow",
            ErrorCode::PendingNotFound => "pending_not_found",
            ErrorCode::PendingPosted => "pending_posted",
            ErrorCode::PendingVoided => "pending_voided",
            ErrorCode::PendingExpired => "pending_expired",
            ErrorCode::ExceedsPending => "exceeds_pending",
        }
    }

    /// The code's number in the journal's byte encoding. Written out rather
    /// than derived from the declaration order, so that reordering the enum
    /// cannot change the meaning of stored journals.
    pub fn number(self) -> u8 {
        match self {
            ErrorCode::IdReused => 1,
            ErrorCode::InvalidAccount => 2,
            ErrorCode::MintAccount => 3,
            ErrorCode::SameAccount => 4,
            ErrorCode::ZeroAmount => 5,
            ErrorCode::InvalidTimeout => 6,
            ErrorCode::InvalidReason => 7,
            ErrorCode::InsufficientFunds => 8,
            ErrorCode::SupplyOverflow => 9,
            ErrorCode::PendingNotFound => 10,
            ErrorCode::PendingPosted => 11,
            ErrorCode::PendingVoided => 12,
            ErrorCode::PendingExpired => 13,
            ErrorCode::ExceedsPending => 14,
        }
    }

    pub fn from_number(number: u8) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|code| code.number() == number)
    }

    /// Whether refusals with this code depend on the ledger's state, and so
    /// are recorded (see [`LedgerError`]).
    pub fn is_recorded(self) -> bool {
        matches!(
            self,
            ErrorCode::InsufficientFunds
                | ErrorCode::SupplyOverflow
                | ErrorCode::PendingNotFound
                | ErrorCode::PendingPosted
                | ErrorCode::PendingVoided
                | ErrorCode::PendingExpired
                | ErrorCode::ExceedsPending
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A journal that does not rebuild a ledger.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// The hash chain itself is broken.
    #[error(transparent)]
    Chain(#[from] VerifyError),
    /// An entry's time is before the previous entry's; the live ledger never
    /// writes such a journal.
    #[error("entry {seq}: time {now_ms} ms is before the previous entry's {last_ms} ms")]
    TimeWentBackwards { seq: u64, now_ms: u64, last_ms: u64 },
    /// The ledger would not journal this entry's operation at all: it is
    /// malformed, or its id was already used.
    #[error("entry {seq}: the ledger refuses it without recording: {error}")]
    Refused { seq: u64, error: LedgerError },
    /// The entry repeats an earlier entry's operation.
    #[error("entry {seq}: transfer id {id} is already in the journal")]
    Duplicate { seq: u64, id: TransferId },
    /// Replaying the operation gives another result than the one recorded:
    /// the journal was written by a ledger with other rules.
    #[error("entry {seq}: the journal records {}, the replay gives {}", describe(.recorded), describe(.replayed))]
    Diverged { seq: u64, recorded: Option<ErrorCode>, replayed: Option<ErrorCode> },
}

impl ReplayError {
    /// The seq of the first entry that did not replay.
    pub fn seq(&self) -> u64 {
        match self {
            ReplayError::Chain(error) => error.seq(),
            ReplayError::TimeWentBackwards { seq, .. }
            | ReplayError::Refused { seq, .. }
            | ReplayError::Duplicate { seq, .. }
            | ReplayError::Diverged { seq, .. } => *seq,
        }
    }
}

fn describe(rejected: &Option<ErrorCode>) -> String {
    match rejected {
        None => "success".to_owned(),
        Some(code) => format!("refusal {code}"),
    }
}
