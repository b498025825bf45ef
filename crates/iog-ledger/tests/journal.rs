//! The journal: its bytes, its chain, and replays that must fail.

use iog_ledger::{
    AccountId, Address, Amount, Checkpoint, DecodeError, Entry, ErrorCode, GENESIS_HASH, Journal, Ledger, LedgerError,
    Op, ReplayError, TransferId, VerifyError,
};

fn io(text: &str) -> Amount {
    text.parse().unwrap()
}

fn id(n: u128) -> TransferId {
    TransferId(n)
}

fn alice() -> AccountId {
    AccountId::Wallet(Address::from_public_key([1; 32]))
}

/// A ledger that used every kind of operation and account, with one
/// recorded refusal.
fn sample() -> Ledger {
    let mut ledger = Ledger::new();
    ledger.mint(id(1), alice(), io("10"), "faucet".into(), 1_000).unwrap();
    ledger.hold(id(2), alice(), AccountId::Escrow(9), io("4"), Some(60_000), 1_001).unwrap();
    ledger.post(id(3), id(2), io("1"), 1_002).unwrap();
    ledger.transfer(id(4), AccountId::Escrow(9), AccountId::Payout("w1".into()), io("0.9"), 1_003).unwrap();
    ledger.transfer(id(5), AccountId::Escrow(9), AccountId::Fees, io("0.1"), 1_003).unwrap();
    ledger.void(id(6), id(2), 1_004).unwrap();
    ledger.transfer(id(7), AccountId::Payout("w1".into()), AccountId::Stake("w1".into()), io("1"), 1_005).unwrap_err();
    ledger.mint(id(8), AccountId::Rewards, io("100"), "uptime rewards, epoch 1".into(), 1_006).unwrap();
    ledger
}

/// Recomputes seq, prev_hash and hash from the first entry on, as someone
/// rewriting history would.
fn rechain(entries: &mut [Entry]) {
    let mut prev_hash = GENESIS_HASH;
    for (seq, entry) in entries.iter_mut().enumerate() {
        entry.seq = seq as u64;
        entry.prev_hash = prev_hash;
        entry.hash = entry.compute_hash();
        prev_hash = entry.hash;
    }
}

#[test]
fn the_encoding_is_stable() {
    // Stored journals and signed checkpoints depend on these bytes; a change
    // here is a new format version, not a fix.
    let ledger = sample();
    let checkpoint = ledger.journal().checkpoint();
    assert_eq!(checkpoint.n_entries, 8);
    assert_eq!(
        checkpoint.to_string(),
        "8 entries, head 57cfe75e02b623bfcb25b4e3c74c32d0190739761c87ac9df188f95cafa931e4"
    );
    let first = &ledger.journal().entries()[0];
    let expected = concat!(
        "0000000000000000000000000000000000000000000000000000000000000000", // prev_hash: genesis
        "01",                                                               // format version
        "0000000000000000",                                                 // seq 0
        "00000000000003e8",                                                 // now_ms 1000
        "05",                                                               // mint
        "00000000000000000000000000000001",                                 // id
        "01",                                                               // wallet
        "0101010101010101010101010101010101010101010101010101010101010101", // its public key
        "00000002540be400",                                                 // 10 IO
        "00000006",                                                         // reason: 6 bytes
        "666175636574",                                                     // "faucet"
        "00",                                                               // not rejected
        "5e2cfa323d3ddd7af0c8c62eec26202a69279353e41a889cf93d45880989e7ee", // hash
    );
    assert_eq!(hex::encode(first.encode()), expected);
}

#[test]
fn entries_read_back_from_their_bytes() {
    let ledger = sample();
    for entry in ledger.journal().entries() {
        let bytes = entry.encode();
        assert_eq!(Entry::decode(&bytes).as_ref(), Ok(entry), "{entry}");
        assert_eq!(&bytes[..32], &entry.prev_hash);
        assert_eq!(&bytes[bytes.len() - 32..], &entry.hash);
        // The hash covers everything between.
        assert_eq!(blake3::hash(&bytes[..bytes.len() - 32]).as_bytes(), &entry.hash);
    }
    let refused = &ledger.journal().entries()[6];
    assert_eq!(refused.rejected, Some(ErrorCode::InsufficientFunds));
}

