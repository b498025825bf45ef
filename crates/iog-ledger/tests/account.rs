//! Accounts and transfer ids: their text forms read back, and bad text is
//! refused with a reason.

use iog_ledger::{AccountId, Address, TransferId};

fn key(byte: u8) -> [u8; 32] {
    [byte; 32]
}

#[test]
fn text_forms_round_trip() {
    let wallet = Address::from_public_key(key(7));
    let table = [
        (AccountId::Wallet(wallet), format!("wallet:{wallet}")),
        (AccountId::Payout("4NwwCq5bBNjJ2v".into()), "payout:4NwwCq5bBNjJ2v".to_owned()),
        (AccountId::Escrow(0x0123_4567_89ab_cdef), "escrow:j-0123456789abcdef".to_owned()),
        (AccountId::Escrow(0), "escrow:j-0000000000000000".to_owned()),
        (AccountId::Stake("w:1".into()), "stake:w:1".to_owned()),
        (AccountId::Fees, "fees".to_owned()),
        (AccountId::Rewards, "rewards".to_owned()),
        (AccountId::Mint, "mint".to_owned()),
    ];
    for (account, text) in table {
        assert_eq!(account.to_string(), text);
        assert_eq!(text.parse::<AccountId>(), Ok(account), "{text}");
    }
}

#[test]
fn addresses_are_base58_public_keys() {
    let address = Address::from_public_key(key(0));
    assert_eq!(address.to_string(), "11111111111111111111111111111111");
    let address = Address::from_public_key(key(0xff));
    assert_eq!(address.to_string(), "JEKNVnkbo3jma5nREBBJCDoXFVeKkD56V3xKrvRmWxFG");
    assert_eq!(address.to_string().parse::<Address>(), Ok(address));
    assert_eq!(address.public_key(), &key(0xff));
}

#[test]
fn bad_text_names_the_problem() {
    let table = [
        ("bank:1", "unknown account kind `bank`: expected wallet, payout, escrow, stake, fees, rewards or mint"),
        ("", "unknown account kind ``: expected wallet, payout, escrow, stake, fees, rewards or mint"),
        ("Fees", "unknown account kind `Fees`: expected wallet, payout, escrow, stake, fees, rewards or mint"),
        ("fees:1", "`fees` takes nothing after it"),
        ("mint:", "`mint` takes nothing after it"),
        ("wallet", "write `wallet:<address>`"),
        ("escrow", "write `escrow:<job id>`"),
        ("stake", "write `stake:<worker id>`"),
        ("wallet:0OIl", "not base58: provided string contained invalid character '0' at byte 0"),
        ("wallet:abc", "an address is the base58 of a 32-byte ed25519 public key; this decodes to 3 bytes"),
        ("wallet:", "an address is the base58 of a 32-byte ed25519 public key; this decodes to 0 bytes"),
        ("payout:", "a worker id is 1 to 128 printable ASCII characters without spaces"),
        ("payout:a b", "a worker id is 1 to 128 printable ASCII characters without spaces"),
        ("stake:é", "a worker id is 1 to 128 printable ASCII characters without spaces"),
        ("escrow:0123456789abcdef", "an escrow names its job as `j-` and 16 hex digits"),
        ("escrow:j-123", "an escrow names its job as `j-` and 16 hex digits"),
        ("escrow:j-+123456789abcdef", "an escrow names its job as `j-` and 16 hex digits"),
    ];
    for (text, reason) in table {
        let err = text.parse::<AccountId>().expect_err(text);
        assert_eq!(err.reason, reason, "{text:?}");
        assert_eq!(err.to_string(), format!("invalid account {text:?}: {reason}"));
    }
    let long = format!("payout:{}", "w".repeat(129));
    assert!(long.parse::<AccountId>().is_err());
    let longest = format!("payout:{}", "w".repeat(128));
    assert!(longest.parse::<AccountId>().is_ok());
    let err = format!("wallet:{}", "1".repeat(65)).parse::<AccountId>().unwrap_err();
    assert_eq!(err.reason, "an address is the base58 of a 32-byte ed25519 public key, at most 64 characters; got 65");
}

#[test]
fn the_ledger_knows_which_accounts_it_cannot_use() {
    assert_eq!(
        AccountId::Payout(String::new()).problem(),
        Some("a worker id is 1 to 128 printable ASCII characters without spaces")
    );
    assert!(AccountId::Stake("tab\there".into()).problem().is_some());
    assert_eq!(AccountId::Payout("w1".into()).problem(), None);
    assert_eq!(AccountId::Mint.problem(), None);
}

#[test]
fn transfer_ids() {
    let id = TransferId(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
    assert_eq!(id.to_string(), "t-0123456789abcdef0011223344556677");
    assert_eq!(id.to_string().parse::<TransferId>(), Ok(id));
    for bad in [
        "0123456789abcdef0011223344556677",
        "t-12",
        "t-0123456789abcdef0011223344556677ff",
        "t-+123456789abcdef0011223344556677",
    ] {
        let err = bad.parse::<TransferId>().unwrap_err();
        assert_eq!(err.to_string(), format!("invalid transfer id {bad:?}: a transfer id is `t-` and 32 hex digits"));
    }
    // Derived ids never change, since callers recompute them to retry after
    // a restart, and distinct keys give distinct ids.
    assert_eq!(TransferId::derive("pay j-0000000000000001/3").to_string(), "t-0b96a6adfa10cc84215aa356863069a6");
    assert_eq!(TransferId::derive("pay j-0000000000000001/3"), TransferId::derive("pay j-0000000000000001/3"));
    assert_ne!(TransferId::derive("pay j-0000000000000001/3"), TransferId::derive("pay j-0000000000000001/4"));
}
