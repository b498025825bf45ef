//! The market search language: `iog market search 'gpu_mem>=24 price<=0.8 region=eu'`.
//!
//! The coordinator evaluates a [`Query`] over the offer of every online
//! worker and lists the device groups that match. A query is a list of terms
//! separated by whitespace, and a group matches when every term holds, so the
//! empty query matches every group. A term is a field, an operator and a
//! value with no spaces between them, such as `gpu_mem>=24`.
//!
//! The operators are `>=`, `<=`, `>`, `<`, `=` (also written `==`) and `!=`.
//! After `=` a list of values separated by commas means any of them
//! (`region=eu,us-east`, `model=H100,A100`); after `!=` it means none of them.
//! The other operators take one value.
//!
//! The fields, with the names they may also go by:
//!
//! - `kind`: `cpu` or `gpu`; `=` and `!=` only.
//! - `gpu_mem` (also `mem`): memory of each device of the group in GiB
//!   (2^30 bytes), decimals allowed (`23.5`), compared exactly with
//!   [`DeviceGroup::memory_bytes`]. For a CPU group it is the memory the
//!   worker lends (half the host's unless its owner says otherwise).
//! - `count` (also `num_gpus`): how many devices the group has, a whole
//!   number ([`DeviceGroup::count`]; for a CPU group its task slots).
//! - `price`: IO per device-hour, at most 9 decimals (`0.8`), compared with
//!   [`Offer::price_io_per_device_hour`].
//! - `region`: the offer's region, exactly (`eu`); `=` and `!=` only.
//! - `model`: part of the group's model name in any case (`model=h100`
//!   matches `NVIDIA H100 80GB HBM3`); `=` and `!=` only. A term holds no
//!   spaces, so a model is found by a part of its name without them
//!   (`model=4090`).
//! - `cc` (also `compute_cap`): CUDA compute capability as a decimal number
//!   (`8.6`, `9.0`), compared numerically. A group without one (a CPU, or a
//!   GPU whose driver did not say) matches no `cc` term, not even `!=`.
//! - `trust`: the worker's trust level, a whole number from 0 to
//!   [`TRUST_LEVEL_MAX`].
//! - `idle_only`: `true` or `false`, whether the owner runs the worker only
//!   while the machine is otherwise idle ([`Offer::idle_only`]); `=` and `!=`
//!   only.
//! - `runs` (also `software`): software the worker offers, by name
//!   ([`Offer::software`]: `wasm`, `process`, `python3`, `blender`,
//!   `container`); `=` and `!=` only. `runs=python3,blender` finds workers
//!   with either; write two terms for both.
//!
//! Field names and the words `cpu`, `gpu`, `true` and `false` are read in any
//! case; a region must be written as offers write it, in lowercase.
//!
//! A query prints in a normal form (each field by its main name, `=` for
//! `==`, numbers without needless zeros) that parses back to the same query.
//!
//! ```
//! use iog_sched::query::Query;
//!
//! let query = Query::parse("mem>=24 num_gpus>=2 region==eu,us-east")?;
//! assert_eq!(query.to_string(), "gpu_mem>=24 count>=2 region=eu,us-east");
//! # Ok::<(), iog_sched::query::QueryError>(())
//! ```

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use iog_ledger::{Amount, AmountParseError, DECIMALS};
use iog_types::DeviceKind;

use crate::offer::{DeviceGroup, GROUP_COUNT_MAX, Offer, valid_region, valid_software_name};
use crate::request::{CHOICES_MAX, MODEL_BYTES_MAX, Requirements, TRUST_LEVEL_MAX};

/// Longest query accepted, in bytes. A query comes from a command line or a
/// request body and is parsed by the coordinator, so its size is bounded
/// before any work is done on it.
pub const QUERY_BYTES_MAX: usize = 1024;
/// Most terms one query may have.
pub const TERMS_MAX: usize = 32;

/// Most decimals of a memory size or a compute capability; as many as a price
/// has, which is more than any real figure needs.
const NUMBER_DECIMALS_MAX: u32 = DECIMALS;

/// Bytes in one GiB, the unit of `gpu_mem`.
const BYTES_PER_GIB: u128 = 1 << 30;

/// The fields as the error for an unknown one lists them.
const FIELD_NAMES: &str = "kind, gpu_mem, count, price, region, model, cc, trust, idle_only, runs";

/// A parsed market search: device groups match when every term holds.
///
/// The default query has no terms and matches every group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    terms: Vec<Term>,
}