#[test]
fn malformed_bytes_are_named() {
    let ledger = sample();
    let mint = ledger.journal().entries()[0].encode();
    let hold = ledger.journal().entries()[1].encode();

    assert_eq!(Entry::decode(&mint[..20]), Err(DecodeError::Truncated { what: "prev_hash" }));
    assert_eq!(Entry::decode(&mint[..mint.len() - 1]), Err(DecodeError::Truncated { what: "hash" }));
    let mut longer = mint.clone();
    longer.extend_from_slice(&[0, 0]);
    assert_eq!(Entry::decode(&longer), Err(DecodeError::TrailingBytes { n_bytes: 2 }));
    assert_eq!(Entry::decode(&longer).unwrap_err().to_string(), "2 bytes left over after the entry");

    // Content starts after the 32-byte prev_hash: version, seq, now_ms, op tag.
    let mut bytes = mint.clone();
    bytes[32] = 2;
    assert_eq!(
        Entry::decode(&bytes).unwrap_err().to_string(),
        "entry format version 2 is unknown; this build reads version 1"
    );
    let mut bytes = mint.clone();
    bytes[32 + 1 + 16] = 9;
    assert_eq!(Entry::decode(&bytes), Err(DecodeError::UnknownTag { what: "op", tag: 9 }));
    // The mint's credit account tag follows its 16-byte id.
    let mut bytes = mint.clone();
    bytes[32 + 1 + 16 + 1 + 16] = 0;
    assert_eq!(Entry::decode(&bytes).unwrap_err().to_string(), "unknown account tag 0");
    // The reason's length follows the account (wallet: tag and 32 bytes) and the amount.
    let reason_at = 32 + 1 + 16 + 1 + 16 + 33 + 8;
    let mut bytes = mint.clone();
    bytes[reason_at..reason_at + 4].copy_from_slice(&1_000u32.to_be_bytes());
    assert_eq!(Entry::decode(&bytes).unwrap_err().to_string(), "mint reason is 1000 bytes, more than the 256 allowed");
    let mut bytes = mint.clone();
    bytes[reason_at + 4] = 0xff;
    assert_eq!(Entry::decode(&bytes), Err(DecodeError::NotUtf8 { what: "mint reason" }));
    // The hold's timeout tag comes after its two accounts and its amount.
    let timeout_at = 32 + 1 + 16 + 1 + 16 + 33 + 9 + 8;
    let mut bytes = hold.clone();
    bytes[timeout_at] = 2;
    assert_eq!(Entry::decode(&bytes), Err(DecodeError::UnknownTag { what: "timeout", tag: 2 }));
}

#[test]
fn verify_names_the_first_bad_entry() {
    let ledger = sample();
    let entries = ledger.journal().entries();
    assert_eq!(Journal::verify(entries), Ok(ledger.journal().checkpoint()));
    assert_eq!(Journal::verify(&[]), Ok(Checkpoint::GENESIS));

    let mut changed = entries.to_vec();
    changed[3].now_ms += 1;
    assert_eq!(Journal::verify(&changed), Err(VerifyError::WrongHash { seq: 3 }));
    assert_eq!(Journal::verify(&changed).unwrap_err().to_string(), "entry 3: hash does not match the entry's contents");

    let mut changed = entries.to_vec();
    changed[5].prev_hash[0] ^= 1;
    assert_eq!(Journal::verify(&changed), Err(VerifyError::WrongPrevHash { seq: 5 }));

    let mut changed = entries.to_vec();
    changed.remove(2);
    assert_eq!(Journal::verify(&changed), Err(VerifyError::WrongSeq { seq: 2, found: 3 }));
    assert_eq!(Journal::verify(&changed).unwrap_err().to_string(), "entry 2: its seq field says 3");

    // Rewriting an entry and its own hash breaks the link to the next one.
    let mut changed = entries.to_vec();
    changed[4].rejected = Some(ErrorCode::InsufficientFunds);
    changed[4].hash = changed[4].compute_hash();
    assert_eq!(Journal::verify(&changed), Err(VerifyError::WrongPrevHash { seq: 5 }));
}

