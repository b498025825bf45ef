//! The journal's canonical byte encoding, written by hand so that it never
//! depends on a serialisation library's choices.
//!
//! ```text
//! entry    = prev_hash:[32] content hash:[32]        hash = blake3(prev_hash ‖ content)
//! content  = version:u8 (=1) seq:u64 now_ms:u64 op rejected
//! op       = 1 id debit:account credit:account amount                  transfer
//!          | 2 id debit:account credit:account amount timeout:opt_u64  hold
//!          | 3 id pending:id amount                                    post
//!          | 4 id pending:id                                           void
//!          | 5 id credit:account amount reason:string                  mint
//! account  = 1 public_key:[32] | 2 worker:string | 3 job:u64 | 4 worker:string | 5 | 6 | 7
//!            (wallet, payout, escrow, stake, fees, rewards, mint)
//! rejected = 0 | 1 code:u8                                              (ErrorCode::number)
//! id       = u128 big-endian; amount, seq, now_ms, job = u64 big-endian
//! string   = length:u32 big-endian, then that many bytes of UTF-8
//! opt_u64  = 0 | 1 u64
//! ```
//!
//! Every value has exactly one encoding and decoding is strict (known tags
//! only, lengths within the ledger's limits, nothing left over), so two
//! different entries never share bytes and any changed byte either fails to
//! decode or changes the hash.

use crate::account::{AccountId, Address, WORKER_ID_BYTES_MAX};
use crate::amount::Amount;
use crate::error::ErrorCode;
use crate::ledger::MINT_REASON_BYTES_MAX;
use crate::op::{Op, TransferId};

/// The version byte at the start of every entry's content.
pub(crate) const FORMAT_VERSION: u8 = 1;

