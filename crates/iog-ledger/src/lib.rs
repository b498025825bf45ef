//! The $IO ledger, as a pure state machine.
//!
//! [`Ledger`] keeps double-entry balances in integer base units
//! ([`Amount`]): every operation debits one [`AccountId`] and credits
//! another, so balances always sum to zero, and the supply grows only
//! through [`Ledger::mint`], which debits [`AccountId::Mint`] and records its
//! reason. Holds are TigerBeetle's two-phase transfers: an escrow is held when
//! a job starts, posted in parts as tasks are paid, and voided for the rest
//! when the job ends. Every operation carries a caller-chosen [`TransferId`]
//! that makes retries safe.
//!
//! Each operation the ledger records goes into its [`Journal`] as an
//! [`Entry`] hash-chained to the one before; [`Journal::verify`] checks the
//! chain and [`Ledger::replay`] rebuilds the ledger from it, which is what
//! `iog ledger verify` does. A [`Checkpoint`] (the journal's head) is what a
//! coordinator will sign.
//!
//! ```
//! use iog_ledger::{AccountId, Address, Amount, Ledger, Outcome, TransferId};
//!
//! let io = |text: &str| text.parse::<Amount>().unwrap();
//! let user = AccountId::Wallet(Address::from_public_key([1; 32]));
//! let escrow = AccountId::Escrow(0x42);
//! let mut ledger = Ledger::new();
//! ledger.mint(TransferId::derive("faucet 1"), user.clone(), io("10"), "dev faucet".into(), 1_000)?;
//! let hold = TransferId::derive("escrow j-0000000000000042");
//! ledger.hold(hold, user.clone(), escrow.clone(), io("6"), None, 1_001)?;
//! let paid = ledger.post(TransferId::derive("pay j-0000000000000042/0"), hold, io("2"), 1_002)?;
//! assert_eq!(paid, Outcome::Posted { remaining: io("4") });
//! ledger.void(TransferId::derive("end j-0000000000000042"), hold, 1_003)?;
//! assert_eq!(ledger.balance(&user).available.to_string(), "8 IO");
//! assert_eq!(ledger.balance(&escrow).posted.to_string(), "2 IO");
//! assert_eq!(Ledger::replay(ledger.journal().entries()).unwrap(), ledger);
//! # Ok::<(), iog_ledger::LedgerError>(())
//! ```
//!
//! The ledger never reads a clock, never does IO and never draws random
//! numbers: time comes in as `now_ms`, and the same calls give the same
//! ledger and the same journal, byte for byte.

mod account;
mod amount;
pub mod billing;
mod codec;
mod error;
mod journal;
mod ledger;
mod op;
pub mod rewards;
pub mod stake;

pub use account::{AccountId, AccountParseError, Address, AddressParseError, WORKER_ID_BYTES_MAX};
pub use amount::{Amount, AmountParseError, BASE_UNITS_PER_IO, BPS_PER_WHOLE, DECIMALS, SignedAmount};
pub use codec::DecodeError;
pub use error::{ErrorCode, LedgerError, ReplayError};
pub use journal::{Checkpoint, Entry, GENESIS_HASH, Journal, VerifyError};
pub use ledger::{Balance, HOLD_TIMEOUT_MS_MAX, Ledger, MINT_REASON_BYTES_MAX, PendingState, PendingTransfer};
pub use op::{Op, Outcome, TransferId, TransferIdParseError};