#[test]
fn verify_continues_from_a_checkpoint() {
    let ledger = sample();
    let entries = ledger.journal().entries();
    let middle = Journal::verify(&entries[..5]).unwrap();
    assert_eq!(middle.n_entries, 5);
    assert_eq!(Journal::verify_after(middle, &entries[5..]), Ok(ledger.journal().checkpoint()));
    assert_eq!(Journal::verify_after(middle, &entries[4..]), Err(VerifyError::WrongSeq { seq: 5, found: 4 }));
    let wrong = Checkpoint { head_hash: [7; 32], ..middle };
    assert_eq!(Journal::verify_after(wrong, &entries[5..]), Err(VerifyError::WrongPrevHash { seq: 5 }));
}

#[test]
fn replay_rebuilds_the_same_ledger() {
    let ledger = sample();
    let replayed = Ledger::replay(ledger.journal().entries()).unwrap();
    assert_eq!(replayed, ledger);
    replayed.check().unwrap();
    // Entries read back from bytes replay too.
    let decoded: Vec<Entry> =
        ledger.journal().entries().iter().map(|entry| Entry::decode(&entry.encode()).unwrap()).collect();
    assert_eq!(Ledger::replay(&decoded).unwrap(), ledger);
}

#[test]
fn replay_refuses_a_rewritten_history() {
    let ledger = sample();
    let entries = ledger.journal().entries();

    // A broken chain.
    let mut changed = entries.to_vec();
    changed[2].now_ms += 1;
    let err = Ledger::replay(&changed).unwrap_err();
    assert_eq!((err.seq(), err.to_string()), (2, "entry 2: hash does not match the entry's contents".to_owned()));

    // A consistent chain whose recorded results are not what the ledger does.
    let mut changed = entries.to_vec();
    changed[6].rejected = None;
    rechain(&mut changed);
    let err = Ledger::replay(&changed).unwrap_err();
    assert_eq!(err, ReplayError::Diverged { seq: 6, recorded: None, replayed: Some(ErrorCode::InsufficientFunds) });
    assert_eq!(err.to_string(), "entry 6: the journal records success, the replay gives refusal insufficient_funds");

    // More money out of the escrow than it had: refused by replay.
    let mut changed = entries.to_vec();
    if let Op::Transfer { amount, .. } = &mut changed[3].op {
        *amount = io("5");
    }
    rechain(&mut changed);
    let err = Ledger::replay(&changed).unwrap_err();
    assert_eq!(err, ReplayError::Diverged { seq: 3, recorded: None, replayed: Some(ErrorCode::InsufficientFunds) });

    // An operation the ledger would never journal.
    let mut changed = entries.to_vec();
    if let Op::Mint { amount, .. } = &mut changed[7].op {
        *amount = Amount::ZERO;
    }
    rechain(&mut changed);
    assert_eq!(Ledger::replay(&changed), Err(ReplayError::Refused { seq: 7, error: LedgerError::ZeroAmount }));

    // The same operation twice.
    let mut changed = entries.to_vec();
    changed.push(changed[0].clone());
    changed[8].now_ms = 2_000;
    rechain(&mut changed);
    assert_eq!(Ledger::replay(&changed), Err(ReplayError::Duplicate { seq: 8, id: id(1) }));

    // Another operation under a used id.
    let mut changed = entries.to_vec();
    changed[7].op = Op::Void { id: id(1), pending_id: id(2) };
    rechain(&mut changed);
    assert_eq!(
        Ledger::replay(&changed),
        Err(ReplayError::Refused { seq: 7, error: LedgerError::IdReused { id: id(1) } })
    );

    // Time that goes backwards.
    let mut changed = entries.to_vec();
    changed[5].now_ms = 1_002;
    rechain(&mut changed);
    let err = Ledger::replay(&changed).unwrap_err();
    assert_eq!(err, ReplayError::TimeWentBackwards { seq: 5, now_ms: 1_002, last_ms: 1_003 });
    assert_eq!(err.to_string(), "entry 5: time 1002 ms is before the previous entry's 1003 ms");
}
