//! The ledger's state machine: balances, holds, the supply, and the record of
//! every id it has answered.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::account::AccountId;
use crate::amount::{Amount, SignedAmount};
use crate::error::{LedgerError, ReplayError};
use crate::journal::{Entry, Journal};
use crate::op::{Op, Outcome, TransferId};

/// Longest reason a mint may give, in bytes.
pub const MINT_REASON_BYTES_MAX: usize = 256;

/// Longest timeout a hold may have: a year, longer than any job should hold
/// an escrow.
pub const HOLD_TIMEOUT_MS_MAX: u64 = 365 * 24 * 60 * 60 * 1000;

/// An account's balances.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Balance {
    /// Credits minus debits of everything posted. Never negative except for
    /// [`AccountId::Mint`], whose posted balance is minus the supply.
    pub posted: SignedAmount,
    /// Held by open holds that debit this account.
    pub pending_debits: Amount,
    /// Held by open holds that credit this account: coming, not yet usable.
    pub pending_credits: Amount,
    /// `posted − pending_debits`: the most a transfer or hold may debit.
    pub available: SignedAmount,
}

/// Where a hold stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingState {
    /// Part of it may still be posted or voided.
    Open,
    /// Its whole amount was posted.
    Posted,
    /// It was voided; what had not been posted went back.
    Voided,
}

/// A hold: a pending transfer of TigerBeetle's two-phase kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingTransfer {
    pub debit: AccountId,
    pub credit: AccountId,
    pub amount: Amount,
    /// How much of `amount` has been posted so far.
    pub posted: Amount,
    pub created_ms: u64,
    /// From this time on the hold can be voided but no longer posted.
    pub expires_at_ms: Option<u64>,
    pub state: PendingState,
}

impl PendingTransfer {
    /// What is still held: `amount − posted` while open, 0 once resolved.
    pub fn remaining(&self) -> Amount {
        match self.state {
            PendingState::Open => self.amount.checked_sub(self.posted).expect("a hold is never posted past its amount"),
            PendingState::Posted | PendingState::Voided => Amount::ZERO,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct AccountState {
    /// Bounded by the supply in absolute value, so `i128` never overflows.
    posted: i128,
    pending_debits: Amount,
    pending_credits: Amount,
}

impl AccountState {
    fn balance(&self) -> Balance {
        let available = self.posted - i128::from(self.pending_debits.base_units());
        Balance {
            posted: SignedAmount(self.posted),
            pending_debits: self.pending_debits,
            pending_credits: self.pending_credits,
            available: SignedAmount(available),
        }
    }
}

/// What the ledger answered to an id: the body it came with and the result.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    op: Op,
    result: Result<Outcome, LedgerError>,
}

/// The $IO ledger: a double-entry state machine with two-phase holds,
/// explicit minting and a hash-chained [`Journal`].
///
/// It never reads a clock, does IO or draws random numbers: every call
/// brings its time as `now_ms`, and the same calls with the same times give
/// the same ledger and the same journal. Its shell writes each new journal
/// entry to the store before it tells anyone the outcome.
///
/// Every operation carries a caller-chosen [`TransferId`]. The same id with
/// the same body answers what it answered the first time and changes
/// nothing; the same id with another body is refused with
/// [`LedgerError::IdReused`]. Which refusals spend an id is told at
/// [`LedgerError`].
///
/// Holds with a timeout are not voided by the ledger itself, since it has no
/// clock to notice one expire: [`Ledger::expired`] lists them and the shell
/// voids them, and an expired hold cannot be posted meanwhile.
///
/// Every id answered stays in memory, as in TigerBeetle where ids are kept
/// forever; a store-backed index will take them over.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    accounts: BTreeMap<AccountId, AccountState>,
    pendings: BTreeMap<TransferId, PendingTransfer>,
    /// (expires_at_ms, hold) of open holds with a timeout.
    expiries: BTreeSet<(u64, TransferId)>,
    answers: HashMap<TransferId, Answer>,
    supply: Amount,
    journal: Journal,
    /// The journal entries (by position) whose operation moved each
    /// account's money or tried to, oldest first: an account's history
    /// without scanning the journal.
    touched: HashMap<AccountId, Vec<usize>>,
}

impl Ledger {
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// Moves `amount` from `debit` to `credit` at once. Refused with
    /// [`LedgerError::InsufficientFunds`] if `debit`'s available balance is
    /// short; neither side may be [`AccountId::Mint`].
    pub fn transfer(
        &mut self,
        id: TransferId,
        debit: AccountId,
        credit: AccountId,
        amount: Amount,
        now_ms: u64,
    ) -> Result<Outcome, LedgerError> {
        self.apply(Op::Transfer { id, debit, credit, amount }, now_ms)
    }

