//! Who holds $IO: wallets, worker payouts and stakes, job escrows and the
//! network's own accounts.

use std::fmt;
use std::str::FromStr;

/// Longest worker id an account may name, in bytes. A worker id is the
/// base58 of a 32-byte key (44 characters at most); the margin leaves room
/// for test and simulator names.
pub const WORKER_ID_BYTES_MAX: usize = 128;

/// Longest text [`Address::from_str`] decodes; base58 of 32 bytes is at most
/// 44 characters.
const ADDRESS_CHARS_MAX: usize = 64;

/// A wallet's address: an ed25519 public key, written in base58.
///
/// The ledger does not check that the bytes are a point on the curve; the
/// shell that accepts a signed request does, when it verifies the signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Address([u8; 32]);

impl Address {
    pub fn from_public_key(public_key: [u8; 32]) -> Address {
        Address(public_key)
    }

    pub fn public_key(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.0).into_string())
    }
}

/// Text that is not an [`Address`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressParseError {
    #[error(
        "an address is the base58 of a 32-byte ed25519 public key, at most {ADDRESS_CHARS_MAX} characters; got {chars}"
    )]
    TooLong { chars: usize },
    #[error("not base58: {reason}")]
    NotBase58 { reason: String },
    #[error("an address is the base58 of a 32-byte ed25519 public key; this decodes to {bytes} bytes")]
    WrongLength { bytes: usize },
}

impl FromStr for Address {
    type Err = AddressParseError;

    fn from_str(text: &str) -> Result<Address, AddressParseError> {
        let chars = text.chars().count();
        if chars > ADDRESS_CHARS_MAX {
            return Err(AddressParseError::TooLong { chars });
        }
        let bytes =
            bs58::decode(text).into_vec().map_err(|err| AddressParseError::NotBase58 { reason: err.to_string() })?;
        let key = <[u8; 32]>::try_from(bytes.as_slice())
            .map_err(|_| AddressParseError::WrongLength { bytes: bytes.len() })?;
        Ok(Address(key))
    }
}

/// An account of the ledger. Accounts need no opening: one that was never
/// credited has a zero balance.
///
/// Each has a stable text form, its `Display`, which `FromStr` reads back:
/// `wallet:<base58 address>`, `payout:<worker id>`, `escrow:j-<16 hex>`,
/// `stake:<worker id>`, `fees`, `rewards`, `mint`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccountId {
    /// A person's or organisation's $IO, controlled by the key of the address.
    Wallet(Address),
    /// What a worker has earned and not yet withdrawn, by worker id.
    Payout(String),
    /// A job's budget while it runs, by job id (the `u64` of `j-<16 hex>`).
    Escrow(u64),
    /// What a worker has staked, by worker id; slashed only on proven cheating.
    Stake(String),
    /// The network's fees.
    Fees,
    /// The pool that uptime and challenge rewards are paid from.
    Rewards,
    /// The source side of minting. Its balance is minus the supply: the only
    /// balance that may be negative, and only [`Ledger::mint`] moves it.
    ///
    /// [`Ledger::mint`]: crate::Ledger::mint
    Mint,
}

impl AccountId {
    /// Why the ledger cannot use this account, if it cannot: a worker id
    /// must be 1 to [`WORKER_ID_BYTES_MAX`] printable ASCII characters
    /// without spaces, so that every account's text form reads back.
    pub fn problem(&self) -> Option<&'static str> {
        match self {
            AccountId::Payout(worker_id) | AccountId::Stake(worker_id) => worker_id_problem(worker_id),
            AccountId::Wallet(_) | AccountId::Escrow(_) | AccountId::Fees | AccountId::Rewards | AccountId::Mint => {
                None
            }
        }
    }
}

// The message below spells the limit out.
const _: () = assert!(WORKER_ID_BYTES_MAX == 128);

fn worker_id_problem(worker_id: &str) -> Option<&'static str> {
    let printable = worker_id.bytes().all(|b| b.is_ascii_graphic());
    if worker_id.is_empty() || worker_id.len() > WORKER_ID_BYTES_MAX || !printable {
        Some("a worker id is 1 to 128 printable ASCII characters without spaces")
    } else {
        None
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountId::Wallet(address) => write!(f, "wallet:{address}"),
            AccountId::Payout(worker_id) => write!(f, "payout:{worker_id}"),
            AccountId::Escrow(job_id) => write!(f, "escrow:j-{job_id:016x}"),
            AccountId::Stake(worker_id) => write!(f, "stake:{worker_id}"),
            AccountId::Fees => f.write_str("fees"),
            AccountId::Rewards => f.write_str("rewards"),
            AccountId::Mint => f.write_str("mint"),
        }
    }
}

/// Text that is not an [`AccountId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid account {text:?}: {reason}")]
pub struct AccountParseError {
    pub text: String,
    pub reason: String,
}

impl FromStr for AccountId {
    type Err = AccountParseError;

    fn from_str(text: &str) -> Result<AccountId, AccountParseError> {
        let err = |reason: String| AccountParseError { text: text.to_owned(), reason };
        let (kind, rest) = match text.split_once(':') {
            Some((kind, rest)) => (kind, Some(rest)),
            None => (text, None),
        };
        match (kind, rest) {
            ("fees", None) => Ok(AccountId::Fees),
            ("rewards", None) => Ok(AccountId::Rewards),
            ("mint", None) => Ok(AccountId::Mint),
            ("fees" | "rewards" | "mint", Some(_)) => Err(err(format!("`{kind}` takes nothing after it"))),
            ("wallet", Some(address)) => {
                address.parse().map(AccountId::Wallet).map_err(|e: AddressParseError| err(e.to_string()))
            }
            ("payout" | "stake", Some(worker_id)) => match worker_id_problem(worker_id) {
                Some(problem) => Err(err(problem.to_owned())),
                None if kind == "payout" => Ok(AccountId::Payout(worker_id.to_owned())),
                None => Ok(AccountId::Stake(worker_id.to_owned())),
            },
            ("escrow", Some(job_id)) => parse_job_id(job_id)
                .map(AccountId::Escrow)
                .ok_or_else(|| err("an escrow names its job as `j-` and 16 hex digits".to_owned())),
            ("wallet" | "payout" | "escrow" | "stake", None) => {
                let what = match kind {
                    "wallet" => "address",
                    "escrow" => "job id",
                    _ => "worker id",
                };
                Err(err(format!("write `{kind}:<{what}>`")))
            }
            _ => Err(err(format!(
                "unknown account kind `{kind}`: expected wallet, payout, escrow, stake, fees, rewards or mint"
            ))),
        }
    }
}

fn parse_job_id(text: &str) -> Option<u64> {
    let hex = text.strip_prefix("j-")?;
    if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}
