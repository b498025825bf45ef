//! The free capacity of the fleet, indexed so that finding the best device
//! group for a task does not scan the fleet.
//!
//! Every device group of every worker is an *entry*. An entry with free
//! devices, whose worker is connected and inside its availability windows,
//! sits in exactly one *pool*: the set of entries that agree on every
//! attribute a hard constraint looks at except price and free count —
//! device kind, model, memory, region, trust level. A pool keeps its
//! entries ordered three ways: by rank (lower is better), by price, and —
//! for entries with two or more free devices — by free devices, most first.
//!
//! Requirements are interned as *classes*; a class knows the pools whose
//! attributes fit it, and a new pool is added to the classes it fits when it
//! is created. Each class keeps its view of every one of its pools (from a
//! summary of the pool: best-ranked entry with its price and free devices,
//! cheapest price, most free devices) in a tournament tree whose root is the
//! best pool head that fits the class as it stands, so a search reads the
//! root instead of passing over the pools; a change of a pool's head costs
//! O(log pools) per class that includes the pool. Where a pool's best-ranked
//! entry is refused (too dear, too few free devices, or excluded by the
//! caller), the class lists the pool for a walk: at most [`WALK_MAX`]
//! entries in rank order to find the best one that fits, then the cheapest
//! (or most free) entries are tried; a walked pool that cannot beat what was
//! found costs one comparison. A placement costs O(walked pools + log n);
//! the pools are bounded by the distinct device models, regions and trust
//! levels, not by the workers. For one-device
//! tasks the search is exact; a multi-device task may, when a pool holds
//! more than [`WALK_MAX`] refused entries, miss a fitting one in that pool.
//!
//! **Rank** — lower is better — is an effective price: the asked price,
//! raised for low reputation and for load (the share of the group's devices
//! in use), plus a cost per millisecond of round-trip time to the
//! coordinator. Ties go to the entry least recently given work,
//! so equal workers share the load.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};

use iog_ledger::Amount;
use iog_types::DeviceKind;

use crate::offer::DeviceGroup;
use crate::request::Requirements;

/// Most entries a search walks in one pool, in each of its orders, before
/// it gives up on that pool.
pub const WALK_MAX: usize = 64;
/// Reputation of a worker nothing is known about yet, in thousandths.
pub const REPUTATION_NEUTRAL_MILLI: u16 = 500;

/// An entry of the index: one device group of one worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryId(pub u32);

/// An interned set of requirements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClassId(pub u32);

/// How rank weighs what it combines. See the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RankWeights {
    /// Percent added to the price at reputation 0, scaled down linearly to
    /// nothing at reputation 1000. Default 100: an unknown worker (500)
    /// ranks as if it asked 50 % more than a perfect one.
    pub reputation_pct: u32,
    /// Percent added to the price of a group with all its devices busy,
    /// linearly from nothing for an idle one, so work spreads over a
    /// worker's devices and over workers. Default 50.
    pub load_pct: u32,
    /// Base units of IO per device-hour that one millisecond of round-trip
    /// time to the coordinator is worth. Default 100 000 (0.0001 IO), so
    /// 100 ms weigh as much as 0.01 IO per device-hour.
    pub latency_base_units_per_ms: u64,
}

impl Default for RankWeights {
    fn default() -> RankWeights {
        RankWeights { reputation_pct: 100, load_pct: 50, latency_base_units_per_ms: 100_000 }
    }
}

/// What an entry is, besides its devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryTerms {
    pub region: String,
    pub price_io_per_device_hour: Amount,
    pub trust: u8,
    pub reputation_milli: u16,
    /// Round-trip time to the coordinator; 0 when unknown.
    pub rtt_ms: u32,
    /// Names of the software its worker offers, sorted.
    pub software: Vec<String>,
}

/// A read-only look at one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryView<'a, W> {
    pub owner: &'a W,
    pub group: &'a DeviceGroup,
    pub terms: &'a EntryTerms,
    pub used: u32,
    pub available: bool,
}

/// What [`Index::find`] chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub entry: EntryId,
    /// What the task pays per device-hour on this entry.
    pub price_io_per_device_hour: Amount,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PoolKey {
    kind: DeviceKind,
    model: String,
    memory_bytes: u64,
    region: String,
    trust: u8,
    software: Vec<String>,
}

/// Rank order: (rank, last given work, price, entry, free devices). The
/// price and the free devices ride in the key so a walk (and a pool's head)
/// can check them without touching the entry; the entry is unique, so the
/// free devices never decide the order.
type RankKey = (u64, u64, u64, u32, u32);

#[derive(Debug)]
struct Pool {
    key: PoolKey,
    by_rank: BTreeSet<RankKey>,
    by_price: BTreeSet<(u64, u32)>,
    /// Entries with at least two free devices: (free, most first; rank key).
    by_free: BTreeSet<(Reverse<u32>, RankKey)>,
}

/// What a search needs to know of a pool without descending its trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Head {
    best: RankKey,
    /// Free devices of the best-ranked entry.
    best_free: u32,
    cheapest: u64,
    most_free: u32,
}