    /// Holds `amount` of `debit`'s available balance for `credit`: it leaves
    /// `debit`'s available balance now and moves only when posted.
    /// `timeout_ms` (1 to [`HOLD_TIMEOUT_MS_MAX`]) ends the time in which it
    /// can be posted.
    pub fn hold(
        &mut self,
        id: TransferId,
        debit: AccountId,
        credit: AccountId,
        amount: Amount,
        timeout_ms: Option<u64>,
        now_ms: u64,
    ) -> Result<Outcome, LedgerError> {
        self.apply(Op::Hold { id, debit, credit, amount, timeout_ms }, now_ms)
    }

    /// Moves `amount` of the open hold `pending_id` from its debit to its
    /// credit. A hold may be posted several times until its amount is used
    /// up; asking for more than remains is refused.
    pub fn post(
        &mut self,
        id: TransferId,
        pending_id: TransferId,
        amount: Amount,
        now_ms: u64,
    ) -> Result<Outcome, LedgerError> {
        self.apply(Op::Post { id, pending_id, amount }, now_ms)
    }

    /// Ends the open hold `pending_id`, releasing what remains of it to its
    /// debit account. Expired holds can be voided.
    pub fn void(&mut self, id: TransferId, pending_id: TransferId, now_ms: u64) -> Result<Outcome, LedgerError> {
        self.apply(Op::Void { id, pending_id }, now_ms)
    }

    /// Creates `amount` of new $IO in `credit`, debiting [`AccountId::Mint`]:
    /// the only way the supply grows. `reason` (1 to
    /// [`MINT_REASON_BYTES_MAX`] bytes) goes into the journal.
    pub fn mint(
        &mut self,
        id: TransferId,
        credit: AccountId,
        amount: Amount,
        reason: String,
        now_ms: u64,
    ) -> Result<Outcome, LedgerError> {
        self.apply(Op::Mint { id, credit, amount, reason }, now_ms)
    }

    /// Applies one operation; the methods above are this with the body
    /// spelled out.
    ///
    /// `now_ms` earlier than the journal's last entry is taken as that
    /// entry's time: a clock that steps back neither stops payments nor makes
    /// the journal's times go backwards.
    pub fn apply(&mut self, op: Op, now_ms: u64) -> Result<Outcome, LedgerError> {
        let id = op.id();
        if let Some(answer) = self.answers.get(&id) {
            return if answer.op == op { answer.result.clone() } else { Err(LedgerError::IdReused { id }) };
        }
        validate(&op)?;
        let now_ms = self.journal.last().map_or(now_ms, |last| now_ms.max(last.now_ms));
        let result = self.execute(&op, now_ms);
        debug_assert!(result.as_ref().err().is_none_or(LedgerError::is_recorded), "{result:?} is not recorded");
        let position = self.journal.len();
        for account in self.accounts_of(&op) {
            self.touched.entry(account).or_default().push(position);
        }
        self.journal.append(now_ms, op.clone(), result.as_ref().err().map(LedgerError::code));
        self.answers.insert(id, Answer { op, result: result.clone() });
        result
    }

