//! Amounts: text in and out, and the checked arithmetic.

use iog_ledger::{Amount, AmountParseError, SignedAmount};

fn units(base_units: u64) -> Amount {
    Amount::from_base_units(base_units)
}

#[test]
fn parses_and_prints() {
    let table: &[(&str, u64, &str)] = &[
        ("1.5", 1_500_000_000, "1.5 IO"),
        ("1.5 IO", 1_500_000_000, "1.5 IO"),
        ("1.5IO", 1_500_000_000, "1.5 IO"),
        ("  2 IO ", 2_000_000_000, "2 IO"),
        ("1", 1_000_000_000, "1 IO"),
        ("0", 0, "0 IO"),
        ("0 IO", 0, "0 IO"),
        ("0.0", 0, "0 IO"),
        ("0.000000001", 1, "0.000000001 IO"),
        ("0.100000000", 100_000_000, "0.1 IO"),
        ("007.250", 7_250_000_000, "7.25 IO"),
        ("123456.789", 123_456_789_000_000, "123456.789 IO"),
        ("18446744073.709551615", u64::MAX, "18446744073.709551615 IO"),
    ];
    for &(text, base_units, printed) in table {
        let amount: Amount = text.parse().unwrap_or_else(|err| panic!("{text:?}: {err}"));
        assert_eq!(amount, units(base_units), "{text:?}");
        assert_eq!(amount.to_string(), printed, "{text:?}");
        assert_eq!(printed.parse::<Amount>(), Ok(amount), "{printed:?} reads back");
    }
}

#[test]
fn refuses_what_is_not_an_amount() {
    let table: &[(&str, &str)] = &[
        ("", "not a number"),
        ("IO", "not a number"),
        ("abc", "not a number"),
        ("1.2.3", "not a number"),
        (".5", "not a number"),
        ("5.", "not a number"),
        ("1e9", "not a number"),
        ("+1", "not a number"),
        ("1,000", "not a number"),
        ("1.5 io", "not a number"),
        ("1.5 IO IO", "not a number"),
        ("٣", "not a number"),
        ("-x", "not a number"),
        ("1.0000000001", "too many decimals: at most 9"),
        ("0.0000000000", "too many decimals: at most 9"),
        ("-1", "negative amounts are not allowed"),
        ("-0.5 IO", "negative amounts are not allowed"),
        ("-0", "negative amounts are not allowed"),
        ("18446744073.709551616", "overflow: at most 18446744073.709551615 IO"),
        ("18446744074", "overflow: at most 18446744073.709551615 IO"),
        ("99999999999999999999999", "overflow: at most 18446744073.709551615 IO"),
    ];
    for &(text, message) in table {
        let err = text.parse::<Amount>().expect_err(text);
        assert_eq!(err.to_string(), message, "{text:?}");
    }
    assert_eq!("1.5.".parse::<Amount>(), Err(AmountParseError::NotANumber));
}

#[test]
fn display_honours_width() {
    assert_eq!(format!("[{:>8}]", units(1_500_000_000)), "[  1.5 IO]");
    assert_eq!(format!("[{:<8}]", SignedAmount(-1_500_000_000)), "[-1.5 IO ]");
}

#[test]
fn signed_amounts_print_with_their_sign() {
    assert_eq!(SignedAmount(-1_500_000_000).to_string(), "-1.5 IO");
    assert_eq!(SignedAmount(-1).to_string(), "-0.000000001 IO");
    assert_eq!(SignedAmount(0).to_string(), "0 IO");
    assert_eq!(SignedAmount(i128::MIN).to_string(), "-170141183460469231731687303715.884105728 IO");
    assert_eq!(SignedAmount(7).to_amount(), Some(units(7)));
    assert_eq!(SignedAmount(-7).to_amount(), None);
    assert_eq!(SignedAmount::from(Amount::MAX).0, i128::from(u64::MAX));
}

#[test]
fn arithmetic_is_checked() {
    assert_eq!(units(2).checked_add(units(3)), Some(units(5)));
    assert_eq!(Amount::MAX.checked_add(units(1)), None);
    assert_eq!(units(5).checked_sub(units(3)), Some(units(2)));
    assert_eq!(units(3).checked_sub(units(5)), None);
    assert_eq!(Amount::from_io(3), Some(units(3_000_000_000)));
    assert_eq!(Amount::from_io(u64::MAX), None);
    assert!(Amount::ZERO.is_zero());
}

#[test]
fn mul_div_prices_time() {
    let per_hour: Amount = "0.36".parse().unwrap();
    // 0.36 IO an hour for 90 seconds.
    assert_eq!(per_hour.checked_mul_div(90, 3600), Some("0.009".parse().unwrap()));
    // Rounds down: 1 base unit an hour for half an hour is nothing.
    assert_eq!(units(1).checked_mul_div(1800, 3600), Some(Amount::ZERO));
    assert_eq!(units(10).checked_mul_div(1, 3), Some(units(3)));
    // The product may pass u64 as long as the result does not.
    assert_eq!(Amount::MAX.checked_mul_div(3600, 3600), Some(Amount::MAX));
    assert_eq!(Amount::MAX.checked_mul_div(u64::MAX, u64::MAX), Some(Amount::MAX));
    assert_eq!(Amount::MAX.checked_mul_div(2, 1), None);
    assert_eq!(units(1).checked_mul_div(1, 0), None);
}

#[test]
fn split_bps_loses_nothing() {
    let price: Amount = "1".parse().unwrap();
    assert_eq!(price.split_bps(250), Some((units(25_000_000), units(975_000_000))));
    assert_eq!(units(3).split_bps(5_000), Some((units(1), units(2))));
    assert_eq!(units(3).split_bps(0), Some((Amount::ZERO, units(3))));
    assert_eq!(units(3).split_bps(10_000), Some((units(3), Amount::ZERO)));
    assert_eq!(units(3).split_bps(10_001), None);
    for base_units in [0, 1, 7, 9_999, 123_456_789, u64::MAX] {
        for bps in [1, 33, 250, 9_999] {
            let (share, rest) = units(base_units).split_bps(bps).unwrap();
            assert_eq!(share.checked_add(rest), Some(units(base_units)), "{base_units} at {bps} bps");
        }
    }
}
