//! Fixed-length byte arrays as hex text, with errors that say what the text
//! should have held.

use zeroize::Zeroizing;

use crate::SealError;

/// Lowercase hex of `bytes`.
pub(crate) fn encode(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Parse exactly `N` bytes from hex (either case), ignoring whitespace around
/// it so that a key file with a trailing newline reads back. The intermediate
/// buffer is wiped, since `what` may be a secret.
pub(crate) fn decode<const N: usize>(what: &'static str, text: &str) -> Result<Zeroizing<[u8; N]>, SealError> {
    let text = text.trim();
    let bad = |reason: String| SealError::BadHex { what, expected_digits: 2 * N, reason };
    if text.len() != 2 * N {
        return Err(bad(format!("found {} characters", text.len())));
    }
    let mut bytes = Zeroizing::new([0u8; N]);
    hex::decode_to_slice(text, bytes.as_mut_slice()).map_err(|err| bad(err.to_string()))?;
    Ok(bytes)
}

/// `Display`, `Debug` (`Type(<hex>)`), `FromStr` and serde as a hex string,
/// for a public type with `to_hex` and `from_hex`.
macro_rules! text_traits {
    ($ty:ident) => {
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        impl std::fmt::Debug for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}({})", stringify!($ty), self.to_hex())
            }
        }

        impl std::str::FromStr for $ty {
            type Err = $crate::SealError;

            fn from_str(text: &str) -> Result<$ty, $crate::SealError> {
                $ty::from_hex(text)
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.to_hex())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<$ty, D::Error> {
                let text = <String as serde::Deserialize>::deserialize(deserializer)?;
                $ty::from_hex(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

pub(crate) use text_traits;