    /// Carries out a well-formed operation with a fresh id. On `Err` nothing
    /// has changed.
    fn execute(&mut self, op: &Op, now_ms: u64) -> Result<Outcome, LedgerError> {
        match op {
            Op::Transfer { debit, credit, amount, .. } => {
                self.require_available(debit, *amount)?;
                self.account_mut(debit).posted -= i128::from(amount.base_units());
                self.account_mut(credit).posted += i128::from(amount.base_units());
                Ok(Outcome::Transferred)
            }
            Op::Hold { id, debit, credit, amount, timeout_ms } => {
                self.require_available(debit, *amount)?;
                let expires_at_ms = timeout_ms.map(|timeout_ms| now_ms.saturating_add(timeout_ms));
                let debit_state = self.account_mut(debit);
                debit_state.pending_debits = add_held(debit_state.pending_debits, *amount);
                let credit_state = self.account_mut(credit);
                credit_state.pending_credits = add_held(credit_state.pending_credits, *amount);
                let pending = PendingTransfer {
                    debit: debit.clone(),
                    credit: credit.clone(),
                    amount: *amount,
                    posted: Amount::ZERO,
                    created_ms: now_ms,
                    expires_at_ms,
                    state: PendingState::Open,
                };
                self.pendings.insert(*id, pending);
                if let Some(expires_at_ms) = expires_at_ms {
                    self.expiries.insert((expires_at_ms, *id));
                }
                Ok(Outcome::Held { expires_at_ms })
            }
            Op::Post { pending_id, amount, .. } => {
                let pending = self.open_pending(*pending_id)?;
                if let Some(expires_at_ms) = pending.expires_at_ms.filter(|&at| now_ms >= at) {
                    return Err(LedgerError::PendingExpired { pending_id: *pending_id, expires_at_ms });
                }
                let remaining = pending.remaining();
                if *amount > remaining {
                    return Err(LedgerError::ExceedsPending { pending_id: *pending_id, remaining, requested: *amount });
                }
                let (debit, credit) = (pending.debit.clone(), pending.credit.clone());
                let debit_state = self.account_mut(&debit);
                debit_state.pending_debits = sub_held(debit_state.pending_debits, *amount);
                debit_state.posted -= i128::from(amount.base_units());
                let credit_state = self.account_mut(&credit);
                credit_state.pending_credits = sub_held(credit_state.pending_credits, *amount);
                credit_state.posted += i128::from(amount.base_units());
                let pending = self.pendings.get_mut(pending_id).expect("open_pending found it");
                pending.posted = add_held(pending.posted, *amount);
                let remaining = pending.remaining();
                if remaining.is_zero() {
                    pending.state = PendingState::Posted;
                    if let Some(expires_at_ms) = pending.expires_at_ms {
                        self.expiries.remove(&(expires_at_ms, *pending_id));
                    }
                }
                Ok(Outcome::Posted { remaining })
            }
            Op::Void { pending_id, .. } => {
                let pending = self.open_pending(*pending_id)?;
                let released = pending.remaining();
                let (debit, credit) = (pending.debit.clone(), pending.credit.clone());
                let debit_state = self.account_mut(&debit);
                debit_state.pending_debits = sub_held(debit_state.pending_debits, released);
                let credit_state = self.account_mut(&credit);
                credit_state.pending_credits = sub_held(credit_state.pending_credits, released);
                let pending = self.pendings.get_mut(pending_id).expect("open_pending found it");
                pending.state = PendingState::Voided;
                if let Some(expires_at_ms) = pending.expires_at_ms {
                    self.expiries.remove(&(expires_at_ms, *pending_id));
                }
                Ok(Outcome::Voided { released })
            }
            Op::Mint { credit, amount, .. } => {
                let supply = self
                    .supply
                    .checked_add(*amount)
                    .ok_or(LedgerError::SupplyOverflow { supply: self.supply, amount: *amount })?;
                self.account_mut(&AccountId::Mint).posted -= i128::from(amount.base_units());
                self.account_mut(credit).posted += i128::from(amount.base_units());
                self.supply = supply;
                Ok(Outcome::Minted { supply })
            }
        }
    }

    fn require_available(&self, debit: &AccountId, needed: Amount) -> Result<(), LedgerError> {
        let available = self.balance(debit).available;
        if available.0 < i128::from(needed.base_units()) {
            // Only the mint's balance is negative, and the mint is never debited here.
            let balance = available.to_amount().unwrap_or(Amount::ZERO);
            return Err(LedgerError::InsufficientFunds { account: debit.clone(), balance, needed });
        }
        Ok(())
    }

    fn open_pending(&self, pending_id: TransferId) -> Result<&PendingTransfer, LedgerError> {
        let pending = self.pendings.get(&pending_id).ok_or(LedgerError::PendingNotFound { pending_id })?;
        match pending.state {
            PendingState::Open => Ok(pending),
            PendingState::Posted => Err(LedgerError::PendingPosted { pending_id }),
            PendingState::Voided => Err(LedgerError::PendingVoided { pending_id }),
        }
    }

    fn account_mut(&mut self, account: &AccountId) -> &mut AccountState {
        self.accounts.entry(account.clone()).or_default()
    }

    /// The balances of `account`; all zero for an account never used.
    pub fn balance(&self, account: &AccountId) -> Balance {
        self.accounts.get(account).map(AccountState::balance).unwrap_or_default()
    }

