//! Laws of the ledger under random operation sequences: money is conserved,
//! ids answer once, holds resolve once, and the journal rebuilds the ledger
//! and betrays any change to it.

use std::collections::HashMap;

use iog_ledger::{
    AccountId, Address, Amount, Balance, Entry, Journal, Ledger, LedgerError, Op, Outcome, SignedAmount, TransferId,
};
use proptest::prelude::*;

/// The accounts operations pick from; the mint is in the list so that calls
/// that wrongly name it are tried too.
fn account(idx: u8) -> AccountId {
    match idx {
        0 => AccountId::Wallet(Address::from_public_key([1; 32])),
        1 => AccountId::Wallet(Address::from_public_key([2; 32])),
        2 => AccountId::Payout("w1".into()),
        3 => AccountId::Escrow(7),
        4 => AccountId::Stake("w1".into()),
        5 => AccountId::Fees,
        _ => AccountId::Mint,
    }
}

const N_ACCOUNTS: u8 = 7;

/// Which id a call uses: a fresh one, or one used before.
#[derive(Debug, Clone)]
enum IdPick {
    Fresh,
    Used(usize),
}

/// How much a post asks for: what remains of the hold (so that it
/// resolves), one base unit more than that, or any amount.
#[derive(Debug, Clone)]
enum PostAmount {
    Rest,
    RestAndOne,
    Any(u64),
}

fn post_amount() -> impl Strategy<Value = PostAmount> {
    prop_oneof![3 => Just(PostAmount::Rest), 1 => Just(PostAmount::RestAndOne), 6 => amount().prop_map(PostAmount::Any)]
}

/// Which hold a post or void names: an open one, one the ledger accepted,
/// or any id.
#[derive(Debug, Clone)]
enum HoldPick {
    Open(usize),
    Accepted(usize),
    Any(u8),
}

#[derive(Debug, Clone)]
enum Call {
    Transfer {
        id: IdPick,
        debit: u8,
        credit: u8,
        amount: u64,
    },
    Hold {
        id: IdPick,
        debit: u8,
        credit: u8,
        amount: u64,
        timeout_ms: Option<u64>,
    },
    Post {
        id: IdPick,
        hold: HoldPick,
        amount: PostAmount,
    },
    Void {
        id: IdPick,
        hold: HoldPick,
    },
    Mint {
        id: IdPick,
        credit: u8,
        amount: u64,
        empty_reason: bool,
    },
    /// Sends an earlier call again, body and all.
    Repeat {
        pick: usize,
    },
    /// Moves the clock; backwards too, as a stepped clock would.
    Clock {
        ms: i64,
    },
}

fn id_pick() -> impl Strategy<Value = IdPick> {
    prop_oneof![8 => Just(IdPick::Fresh), 1 => any::<usize>().prop_map(IdPick::Used)]
}

fn hold_pick() -> impl Strategy<Value = HoldPick> {
    prop_oneof![
        8 => any::<usize>().prop_map(HoldPick::Open),
        2 => any::<usize>().prop_map(HoldPick::Accepted),
        1 => any::<u8>().prop_map(HoldPick::Any),
    ]
}

fn account_idx() -> impl Strategy<Value = u8> {
    prop_oneof![30 => 0..N_ACCOUNTS - 1, 1 => Just(N_ACCOUNTS - 1)]
}

fn amount() -> impl Strategy<Value = u64> {
    prop_oneof![1 => Just(0u64), 20 => 1..2_000u64]
}