/// A query that cannot be read; the message names the term and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("the query is {0} bytes; at most {QUERY_BYTES_MAX}")]
    TooLong(usize),
    #[error("the query has {0} terms; at most {TERMS_MAX}")]
    TooManyTerms(usize),
    #[error("{term:?}: write field, operator and value, e.g. gpu_mem>=24")]
    Shape { term: String },
    #[error("unknown field {field:?} in {term:?}; fields are {FIELD_NAMES}")]
    UnknownField { field: String, term: String },
    #[error("{term:?}: {field} takes = or != only")]
    Operator { term: String, field: &'static str },
    #[error("{term:?}: only = and != take a list of values")]
    List { term: String },
    #[error("{term:?}: a list takes at most {CHOICES_MAX} values")]
    TooManyValues { term: String },
    #[error("{term:?}: {field} must be {expected}")]
    Value { term: String, field: &'static str, expected: String },
}

impl Query {
    /// Reads a query; empty or blank text is the query that matches everything.
    pub fn parse(text: &str) -> Result<Query, QueryError> {
        if text.len() > QUERY_BYTES_MAX {
            return Err(QueryError::TooLong(text.len()));
        }
        let n_terms = text.split_whitespace().count();
        if n_terms > TERMS_MAX {
            return Err(QueryError::TooManyTerms(n_terms));
        }
        let terms = text.split_whitespace().map(Term::parse).collect::<Result<Vec<Term>, QueryError>>()?;
        Ok(Query { terms })
    }

    /// Whether a device group of `offer`, from a worker of trust level
    /// `trust`, meets every term.
    pub fn matches(&self, offer: &Offer, group: &DeviceGroup, trust: u8) -> bool {
        self.terms.iter().all(|term| term.holds(offer, group, trust))
    }

    /// The query read as task requirements, so that the CLI can suggest a
    /// `[resources]` section for the offers a user found.
    ///
    /// Only terms that a requirement states exactly are read:
    ///
    /// - `kind=` and `kind!=` (when they leave one kind);
    /// - `gpu_mem>=` and `gpu_mem>` as the least memory per device;
    /// - `count>=` and `count>` as the devices each task uses;
    /// - `price<=` and `price<` as the highest price;
    /// - `region=` lists, narrowed by the other `region=` and `region!=`
    ///   terms;
    /// - the first `model=` list;
    /// - `trust>=` and `trust>` as the least trust level;
    /// - each `runs=` of one name as software the worker must offer.
    ///
    /// The rest are left out: `cc`, `idle_only`, `model!=`, further `model=`
    /// terms (a requirement lists models of which one must fit, not several
    /// that must all fit), the `=` and `!=` of numbers, and the bounds that
    /// point the other way (`price>=`, `gpu_mem<=`, …). So the requirements
    /// accept every group the query matches, and perhaps more, but never
    /// fewer. Two exceptions keep them valid: the count is at least 1 and at
    /// most [`GROUP_COUNT_MAX`], and the trust level at most
    /// [`TRUST_LEVEL_MAX`].
    pub fn requirements(&self) -> Requirements {
        let mut requirements = Requirements::default();
        let mut kinds = vec![DeviceKind::Cpu, DeviceKind::Gpu];
        let mut regions: Option<Vec<String>> = None;
        let mut regions_not: Vec<String> = Vec::new();
        for term in &self.terms {
            let strict = matches!(term.op, Op::Above | Op::Below);
            match (term.field, term.op, term.values.as_slice()) {
                (Field::Kind, Op::Equal, values) => kinds.retain(|kind| values.contains(&Value::Kind(*kind))),
                (Field::Kind, Op::NotEqual, values) => kinds.retain(|kind| !values.contains(&Value::Kind(*kind))),
                (Field::GpuMem, Op::AtLeast | Op::Above, [Value::Number(gib)]) => {
                    requirements.memory_bytes_min = requirements.memory_bytes_min.max(gib.least_bytes(strict));
                }
                (Field::Count, Op::AtLeast | Op::Above, [Value::Whole(count)]) => {
                    // `count>4294967295` holds for no group and is left out.
                    if let Some(least) = count.checked_add(u32::from(strict)) {
                        requirements.count = requirements.count.max(least);
                    }
                }
                (Field::Price, Op::AtMost | Op::Below, [Value::Price(price)]) => {
                    // `price<0` holds for no offer and is left out.
                    if let Some(most) = price.base_units().checked_sub(u64::from(strict)) {
                        let most = Amount::from_base_units(most);
                        let max = requirements.price_io_per_device_hour_max.map_or(most, |max| max.min(most));
                        requirements.price_io_per_device_hour_max = Some(max);
                    }
                }
                (Field::Trust, Op::AtLeast | Op::Above, [Value::Whole(level)]) => {
                    let least = u8::try_from(level.saturating_add(u32::from(strict))).unwrap_or(TRUST_LEVEL_MAX);
                    requirements.trust_min = requirements.trust_min.max(least.min(TRUST_LEVEL_MAX));
                }
                (Field::Region, Op::Equal, _) => {
                    let listed = term.texts();
                    regions = Some(match regions {
                        None => listed,
                        Some(mut known) => {
                            known.retain(|region| listed.contains(region));
                            known
                        }
                    });
                }
                (Field::Region, Op::NotEqual, _) => regions_not.extend(term.texts()),
                (Field::Model, Op::Equal, _) if requirements.models.is_empty() => requirements.models = term.texts(),
                (Field::Runs, Op::Equal, [Value::Text(name)]) if !requirements.software.contains(name) => {
                    requirements.software.push(name.clone());
                }
                _ => {}
            }
        }
        requirements.kind = match kinds.as_slice() {
            [kind] => Some(*kind),
            _ => None,
        };
        if let Some(mut regions) = regions {
            regions.retain(|region| !regions_not.contains(region));
            requirements.regions = regions;
        }
        requirements.count = requirements.count.clamp(1, GROUP_COUNT_MAX);
        requirements
    }
}

impl FromStr for Query {
    type Err = QueryError;

    fn from_str(text: &str) -> Result<Query, QueryError> {
        Query::parse(text)
    }
}

impl fmt::Display for Query {
    /// The normal form, terms separated by one space; it parses back to the
    /// same query.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (idx, term) in self.terms.iter().enumerate() {
            if idx > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{term}")?;
        }
        Ok(())
    }
}

/// A property of an offer's device group that a term tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Kind,
    GpuMem,
    Count,
    Price,
    Region,
    Model,
    Cc,
    Trust,
    IdleOnly,
    Runs,
}

/// Every name a field answers to; the first of each field is its main name.
const FIELDS: [(&str, Field); 14] = [
    ("kind", Field::Kind),
    ("gpu_mem", Field::GpuMem),
    ("mem", Field::GpuMem),
    ("count", Field::Count),
    ("num_gpus", Field::Count),
    ("price", Field::Price),
    ("region", Field::Region),
    ("model", Field::Model),
    ("cc", Field::Cc),
    ("compute_cap", Field::Cc),
    ("trust", Field::Trust),
    ("idle_only", Field::IdleOnly),
    ("runs", Field::Runs),
    ("software", Field::Runs),
];

impl Field {
    fn parse(name: &str) -> Option<Field> {
        FIELDS.iter().find(|(known, _)| known.eq_ignore_ascii_case(name)).map(|(_, field)| *field)
    }