    /// Every account that an accepted operation touched, in order.
    pub fn accounts(&self) -> impl Iterator<Item = (&AccountId, Balance)> + '_ {
        self.accounts.iter().map(|(account, state)| (account, state.balance()))
    }

    /// What the hold `id` still holds (0 once resolved), or `None` if `id`
    /// is not a hold the ledger accepted.
    pub fn pending(&self, id: &TransferId) -> Option<Amount> {
        self.pendings.get(id).map(PendingTransfer::remaining)
    }

    pub fn pending_transfer(&self, id: &TransferId) -> Option<&PendingTransfer> {
        self.pendings.get(id)
    }

    /// Every hold the ledger accepted, open or resolved, by id.
    pub fn holds(&self) -> impl Iterator<Item = (&TransferId, &PendingTransfer)> + '_ {
        self.pendings.iter()
    }

    /// Open holds that expired by `now_ms`, soonest first: the shell voids them.
    pub fn expired(&self, now_ms: u64) -> impl Iterator<Item = TransferId> + '_ {
        self.expiries.range(..=(now_ms, TransferId(u128::MAX))).map(|&(_, id)| id)
    }

    /// The body and result the ledger recorded for `id`, if it recorded one.
    pub fn answer(&self, id: &TransferId) -> Option<(&Op, &Result<Outcome, LedgerError>)> {
        self.answers.get(id).map(|answer| (&answer.op, &answer.result))
    }

    /// All $IO ever minted.
    pub fn supply(&self) -> Amount {
        self.supply
    }

    /// The accounts an operation moves money of: both sides of a transfer
    /// or hold, the credit of a mint, the hold's sides for a post or void.
    fn accounts_of(&self, op: &Op) -> Vec<AccountId> {
        match op {
            Op::Transfer { debit, credit, .. } | Op::Hold { debit, credit, .. } => vec![debit.clone(), credit.clone()],
            Op::Mint { credit, .. } => vec![credit.clone()],
            Op::Post { pending_id, .. } | Op::Void { pending_id, .. } => self
                .pendings
                .get(pending_id)
                .map(|hold| vec![hold.debit.clone(), hold.credit.clone()])
                .unwrap_or_default(),
        }
    }

    /// The journal entries whose operation moved `account`'s money or was
    /// refused trying to, newest first.
    pub fn history<'a>(&'a self, account: &AccountId) -> impl Iterator<Item = &'a Entry> + 'a {
        let entries = self.journal.entries();
        self.touched.get(account).into_iter().flat_map(|positions| positions.iter().rev()).map(move |&i| &entries[i])
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Rebuilds a ledger from its journal: checks the hash chain, applies
    /// every entry's operation at the entry's time, and checks that each
    /// gives the entry the live ledger wrote (the same result, so the same
    /// hash). The rebuilt ledger equals the live one.
    pub fn replay(entries: &[Entry]) -> Result<Ledger, ReplayError> {
        Journal::verify(entries)?;
        let mut ledger = Ledger::new();
        for entry in entries {
            let seq = entry.seq;
            if let Some(last) = ledger.journal.last().filter(|last| entry.now_ms < last.now_ms) {
                return Err(ReplayError::TimeWentBackwards { seq, now_ms: entry.now_ms, last_ms: last.now_ms });
            }
            let n_entries = ledger.journal.len();
            let result = ledger.apply(entry.op.clone(), entry.now_ms);
            if ledger.journal.len() == n_entries {
                return Err(match result {
                    Err(error) => ReplayError::Refused { seq, error },
                    Ok(_) => ReplayError::Duplicate { seq, id: entry.op.id() },
                });
            }
            let replayed = ledger.journal.last().expect("apply appended an entry");
            if replayed != entry {
                return Err(ReplayError::Diverged { seq, recorded: entry.rejected, replayed: replayed.rejected });
            }
        }
        Ok(ledger)
    }

    /// Checks every invariant, naming the first that does not hold:
    /// balances sum to zero (the mint's is minus the supply); no available
    /// balance is negative except the mint's; no hold is posted past its
    /// amount; the held totals of each account match its open holds; every
    /// journal entry answers one id.
    pub fn check(&self) -> Result<(), String> {
        let mut sum_posted: i128 = 0;
        for (account, state) in &self.accounts {
            sum_posted += state.posted;
            let balance = state.balance();
            if *account == AccountId::Mint {
                if state.posted != -i128::from(self.supply.base_units()) {
                    return Err(format!("mint balance {} is not minus the supply {}", balance.posted, self.supply));
                }
                if !state.pending_debits.is_zero() || !state.pending_credits.is_zero() {
                    return Err("the mint account has holds".to_owned());
                }
            } else if balance.available.0 < 0 {
                return Err(format!("{account}: available balance {} is negative", balance.available));
            }
        }
        if sum_posted != 0 {
            return Err(format!("balances sum to {} instead of 0", SignedAmount(sum_posted)));
        }

        let mut held: BTreeMap<&AccountId, (u128, u128)> = BTreeMap::new();
        let mut n_timed = 0;
        for (id, pending) in &self.pendings {
            if pending.posted > pending.amount {
                return Err(format!("hold {id}: {} posted of {}", pending.posted, pending.amount));
            }
            if (pending.state == PendingState::Posted) != (pending.posted == pending.amount) {
                return Err(format!(
                    "hold {id}: {:?} with {} posted of {}",
                    pending.state, pending.posted, pending.amount
                ));
            }
            let timed = pending.state == PendingState::Open && pending.expires_at_ms.is_some();
            if timed != pending.expires_at_ms.is_some_and(|at| self.expiries.contains(&(at, *id))) {
                return Err(format!("hold {id}: expiry index out of step"));
            }
            n_timed += usize::from(timed);
            let remaining = u128::from(pending.remaining().base_units());
            held.entry(&pending.debit).or_default().0 += remaining;
            held.entry(&pending.credit).or_default().1 += remaining;
        }
        if n_timed != self.expiries.len() {
            return Err(format!("{} expiries indexed for {n_timed} open holds with a timeout", self.expiries.len()));
        }
        for (account, state) in &self.accounts {
            let (debits, credits) = held.remove(account).unwrap_or_default();
            if u128::from(state.pending_debits.base_units()) != debits {
                return Err(format!("{account}: pending debits {} but its holds total {debits}", state.pending_debits));
            }
            if u128::from(state.pending_credits.base_units()) != credits {
                return Err(format!(
                    "{account}: pending credits {} but its holds total {credits}",
                    state.pending_credits
                ));
            }
        }
        if let Some(account) = held.keys().next() {
            return Err(format!("{account} is in a hold but is not an account"));
        }

        if self.journal.len() != self.answers.len() {
            return Err(format!("{} journal entries for {} answered ids", self.journal.len(), self.answers.len()));
        }
        Ok(())
    }
}