fn call() -> impl Strategy<Value = Call> {
    let timeout = prop_oneof![4 => Just(None), 4 => (1..400u64).prop_map(Some), 1 => Just(Some(0))];
    let mint_amount = prop_oneof![30 => 1..10_000u64, 1 => Just(u64::MAX / 2), 1 => Just(0)];
    prop_oneof![
        6 => (id_pick(), account_idx(), account_idx(), amount())
            .prop_map(|(id, debit, credit, amount)| Call::Transfer { id, debit, credit, amount }),
        5 => (id_pick(), account_idx(), account_idx(), amount(), timeout)
            .prop_map(|(id, debit, credit, amount, timeout_ms)| Call::Hold { id, debit, credit, amount, timeout_ms }),
        5 => (id_pick(), hold_pick(), post_amount()).prop_map(|(id, hold, amount)| Call::Post { id, hold, amount }),
        3 => (id_pick(), hold_pick()).prop_map(|(id, hold)| Call::Void { id, hold }),
        4 => (id_pick(), account_idx(), mint_amount, prop::bool::weighted(0.05))
            .prop_map(|(id, credit, amount, empty_reason)| Call::Mint { id, credit, amount, empty_reason }),
        2 => any::<usize>().prop_map(|pick| Call::Repeat { pick }),
        3 => (-50..300i64).prop_map(|ms| Call::Clock { ms }),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum HoldState {
    Open,
    Posted,
    Voided,
}

#[derive(Debug, Clone)]
struct ModelHold {
    debit: AccountId,
    credit: AccountId,
    amount: u64,
    posted: u64,
    expires_at_ms: Option<u64>,
    state: HoldState,
}

impl ModelHold {
    fn remaining(&self) -> u64 {
        if self.state == HoldState::Open { self.amount - self.posted } else { 0 }
    }
}

/// A plain model of the ledger's money, written apart from the ledger: the
/// oracle for every fresh call's result and every balance.
#[derive(Default)]
struct Model {
    posted: HashMap<AccountId, i128>,
    holds: HashMap<TransferId, ModelHold>,
    supply: u64,
    last_ms: Option<u64>,
}

impl Model {
    fn held(&self, account: &AccountId) -> (u64, u64) {
        let open = self.holds.values().filter(|hold| hold.state == HoldState::Open);
        let (mut debits, mut credits) = (0, 0);
        for hold in open {
            if &hold.debit == account {
                debits += hold.remaining();
            }
            if &hold.credit == account {
                credits += hold.remaining();
            }
        }
        (debits, credits)
    }

    fn balance(&self, account: &AccountId) -> Balance {
        let posted = self.posted.get(account).copied().unwrap_or(0);
        let (debits, credits) = self.held(account);
        Balance {
            posted: SignedAmount(posted),
            pending_debits: Amount::from_base_units(debits),
            pending_credits: Amount::from_base_units(credits),
            available: SignedAmount(posted - i128::from(debits)),
        }
    }

    fn require(&self, debit: &AccountId, needed: u64) -> Result<(), LedgerError> {
        let available = self.balance(debit).available.0;
        if available < i128::from(needed) {
            let balance = Amount::from_base_units(available as u64);
            return Err(LedgerError::InsufficientFunds { account: debit.clone(), balance, needed: units(needed) });
        }
        Ok(())
    }

    fn move_posted(&mut self, from: &AccountId, to: &AccountId, amount: u64) {
        *self.posted.entry(from.clone()).or_default() -= i128::from(amount);
        *self.posted.entry(to.clone()).or_default() += i128::from(amount);
    }

    fn hold(&self, pending_id: TransferId) -> Result<&ModelHold, LedgerError> {
        let hold = self.holds.get(&pending_id).ok_or(LedgerError::PendingNotFound { pending_id })?;
        match hold.state {
            HoldState::Open => Ok(hold),
            HoldState::Posted => Err(LedgerError::PendingPosted { pending_id }),
            HoldState::Voided => Err(LedgerError::PendingVoided { pending_id }),
        }
    }

    /// What the ledger must answer to `op` under a fresh id, and the model's
    /// state after it.
    fn apply(&mut self, op: &Op, now_ms: u64) -> Result<Outcome, LedgerError> {
        validate(op)?;
        let now_ms = self.last_ms.map_or(now_ms, |last| last.max(now_ms));
        self.last_ms = Some(now_ms);
        match op {
            Op::Transfer { debit, credit, amount, .. } => {
                self.require(debit, amount.base_units())?;
                self.move_posted(debit, credit, amount.base_units());
                Ok(Outcome::Transferred)
            }
            Op::Hold { id, debit, credit, amount, timeout_ms } => {
                self.require(debit, amount.base_units())?;
                let expires_at_ms = timeout_ms.map(|timeout_ms| now_ms + timeout_ms);
                let hold = ModelHold {
                    debit: debit.clone(),
                    credit: credit.clone(),
                    amount: amount.base_units(),
                    posted: 0,
                    expires_at_ms,
                    state: HoldState::Open,
                };
                self.holds.insert(*id, hold);
                Ok(Outcome::Held { expires_at_ms })
            }
            Op::Post { pending_id, amount, .. } => {
                let hold = self.hold(*pending_id)?;
                if let Some(expires_at_ms) = hold.expires_at_ms.filter(|&at| now_ms >= at) {
                    return Err(LedgerError::PendingExpired { pending_id: *pending_id, expires_at_ms });
                }
                if amount.base_units() > hold.remaining() {
                    let remaining = units(hold.remaining());
                    return Err(LedgerError::ExceedsPending { pending_id: *pending_id, remaining, requested: *amount });
                }
                let (debit, credit) = (hold.debit.clone(), hold.credit.clone());
                self.move_posted(&debit, &credit, amount.base_units());
                let hold = self.holds.get_mut(pending_id).unwrap();
                hold.posted += amount.base_units();
                if hold.posted == hold.amount {
                    hold.state = HoldState::Posted;
                }
                Ok(Outcome::Posted { remaining: units(hold.remaining()) })
            }
            Op::Void { pending_id, .. } => {
                let released = self.hold(*pending_id)?.remaining();
                self.holds.get_mut(pending_id).unwrap().state = HoldState::Voided;
                Ok(Outcome::Voided { released: units(released) })
            }
            Op::Mint { credit, amount, .. } => {
                let Some(supply) = self.supply.checked_add(amount.base_units()) else {
                    return Err(LedgerError::SupplyOverflow { supply: units(self.supply), amount: *amount });
                };
                self.move_posted(&AccountId::Mint, credit, amount.base_units());
                self.supply = supply;
                Ok(Outcome::Minted { supply: units(supply) })
            }
        }
    }
}

/// The refusals that follow from the body alone, in the ledger's order.
fn validate(op: &Op) -> Result<(), LedgerError> {
    match op {
        Op::Transfer { debit, credit, amount, .. } | Op::Hold { debit, credit, amount, .. } => {
            if *debit == AccountId::Mint || *credit == AccountId::Mint {
                return Err(LedgerError::MintAccount);
            }
            if debit == credit {
                return Err(LedgerError::SameAccount { account: debit.clone() });
            }
            if amount.is_zero() {
                return Err(LedgerError::ZeroAmount);
            }
            if let Op::Hold { timeout_ms: Some(0), .. } = op {
                return Err(LedgerError::InvalidTimeout { timeout_ms: 0 });
            }
        }
        Op::Post { amount, .. } if amount.is_zero() => return Err(LedgerError::ZeroAmount),
        Op::Post { .. } | Op::Void { .. } => {}
        Op::Mint { credit, amount, reason, .. } => {
            if *credit == AccountId::Mint {
                return Err(LedgerError::MintAccount);
            }
            if amount.is_zero() {
                return Err(LedgerError::ZeroAmount);
            }
            if reason.is_empty() {
                return Err(LedgerError::InvalidReason { bytes: 0 });
            }
        }
    }
    Ok(())
}

fn units(base_units: u64) -> Amount {
    Amount::from_base_units(base_units)
}

/// Drives one sequence of calls through the ledger and the model, checking
/// the per-step laws; returns the ledger for the journal laws.
fn run(calls: Vec<Call>) -> Ledger {
    let mut ledger = Ledger::new();
    let mut model = Model::default();
    let mut now_ms: u64 = 1_000;
    let mut next_id: u128 = 1;
    let mut used_ids: Vec<TransferId> = vec![];
    let mut holds_made: Vec<TransferId> = vec![];
    let mut holds_accepted: Vec<TransferId> = vec![];
    let mut sent: Vec<Op> = vec![];
    let mut resolutions: HashMap<TransferId, u32> = HashMap::new();

    // Some money first, so that most sequences have something to move.
    let funding = (0..3).map(|credit| Call::Mint { id: IdPick::Fresh, credit, amount: 5_000, empty_reason: false });
    for call in funding.chain(calls) {
        let mut pick_id = |pick: IdPick| match pick {
            IdPick::Used(idx) if !used_ids.is_empty() => used_ids[idx % used_ids.len()],
            _ => {
                next_id += 1;
                used_ids.push(TransferId(next_id));
                TransferId(next_id)
            }
        };
        let open: Vec<TransferId> =
            holds_accepted.iter().copied().filter(|hold| ledger.pending(hold) > Some(Amount::ZERO)).collect();
        let pick_hold = |pick: HoldPick| match pick {
            HoldPick::Open(idx) if !open.is_empty() => open[idx % open.len()],
            HoldPick::Open(idx) | HoldPick::Accepted(idx) if !holds_accepted.is_empty() => {
                holds_accepted[idx % holds_accepted.len()]
            }
            HoldPick::Open(idx) | HoldPick::Accepted(idx) => TransferId(idx as u128),
            HoldPick::Any(n) => TransferId(u128::from(n)),
        };
        let op = match call {
            Call::Transfer { id, debit, credit, amount } => {
                Op::Transfer { id: pick_id(id), debit: account(debit), credit: account(credit), amount: units(amount) }
            }
            Call::Hold { id, debit, credit, amount, timeout_ms } => {
                let id = pick_id(id);
                holds_made.push(id);
                Op::Hold { id, debit: account(debit), credit: account(credit), amount: units(amount), timeout_ms }
            }
            Call::Post { id, hold, amount } => {
                let pending_id = pick_hold(hold);
                let remaining = ledger.pending(&pending_id).unwrap_or(Amount::ZERO).base_units();
                let amount = match amount {
                    PostAmount::Rest if remaining > 0 => units(remaining),
                    PostAmount::RestAndOne => units(remaining + 1),
                    PostAmount::Rest => units(1),
                    PostAmount::Any(amount) => units(amount),
                };
                Op::Post { id: pick_id(id), pending_id, amount }
            }
            Call::Void { id, hold } => Op::Void { id: pick_id(id), pending_id: pick_hold(hold) },
            Call::Mint { id, credit, amount, empty_reason } => {
                let reason = if empty_reason { String::new() } else { "faucet".to_owned() };
                Op::Mint { id: pick_id(id), credit: account(credit), amount: units(amount), reason }
            }
            Call::Repeat { pick } if !sent.is_empty() => sent[pick % sent.len()].clone(),
            Call::Repeat { .. } => continue,
            Call::Clock { ms } => {
                now_ms = now_ms.saturating_add_signed(ms);
                continue;
            }
        };
        sent.push(op.clone());

        let id = op.id();
        let before = ledger.clone();
        let earlier = ledger.answer(&id).map(|(op, result)| (op.clone(), result.clone()));
        let result = ledger.apply(op.clone(), now_ms);
        match earlier {
            Some((earlier_op, earlier_result)) => {
                // An answered id: the same answer for the same body, a refusal
                // for another; nothing changes either way.
                if earlier_op == op {
                    assert_eq!(result, earlier_result, "{op}: a repeat answered differently");
                } else {
                    assert_eq!(result, Err(LedgerError::IdReused { id }), "{op}");
                }
                assert!(ledger == before, "{op}: a repeated id changed the ledger");
            }
            None => {
                let expected = model.apply(&op, now_ms);
                assert_eq!(result, expected, "{op}: the ledger and the model disagree");
                match &result {
                    Err(error) if !error.is_recorded() => {
                        assert!(ledger == before, "{op}: a refusal without a trace changed the ledger");
                    }
                    _ => {
                        assert_eq!(ledger.journal().len(), before.journal().len() + 1, "{op}: not journaled");
                        assert!(ledger.answer(&id).is_some());
                    }
                }
            }
        }

        if matches!((&op, &result), (Op::Hold { .. }, Ok(_))) && before.answer(&id).is_none() {
            holds_accepted.push(id);
        }

        // A hold resolves at most once and is never posted past its amount.
        if let (Op::Post { pending_id, .. } | Op::Void { pending_id, .. }, Ok(outcome)) = (&op, &result) {
            let resolved = matches!(outcome, Outcome::Voided { .. } | Outcome::Posted { remaining: Amount::ZERO });
            if resolved && before.answer(&id).is_none() {
                let count = resolutions.entry(*pending_id).or_default();
                *count += 1;
                assert_eq!(*count, 1, "hold {pending_id} resolved twice");
            }
        }
        for hold_id in &holds_made {
            if let Some(hold) = ledger.pending_transfer(hold_id) {
                assert!(hold.posted <= hold.amount, "hold {hold_id} posted past its amount");
            }
        }

        for idx in 0..N_ACCOUNTS {
            let account = account(idx);
            assert_eq!(ledger.balance(&account), model.balance(&account), "{account} after {op}");
        }
        assert_eq!(ledger.supply(), units(model.supply));
        if let Err(broken) = ledger.check() {
            panic!("after {op}: {broken}");
        }
    }
    ledger
}

/// A copy of `entry` with one field changed, or `None` when it has no such
/// field.
fn tamper(entry: &Entry, field: u8) -> Option<Entry> {
    let mut changed = entry.clone();
    match (field, &mut changed.op) {
        (
            0,
            Op::Transfer { amount, .. } | Op::Hold { amount, .. } | Op::Post { amount, .. } | Op::Mint { amount, .. },
        ) => *amount = units(amount.base_units() ^ 1),
        (
            1,
            Op::Transfer { debit: account, .. } | Op::Hold { debit: account, .. } | Op::Mint { credit: account, .. },
        ) => {
            *account = if *account == AccountId::Fees { AccountId::Rewards } else { AccountId::Fees };
        }
        (2, _) => changed.prev_hash[7] ^= 0x10,
        (3, _) => changed.now_ms ^= 1,
        (4, _) => {
            changed.rejected = match changed.rejected {
                Some(_) => None,
                None => Some(iog_ledger::ErrorCode::InsufficientFunds),
            }
        }
        (5, Op::Post { pending_id, .. } | Op::Void { pending_id, .. }) => pending_id.0 ^= 1 << 100,
        (6, _) => changed.hash[31] ^= 1,
        _ => return None,
    }
    Some(changed)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn the_ledger_keeps_its_laws(
        calls in prop::collection::vec(call(), 1..80),
        target in any::<usize>(),
        byte in any::<usize>(),
        bit in 0u8..8,
    ) {
        let ledger = run(calls);
        let entries = ledger.journal().entries();

        // The live journal verifies and rebuilds the same ledger.
        prop_assert_eq!(Journal::verify(entries), Ok(ledger.journal().checkpoint()));
        let replayed = Ledger::replay(entries).expect("the live journal replays");
        prop_assert!(replayed == ledger, "the replayed ledger differs from the live one");

        if entries.is_empty() {
            return Ok(());
        }
        // Any single change to one entry is caught at that entry.
        let seq = target % entries.len();
        for field in 0..7 {
            if let Some(changed) = tamper(&entries[seq], field) {
                let mut journal = entries.to_vec();
                journal[seq] = changed;
                let err = Journal::verify(&journal).expect_err("a changed entry verifies");
                prop_assert_eq!(err.seq(), seq as u64, "field {}: {}", field, err);
                prop_assert_eq!(Ledger::replay(&journal).map(|_| ()).unwrap_err().seq(), seq as u64);
            }
        }
        // So is any flipped bit in its bytes, if they still decode.
        let mut bytes = entries[seq].encode();
        let at = byte % bytes.len();
        bytes[at] ^= 1 << bit;
        if let Ok(changed) = Entry::decode(&bytes) {
            let mut journal = entries.to_vec();
            journal[seq] = changed;
            let err = Journal::verify(&journal).expect_err("a flipped bit verifies");
            prop_assert_eq!(err.seq(), seq as u64, "byte {}: {}", at, err);
        }
        // Whoever rewrites an entry's hash too breaks the next entry's link,
        // or, for the last entry, the checkpoint a coordinator signed.
        let mut journal = entries.to_vec();
        journal[seq].now_ms += 1;
        journal[seq].hash = journal[seq].compute_hash();
        match Journal::verify(&journal) {
            Err(err) => prop_assert_eq!(err.seq(), seq as u64 + 1),
            Ok(checkpoint) => {
                prop_assert_eq!(seq, entries.len() - 1);
                prop_assert_ne!(checkpoint, ledger.journal().checkpoint());
            }
        }
    }
}