    fn name(self) -> &'static str {
        match self {
            Field::Kind => "kind",
            Field::GpuMem => "gpu_mem",
            Field::Count => "count",
            Field::Price => "price",
            Field::Region => "region",
            Field::Model => "model",
            Field::Cc => "cc",
            Field::Trust => "trust",
            Field::IdleOnly => "idle_only",
            Field::Runs => "runs",
        }
    }

    /// Whether the field's values have an order, so that `<` and `>` mean
    /// something.
    fn ordered(self) -> bool {
        matches!(self, Field::GpuMem | Field::Count | Field::Price | Field::Cc | Field::Trust)
    }

    /// Reads one value of the field, or says what the value must be.
    fn parse_value(self, text: &str) -> Result<Value, String> {
        match self {
            Field::Kind if text.eq_ignore_ascii_case("cpu") => Ok(Value::Kind(DeviceKind::Cpu)),
            Field::Kind if text.eq_ignore_ascii_case("gpu") => Ok(Value::Kind(DeviceKind::Gpu)),
            Field::Kind => Err("cpu or gpu".to_owned()),
            Field::GpuMem => Decimal::parse(text).map(Value::Number).ok_or_else(|| {
                format!("a number of GiB such as 24 or 23.5, with at most {NUMBER_DECIMALS_MAX} decimals")
            }),
            Field::Count => {
                whole_number(text).map(Value::Whole).ok_or_else(|| "a whole number of devices such as 2".to_owned())
            }
            Field::Price => text.parse::<Amount>().map(Value::Price).map_err(|err| match err {
                AmountParseError::TooManyDecimals => format!("a number of IO with at most {DECIMALS} decimals"),
                AmountParseError::Negative => "a number of IO that is not negative, such as 0.8".to_owned(),
                AmountParseError::Overflow => {
                    format!("a number of IO no larger than {}", Decimal::of_amount(Amount::MAX))
                }
                AmountParseError::NotANumber => "a number of IO such as 0.8".to_owned(),
            }),
            Field::Region if valid_region(text) => Ok(Value::Text(text.to_owned())),
            Field::Region => Err("a region of lowercase letters, digits and '-', such as eu or us-east".to_owned()),
            Field::Model if valid_model(text) => Ok(Value::Text(text.to_owned())),
            Field::Model => {
                Err(format!("part of a model name such as h100, at most {MODEL_BYTES_MAX} bytes, without < > = !"))
            }
            Field::Cc => Decimal::parse(text)
                .map(Value::Number)
                .ok_or_else(|| "a compute capability such as 8.6 or 9.0".to_owned()),
            Field::Trust => match whole_number(text) {
                Some(level) if level <= u32::from(TRUST_LEVEL_MAX) => Ok(Value::Whole(level)),
                _ => Err(format!("a trust level from 0 to {TRUST_LEVEL_MAX}")),
            },
            Field::IdleOnly if text.eq_ignore_ascii_case("true") => Ok(Value::Flag(true)),
            Field::IdleOnly if text.eq_ignore_ascii_case("false") => Ok(Value::Flag(false)),
            Field::IdleOnly => Err("true or false".to_owned()),
            Field::Runs if valid_software_name(text) => Ok(Value::Text(text.to_owned())),
            Field::Runs => Err("a software name of lowercase letters, digits and '-', such as python3".to_owned()),
        }
    }
}

/// How a term compares the group's property with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equal,
    NotEqual,
    AtLeast,
    AtMost,
    Above,
    Below,
}

/// The operators as written; the two-character ones come first so that `>=`
/// is not read as `>` followed by a value starting with `=`.
const OPS: [(&str, Op); 7] = [
    (">=", Op::AtLeast),
    ("<=", Op::AtMost),
    ("==", Op::Equal),
    ("!=", Op::NotEqual),
    (">", Op::Above),
    ("<", Op::Below),
    ("=", Op::Equal),
];

impl Op {
    fn symbol(self) -> &'static str {
        match self {
            Op::Equal => "=",
            Op::NotEqual => "!=",
            Op::AtLeast => ">=",
            Op::AtMost => "<=",
            Op::Above => ">",
            Op::Below => "<",
        }
    }

    /// Whether a property that compares to a value as `ordering` passes.
    fn accepts(self, ordering: Ordering) -> bool {
        match self {
            Op::Equal => ordering == Ordering::Equal,
            Op::NotEqual => ordering != Ordering::Equal,
            Op::AtLeast => ordering != Ordering::Less,
            Op::AtMost => ordering != Ordering::Greater,
            Op::Above => ordering == Ordering::Greater,
            Op::Below => ordering == Ordering::Less,
        }
    }
}

/// One value of a term, of the type its field takes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Kind(DeviceKind),
    /// GiB for `gpu_mem`, the capability for `cc`.
    Number(Decimal),
    /// Devices for `count`, the level for `trust`.
    Whole(u32),
    Price(Amount),
    /// A region or a part of a model name.
    Text(String),
    Flag(bool),
}

/// One `field op value[,value…]` of a query. Parsing makes sure that each
/// value is of the field's type, that a field without an order has only `=`
/// or `!=`, and that only those take more than one value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Term {
    field: Field,
    op: Op,
    values: Vec<Value>,
}

impl Term {
    fn parse(text: &str) -> Result<Term, QueryError> {
        let shape = || QueryError::Shape { term: text.to_owned() };
        let at = text.find(['<', '>', '=', '!']).ok_or_else(shape)?;
        let (name, rest) = text.split_at(at);
        let (op, value) =
            OPS.iter().find_map(|(symbol, op)| Some((*op, rest.strip_prefix(*symbol)?))).ok_or_else(shape)?;
        if name.is_empty() || value.is_empty() {
            return Err(shape());
        }
        let field = Field::parse(name)
            .ok_or_else(|| QueryError::UnknownField { field: name.to_owned(), term: text.to_owned() })?;
        let lists = matches!(op, Op::Equal | Op::NotEqual);
        if !field.ordered() && !lists {
            return Err(QueryError::Operator { term: text.to_owned(), field: field.name() });
        }
        let n_values = value.split(',').count();
        if n_values > 1 && !lists {
            return Err(QueryError::List { term: text.to_owned() });
        }
        if n_values > CHOICES_MAX {
            return Err(QueryError::TooManyValues { term: text.to_owned() });
        }
        let values = value
            .split(',')
            .map(|value| {
                field.parse_value(value).map_err(|expected| QueryError::Value {
                    term: text.to_owned(),
                    field: field.name(),
                    expected,
                })
            })
            .collect::<Result<Vec<Value>, QueryError>>()?;
        Ok(Term { field, op, values })
    }