/// A class's view of one of its pools, packed for a linear scan: the best
/// entry's (rank, last given work) when it fits the class as it stands,
/// [`SLOT_WALK`] when the pool may hold a fitting entry further down, and
/// [`SLOT_EMPTY`] when it holds none.
type Slot = u128;
const SLOT_EMPTY: Slot = u128::MAX;
const SLOT_WALK: Slot = u128::MAX - 1;

fn slot_of(head: Option<Head>, req: &Requirements) -> Slot {
    let Some(head) = head else { return SLOT_EMPTY };
    let price_max = req.price_io_per_device_hour_max.map_or(u64::MAX, Amount::base_units);
    if head.cheapest > price_max || head.most_free < req.count {
        SLOT_EMPTY
    } else if head.best.2 <= price_max && head.best_free >= req.count {
        (u128::from(head.best.0) << 64) | u128::from(head.best.1)
    } else {
        SLOT_WALK
    }
}

#[derive(Debug)]
struct Entry<W> {
    owner: W,
    group: DeviceGroup,
    terms: EntryTerms,
    used: u32,
    available: bool,
    /// Value of the index's counter when the entry last got work.
    seq: u64,
    /// The pool its attributes put it in (whether or not it is in it now).
    pool: u32,
    /// Where the entry sits now: its pool and its rank key (whose last
    /// field is its free devices).
    placed: Option<(u32, RankKey)>,
}

#[derive(Debug)]
struct Class {
    requirements: Requirements,
    pools: Vec<u32>,
    /// `slots[i]` is this class's view of `pools[i]`, kept current as pool
    /// heads change.
    slots: Vec<Slot>,
    /// A tournament over `slots`: `tree[cap + i]` is `slots[i]` with
    /// [`SLOT_WALK`] read as [`SLOT_EMPTY`], every inner node the least of
    /// its two children, so `tree[1]` is the best fitting pool head and a
    /// search does not pass over every pool.
    tree: Vec<Slot>,
    /// Positions whose slot is [`SLOT_WALK`], in no order.
    walks: Vec<u32>,
    /// Where each position sits in `walks`, or `u32::MAX`.
    walk_at: Vec<u32>,
    users: u32,
}

impl Class {
    fn new(requirements: Requirements, pools: Vec<u32>, slots: Vec<Slot>) -> Class {
        let mut class = Class {
            requirements,
            pools,
            slots: Vec::new(),
            tree: vec![SLOT_EMPTY; 16],
            walks: Vec::new(),
            walk_at: Vec::new(),
            users: 1,
        };
        for slot in slots {
            class.push(slot);
        }
        class
    }

    /// Leaves of the tournament.
    fn cap(&self) -> usize {
        self.tree.len() / 2
    }

    /// Adds a position with `slot` (the caller pushes its pool).
    fn push(&mut self, slot: Slot) {
        let pos = self.slots.len();
        if pos >= self.cap() {
            let cap = (pos + 1).next_power_of_two().max(8);
            let mut tree = vec![SLOT_EMPTY; 2 * cap];
            tree[cap..cap + pos].copy_from_slice(&self.tree[self.cap()..self.cap() + pos]);
            for i in (1..cap).rev() {
                tree[i] = tree[2 * i].min(tree[2 * i + 1]);
            }
            self.tree = tree;
        }
        self.slots.push(SLOT_EMPTY);
        self.walk_at.push(u32::MAX);
        self.set(pos, slot);
    }

    /// Sets the slot at `pos`, keeping the tournament and the walk list.
    fn set(&mut self, pos: usize, slot: Slot) {
        let old = self.slots[pos];
        if old == slot {
            return;
        }
        self.slots[pos] = slot;
        if old == SLOT_WALK {
            let at = self.walk_at[pos] as usize;
            self.walks.swap_remove(at);
            if let Some(&moved) = self.walks.get(at) {
                self.walk_at[moved as usize] = at as u32;
            }
            self.walk_at[pos] = u32::MAX;
        } else if slot == SLOT_WALK {
            self.walk_at[pos] = self.walks.len() as u32;
            self.walks.push(pos as u32);
        }
        let leaf = if slot == SLOT_WALK { SLOT_EMPTY } else { slot };
        let mut i = self.cap() + pos;
        if self.tree[i] == leaf {
            return;
        }
        self.tree[i] = leaf;
        while i > 1 {
            i /= 2;
            let least = self.tree[2 * i].min(self.tree[2 * i + 1]);
            if self.tree[i] == least {
                break;
            }
            self.tree[i] = least;
        }
    }

    /// The first position whose slot is the least fitting one, if any.
    fn best(&self) -> Option<usize> {
        let least = self.tree[1];
        if least >= SLOT_WALK {
            return None;
        }
        let cap = self.cap();
        let mut i = 1;
        while i < cap {
            i = if self.tree[2 * i] == least { 2 * i } else { 2 * i + 1 };
        }
        Some(i - cap)
    }
}

/// Whether a search may take an entry, by its owner and device group.
type Allow<'a, W> = dyn Fn(&W, &DeviceGroup) -> bool + 'a;

