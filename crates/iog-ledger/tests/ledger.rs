//! The ledger's operations, one story at a time.

use iog_ledger::{
    AccountId, Address, Amount, Balance, ErrorCode, HOLD_TIMEOUT_MS_MAX, Ledger, LedgerError, Op, Outcome,
    PendingState, SignedAmount, TransferId,
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

fn bob() -> AccountId {
    AccountId::Wallet(Address::from_public_key([2; 32]))
}

fn balance(posted: &str, pending_debits: &str, pending_credits: &str) -> Balance {
    let posted = io(posted);
    let pending_debits = io(pending_debits);
    let available = i128::from(posted.base_units()) - i128::from(pending_debits.base_units());
    Balance {
        posted: SignedAmount::from(posted),
        pending_debits,
        pending_credits: io(pending_credits),
        available: SignedAmount(available),
    }
}

/// A ledger where alice got 10 IO from the faucet.
fn funded() -> Ledger {
    let mut ledger = Ledger::new();
    ledger.mint(id(1), alice(), io("10"), "faucet".into(), 0).unwrap();
    ledger
}

#[test]
fn a_job_escrow_is_held_posted_in_parts_and_voided_for_the_rest() {
    let mut ledger = funded();
    let escrow = AccountId::Escrow(0x42);
    let worker = AccountId::Payout("w1".into());

    assert_eq!(
        ledger.hold(id(2), alice(), escrow.clone(), io("6"), Some(3_600_000), 10),
        Ok(Outcome::Held { expires_at_ms: Some(3_600_010) })
    );
    assert_eq!(ledger.balance(&alice()), balance("10", "6", "0"));
    assert_eq!(ledger.balance(&escrow), balance("0", "0", "6"));
    assert_eq!(ledger.pending(&id(2)), Some(io("6")));

    // Two tasks are paid from the hold.
    assert_eq!(ledger.post(id(3), id(2), io("2"), 20), Ok(Outcome::Posted { remaining: io("4") }));
    assert_eq!(ledger.post(id(4), id(2), io("1.5"), 30), Ok(Outcome::Posted { remaining: io("2.5") }));
    assert_eq!(ledger.balance(&escrow), balance("3.5", "0", "2.5"));
    let (fee, payout) = io("3.5").split_bps(250).unwrap();
    ledger.transfer(id(5), escrow.clone(), AccountId::Fees, fee, 31).unwrap();
    ledger.transfer(id(6), escrow.clone(), worker.clone(), payout, 31).unwrap();

    // The job ends: the rest goes back.
    assert_eq!(ledger.void(id(7), id(2), 40), Ok(Outcome::Voided { released: io("2.5") }));
    assert_eq!(ledger.pending(&id(2)), Some(Amount::ZERO));
    assert_eq!(ledger.pending_transfer(&id(2)).unwrap().state, PendingState::Voided);
    assert_eq!(ledger.balance(&alice()), balance("6.5", "0", "0"));
    assert_eq!(ledger.balance(&escrow), balance("0", "0", "0"));
    assert_eq!(ledger.balance(&worker), balance("3.4125", "0", "0"));
    assert_eq!(ledger.balance(&AccountId::Fees), balance("0.0875", "0", "0"));
    assert_eq!(ledger.balance(&AccountId::Mint).posted, SignedAmount(-10_000_000_000));
    assert_eq!(ledger.supply(), io("10"));
    assert_eq!(ledger.journal().len(), 7);
    ledger.check().unwrap();

    let listed: Vec<String> = ledger.accounts().map(|(account, b)| format!("{account} {}", b.posted)).collect();
    assert_eq!(
        listed,
        [
            format!("{} 6.5 IO", alice()),
            "payout:w1 3.4125 IO".to_owned(),
            "escrow:j-0000000000000042 0 IO".to_owned(),
            "fees 0.0875 IO".to_owned(),
            "mint -10 IO".to_owned(),
        ]
    );
}

#[test]
fn a_hold_posted_in_full_is_resolved() {
    let mut ledger = funded();
    ledger.hold(id(2), alice(), bob(), io("3"), None, 0).unwrap();
    assert_eq!(ledger.post(id(3), id(2), io("3"), 0), Ok(Outcome::Posted { remaining: Amount::ZERO }));
    assert_eq!(ledger.pending_transfer(&id(2)).unwrap().state, PendingState::Posted);
    assert_eq!(ledger.post(id(4), id(2), io("1"), 0), Err(LedgerError::PendingPosted { pending_id: id(2) }));
    assert_eq!(ledger.void(id(5), id(2), 0), Err(LedgerError::PendingPosted { pending_id: id(2) }));
    assert_eq!(ledger.balance(&bob()), balance("3", "0", "0"));
    ledger.check().unwrap();
}

#[test]
fn holds_refuse_what_they_cannot_do() {
    let mut ledger = funded();
    ledger.hold(id(2), alice(), bob(), io("3"), None, 0).unwrap();
    let err = ledger.post(id(3), id(2), io("3.000000001"), 0).unwrap_err();
    assert_eq!(
        err,
        LedgerError::ExceedsPending { pending_id: id(2), remaining: io("3"), requested: io("3.000000001") }
    );
    assert_eq!(
        err.to_string(),
        "cannot post 3.000000001 IO of pending transfer t-00000000000000000000000000000002: only 3 IO remains"
    );
    ledger.void(id(4), id(2), 0).unwrap();
    assert_eq!(ledger.void(id(5), id(2), 0), Err(LedgerError::PendingVoided { pending_id: id(2) }));
    assert_eq!(ledger.post(id(6), id(2), io("1"), 0), Err(LedgerError::PendingVoided { pending_id: id(2) }));
    // The mint is a transfer, not a hold; 99 was never used.
    assert_eq!(ledger.post(id(7), id(1), io("1"), 0), Err(LedgerError::PendingNotFound { pending_id: id(1) }));
    assert_eq!(ledger.void(id(8), id(99), 0), Err(LedgerError::PendingNotFound { pending_id: id(99) }));
    // A hold the ledger refused is no hold.
    let refused = ledger.hold(id(9), alice(), bob(), io("11"), None, 0).unwrap_err();
    assert_eq!(refused.code(), ErrorCode::InsufficientFunds);
    assert_eq!(ledger.void(id(10), id(9), 0), Err(LedgerError::PendingNotFound { pending_id: id(9) }));
    assert_eq!(ledger.pending(&id(9)), None);
    assert_eq!(ledger.balance(&alice()), balance("10", "0", "0"));
    ledger.check().unwrap();
}

#[test]
fn an_expired_hold_can_be_voided_but_not_posted() {
    let mut ledger = funded();
    ledger.hold(id(2), alice(), bob(), io("3"), Some(1_000), 500).unwrap();
    ledger.hold(id(3), alice(), bob(), io("1"), Some(100), 500).unwrap();
    ledger.hold(id(4), alice(), bob(), io("1"), None, 500).unwrap();
    assert_eq!(ledger.expired(599).collect::<Vec<_>>(), []);
    assert_eq!(ledger.expired(600).collect::<Vec<_>>(), [id(3)]);
    assert_eq!(ledger.post(id(5), id(2), io("1"), 1_499), Ok(Outcome::Posted { remaining: io("2") }));
    assert_eq!(ledger.expired(10_000).collect::<Vec<_>>(), [id(3), id(2)]);
    let err = ledger.post(id(6), id(2), io("1"), 1_500).unwrap_err();
    assert_eq!(err, LedgerError::PendingExpired { pending_id: id(2), expires_at_ms: 1_500 });
    assert_eq!(
        err.to_string(),
        "pending transfer t-00000000000000000000000000000002 expired at 1500 ms and can only be voided"
    );
    assert_eq!(ledger.void(id(7), id(2), 1_500), Ok(Outcome::Voided { released: io("2") }));
    assert_eq!(ledger.void(id(8), id(3), 1_500), Ok(Outcome::Voided { released: io("1") }));
    assert_eq!(ledger.expired(u64::MAX).count(), 0);
    assert_eq!(ledger.balance(&alice()), balance("9", "1", "0"));
    ledger.check().unwrap();
}

#[test]
fn transfers_need_funds() {
    let mut ledger = funded();
    ledger.hold(id(2), alice(), bob(), io("4"), None, 0).unwrap();
    let err = ledger.transfer(id(3), alice(), bob(), io("6.5"), 0).unwrap_err();
    assert_eq!(err, LedgerError::InsufficientFunds { account: alice(), balance: io("6"), needed: io("6.5") });
    assert_eq!(err.to_string(), format!("insufficient funds in {}: 6 IO available, 6.5 IO needed", alice()));
    assert_eq!(ledger.transfer(id(4), alice(), bob(), io("6"), 0), Ok(Outcome::Transferred));
    assert_eq!(ledger.balance(&alice()), balance("4", "4", "0"));
    let err = ledger.transfer(id(5), AccountId::Fees, bob(), io("0.000000001"), 0).unwrap_err();
    assert_eq!(err.to_string(), "insufficient funds in fees: 0 IO available, 0.000000001 IO needed");
    ledger.check().unwrap();
}

#[test]
fn the_same_id_and_body_answers_the_same_and_changes_nothing() {
    let mut ledger = funded();
    assert_eq!(ledger.transfer(id(2), alice(), bob(), io("1"), 5), Ok(Outcome::Transferred));
    let before = ledger.clone();
    assert_eq!(ledger.transfer(id(2), alice(), bob(), io("1"), 6), Ok(Outcome::Transferred));
    assert_eq!(ledger, before);
    // The first mint is answered again, with the supply of that time.
    ledger.mint(id(3), bob(), io("5"), "faucet".into(), 7).unwrap();
    assert_eq!(ledger.mint(id(1), alice(), io("10"), "faucet".into(), 8), Ok(Outcome::Minted { supply: io("10") }));

    let err = ledger.transfer(id(2), alice(), bob(), io("2"), 9).unwrap_err();
    assert_eq!(err, LedgerError::IdReused { id: id(2) });
    assert_eq!(
        err.to_string(),
        "transfer id t-00000000000000000000000000000002 was already used for a different operation"
    );
    assert_eq!(ledger.void(id(2), id(2), 9), Err(LedgerError::IdReused { id: id(2) }));
    assert_eq!(ledger.balance(&bob()), balance("6", "0", "0"));
    assert_eq!(ledger.journal().len(), 3);
}

#[test]
fn a_refusal_by_the_ledgers_state_is_recorded_and_answered_again() {
    let mut ledger = funded();
    let refused = ledger.transfer(id(2), bob(), alice(), io("1"), 5);
    assert_eq!(refused, Err(LedgerError::InsufficientFunds { account: bob(), balance: Amount::ZERO, needed: io("1") }));
    assert!(refused.as_ref().unwrap_err().is_recorded());
    let entry = ledger.journal().last().unwrap();
    assert_eq!((entry.seq, entry.rejected), (1, Some(ErrorCode::InsufficientFunds)));
    assert_eq!(
        entry.to_string(),
        format!(
            "#1 at 5 ms: t-00000000000000000000000000000002 transfer 1 IO {} -> {} (refused: insufficient_funds)",
            bob(),
            alice()
        )
    );
    assert_eq!(ledger.answer(&id(2)).unwrap().1, &refused);

    // Bob has the funds now, but the id is spent: a late retry must not
    // move money that its caller saw refused.
    ledger.mint(id(3), bob(), io("5"), "faucet".into(), 6).unwrap();
    assert_eq!(ledger.transfer(id(2), bob(), alice(), io("1"), 7), refused);
    assert_eq!(ledger.balance(&bob()), balance("5", "0", "0"));
    assert_eq!(ledger.journal().len(), 3);
    ledger.check().unwrap();
}

#[test]
fn a_malformed_call_is_refused_without_a_trace() {
    let mut ledger = funded();
    let before = ledger.clone();
    let wallet = alice();
    let long_reason = "r".repeat(257);
    let table: Vec<(Op, &str)> = vec![
        (
            Op::Transfer { id: id(2), debit: wallet.clone(), credit: bob(), amount: Amount::ZERO },
            "amount must be more than 0 IO",
        ),
        (
            Op::Transfer { id: id(2), debit: wallet.clone(), credit: wallet.clone(), amount: io("1") },
            "debit and credit are the same account wallet:4vJ9JU1bJJE96FWSJKvHsmmFADCg4gpZQff4P3bkLKi",
        ),
        (
            Op::Transfer { id: id(2), debit: AccountId::Mint, credit: bob(), amount: io("1") },
            "the mint account moves only through mint",
        ),
        (
            Op::Hold { id: id(2), debit: bob(), credit: AccountId::Mint, amount: io("1"), timeout_ms: None },
            "the mint account moves only through mint",
        ),
        (
            Op::Hold { id: id(2), debit: wallet.clone(), credit: bob(), amount: io("1"), timeout_ms: Some(0) },
            "hold timeout must be 1 to 31536000000 ms, got 0",
        ),
        (
            Op::Hold {
                id: id(2),
                debit: wallet.clone(),
                credit: bob(),
                amount: io("1"),
                timeout_ms: Some(HOLD_TIMEOUT_MS_MAX + 1),
            },
            "hold timeout must be 1 to 31536000000 ms, got 31536000001",
        ),
        (Op::Post { id: id(2), pending_id: id(1), amount: Amount::ZERO }, "amount must be more than 0 IO"),
        (
            Op::Mint { id: id(2), credit: AccountId::Mint, amount: io("1"), reason: "x".into() },
            "the mint account moves only through mint",
        ),
        (
            Op::Mint { id: id(2), credit: bob(), amount: io("1"), reason: String::new() },
            "mint reason must be 1 to 256 bytes, got 0",
        ),
        (
            Op::Mint { id: id(2), credit: bob(), amount: io("1"), reason: long_reason },
            "mint reason must be 1 to 256 bytes, got 257",
        ),
        (
            Op::Mint { id: id(2), credit: AccountId::Payout("a b".into()), amount: io("1"), reason: "x".into() },
            "invalid account payout:a b: a worker id is 1 to 128 printable ASCII characters without spaces",
        ),
        (
            Op::Transfer { id: id(2), debit: wallet.clone(), credit: AccountId::Stake(String::new()), amount: io("1") },
            "invalid account stake:: a worker id is 1 to 128 printable ASCII characters without spaces",
        ),
    ];
    for (op, message) in table {
        let err = ledger.apply(op.clone(), 5).expect_err(message);
        assert_eq!(err.to_string(), message);
        assert!(!err.is_recorded(), "{message}");
        // Retrying gives the same refusal.
        assert_eq!(ledger.apply(op, 6), Err(err));
        assert_eq!(ledger, before);
    }
    // The id stays free.
    assert_eq!(ledger.transfer(id(2), alice(), bob(), io("1"), 7), Ok(Outcome::Transferred));
}

#[test]
fn the_supply_stops_at_the_largest_amount() {
    let mut ledger = Ledger::new();
    ledger.mint(id(1), alice(), Amount::MAX, "everything".into(), 0).unwrap();
    let err = ledger.mint(id(2), bob(), Amount::from_base_units(1), "one more".into(), 0).unwrap_err();
    assert_eq!(err, LedgerError::SupplyOverflow { supply: Amount::MAX, amount: Amount::from_base_units(1) });
    assert_eq!(
        err.to_string(),
        "minting 0.000000001 IO would take the supply past 18446744073.709551615 IO: 18446744073.709551615 IO already minted"
    );
    assert!(err.is_recorded());
    assert_eq!(ledger.balance(&AccountId::Mint).posted, SignedAmount(-i128::from(u64::MAX)));
    assert_eq!(ledger.balance(&AccountId::Mint).available.to_string(), "-18446744073.709551615 IO");
    // Every balance still fits.
    ledger.hold(id(3), alice(), bob(), Amount::MAX, None, 0).unwrap();
    ledger.post(id(4), id(3), Amount::MAX, 0).unwrap();
    assert_eq!(ledger.balance(&bob()).posted, SignedAmount::from(Amount::MAX));
    ledger.check().unwrap();
}

#[test]
fn time_never_goes_back_in_the_journal() {
    let mut ledger = funded();
    ledger.hold(id(2), alice(), bob(), io("1"), Some(100), 1_000).unwrap();
    // The clock stepped back to 900: the ledger keeps 1000, so the hold
    // expires at 1100 as it said.
    assert_eq!(
        ledger.hold(id(3), alice(), bob(), io("1"), Some(100), 900),
        Ok(Outcome::Held { expires_at_ms: Some(1_100) })
    );
    assert_eq!(ledger.journal().last().unwrap().now_ms, 1_000);
}

#[test]
fn error_codes_are_distinct_and_read_back() {
    let mut names: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
    let mut numbers: Vec<u8> = ErrorCode::ALL.iter().map(|code| code.number()).collect();
    names.sort();
    names.dedup();
    numbers.sort();
    numbers.dedup();
    assert_eq!((names.len(), numbers.len()), (ErrorCode::ALL.len(), ErrorCode::ALL.len()));
    for code in ErrorCode::ALL {
        assert_eq!(ErrorCode::from_number(code.number()), Some(code));
    }
    assert_eq!(ErrorCode::from_number(0), None);
    assert_eq!(ErrorCode::InsufficientFunds.to_string(), "insufficient_funds");
}

#[test]
fn an_accounts_history_lists_what_moved_its_money_newest_first() {
    let mut ledger = Ledger::new();
    ledger.mint(id(1), alice(), io("5"), "test".into(), 1).unwrap();
    ledger.mint(id(2), bob(), io("1"), "test".into(), 2).unwrap();
    let escrow = AccountId::Escrow(7);
    ledger.hold(id(3), alice(), escrow.clone(), io("2"), None, 3).unwrap();
    ledger.post(id(4), id(3), io("1"), 4).unwrap();
    ledger.transfer(id(5), bob(), alice(), io("9"), 5).unwrap_err();
    ledger.void(id(6), id(3), 6).unwrap();
    let ids = |account: &AccountId| ledger.history(account).map(|entry| entry.op.id().0).collect::<Vec<_>>();
    assert_eq!(ids(&alice()), [6, 5, 4, 3, 1], "the refused transfer is in it too");
    assert_eq!(ids(&bob()), [5, 2]);
    assert_eq!(ids(&escrow), [6, 4, 3]);
    assert!(ids(&AccountId::Fees).is_empty());
    assert_eq!(Ledger::replay(ledger.journal().entries()).unwrap(), ledger, "the replay rebuilds the index");
}