/// Bytes that are not an encoded journal entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("entry ends early, inside its {what}")]
    Truncated { what: &'static str },
    #[error("{n_bytes} bytes left over after the entry")]
    TrailingBytes { n_bytes: usize },
    #[error("entry format version {version} is unknown; this build reads version {FORMAT_VERSION}")]
    UnknownVersion { version: u8 },
    #[error("unknown {what} tag {tag}")]
    UnknownTag { what: &'static str, tag: u8 },
    #[error("{what} is {n_bytes} bytes, more than the {max_bytes} allowed")]
    TooLong { what: &'static str, n_bytes: usize, max_bytes: usize },
    #[error("{what} is not UTF-8")]
    NotUtf8 { what: &'static str },
}

/// The content of an entry: what its hash covers after the previous hash.
pub(crate) fn encode_content(out: &mut Vec<u8>, seq: u64, now_ms: u64, op: &Op, rejected: Option<ErrorCode>) {
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&now_ms.to_be_bytes());
    encode_op(out, op);
    match rejected {
        None => out.push(0),
        Some(code) => {
            out.push(1);
            out.push(code.number());
        }
    }
}

fn encode_op(out: &mut Vec<u8>, op: &Op) {
    match op {
        Op::Transfer { id, debit, credit, amount } => {
            out.push(1);
            encode_id(out, *id);
            encode_account(out, debit);
            encode_account(out, credit);
            encode_amount(out, *amount);
        }
        Op::Hold { id, debit, credit, amount, timeout_ms } => {
            out.push(2);
            encode_id(out, *id);
            encode_account(out, debit);
            encode_account(out, credit);
            encode_amount(out, *amount);
            match timeout_ms {
                None => out.push(0),
                Some(timeout_ms) => {
                    out.push(1);
                    out.extend_from_slice(&timeout_ms.to_be_bytes());
                }
            }
        }
        Op::Post { id, pending_id, amount } => {
            out.push(3);
            encode_id(out, *id);
            encode_id(out, *pending_id);
            encode_amount(out, *amount);
        }
        Op::Void { id, pending_id } => {
            out.push(4);
            encode_id(out, *id);
            encode_id(out, *pending_id);
        }
        Op::Mint { id, credit, amount, reason } => {
            out.push(5);
            encode_id(out, *id);
            encode_account(out, credit);
            encode_amount(out, *amount);
            encode_string(out, reason);
        }
    }
}

fn encode_id(out: &mut Vec<u8>, id: TransferId) {
    out.extend_from_slice(&id.0.to_be_bytes());
}

fn encode_amount(out: &mut Vec<u8>, amount: Amount) {
    out.extend_from_slice(&amount.base_units().to_be_bytes());
}

fn encode_account(out: &mut Vec<u8>, account: &AccountId) {
    match account {
        AccountId::Wallet(address) => {
            out.push(1);
            out.extend_from_slice(address.public_key());
        }
        AccountId::Payout(worker_id) => {
            out.push(2);
            encode_string(out, worker_id);
        }
        AccountId::Escrow(job_id) => {
            out.push(3);
            out.extend_from_slice(&job_id.to_be_bytes());
        }
        AccountId::Stake(worker_id) => {
            out.push(4);
            encode_string(out, worker_id);
        }
        AccountId::Fees => out.push(5),
        AccountId::Rewards => out.push(6),
        AccountId::Mint => out.push(7),
    }
}

fn encode_string(out: &mut Vec<u8>, text: &str) {
    // Strings in a journal entry are worker ids and mint reasons, which the
    // ledger limits to a few hundred bytes before it journals anything.
    let len = u32::try_from(text.len()).expect("journaled strings are limited far below 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(text.as_bytes());
}

/// An entry's fields as decoded, before the entry is put together.
pub(crate) struct Decoded {
    pub prev_hash: [u8; 32],
    pub seq: u64,
    pub now_ms: u64,
    pub op: Op,
    pub rejected: Option<ErrorCode>,
    pub hash: [u8; 32],
}

pub(crate) fn decode_entry(bytes: &[u8]) -> Result<Decoded, DecodeError> {
    let mut reader = Reader { bytes };
    let prev_hash = reader.array("prev_hash")?;
    let version = reader.u8("version")?;
    if version != FORMAT_VERSION {
        return Err(DecodeError::UnknownVersion { version });
    }
    let seq = reader.u64("seq")?;
    let now_ms = reader.u64("now_ms")?;
    let op = decode_op(&mut reader)?;
    let rejected = match reader.u8("rejected")? {
        0 => None,
        1 => {
            let number = reader.u8("error code")?;
            Some(ErrorCode::from_number(number).ok_or(DecodeError::UnknownTag { what: "error code", tag: number })?)
        }
        tag => return Err(DecodeError::UnknownTag { what: "rejected", tag }),
    };
    let hash = reader.array("hash")?;
    if !reader.bytes.is_empty() {
        return Err(DecodeError::TrailingBytes { n_bytes: reader.bytes.len() });
    }
    Ok(Decoded { prev_hash, seq, now_ms, op, rejected, hash })
}

fn decode_op(reader: &mut Reader<'_>) -> Result<Op, DecodeError> {
    let op = match reader.u8("op")? {
        1 => Op::Transfer {
            id: reader.id("id")?,
            debit: decode_account(reader)?,
            credit: decode_account(reader)?,
            amount: reader.amount()?,
        },
        2 => Op::Hold {
            id: reader.id("id")?,
            debit: decode_account(reader)?,
            credit: decode_account(reader)?,
            amount: reader.amount()?,
            timeout_ms: match reader.u8("timeout")? {
                0 => None,
                1 => Some(reader.u64("timeout")?),
                tag => return Err(DecodeError::UnknownTag { what: "timeout", tag }),
            },
        },
        3 => Op::Post { id: reader.id("id")?, pending_id: reader.id("pending id")?, amount: reader.amount()? },
        4 => Op::Void { id: reader.id("id")?, pending_id: reader.id("pending id")? },
        5 => Op::Mint {
            id: reader.id("id")?,
            credit: decode_account(reader)?,
            amount: reader.amount()?,
            reason: reader.string("mint reason", MINT_REASON_BYTES_MAX)?,
        },
        tag => return Err(DecodeError::UnknownTag { what: "op", tag }),
    };
    Ok(op)
}

fn decode_account(reader: &mut Reader<'_>) -> Result<AccountId, DecodeError> {
    let account = match reader.u8("account")? {
        1 => AccountId::Wallet(Address::from_public_key(reader.array("wallet address")?)),
        2 => AccountId::Payout(reader.string("worker id", WORKER_ID_BYTES_MAX)?),
        3 => AccountId::Escrow(reader.u64("job id")?),
        4 => AccountId::Stake(reader.string("worker id", WORKER_ID_BYTES_MAX)?),
        5 => AccountId::Fees,
        6 => AccountId::Rewards,
        7 => AccountId::Mint,
        tag => return Err(DecodeError::UnknownTag { what: "account", tag }),
    };
    Ok(account)
}

/// Reads from the front of the bytes; every read names what it reads, for
/// the error when the bytes end early.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&[u8], DecodeError> {
        if self.bytes.len() < n {
            return Err(DecodeError::Truncated { what });
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let head = self.take(N, what)?;
        Ok(head.try_into().expect("take returns exactly N bytes"))
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    fn id(&mut self, what: &'static str) -> Result<TransferId, DecodeError> {
        Ok(TransferId(u128::from_be_bytes(self.array(what)?)))
    }

    fn amount(&mut self) -> Result<Amount, DecodeError> {
        Ok(Amount::from_base_units(self.u64("amount")?))
    }

    fn string(&mut self, what: &'static str, max_bytes: usize) -> Result<String, DecodeError> {
        let len = u32::from_be_bytes(self.array(what)?);
        // Checked before taking, so a corrupt length cannot ask for a large
        // allocation.
        let n_bytes = usize::try_from(len).unwrap_or(usize::MAX);
        if n_bytes > max_bytes {
            return Err(DecodeError::TooLong { what, n_bytes, max_bytes });
        }
        let bytes = self.take(n_bytes, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError::NotUtf8 { what })
    }
}