    /// `=` holds when the group fits any of the values; every other operator
    /// when it fits all of them, which for `!=` means it is none of them.
    fn holds(&self, offer: &Offer, group: &DeviceGroup, trust: u8) -> bool {
        let passes = |value: &Value| {
            compare(self.field, value, offer, group, trust).is_some_and(|ordering| self.op.accepts(ordering))
        };
        match self.op {
            Op::Equal => self.values.iter().any(passes),
            _ => self.values.iter().all(passes),
        }
    }

    /// The term's values as text, each once, for a list of regions or models.
    fn texts(&self) -> Vec<String> {
        let mut texts: Vec<String> = Vec::new();
        for value in &self.values {
            if let Value::Text(text) = value
                && !texts.contains(text)
            {
                texts.push(text.clone());
            }
        }
        texts
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.field.name(), self.op.symbol())?;
        for (idx, value) in self.values.iter().enumerate() {
            if idx > 0 {
                f.write_str(",")?;
            }
            match value {
                Value::Kind(DeviceKind::Cpu) => f.write_str("cpu")?,
                Value::Kind(DeviceKind::Gpu) => f.write_str("gpu")?,
                // A compute capability reads as major.minor even when the
                // minor is 0: `cc>=9.0`, not `cc>=9`.
                Value::Number(number) if self.field == Field::Cc && number.scale == 0 => write!(f, "{number}.0")?,
                Value::Number(number) => write!(f, "{number}")?,
                Value::Whole(number) => write!(f, "{number}")?,
                // Not the amount's own display, which adds " IO" and so
                // would split the term in two.
                Value::Price(price) => write!(f, "{}", Decimal::of_amount(*price))?,
                Value::Text(text) => f.write_str(text)?,
                Value::Flag(flag) => write!(f, "{flag}")?,
            }
        }
        Ok(())
    }
}

/// How the group's property compares with one value: `None` when the group
/// lacks the property (a `cc` term on a group without a compute capability),
/// which no operator accepts. A field without an order answers `Equal` when
/// the value fits and `Less` when it does not, which `=` and `!=` read
/// rightly; parsing gives such fields no other operator.
fn compare(field: Field, value: &Value, offer: &Offer, group: &DeviceGroup, trust: u8) -> Option<Ordering> {
    let fits = |yes: bool| if yes { Ordering::Equal } else { Ordering::Less };
    match (field, value) {
        (Field::Kind, Value::Kind(kind)) => Some(fits(group.kind == *kind)),
        (Field::GpuMem, Value::Number(gib)) => Some(gib.cmp_bytes(group.memory_bytes).reverse()),
        (Field::Count, Value::Whole(count)) => Some(group.count.cmp(count)),
        (Field::Price, Value::Price(price)) => Some(offer.price_io_per_device_hour.cmp(price)),
        (Field::Region, Value::Text(region)) => Some(fits(offer.region == *region)),
        (Field::Model, Value::Text(model)) => Some(fits(contains_ignoring_ascii_case(&group.model, model))),
        (Field::Cc, Value::Number(cc)) => {
            group.compute_capability.as_deref().and_then(|have| Decimal::parse(have.trim())).map(|have| have.cmp(cc))
        }
        (Field::Trust, Value::Whole(level)) => Some(u32::from(trust).cmp(level)),
        (Field::IdleOnly, Value::Flag(idle_only)) => Some(fits(offer.idle_only == *idle_only)),
        (Field::Runs, Value::Text(name)) => Some(fits(offer.software.iter().any(|software| software.name == *name))),
        _ => None,
    }
}