/// The fleet's free capacity. See the module documentation.
#[derive(Debug)]
pub struct Index<W> {
    weights: RankWeights,
    entries: Vec<Option<Entry<W>>>,
    free_slots: Vec<u32>,
    pools: Vec<Pool>,
    heads: Vec<Option<Head>>,
    pool_ids: HashMap<PoolKey, u32>,
    /// For each pool, the classes that include it and where: (class, position).
    pool_classes: Vec<Vec<(u32, u32)>>,
    classes: Vec<Option<Class>>,
    class_ids: HashMap<Requirements, u32>,
    free_classes: Vec<u32>,
    counter: u64,
    n_live: usize,
    /// Free devices of available entries.
    n_free: u64,
    /// Entries (available or not) by their group's model.
    models: HashMap<String, BTreeSet<u32>>,
}

impl<W> Default for Index<W> {
    fn default() -> Index<W> {
        Index::new(RankWeights::default())
    }
}

impl<W> Index<W> {
    pub fn new(weights: RankWeights) -> Index<W> {
        Index {
            weights,
            entries: Vec::new(),
            free_slots: Vec::new(),
            pools: Vec::new(),
            heads: Vec::new(),
            pool_ids: HashMap::new(),
            pool_classes: Vec::new(),
            classes: Vec::new(),
            class_ids: HashMap::new(),
            free_classes: Vec::new(),
            counter: 0,
            n_live: 0,
            n_free: 0,
            models: HashMap::new(),
        }
    }

    /// Adds a device group with `used` of its devices already busy.
    pub fn insert(&mut self, owner: W, group: DeviceGroup, terms: EntryTerms, used: u32, available: bool) -> EntryId {
        let pool = self.pool_id(pool_key(&group, &terms));
        let model = group.model.clone();
        let entry = Entry { owner, group, terms, used, available, seq: 0, pool, placed: None };
        let idx = match self.free_slots.pop() {
            Some(idx) => {
                self.entries[idx as usize] = Some(entry);
                idx
            }
            None => {
                self.entries.push(Some(entry));
                u32::try_from(self.entries.len() - 1).expect("fewer than 2^32 entries")
            }
        };
        self.n_live += 1;
        self.models.entry(model).or_default().insert(idx);
        self.reindex(idx);
        EntryId(idx)
    }

    /// Removes an entry; its id may be reused.
    pub fn remove(&mut self, entry: EntryId) -> Option<W> {
        let idx = entry.0;
        self.unplace(idx);
        let removed = self.entries.get_mut(idx as usize)?.take()?;
        self.free_slots.push(idx);
        self.n_live -= 1;
        if let Some(entries) = self.models.get_mut(&removed.group.model) {
            entries.remove(&idx);
            if entries.is_empty() {
                self.models.remove(&removed.group.model);
            }
        }
        Some(removed.owner)
    }

    /// Marks `n` more devices of the entry busy (a task was placed there).
    pub fn take(&mut self, entry: EntryId, n: u32) {
        self.counter += 1;
        let counter = self.counter;
        let e = self.entry_mut(entry);
        e.used = e.used.saturating_add(n);
        e.seq = counter;
        self.reindex(entry.0);
    }

    /// Marks `n` devices of the entry free again.
    pub fn give_back(&mut self, entry: EntryId, n: u32) {
        let e = self.entry_mut(entry);
        e.used = e.used.saturating_sub(n);
        self.reindex(entry.0);
    }

    /// Takes an entry out of placement (worker gone, window closed, owner
    /// back) or puts it back, keeping what it has in use.
    pub fn set_available(&mut self, entry: EntryId, available: bool) {
        let e = self.entry_mut(entry);
        if e.available != available {
            e.available = available;
            self.reindex(entry.0);
        }
    }

    /// Changes what an entry asks and how it ranks, keeping its devices.
    pub fn set_terms(&mut self, entry: EntryId, terms: EntryTerms) {
        self.unplace(entry.0);
        let key = pool_key(&self.entry_mut(entry).group, &terms);
        let pool = self.pool_id(key);
        let e = self.entry_mut(entry);
        e.terms = terms;
        e.pool = pool;
        self.reindex(entry.0);
    }

