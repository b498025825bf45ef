//! The append-only, hash-chained record of every operation the ledger
//! journaled, from which anyone can rebuild and check the ledger.

use std::fmt;

use crate::codec::{self, DecodeError};
use crate::error::ErrorCode;
use crate::op::Op;

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// One journaled operation, linked to the entry before it.
///
/// `hash` = blake3(`prev_hash` ‖ content), where the content is the
/// canonical encoding of (`seq`, `now_ms`, `op`, `rejected`) described in
/// the `codec` module, so every entry commits to the whole journal before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in the journal, from 0.
    pub seq: u64,
    /// `hash` of the entry before, or [`GENESIS_HASH`] for the first.
    pub prev_hash: [u8; 32],
    /// The time the ledger applied the operation at.
    pub now_ms: u64,
    pub op: Op,
    /// `None` when the operation was applied; the code of the refusal when
    /// the ledger's state refused it (see [`crate::LedgerError`]).
    pub rejected: Option<ErrorCode>,
    pub hash: [u8; 32],
}

impl Entry {
    /// The hash this entry's fields call for, whatever its `hash` field says.
    pub fn compute_hash(&self) -> [u8; 32] {
        let mut bytes = Vec::with_capacity(128);
        bytes.extend_from_slice(&self.prev_hash);
        codec::encode_content(&mut bytes, self.seq, self.now_ms, &self.op, self.rejected);
        *blake3::hash(&bytes).as_bytes()
    }

    /// The entry's canonical bytes, for the store and for files that
    /// `iog ledger verify` reads: `prev_hash`, the content, `hash`.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(160);
        bytes.extend_from_slice(&self.prev_hash);
        codec::encode_content(&mut bytes, self.seq, self.now_ms, &self.op, self.rejected);
        bytes.extend_from_slice(&self.hash);
        bytes
    }

    /// Reads bytes written by [`Entry::encode`]. Checks their form only:
    /// whether the hashes hold is for [`Journal::verify`].
    pub fn decode(bytes: &[u8]) -> Result<Entry, DecodeError> {
        let codec::Decoded { prev_hash, seq, now_ms, op, rejected, hash } = codec::decode_entry(bytes)?;
        Ok(Entry { seq, prev_hash, now_ms, op, rejected, hash })
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{} at {} ms: {}", self.seq, self.now_ms, self.op)?;
        match self.rejected {
            Some(code) => write!(f, " (refused: {code})"),
            None => Ok(()),
        }
    }
}

/// The head of a journal: how many entries it has and the hash of the last.
///
/// This is what a coordinator signs ([`Checkpoint::signing_message`]):
/// since each entry's hash commits to every entry before it, a signature
/// over a checkpoint vouches for the whole journal up to it, and so for the
/// ledger state its replay gives. A chain bridge could anchor the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    pub n_entries: u64,
    /// The last entry's hash; [`GENESIS_HASH`] for an empty journal.
    pub head_hash: [u8; 32],
}

impl Checkpoint {
    /// The checkpoint of the empty journal.
    pub const GENESIS: Checkpoint = Checkpoint { n_entries: 0, head_hash: GENESIS_HASH };

    /// The bytes a coordinator signs for this checkpoint.
    pub fn signing_message(&self) -> Vec<u8> {
        format!("iog ledger checkpoint v1\n{}\n{}\n", self.n_entries, hex::encode(self.head_hash)).into_bytes()
    }
}

impl fmt::Display for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} entries, head {}", self.n_entries, hex::encode(self.head_hash))
    }
}

/// A journal whose chain does not hold, at the first bad entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("entry {seq}: its seq field says {found}")]
    WrongSeq { seq: u64, found: u64 },
    #[error("entry {seq}: prev_hash is not the hash of the entry before it")]
    WrongPrevHash { seq: u64 },
    #[error("entry {seq}: hash does not match the entry's contents")]
    WrongHash { seq: u64 },
}

impl VerifyError {
    /// The seq the first bad entry has by its position in the journal.
    pub fn seq(&self) -> u64 {
        match self {
            VerifyError::WrongSeq { seq, .. } | VerifyError::WrongPrevHash { seq } | VerifyError::WrongHash { seq } => {
                *seq
            }
        }
    }
}

/// The entries of one ledger, in order. Only the ledger appends.
///
/// The whole journal stays in memory for now; a store will keep older
/// entries on disk and read them back for a replay.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Journal {
    entries: Vec<Entry>,
}

impl Journal {
    pub fn new() -> Journal {
        Journal::default()
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn last(&self) -> Option<&Entry> {
        self.entries.last()
    }

    pub fn checkpoint(&self) -> Checkpoint {
        match self.entries.last() {
            Some(last) => Checkpoint { n_entries: last.seq + 1, head_hash: last.hash },
            None => Checkpoint::GENESIS,
        }
    }

    /// Checks a whole journal from its first entry: seqs count up from 0,
    /// each `prev_hash` is the hash before, each hash matches its entry.
    /// Returns the journal's checkpoint, or names the first bad entry.
    pub fn verify(entries: &[Entry]) -> Result<Checkpoint, VerifyError> {
        Journal::verify_after(Checkpoint::GENESIS, entries)
    }

    /// Checks entries that continue the journal at `start`, so that a
    /// verifier holding a trusted (signed) checkpoint checks only what came
    /// after it.
    pub fn verify_after(start: Checkpoint, entries: &[Entry]) -> Result<Checkpoint, VerifyError> {
        let mut head = start;
        for entry in entries {
            let seq = head.n_entries;
            if entry.seq != seq {
                return Err(VerifyError::WrongSeq { seq, found: entry.seq });
            }
            if entry.prev_hash != head.head_hash {
                return Err(VerifyError::WrongPrevHash { seq });
            }
            if entry.compute_hash() != entry.hash {
                return Err(VerifyError::WrongHash { seq });
            }
            // Saturating: a start checkpoint read from a file may claim any count.
            head = Checkpoint { n_entries: seq.saturating_add(1), head_hash: entry.hash };
        }
        Ok(head)
    }

    pub(crate) fn append(&mut self, now_ms: u64, op: Op, rejected: Option<ErrorCode>) {
        let head = self.checkpoint();
        let mut entry = Entry { seq: head.n_entries, prev_hash: head.head_hash, now_ms, op, rejected, hash: [0; 32] };
        entry.hash = entry.compute_hash();
        self.entries.push(entry);
    }
}
