//! Amounts of $IO in integer base units, with checked arithmetic only.

use std::fmt;
use std::str::FromStr;

/// Decimal places of $IO: one IO is 10^9 base units.
pub const DECIMALS: u32 = 9;

/// Base units in one IO.
pub const BASE_UNITS_PER_IO: u64 = 1_000_000_000;

/// Basis points in a whole: 10 000 bps = 100 %.
pub const BPS_PER_WHOLE: u32 = 10_000;

/// An amount of $IO, counted in base units of 10^-9 IO. Never negative.
///
/// Why `u64` rather than `u128`: it holds up to 18 446 744 073.709551615 IO,
/// far more than any supply the network plans, and the ledger refuses a mint
/// that would take the total supply past [`Amount::MAX`], so every balance
/// and every hold fits in one `Amount` and no sum of balances can overflow.
/// The products that could leave that range (a price times seconds) are
/// computed in `u128` inside [`Amount::checked_mul_div`]. Half the width keeps
/// journal entries and store columns small.
///
/// There are no operators: every computation is `checked_*` and returns
/// `None` rather than wrapping or panicking.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(u64);

impl Amount {
    pub const ZERO: Amount = Amount(0);
    pub const MAX: Amount = Amount(u64::MAX);

    pub const fn from_base_units(base_units: u64) -> Amount {
        Amount(base_units)
    }

    pub const fn base_units(self) -> u64 {
        self.0
    }

    /// `whole` IO, or `None` past [`Amount::MAX`].
    pub fn from_io(whole: u64) -> Option<Amount> {
        whole.checked_mul(BASE_UNITS_PER_IO).map(Amount)
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    pub fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    /// `None` where `other` is larger: amounts are never negative.
    pub fn checked_sub(self, other: Amount) -> Option<Amount> {
        self.0.checked_sub(other.0).map(Amount)
    }

    /// `self × mul / div`, rounded down, with a 128-bit intermediate so that
    /// the product itself cannot overflow: for a price per hour and a duration
    /// in seconds, `price.checked_mul_div(seconds, 3600)`. `None` when `div`
    /// is 0 or the result is past [`Amount::MAX`].
    ///
    /// Rounding down means a payer is never charged a base unit more than the
    /// exact figure.
    pub fn checked_mul_div(self, mul: u64, div: u64) -> Option<Amount> {
        if div == 0 {
            return None;
        }
        let exact = u128::from(self.0) * u128::from(mul) / u128::from(div);
        u64::try_from(exact).ok().map(Amount)
    }

    /// Splits `self` into `(share, rest)` where `share` is `bps` basis points
    /// of `self`, rounded down, and `rest` is what is left, so that
    /// `share + rest == self` exactly and no base unit is lost to rounding.
    /// For a 2.5 % network fee: `let (fee, payout) = price.split_bps(250)?`.
    /// `None` when `bps` is more than [`BPS_PER_WHOLE`].
    pub fn split_bps(self, bps: u32) -> Option<(Amount, Amount)> {
        if bps > BPS_PER_WHOLE {
            return None;
        }
        let share = self.checked_mul_div(u64::from(bps), u64::from(BPS_PER_WHOLE))?;
        let rest = self.checked_sub(share)?;
        Some((share, rest))
    }
}

impl fmt::Display for Amount {
    /// `1.5 IO`, `0 IO`, `0.000000001 IO`: no trailing zeros, no exponent.
    /// Width and alignment flags apply to the whole text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&write_io(false, u128::from(self.0)))
    }
}

/// The text of an amount in IO, with a minus sign when `negative`.
fn write_io(negative: bool, base_units: u128) -> String {
    let per_io = u128::from(BASE_UNITS_PER_IO);
    let sign = if negative && base_units != 0 { "-" } else { "" };
    let whole = base_units / per_io;
    let fraction = base_units % per_io;
    if fraction == 0 {
        format!("{sign}{whole} IO")
    } else {
        let digits = format!("{fraction:0width$}", width = DECIMALS as usize);
        format!("{sign}{whole}.{} IO", digits.trim_end_matches('0'))
    }
}

/// Text that is not an amount of IO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AmountParseError {
    #[error("not a number")]
    NotANumber,
    #[error("too many decimals: at most 9")]
    TooManyDecimals,
    #[error("negative amounts are not allowed")]
    Negative,
    #[error("overflow: at most 18446744073.709551615 IO")]
    Overflow,
}

impl FromStr for Amount {
    type Err = AmountParseError;

    /// Accepts a decimal number of IO with at most 9 decimals, optionally
    /// followed by `IO`: `1`, `1.5`, `1.5 IO`, `0.000000001`. No sign, no
    /// exponent, no digit grouping; `.5` and `5.` are not numbers.
    fn from_str(text: &str) -> Result<Amount, AmountParseError> {
        let text = text.trim();
        let number = text.strip_suffix("IO").map_or(text, str::trim_end);
        match number.strip_prefix('-') {
            // "-1" is a negative amount; "-x" is not a number at all.
            Some(magnitude) => match parse_unsigned(magnitude) {
                Ok(_) | Err(AmountParseError::Overflow | AmountParseError::TooManyDecimals) => {
                    Err(AmountParseError::Negative)
                }
                Err(other) => Err(other),
            },
            None => parse_unsigned(number),
        }
    }
}

fn parse_unsigned(number: &str) -> Result<Amount, AmountParseError> {
    let is_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    let (whole, fraction) = number.split_once('.').unwrap_or((number, "0"));
    if !is_digits(whole) || !is_digits(fraction) {
        return Err(AmountParseError::NotANumber);
    }
    if fraction.len() > DECIMALS as usize {
        return Err(AmountParseError::TooManyDecimals);
    }
    let whole_io = digits_value(whole).ok_or(AmountParseError::Overflow)?;
    let mut fraction_units = digits_value(fraction).expect("at most 9 digits fit a u64");
    for _ in fraction.len()..DECIMALS as usize {
        fraction_units *= 10;
    }
    whole_io
        .checked_mul(BASE_UNITS_PER_IO)
        .and_then(|units| units.checked_add(fraction_units))
        .map(Amount)
        .ok_or(AmountParseError::Overflow)
}

/// The value of a string of ASCII digits, or `None` past `u64::MAX`.
fn digits_value(digits: &str) -> Option<u64> {
    digits.bytes().try_fold(0u64, |value, digit| value.checked_mul(10)?.checked_add(u64::from(digit - b'0')))
}

/// A balance that may be negative: only the mint account's is, and it is
/// minus the supply. Base units, like [`Amount`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SignedAmount(pub i128);

impl SignedAmount {
    /// The amount when it is not negative.
    pub fn to_amount(self) -> Option<Amount> {
        u64::try_from(self.0).ok().map(Amount)
    }
}

impl From<Amount> for SignedAmount {
    fn from(amount: Amount) -> SignedAmount {
        SignedAmount(i128::from(amount.0))
    }
}

impl fmt::Display for SignedAmount {
    /// Like [`Amount`], with a leading `-` when negative: `-1.5 IO`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&write_io(self.0 < 0, self.0.unsigned_abs()))
    }
}