    pub fn get(&self, entry: EntryId) -> Option<EntryView<'_, W>> {
        let e = self.entries.get(entry.0 as usize)?.as_ref()?;
        Some(EntryView { owner: &e.owner, group: &e.group, terms: &e.terms, used: e.used, available: e.available })
    }

    /// Every live entry, in id order.
    pub fn iter(&self) -> impl Iterator<Item = (EntryId, EntryView<'_, W>)> + '_ {
        self.entries.iter().enumerate().filter_map(|(idx, e)| {
            let e = e.as_ref()?;
            let view =
                EntryView { owner: &e.owner, group: &e.group, terms: &e.terms, used: e.used, available: e.available };
            Some((EntryId(idx as u32), view))
        })
    }

    /// Where an entry stands in rank order — (effective price, last given
    /// work) — while it has free devices and is available; lower goes first.
    pub fn rank_of(&self, entry: EntryId) -> Option<(u64, u64)> {
        let (_, key) = self.entries.get(entry.0 as usize)?.as_ref()?.placed?;
        Some((key.0, key.1))
    }

    pub fn len(&self) -> usize {
        self.n_live
    }

    /// Free devices on available entries, all pools together.
    pub fn n_free_devices(&self) -> u64 {
        self.n_free
    }

    /// The entries whose group is of this model (exactly), whether or not
    /// they are available or have free devices, in no useful order.
    pub fn of_model(&self, model: &str) -> impl Iterator<Item = EntryView<'_, W>> + '_ {
        self.models.get(model).into_iter().flatten().filter_map(|&idx| self.get(EntryId(idx)))
    }

    pub fn is_empty(&self) -> bool {
        self.n_live == 0
    }

    /// Distinct pools created so far (they are kept when they empty).
    pub fn n_pools(&self) -> usize {
        self.pools.len()
    }

    /// Interns `requirements` (validated by the caller) and counts one more
    /// user of it; [`Index::release_class`] counts one less.
    pub fn class(&mut self, requirements: &Requirements) -> ClassId {
        if let Some(&id) = self.class_ids.get(requirements) {
            self.classes[id as usize].as_mut().expect("interned classes exist").users += 1;
            return ClassId(id);
        }
        let pools: Vec<u32> =
            (0..self.pools.len() as u32).filter(|&p| pool_fits(&self.pools[p as usize].key, requirements)).collect();
        let slots = pools.iter().map(|&p| slot_of(self.heads[p as usize], requirements)).collect();
        let id = match self.free_classes.pop() {
            Some(id) => id,
            None => {
                self.classes.push(None);
                u32::try_from(self.classes.len() - 1).expect("fewer than 2^32 classes")
            }
        };
        for (pos, &p) in pools.iter().enumerate() {
            self.pool_classes[p as usize].push((id, pos as u32));
        }
        self.classes[id as usize] = Some(Class::new(requirements.clone(), pools, slots));
        self.class_ids.insert(requirements.clone(), id);
        ClassId(id)
    }

    /// One user of a class is gone; the last one frees it.
    pub fn release_class(&mut self, class: ClassId) {
        let Some(slot) = self.classes.get_mut(class.0 as usize) else { return };
        let Some(c) = slot.as_mut() else { return };
        c.users -= 1;
        if c.users == 0 {
            let c = slot.take().expect("checked above");
            for p in c.pools {
                self.pool_classes[p as usize].retain(|&(id, _)| id != class.0);
            }
            self.class_ids.remove(&c.requirements);
            self.free_classes.push(class.0);
        }
    }

    pub fn requirements(&self, class: ClassId) -> Option<&Requirements> {
        self.classes.get(class.0 as usize)?.as_ref().map(|c| &c.requirements)
    }

    /// The best free entry for a task of `class` that meets every hard
    /// constraint, or `None`. Changes nothing; call [`Index::take`] to use it.
    ///
    /// The class's tournament over its pool slots gives the best pool whose
    /// best entry fits; only pools marked for a walk are descended.
    pub fn find(&self, class: ClassId) -> Option<Placement> {
        let class = self.classes.get(class.0 as usize)?.as_ref()?;
        let mut found: Option<RankKey> = class.best().map(|pos| {
            let p = class.pools[pos];
            self.heads[p as usize].expect("a fitting slot has a head").best
        });
        if !class.walks.is_empty() {
            let req = &class.requirements;
            for &pos in &class.walks {
                let p = class.pools[pos as usize];
                let head = self.heads[p as usize].expect("a walk slot has a head");
                if found.is_some_and(|found| head.best >= found) {
                    continue;
                }
                if let Some(walked) = self.walk(p, req, None)
                    && found.is_none_or(|found| walked < found)
                {
                    found = Some(walked);
                }
            }
        }
        found.map(|key| Placement { entry: EntryId(key.3), price_io_per_device_hour: Amount::from_base_units(key.2) })
    }

    /// The best entry of pool `p` that fits `req` and whose owner passes
    /// `allow`, looked for in a bounded walk: rank order first, then the
    /// cheapest (or, for a multi-device task, the most free) entries.
    /// Without `allow` it reads nothing but the pool's orders.
    fn walk(&self, p: u32, req: &Requirements, allow: Option<&Allow<'_, W>>) -> Option<RankKey> {
        let price_max = req.price_io_per_device_hour_max.map_or(u64::MAX, Amount::base_units);
        let count = req.count;
        let fits = |key: &RankKey| {
            key.2 <= price_max
                && key.4 >= count
                && allow.is_none_or(|allow| {
                    let entry = self.entries[key.3 as usize].as_ref().expect("pooled entries exist");
                    allow(&entry.owner, &entry.group)
                })
        };
        let pool = &self.pools[p as usize];
        pool.by_rank.iter().take(WALK_MAX).find(|key| fits(key)).copied().or_else(|| {
            if count == 1 {
                pool.by_price
                    .iter()
                    .take_while(|&&(price, _)| price <= price_max)
                    .take(WALK_MAX)
                    .map(|&(_, idx)| self.rank_key_of(idx))
                    .find(|key| fits(key))
            } else {
                pool.by_free
                    .iter()
                    .take_while(|(Reverse(free), _)| *free >= count)
                    .take(WALK_MAX)
                    .map(|(_, key)| *key)
                    .find(|key| fits(key))
            }
        })
    }

    /// As [`Index::find`], among entries whose owner and device group pass
    /// `allow` (used to keep a task's replicas on distinct workers, and on
    /// devices of one model where the job asks for that).
    pub fn find_where(&self, class: ClassId, allow: impl Fn(&W, &DeviceGroup) -> bool) -> Option<Placement> {
        let class = self.classes.get(class.0 as usize)?.as_ref()?;
        let req = &class.requirements;
        let mut best: Option<RankKey> = None;
        for (pos, &p) in class.pools.iter().enumerate() {
            if class.slots[pos] == SLOT_EMPTY {
                continue;
            }
            let head = self.heads[p as usize].expect("a slot that is not empty has a head");
            if best.is_some_and(|best| head.best >= best) {
                // Nothing in this pool ranks better than what was found.
                continue;
            }
            if let Some(found) = self.walk(p, req, Some(&allow))
                && best.is_none_or(|best| found < best)
            {
                best = Some(found);
            }
        }
        best.map(|key| Placement { entry: EntryId(key.3), price_io_per_device_hour: Amount::from_base_units(key.2) })
    }

    /// The first free entries of a class in rank order, up to `n`, at most
    /// one per owner (for gangs, which need distinct workers).
    pub fn candidates(&self, class: ClassId, n: usize) -> Vec<EntryId>
    where
        W: Eq + std::hash::Hash,
    {
        let Some(Some(class)) = self.classes.get(class.0 as usize) else { return Vec::new() };
        let req = &class.requirements;
        let mut keys: Vec<RankKey> = Vec::new();
        for &p in &class.pools {
            let pool = &self.pools[p as usize];
            let mut taken = 0;
            for key in pool.by_rank.iter() {
                if key.4 >= req.count && req.fits_price(Amount::from_base_units(key.2)) {
                    keys.push(*key);
                    taken += 1;
                    if taken >= n.saturating_mul(4) {
                        break;
                    }
                }
            }
        }
        keys.sort_unstable();
        let mut seen = std::collections::HashSet::new();
        keys.into_iter()
            .filter(|key| seen.insert(&self.entries[key.3 as usize].as_ref().expect("pooled entries exist").owner))
            .take(n)
            .map(|key| EntryId(key.3))
            .collect()
    }

    fn rank_key_of(&self, idx: u32) -> RankKey {
        self.entries[idx as usize].as_ref().and_then(|e| e.placed).expect("pooled entries are placed").1
    }

    fn entry_mut(&mut self, entry: EntryId) -> &mut Entry<W> {
        self.entries[entry.0 as usize].as_mut().expect("the caller holds a live entry id")
    }

    /// Takes an entry out of its pool, if it is in one.
    fn unplace(&mut self, idx: u32) {
        let Some(Some(e)) = self.entries.get_mut(idx as usize) else { return };
        let Some((p, key)) = e.placed.take() else { return };
        let free = key.4;
        self.n_free -= u64::from(free);
        let pool = &mut self.pools[p as usize];
        pool.by_rank.remove(&key);
        pool.by_price.remove(&(key.2, idx));
        if free >= 2 {
            pool.by_free.remove(&(Reverse(free), key));
        }
        self.refresh_head(p);
    }

    /// Puts an entry where its state says it belongs, touching only the
    /// orders whose keys changed.
    fn reindex(&mut self, idx: u32) {
        let weights = self.weights;
        let e = self.entries[idx as usize].as_ref().expect("reindexed entries exist");
        let free = e.group.count.saturating_sub(e.used);
        if !e.available || free == 0 {
            self.unplace(idx);
            return;
        }
        let price = e.terms.price_io_per_device_hour.base_units();
        let rank_key = (
            rank(&weights, price, e.terms.reputation_milli, e.terms.rtt_ms, e.used, e.group.count),
            e.seq,
            price,
            idx,
            free,
        );
        let placed = e.placed;
        let p = e.pool;
        match placed {
            Some((old_p, old_key)) if old_p == p => {
                let old_free = old_key.4;
                if (old_key, old_free) == (rank_key, free) {
                    return;
                }
                let pool = &mut self.pools[p as usize];
                if old_key != rank_key {
                    pool.by_rank.remove(&old_key);
                    pool.by_rank.insert(rank_key);
                }
                if old_key.2 != rank_key.2 {
                    pool.by_price.remove(&(old_key.2, idx));
                    pool.by_price.insert((rank_key.2, idx));
                }
                if old_free >= 2 {
                    pool.by_free.remove(&(Reverse(old_free), old_key));
                }
                if free >= 2 {
                    pool.by_free.insert((Reverse(free), rank_key));
                }
                self.n_free = self.n_free - u64::from(old_free) + u64::from(free);
            }
            _ => {
                self.unplace(idx);
                let pool = &mut self.pools[p as usize];
                pool.by_rank.insert(rank_key);
                pool.by_price.insert((price, idx));
                if free >= 2 {
                    pool.by_free.insert((Reverse(free), rank_key));
                }
                self.n_free += u64::from(free);
            }
        }
        self.entries[idx as usize].as_mut().expect("reindexed entries exist").placed = Some((p, rank_key));
        self.refresh_head(p);
    }

    fn refresh_head(&mut self, p: u32) {
        let pool = &self.pools[p as usize];
        let head = pool.by_rank.first().map(|&best| Head {
            best,
            best_free: best.4,
            cheapest: pool.by_price.first().map_or(u64::MAX, |&(price, _)| price),
            most_free: pool.by_free.first().map_or(1, |(Reverse(free), _)| *free),
        });
        if self.heads[p as usize] == head {
            return;
        }
        self.heads[p as usize] = head;
        for &(class, pos) in &self.pool_classes[p as usize] {
            let c = self.classes[class as usize].as_mut().expect("listed classes exist");
            let slot = slot_of(head, &c.requirements);
            c.set(pos as usize, slot);
        }
    }

    fn pool_id(&mut self, key: PoolKey) -> u32 {
        if let Some(&p) = self.pool_ids.get(&key) {
            return p;
        }
        let p = u32::try_from(self.pools.len()).expect("fewer than 2^32 pools");
        let mut listed = Vec::new();
        for (id, class) in self.classes.iter_mut().enumerate() {
            let Some(class) = class else { continue };
            if pool_fits(&key, &class.requirements) {
                listed.push((id as u32, class.pools.len() as u32));
                class.pools.push(p);
                class.push(SLOT_EMPTY);
            }
        }
        self.pool_ids.insert(key.clone(), p);
        self.pools.push(Pool { key, by_rank: BTreeSet::new(), by_price: BTreeSet::new(), by_free: BTreeSet::new() });
        self.heads.push(None);
        self.pool_classes.push(listed);
        p
    }

    /// Checks the index's bookkeeping; tests call it after every step.
    pub fn check(&self) -> Result<(), String> {
        let mut pooled = 0usize;
        let mut multi = 0usize;
        for (idx, e) in self.entries.iter().enumerate() {
            let Some(e) = e else { continue };
            let free = e.group.count.saturating_sub(e.used);
            let should = e.available && free > 0;
            match (should, e.placed) {
                (true, Some((p, key))) => {
                    let placed_free = key.4;
                    pooled += 1;
                    multi += usize::from(free >= 2);
                    let pool = &self.pools[p as usize];
                    if !pool.by_rank.contains(&key) || key.3 != idx as u32 || placed_free != free || key.4 != free {
                        return Err(format!("entry {idx} is not in its pool's rank order as it is now"));
                    }
                    if key.2 != e.terms.price_io_per_device_hour.base_units()
                        || !pool.by_price.contains(&(key.2, idx as u32))
                    {
                        return Err(format!("entry {idx} is not in its pool's price order"));
                    }
                    if free >= 2 && !pool.by_free.contains(&(Reverse(free), key)) {
                        return Err(format!("entry {idx} is not in its pool's free order"));
                    }
                    if pool.key != pool_key(&e.group, &e.terms) || p != e.pool {
                        return Err(format!("entry {idx} sits in the wrong pool"));
                    }
                }
                (false, None) => {}
                (true, None) => return Err(format!("entry {idx} has free devices but is in no pool")),
                (false, Some(_)) => {
                    return Err(format!("entry {idx} is pooled without free devices or while unavailable"));
                }
            }
        }
        let free: u64 = self
            .entries
            .iter()
            .flatten()
            .filter(|e| e.available)
            .map(|e| u64::from(e.group.count.saturating_sub(e.used)))
            .sum();
        if free != self.n_free {
            return Err(format!("the index counts {} free devices, its entries have {free}", self.n_free));
        }
        let mut models: HashMap<&str, BTreeSet<u32>> = HashMap::new();
        for (idx, e) in self.entries.iter().enumerate() {
            if let Some(e) = e {
                models.entry(e.group.model.as_str()).or_default().insert(idx as u32);
            }
        }
        if models.len() != self.models.len()
            || models.iter().any(|(model, entries)| self.models.get(*model) != Some(entries))
        {
            return Err(format!("the index lists entries by model as {:?}; they are {models:?}", self.models));
        }
        let in_pools: usize = self.pools.iter().map(|pool| pool.by_rank.len()).sum();
        let by_price: usize = self.pools.iter().map(|pool| pool.by_price.len()).sum();
        let by_free: usize = self.pools.iter().map(|pool| pool.by_free.len()).sum();
        if in_pools != pooled || by_price != pooled || by_free != multi {
            return Err(format!(
                "pools hold {in_pools} (by rank), {by_price} (by price) and {by_free} (by free) entries; \
                 {pooled}, {pooled} and {multi} should be"
            ));
        }
        for (p, pool) in self.pools.iter().enumerate() {
            if self.heads[p].map(|h| h.best) != pool.by_rank.first().copied() {
                return Err(format!("pool {p}'s head is stale"));
            }
        }
        for (id, class) in self.classes.iter().enumerate() {
            let Some(class) = class else { continue };
            for (pos, &p) in class.pools.iter().enumerate() {
                if class.slots[pos] != slot_of(self.heads[p as usize], &class.requirements) {
                    return Err(format!("class {id}'s view of pool {p} is stale"));
                }
                if !self.pool_classes[p as usize].contains(&(id as u32, pos as u32)) {
                    return Err(format!("pool {p} does not list class {id}"));
                }
                let leaf = if class.slots[pos] == SLOT_WALK { SLOT_EMPTY } else { class.slots[pos] };
                if class.tree[class.cap() + pos] != leaf {
                    return Err(format!("class {id}'s tournament leaf for pool {p} is stale"));
                }
                let walk_at = class.walk_at[pos];
                let listed = class.walks.get(walk_at as usize) == Some(&(pos as u32));
                if listed != (class.slots[pos] == SLOT_WALK) {
                    return Err(format!("class {id}'s walk list is wrong about pool {p}"));
                }
            }
            let cap = class.cap();
            if class.slots.len() > cap || class.tree[cap + class.slots.len()..].iter().any(|&leaf| leaf != SLOT_EMPTY) {
                return Err(format!("class {id}'s tournament has stray leaves"));
            }
            for i in 1..cap {
                if class.tree[i] != class.tree[2 * i].min(class.tree[2 * i + 1]) {
                    return Err(format!("class {id}'s tournament is stale at node {i}"));
                }
            }
            if class.walks.len() != class.slots.iter().filter(|&&slot| slot == SLOT_WALK).count() {
                return Err(format!("class {id}'s walk list has {} positions", class.walks.len()));
            }
        }
        Ok(())
    }
}