/// Whether `needle` is part of `haystack`, ASCII letters compared in any
/// case: what [`Requirements::fits_model`] does, without allocating for each
/// group the coordinator looks at.
fn contains_ignoring_ascii_case(haystack: &str, needle: &str) -> bool {
    // `windows(0)` panics, and the empty text is part of every name anyway.
    needle.is_empty()
        || haystack.as_bytes().windows(needle.len()).any(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

/// A model pattern: bounded like [`Requirements::models`], and free of the
/// operator characters so that a printed term reads back the same
/// (`model==x` would otherwise be ambiguous).
fn valid_model(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MODEL_BYTES_MAX
        && !text.chars().any(|c| c.is_control() || matches!(c, '<' | '>' | '=' | '!' | ','))
}

/// ASCII digits as a `u32`; no sign, unlike `u32::from_str`, so that a value
/// has one written form apart from leading zeros.
fn whole_number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// A number that is not negative, `units / 10^scale`. Its fraction has no
/// trailing zeros, so equal numbers are equal values and print alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decimal {
    units: u64,
    scale: u32,
}

impl Decimal {
    /// Reads digits with an optional fraction: `24`, `23.5`, `9.0`. No sign,
    /// no exponent, and like an amount of IO, `.5` and `5.` are not numbers.
    fn parse(text: &str) -> Option<Decimal> {
        let is_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        let (whole, fraction) = match text.split_once('.') {
            Some((whole, fraction)) if is_digits(fraction) => (whole, fraction.trim_end_matches('0')),
            Some(_) => return None,
            None => (text, ""),
        };
        if !is_digits(whole) || fraction.len() > NUMBER_DECIMALS_MAX as usize {
            return None;
        }
        let units = whole
            .bytes()
            .chain(fraction.bytes())
            .try_fold(0u64, |units, digit| units.checked_mul(10)?.checked_add(u64::from(digit - b'0')))?;
        Some(Decimal { units, scale: fraction.len() as u32 })
    }

    /// The amount as a number of IO.
    fn of_amount(amount: Amount) -> Decimal {
        let mut number = Decimal { units: amount.base_units(), scale: DECIMALS };
        while number.scale > 0 && number.units.is_multiple_of(10) {
            number.units /= 10;
            number.scale -= 1;
        }
        number
    }

    /// `10^scale`; the scale is at most [`NUMBER_DECIMALS_MAX`], so it fits
    /// easily, and so do the products below: under 2^64 × 2^30 each.
    fn denominator(self) -> u128 {
        10u128.pow(self.scale)
    }

    /// Compares this many GiB with `bytes`, exactly.
    fn cmp_bytes(self, bytes: u64) -> Ordering {
        (u128::from(self.units) * BYTES_PER_GIB).cmp(&(u128::from(bytes) * self.denominator()))
    }

    /// The fewest whole bytes that are at least (or, when `strict`, more
    /// than) this many GiB, or `u64::MAX` when there are none that many.
    fn least_bytes(self, strict: bool) -> u64 {
        let exact = u128::from(self.units) * BYTES_PER_GIB;
        let (whole, rest) = (exact / self.denominator(), exact % self.denominator());
        let least = if strict || rest != 0 { whole + 1 } else { whole };
        u64::try_from(least).unwrap_or(u64::MAX)
    }
}

impl Ord for Decimal {
    fn cmp(&self, other: &Decimal) -> Ordering {
        (u128::from(self.units) * other.denominator()).cmp(&(u128::from(other.units) * self.denominator()))
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Decimal) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Decimal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let denominator = 10u64.pow(self.scale);
        let (whole, fraction) = (self.units / denominator, self.units % denominator);
        match self.scale {
            0 => write!(f, "{whole}"),
            scale => write!(f, "{whole}.{fraction:0width$}", width = scale as usize),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GIB: u64 = 1 << 30;

    fn io(text: &str) -> Amount {
        text.parse().unwrap()
    }

    fn h100() -> DeviceGroup {
        DeviceGroup {
            kind: DeviceKind::Gpu,
            model: "NVIDIA H100 80GB HBM3".to_owned(),
            memory_bytes: 80 * GIB,
            count: 8,
            compute_capability: Some("9.0".to_owned()),
            driver: Some("550".to_owned()),
            kernels: false,
        }
    }

    fn rtx3090() -> DeviceGroup {
        DeviceGroup {
            model: "NVIDIA GeForce RTX 3090".to_owned(),
            memory_bytes: 24 * GIB,
            count: 1,
            compute_capability: Some("8.6".to_owned()),
            ..h100()
        }
    }

    fn cpu() -> DeviceGroup {
        DeviceGroup {
            kind: DeviceKind::Cpu,
            model: "AMD EPYC 7763".to_owned(),
            memory_bytes: 512 * GIB,
            count: 16,
            compute_capability: None,
            driver: None,
            kernels: false,
        }
    }

    fn offer(region: &str, price: &str) -> Offer {
        Offer {
            region: region.to_owned(),
            price_io_per_device_hour: io(price),
            ..Offer::free(vec![h100(), rtx3090(), cpu()])
        }
    }

    fn matches(query: &str, offer: &Offer, group: &DeviceGroup, trust: u8) -> bool {
        Query::parse(query).unwrap().matches(offer, group, trust)
    }

    #[test]
    fn the_empty_query_matches_everything() {
        for text in ["", "   ", "\t\n"] {
            let query = Query::parse(text).unwrap();
            assert_eq!(query, Query::default());
            assert_eq!(query.to_string(), "");
            assert!(query.matches(&offer("eu", "0.8"), &cpu(), 0));
        }
    }

    #[test]
    fn the_example_finds_cheap_big_gpus_in_europe() {
        let query = "gpu_mem>=24 price<=0.8 region=eu";
        let eu = offer("eu", "0.8");
        assert!(matches(query, &eu, &h100(), 0));
        assert!(matches(query, &eu, &rtx3090(), 0));
        // The CPU group has the memory too; `kind=gpu` is what leaves it out.
        assert!(matches(query, &eu, &cpu(), 0));
        assert!(!matches("kind=gpu gpu_mem>=24", &eu, &cpu(), 0));
        assert!(!matches(query, &offer("eu", "0.800000001"), &h100(), 0));
        assert!(!matches(query, &offer("us-east", "0.1"), &h100(), 0));
        assert!(!matches("gpu_mem>=24.5", &eu, &rtx3090(), 0));
    }

    #[test]
    fn memory_compares_exactly_in_gib() {
        let eu = offer("eu", "0");
        let half = DeviceGroup { memory_bytes: 23 * GIB + GIB / 2, ..rtx3090() };
        assert!(matches("gpu_mem=23.5", &eu, &half, 0));
        assert!(matches("mem>=23.5", &eu, &half, 0));
        assert!(!matches("gpu_mem>23.5", &eu, &half, 0));
        assert!(matches("gpu_mem<23.500000001", &eu, &half, 0));
        let one_byte_less = DeviceGroup { memory_bytes: 23 * GIB + GIB / 2 - 1, ..rtx3090() };
        assert!(!matches("gpu_mem>=23.5", &eu, &one_byte_less, 0));
    }

    #[test]
    fn operators_compare_counts_trust_and_price() {
        let eu = offer("eu", "0.5");
        for (query, holds) in [
            ("count=8", true),
            ("num_gpus>=8", true),
            ("count>8", false),
            ("count<9", true),
            ("count<=7", false),
            ("count!=8", false),
            ("count!=4", true),
            ("count=1,8", true),
            ("count!=1,8", false),
            ("trust>=2", true),
            ("trust>2", false),
            ("trust=2", true),
            ("price>0.5", false),
            ("price>=0.5", true),
            ("price<0.5", false),
            ("price!=0.5", false),
        ] {
            assert_eq!(matches(query, &eu, &h100(), 2), holds, "{query}");
        }
    }

    #[test]
    fn lists_mean_any_after_equals_and_none_after_not_equals() {
        let east = offer("us-east", "0");
        assert!(matches("region=eu,us-east", &east, &h100(), 0));
        assert!(!matches("region!=eu,us-east", &east, &h100(), 0));
        assert!(matches("region!=eu,asia", &east, &h100(), 0));
        assert!(matches("model=H100,A100", &east, &h100(), 0));
        assert!(matches("model=3090,a100", &east, &rtx3090(), 0));
        assert!(!matches("model!=h100,epyc", &east, &cpu(), 0));
        assert!(matches("kind=cpu,gpu", &east, &cpu(), 0));
        assert!(matches("kind!=gpu", &east, &cpu(), 0));
    }

    #[test]
    fn models_match_in_any_case() {
        let eu = offer("eu", "0");
        assert!(matches("model=h100", &eu, &h100(), 0));
        assert!(matches("model=HBM3", &eu, &h100(), 0));
        assert!(matches("model=geforce", &eu, &rtx3090(), 0));
        assert!(!matches("model=h100", &eu, &rtx3090(), 0));
        assert!(!matches("model=h100-pcie", &eu, &h100(), 0));
        assert!(matches("model=é", &eu, &DeviceGroup { model: "Carte é".to_owned(), ..h100() }, 0));
    }

    #[test]
    fn compute_capability_compares_as_a_number_and_needs_one() {
        let eu = offer("eu", "0");
        assert!(matches("cc>=8.6", &eu, &h100(), 0));
        assert!(matches("cc>=8.6", &eu, &rtx3090(), 0));
        assert!(!matches("compute_cap>8.6", &eu, &rtx3090(), 0));
        assert!(matches("cc=9", &eu, &h100(), 0));
        assert!(matches("cc<12.0", &eu, &h100(), 0));
        assert!(matches("cc>=10", &eu, &DeviceGroup { compute_capability: Some("12.0".to_owned()), ..h100() }, 0));
        // A group without a capability, or with one that is not a number,
        // matches no cc term at all.
        for query in ["cc>=0", "cc!=9.0", "cc<100"] {
            assert!(!matches(query, &eu, &cpu(), 0), "{query}");
            let odd = DeviceGroup { compute_capability: Some("sm_90".to_owned()), ..h100() };
            assert!(!matches(query, &eu, &odd, 0), "{query}");
        }
    }

    #[test]
    fn idle_only_and_kind_read_their_words_in_any_case() {
        let idle = Offer { idle_only: true, ..offer("eu", "0") };
        assert!(matches("idle_only=true", &idle, &h100(), 0));
        assert!(matches("IDLE_ONLY=True", &idle, &h100(), 0));
        assert!(!matches("idle_only!=true", &idle, &h100(), 0));
        assert!(!matches("idle_only=false", &idle, &h100(), 0));
        assert!(matches("Kind=GPU", &idle, &h100(), 0));
    }

    #[test]
    fn runs_finds_workers_by_the_software_they_offer() {
        let software = |names: &[&str]| {
            names.iter().map(|name| crate::Software { name: (*name).to_owned(), version: "1".to_owned() }).collect()
        };
        let python = Offer { software: software(&["process", "python3"]), ..offer("eu", "0") };
        let bare = offer("eu", "0");
        assert!(matches("runs=python3", &python, &h100(), 0));
        assert!(!matches("runs=python3", &bare, &h100(), 0));
        assert!(matches("software=blender,python3", &python, &h100(), 0));
        assert!(!matches("runs=process runs=blender", &python, &h100(), 0));
        assert!(matches("runs!=blender", &python, &h100(), 0));
        let query = Query::parse("software=process runs=python3 runs=wasm,blender").unwrap();
        assert_eq!(query.to_string(), "runs=process runs=python3 runs=wasm,blender");
        assert_eq!(query.requirements().software, ["process", "python3"]);
        let err = Query::parse("runs=Python").unwrap_err().to_string();
        assert!(err.contains("runs must be a software name"), "{err}");
    }

    #[test]
    fn the_normal_form_names_fields_by_their_main_name() {
        let query =
            Query::parse(" mem>=024.50\tnum_gpus>=02  compute_cap>=9.00 kind==GPU price<=0.80IO model=H100,a100 ")
                .unwrap();
        assert_eq!(query.to_string(), "gpu_mem>=24.5 count>=2 cc>=9.0 kind=gpu price<=0.8 model=H100,a100");
        assert_eq!(Query::parse(&query.to_string()).unwrap(), query);
        assert_eq!("price<0.000000001 cc=8.6".parse::<Query>().unwrap().to_string(), "price<0.000000001 cc=8.6");
    }

    #[test]
    fn errors_name_the_term_and_the_fix() {
        let fields = "fields are kind, gpu_mem, count, price, region, model, cc, trust, idle_only, runs";
        for (text, message) in [
            ("gpu_memory>=24", format!("unknown field \"gpu_memory\" in \"gpu_memory>=24\"; {fields}")),
            ("price<=cheap", "\"price<=cheap\": price must be a number of IO such as 0.8".to_owned()),
            ("region>eu", "\"region>eu\": region takes = or != only".to_owned()),
            ("gpu_mem24", "\"gpu_mem24\": write field, operator and value, e.g. gpu_mem>=24".to_owned()),
            ("count>=2,4", "\"count>=2,4\": only = and != take a list of values".to_owned()),
            ("trust>=5", "\"trust>=5\": trust must be a trust level from 0 to 4".to_owned()),
            (
                "region=EU",
                "\"region=EU\": region must be a region of lowercase letters, digits and '-', such as eu or us-east"
                    .to_owned(),
            ),
        ] {
            assert_eq!(Query::parse(text).unwrap_err().to_string(), message);
        }
        for (text, words) in [
            ("gpu_mem>=", "write field, operator and value"),
            (">=24", "write field, operator and value"),
            ("gpu_mem!24", "write field, operator and value"),
            ("gpu_mem=>24", "gpu_mem must be a number of GiB"),
            ("gpu_mem>=.5", "gpu_mem must be a number of GiB"),
            ("gpu_mem>=-1", "gpu_mem must be a number of GiB"),
            ("gpu_mem>=1.0000000001", "at most 9 decimals"),
            ("count>=-1", "whole number of devices"),
            ("count>=4294967296", "whole number of devices"),
            ("price<=-1", "not negative"),
            ("price<=0.0000000001", "at most 9 decimals"),
            ("price<=99999999999", "no larger than 18446744073.709551615"),
            ("kind=tpu", "kind must be cpu or gpu"),
            ("kind>=gpu", "kind takes = or != only"),
            ("model<h100", "model takes = or != only"),
            ("idle_only=yes", "idle_only must be true or false"),
            ("idle_only>false", "idle_only takes = or != only"),
            ("cc>=sm_90", "cc must be a compute capability"),
            ("region=eu,", "region must be a region"),
            ("model=h100,", "model must be part of a model name"),
            ("model=a=b", "model must be part of a model name"),
            ("gpu_mem>=24 price<=", "\"price<=\""),
        ] {
            let err = Query::parse(text).unwrap_err().to_string();
            assert!(err.contains(words), "{text}: {err}");
        }
        assert_eq!(FIELD_NAMES.split(", ").collect::<Vec<_>>(), {
            let mut names: Vec<&str> = Vec::new();
            for (_, field) in FIELDS {
                if !names.contains(&field.name()) {
                    names.push(field.name());
                }
            }
            names
        });
    }

    #[test]
    fn size_terms_and_lists_are_bounded() {
        let long = format!("model={}", "a".repeat(QUERY_BYTES_MAX));
        assert_eq!(Query::parse(&long).unwrap_err(), QueryError::TooLong(long.len()));
        let many = vec!["count>=1"; TERMS_MAX + 1].join(" ");
        assert_eq!(Query::parse(&many).unwrap_err(), QueryError::TooManyTerms(TERMS_MAX + 1));
        Query::parse(&vec!["count>=1"; TERMS_MAX].join(" ")).unwrap();
        let regions = (0..=CHOICES_MAX).map(|idx| format!("r{idx}")).collect::<Vec<_>>().join(",");
        let err = Query::parse(&format!("region={regions}")).unwrap_err().to_string();
        assert!(err.contains("a list takes at most 16 values"), "{err}");
        let err = Query::parse(&format!("model={}", "a".repeat(MODEL_BYTES_MAX + 1))).unwrap_err().to_string();
        assert!(err.contains("at most 64 bytes"), "{err}");
    }

    #[test]
    fn requirements_read_the_terms_that_say_the_same() {
        let query = Query::parse(
            "kind=gpu gpu_mem>=23.5 gpu_mem>=20 count>=2 count>3 price<=0.8 price<0.5 region=eu,us-east,asia \
             region=us-east,eu region!=us-east model=H100,A100 model=sxm trust>=2 trust>3 cc>=8.0 idle_only=false",
        )
        .unwrap();
        let requirements = query.requirements();
        assert_eq!(
            requirements,
            Requirements {
                kind: Some(DeviceKind::Gpu),
                count: 4,
                memory_bytes_min: 23 * GIB + GIB / 2,
                models: vec!["H100".to_owned(), "A100".to_owned()],
                regions: vec!["eu".to_owned()],
                price_io_per_device_hour_max: Some(Amount::from_base_units(499_999_999)),
                trust_min: 4,
                gang_latency_ms_max: None,
                software: Vec::new(),
                replicas_same_model: false,
            }
        );
        requirements.validate().unwrap();
        assert_eq!(Query::default().requirements(), Requirements::default());
        assert_eq!(Query::parse("kind!=cpu").unwrap().requirements().kind, Some(DeviceKind::Gpu));
        assert_eq!(Query::parse("kind=cpu,gpu").unwrap().requirements().kind, None);
        assert_eq!(Query::parse("gpu_mem>0.1").unwrap().requirements().memory_bytes_min, GIB / 10 + 1);
        assert_eq!(Query::parse("gpu_mem>=0.1").unwrap().requirements().memory_bytes_min, GIB / 10 + 1);
        assert_eq!(Query::parse("gpu_mem>1").unwrap().requirements().memory_bytes_min, GIB + 1);
        assert_eq!(Query::parse("gpu_mem>=1").unwrap().requirements().memory_bytes_min, GIB);
        // Terms a requirement cannot state are left out, and bounds are
        // kept within what a requirement may say.
        for text in ["price<0", "count>=0", "count<5", "region!=eu", "model!=h100", "cc>=9", "gpu_mem<=4", "count=3"] {
            assert_eq!(Query::parse(text).unwrap().requirements(), Requirements::default(), "{text}");
        }
        assert_eq!(Query::parse("count>=5000").unwrap().requirements().count, GROUP_COUNT_MAX);
        assert_eq!(Query::parse("trust>4").unwrap().requirements().trust_min, TRUST_LEVEL_MAX);
    }

    /// Text of one valid term, written in any of the ways the language
    /// allows: aliases, `==`, leading zeros, any case where case is free.
    fn term_text() -> impl Strategy<Value = String> {
        fn list(values: BoxedStrategy<String>) -> BoxedStrategy<String> {
            prop::collection::vec(values, 1..4).prop_map(|values| values.join(",")).boxed()
        }
        fn listing(values: BoxedStrategy<String>) -> BoxedStrategy<String> {
            (prop::sample::select(vec!["=", "==", "!="]), list(values)).prop_map(|(op, v)| format!("{op}{v}")).boxed()
        }
        /// One value after any operator, or a list after `=` or `!=`.
        fn ordered(values: BoxedStrategy<String>) -> BoxedStrategy<String> {
            let one = (prop::sample::select(vec![">=", "<=", ">", "<"]), values.clone())
                .prop_map(|(op, v)| format!("{op}{v}"));
            prop_oneof![one, listing(values)].boxed()
        }
        fn field(names: &'static [&'static str], rest: BoxedStrategy<String>) -> BoxedStrategy<String> {
            (prop::sample::select(names), rest).prop_map(|(name, rest)| format!("{name}{rest}")).boxed()
        }
        let mem = prop_oneof![r"[0-9]{1,3}(\.[0-9]{1,3})?", r"0{0,2}[0-9]{1,10}(\.[0-9]{1,9})?"].boxed();
        let count =
            prop_oneof![(0u32..12).prop_map(|n| n.to_string()), any::<u32>().prop_map(|n| format!("0{n}"))].boxed();
        let price = prop_oneof![r"[0-2](\.[0-9]{1,3})?", r"[0-9]{1,10}(\.[0-9]{1,9})?(IO)?"].boxed();
        let cc = r"[0-9]{1,2}\.[0-9]{1,2}".boxed();
        let trust = (0..=TRUST_LEVEL_MAX).prop_map(|n| n.to_string()).boxed();
        let region = prop_oneof![Just("eu".to_owned()), Just("us-east".to_owned()), r"[a-z0-9-]{1,12}"].boxed();
        let model = prop_oneof![
            Just("h100".to_owned()),
            Just("A100".to_owned()),
            Just("rtx".to_owned()),
            r"[A-Za-z0-9._+/()-]{1,20}"
        ];
        let kind = prop::sample::select(vec!["cpu", "gpu", "GPU", "Cpu"]).prop_map(str::to_owned).boxed();
        let flag = prop::sample::select(vec!["true", "false", "TRUE"]).prop_map(str::to_owned).boxed();
        let software = prop_oneof![Just("python3".to_owned()), Just("wasm".to_owned()), r"[a-z0-9-]{1,8}"].boxed();
        prop_oneof![
            field(&["gpu_mem", "mem", "GPU_MEM"], ordered(mem)),
            field(&["count", "num_gpus"], ordered(count)),
            field(&["price"], ordered(price)),
            field(&["cc", "compute_cap"], ordered(cc)),
            field(&["trust"], ordered(trust)),
            field(&["region"], listing(region)),
            field(&["model"], listing(model.boxed())),
            field(&["kind", "KIND"], listing(kind)),
            field(&["idle_only"], listing(flag)),
            field(&["runs", "software"], listing(software)),
        ]
    }

    /// Text of a valid query: a few terms separated by any whitespace.
    fn query_text() -> impl Strategy<Value = String> {
        prop::collection::vec((term_text(), prop::sample::select(vec![" ", "  ", "\t", " \n "])), 0..8)
            .prop_map(|terms| terms.into_iter().map(|(term, space)| format!("{term}{space}")).collect())
    }

    fn group() -> impl Strategy<Value = DeviceGroup> {
        let model = prop::sample::select(vec![
            "NVIDIA H100 80GB HBM3",
            "NVIDIA A100-SXM4-40GB",
            "NVIDIA GeForce RTX 4090",
            "AMD EPYC 7763",
        ]);
        let memory = prop_oneof![(0u64..200).prop_map(|gib| gib * GIB), any::<u64>(), (0u64..200 * GIB)];
        let cc = prop::option::of(prop::sample::select(vec!["7.5", "8.0", "8.6", "9.0", "12.0", "sm_90"]));
        (any::<bool>(), model, memory, 1u32..=16, cc).prop_map(|(gpu, model, memory_bytes, count, cc)| DeviceGroup {
            kind: if gpu { DeviceKind::Gpu } else { DeviceKind::Cpu },
            model: model.to_owned(),
            memory_bytes,
            count,
            compute_capability: cc.map(str::to_owned),
            driver: None,
            kernels: false,
        })
    }

    fn an_offer() -> impl Strategy<Value = Offer> {
        let region = prop::sample::select(vec!["eu", "us-east", "any"]);
        let price = prop_oneof![(0u64..3000).prop_map(|milli| milli * 1_000_000), any::<u64>()];
        let software = prop::sample::subsequence(vec!["wasm", "process", "python3"], 0..=3);
        (region, price, any::<bool>(), software).prop_map(|(region, price, idle_only, software)| Offer {
            region: region.to_owned(),
            price_io_per_device_hour: Amount::from_base_units(price),
            groups: Vec::new(),
            windows: Vec::new(),
            idle_only,
            software: software
                .into_iter()
                .map(|name| crate::Software { name: name.to_owned(), version: "1.0".to_owned() })
                .collect(),
        })
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in ".{0,300}") {
            let _ = Query::parse(&text);
        }

        #[test]
        fn parse_never_panics_on_near_queries(text in r"([a-z_]{0,12}[<>=!]{0,3}[a-zA-Z0-9.,_é-]{0,12}[ \t]?){0,6}") {
            if let Ok(query) = Query::parse(&text) {
                prop_assert_eq!(Query::parse(&query.to_string()), Ok(query));
            }
        }

        #[test]
        fn the_normal_form_parses_back_to_the_same_query(text in query_text()) {
            let query = Query::parse(&text).map_err(|err| TestCaseError::fail(format!("{text:?}: {err}")))?;
            let normal = query.to_string();
            prop_assert_eq!(Query::parse(&normal), Ok(query.clone()));
            prop_assert_eq!(Query::parse(&normal).map(|query| query.to_string()), Ok(normal));
        }

        #[test]
        fn requirements_accept_every_group_the_query_matches(
            text in query_text(),
            offer in an_offer(),
            group in group(),
            trust in 0..=TRUST_LEVEL_MAX,
        ) {
            let query = Query::parse(&text).map_err(|err| TestCaseError::fail(format!("{text:?}: {err}")))?;
            let requirements = query.requirements();
            prop_assert_eq!(requirements.validate(), Ok(()));
            if query.matches(&offer, &group, trust) {
                prop_assert!(
                    requirements.fits(
                        &group,
                        group.count,
                        &offer.region,
                        trust,
                        offer.price_io_per_device_hour,
                        &offer.software_names(),
                    ),
                    "{} matches but {:?} does not fit", query, requirements
                );
            }
        }
    }
}