/// Adds to a held total. Held totals are bounded by the supply, which the
/// ledger keeps within [`Amount::MAX`].
fn add_held(held: Amount, amount: Amount) -> Amount {
    held.checked_add(amount).expect("held amounts are bounded by the supply")
}

/// Takes from a held total what an open hold put there.
fn sub_held(held: Amount, amount: Amount) -> Amount {
    held.checked_sub(amount).expect("a held total includes each of its open holds")
}

/// Refusals that follow from the body alone; see [`LedgerError`].
fn validate(op: &Op) -> Result<(), LedgerError> {
    let accounts: &[&AccountId] = match op {
        Op::Transfer { debit, credit, .. } | Op::Hold { debit, credit, .. } => &[debit, credit],
        Op::Mint { credit, .. } => &[credit],
        Op::Post { .. } | Op::Void { .. } => &[],
    };
    for account in accounts {
        if let Some(reason) = account.problem() {
            return Err(LedgerError::InvalidAccount { account: (*account).clone(), reason });
        }
    }
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
            if let Op::Hold { timeout_ms: Some(timeout_ms), .. } = op
                && !(1..=HOLD_TIMEOUT_MS_MAX).contains(timeout_ms)
            {
                return Err(LedgerError::InvalidTimeout { timeout_ms: *timeout_ms });
            }
        }
        Op::Post { amount, .. } => {
            if amount.is_zero() {
                return Err(LedgerError::ZeroAmount);
            }
        }
        Op::Void { .. } => {}
        Op::Mint { credit, amount, reason, .. } => {
            if *credit == AccountId::Mint {
                return Err(LedgerError::MintAccount);
            }
            if amount.is_zero() {
                return Err(LedgerError::ZeroAmount);
            }
            if reason.is_empty() || reason.len() > MINT_REASON_BYTES_MAX {
                return Err(LedgerError::InvalidReason { bytes: reason.len() });
            }
        }
    }
    Ok(())
}