fn pool_key(group: &DeviceGroup, terms: &EntryTerms) -> PoolKey {
    PoolKey {
        kind: group.kind,
        model: group.model.clone(),
        memory_bytes: group.memory_bytes,
        region: terms.region.clone(),
        trust: terms.trust,
        software: terms.software.clone(),
    }
}

/// Whether every entry of a pool with this key meets `req`'s constraints
/// other than price and free devices.
fn pool_fits(key: &PoolKey, req: &Requirements) -> bool {
    req.kind.is_none_or(|kind| kind == key.kind)
        && key.memory_bytes >= req.memory_bytes_min
        && req.fits_model(&key.model)
        && req.fits_region(&key.region)
        && key.trust >= req.trust_min
        && req.fits_software(&key.software)
}

/// Added to every price before reputation and load scale it (and taken
/// off after), so that they rank free and near-free workers too: without
/// it a free worker that drops every task ranked as well as a reliable one
/// (0.01 IO per device-hour; 1 ms of round trip weighs a hundredth of it).
pub const RANK_PRICE_FLOOR_BASE_UNITS: u64 = 10_000_000;

/// The effective price of an entry; lower ranks first.
fn rank(weights: &RankWeights, price: u64, reputation_milli: u16, rtt_ms: u32, used: u32, count: u32) -> u64 {
    const MILLI: u128 = 1000;
    let floor = u128::from(RANK_PRICE_FLOOR_BASE_UNITS);
    let price = u128::from(price) + floor;
    let reputation = u128::from(reputation_milli.min(1000));
    let load_milli = if count == 0 { MILLI } else { u128::from(used.min(count)) * MILLI / u128::from(count) };
    let reputation_factor = 100 * MILLI + u128::from(weights.reputation_pct) * (MILLI - reputation);
    let load_factor = 100 * MILLI + u128::from(weights.load_pct) * load_milli;
    let effective = (price * reputation_factor / (100 * MILLI) * load_factor / (100 * MILLI)).saturating_sub(floor)
        + u128::from(rtt_ms) * u128::from(weights.latency_base_units_per_ms);
    u64::try_from(effective).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(model: &str, gib: u64, count: u32) -> DeviceGroup {
        DeviceGroup::gpu(model, gib << 30, count)
    }

    fn terms(region: &str, price_milli_io: u64) -> EntryTerms {
        EntryTerms {
            region: region.to_owned(),
            price_io_per_device_hour: Amount::from_base_units(price_milli_io * 1_000_000),
            trust: 1,
            reputation_milli: REPUTATION_NEUTRAL_MILLI,
            rtt_ms: 0,
            software: Vec::new(),
        }
    }

    #[test]
    fn the_cheapest_fitting_group_wins_and_constraints_hold() {
        let mut index: Index<&str> = Index::default();
        let a = index.insert("a", gpu("RTX 4090", 24, 1), terms("eu", 400), 0, true);
        let b = index.insert("b", gpu("RTX 3060", 12, 1), terms("eu", 100), 0, true);
        let c = index.insert("c", gpu("A100", 80, 8), terms("us-east", 1500), 0, true);
        index.check().unwrap();
        let any = index.class(&Requirements::one(DeviceKind::Gpu));
        assert_eq!(index.find(any).unwrap().entry, b);
        let big = index.class(&Requirements { memory_bytes_min: 24 << 30, ..Requirements::one(DeviceKind::Gpu) });
        assert_eq!(index.find(big).unwrap().entry, a);
        let eight = index.class(&Requirements { count: 8, ..Requirements::one(DeviceKind::Gpu) });
        assert_eq!(index.find(eight).unwrap().entry, c);
        let capped = index.class(&Requirements {
            memory_bytes_min: 24 << 30,
            price_io_per_device_hour_max: Some(Amount::from_base_units(300_000_000)),
            ..Requirements::one(DeviceKind::Gpu)
        });
        assert_eq!(index.find(capped), None);
        index.take(b, 1);
        index.check().unwrap();
        assert_eq!(index.find(any).unwrap().entry, a);
        index.take(c, 1);
        assert_eq!(index.find(eight), None, "7 free devices do not hold an 8-device task");
        index.give_back(c, 1);
        index.set_available(c, false);
        assert_eq!(index.find(eight), None);
        index.set_available(c, true);
        assert_eq!(index.find(eight).unwrap().entry, c);
        index.check().unwrap();
    }

    #[test]
    fn a_pool_whose_best_ranked_entry_costs_too_much_still_yields_a_fitting_one() {
        let mut index: Index<u32> = Index::default();
        // Same pool; the pricier one ranks first thanks to its reputation.
        let pricey =
            index.insert(1, gpu("L4", 24, 1), EntryTerms { reputation_milli: 1000, ..terms("eu", 500) }, 0, true);
        let cheap = index.insert(2, gpu("L4", 24, 1), EntryTerms { reputation_milli: 0, ..terms("eu", 300) }, 0, true);
        let any = index.class(&Requirements::one(DeviceKind::Gpu));
        assert_eq!(index.find(any).unwrap().entry, pricey);
        let capped = index.class(&Requirements {
            price_io_per_device_hour_max: Some(Amount::from_base_units(400_000_000)),
            ..Requirements::one(DeviceKind::Gpu)
        });
        assert_eq!(index.find(capped).unwrap().entry, cheap);
    }

    #[test]
    fn reputation_ranks_free_workers_too() {
        let mut index: Index<u32> = Index::default();
        // Both free; the unreliable one is a little closer.
        let flaky = index.insert(
            1,
            gpu("L4", 24, 1),
            EntryTerms { reputation_milli: 450, rtt_ms: 1, ..terms("eu", 0) },
            0,
            true,
        );
        let steady = index.insert(
            2,
            gpu("L4", 24, 1),
            EntryTerms { reputation_milli: 700, rtt_ms: 3, ..terms("eu", 0) },
            0,
            true,
        );
        let any = index.class(&Requirements::one(DeviceKind::Gpu));
        assert_eq!(index.find(any).unwrap().entry, steady);
        assert_ne!(flaky, steady);
    }

    #[test]
    fn equal_workers_take_turns() {
        let mut index: Index<u32> = Index::default();
        let ids: Vec<EntryId> = (0..3).map(|i| index.insert(i, gpu("T4", 16, 2), terms("eu", 100), 0, true)).collect();
        let class = index.class(&Requirements::one(DeviceKind::Gpu));
        let mut order = Vec::new();
        for _ in 0..3 {
            let found = index.find(class).unwrap().entry;
            index.take(found, 1);
            order.push(found);
        }
        order.sort();
        assert_eq!(order, ids, "each worker got one task before any got two");
    }

    #[test]
    fn a_class_made_after_many_pools_finds_the_best_of_them() {
        let mut index: Index<u32> = Index::default();
        let mut ids = Vec::new();
        for i in 0..120u32 {
            let region = ["eu", "us-east", "asia", "sa", "africa"][(i % 5) as usize];
            let model = ["T4", "L4", "A10", "H100", "H200", "RTX 4090", "RTX 3090", "A100"][(i / 5 % 8) as usize];
            let terms =
                EntryTerms { trust: (i % 3) as u8, rtt_ms: i * 7 % 150, ..terms(region, 100 + u64::from(i * 37 % 90)) };
            ids.push(index.insert(i, gpu(model, 24, 1 + i % 4), terms, 0, true));
        }
        assert!(index.n_pools() > 64);
        let any = index.class(&Requirements::one(DeviceKind::Gpu));
        let two = index.class(&Requirements { count: 2, ..Requirements::one(DeviceKind::Gpu) });
        for step in 0..300 {
            index.check().unwrap();
            for (class, count) in [(any, 1), (two, 2)] {
                let best = ids
                    .iter()
                    .filter(|&&id| index.get(id).is_some_and(|v| v.group.count - v.used >= count))
                    .map(|&id| index.rank_of(id).unwrap())
                    .min();
                assert_eq!(index.find(class).map(|found| index.rank_of(found.entry).unwrap()), best);
            }
            let Some(found) = index.find(if step % 2 == 0 { any } else { two }) else { break };
            index.take(found.entry, 1 + step as u32 % 2);
            if step % 3 == 0 {
                let back = ids[step * 7 % ids.len()];
                let used = index.get(back).unwrap().used;
                index.give_back(back, used);
            }
        }
    }

    #[test]
    fn classes_are_shared_and_freed() {
        let mut index: Index<u32> = Index::default();
        let req = Requirements::one(DeviceKind::Cpu);
        let a = index.class(&req);
        let b = index.class(&req);
        assert_eq!(a, b);
        index.release_class(a);
        assert!(index.requirements(b).is_some());
        index.release_class(b);
        assert!(index.requirements(b).is_none());
    }
}
