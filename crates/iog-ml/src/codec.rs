//! A compact binary form of a [`Dataset`], to send a data set or a shard of
//! one to a worker.
//!
//! All numbers are little-endian:
//!
//! | bytes | what |
//! |---|---|
//! | 8 | `IOGDS v1`: the magic `IOGDS` and the format version |
//! | 1 | the kind: 1 regression, 2 classification, 3 text |
//! | 3 × 8 | three `u64` dimensions (below) |
//! | rest | the values, nothing after them |
//!
//! - Regression: `inputs`, `outputs`, `rows`; then `rows × inputs` `f32`
//!   inputs and `rows × outputs` `f32` targets, row-major.
//! - Classification: `inputs`, `classes`, `rows`; then `rows × inputs`
//!   `f32` inputs and `rows` `u32` labels.
//! - Text: `vocab`, `context`, `tokens`; then `tokens` `u32` token ids.
//!
//! `f32`s travel as their bits, so a round trip is exact.

use crate::data::{Data, Dataset};
use crate::error::{MlError, MlErrorKind};

/// The first 8 bytes of every encoded data set.
const MAGIC: &[u8; 8] = b"IOGDS v1";
/// The part of [`MAGIC`] that names the format, before the version.
const MAGIC_NAME: &[u8; 6] = b"IOGDS ";

const KIND_REGRESSION: u8 = 1;
const KIND_CLASSIFICATION: u8 = 2;
const KIND_TEXT: u8 = 3;

/// Bytes before the values: magic, kind, three dimensions.
const HEADER_LEN: usize = 8 + 1 + 3 * 8;

fn bad(what: impl std::fmt::Display) -> MlError {
    MlError::new(MlErrorKind::Data, format!("not a usable encoded data set: {what}"))
}

/// Reads the encoded bytes from the front, checking each length against
/// what is left before it takes or allocates anything.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], MlError> {
        let left = self.bytes.len() - self.at;
        if n > left {
            return Err(bad(format_args!(
                "cut short at byte {}: {n} bytes of {what} are needed, {left} are left",
                self.at
            )));
        }
        let taken = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(taken)
    }

    fn u8(&mut self, what: &str) -> Result<u8, MlError> {
        Ok(self.take(1, what)?[0])
    }

    fn dimension(&mut self, what: &str) -> Result<usize, MlError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8, what)?);
        let value = u64::from_le_bytes(b);
        usize::try_from(value).map_err(|_| bad(format_args!("{what} is {value}, too large for this machine")))
    }

    /// The bytes of `count` values of 4 bytes each.
    fn array(&mut self, count: usize, what: &str) -> Result<&'a [u8], MlError> {
        let n = count.checked_mul(4).ok_or_else(|| bad(format_args!("{what} would be {count} values, too many")))?;
        self.take(n, what)
    }

    fn f32s(&mut self, count: usize, what: &str) -> Result<Vec<f32>, MlError> {
        let bytes = self.array(count, what)?;
        Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    fn u32s(&mut self, count: usize, what: &str) -> Result<Vec<u32>, MlError> {
        let bytes = self.array(count, what)?;
        Ok(bytes.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }
}

/// `rows × width`, or an error naming the array.
fn values(rows: usize, width: usize, what: &str) -> Result<usize, MlError> {
    rows.checked_mul(width).ok_or_else(|| bad(format_args!("{rows} rows of {width} {what} are too many")))
}

impl Dataset {
    /// The data set in the compact binary form described in [`decode`]'s
    /// docs: an 8-byte header `IOGDS v1`, the kind, the dimensions and the
    /// values, little-endian. [`decode`](Self::decode) gives back an equal
    /// data set, bit for bit.
    ///
    /// [`decode`]: Self::decode
    pub fn encode(&self) -> Vec<u8> {
        let dim = |v: usize| (v as u64).to_le_bytes();
        let (kind, dims, values) = match &self.data {
            Data::Regression { inputs, outputs, x, y } => {
                (KIND_REGRESSION, [*inputs, *outputs, y.len() / outputs], x.len() + y.len())
            }
            Data::Classification { inputs, classes, x, labels } => {
                (KIND_CLASSIFICATION, [*inputs, *classes, labels.len()], x.len() + labels.len())
            }
            Data::Text { vocab, context, tokens } => (KIND_TEXT, [*vocab, *context, tokens.len()], tokens.len()),
        };
        let mut out = Vec::with_capacity(HEADER_LEN + 4 * values);
        out.extend_from_slice(MAGIC);
        out.push(kind);
        for d in dims {
            out.extend_from_slice(&dim(d));
        }
        match &self.data {
            Data::Regression { x, y, .. } => {
                out.extend(x.iter().chain(y).flat_map(|v| v.to_le_bytes()));
            }
            Data::Classification { x, labels, .. } => {
                out.extend(x.iter().flat_map(|v| v.to_le_bytes()));
                out.extend(labels.iter().flat_map(|l| l.to_le_bytes()));
            }
            Data::Text { tokens, .. } => out.extend(tokens.iter().flat_map(|t| t.to_le_bytes())),
        }
        debug_assert_eq!(out.len(), HEADER_LEN + 4 * values);
        out
    }

    /// Reads a data set written by [`encode`](Self::encode).
    ///
    /// The format, all numbers little-endian: the 8 bytes `IOGDS v1`; the
    /// kind, one byte (1 regression, 2 classification, 3 text); three `u64`
    /// dimensions: `inputs, outputs, rows` (regression), `inputs, classes,
    /// rows` (classification) or `vocab, context, tokens` (text); then the
    /// values: the `f32` inputs row-major and then the `f32` targets or the
    /// `u32` labels, or the `u32` tokens; nothing after them.
    ///
    /// Every length is checked against the bytes present before anything is
    /// allocated, and the contents are checked as the constructors check
    /// them (whole rows, at least one example, finite values, labels below
    /// `classes`, tokens below `vocab`, more tokens than `context`). Any
    /// fault is an error of kind [`Data`](MlErrorKind::Data) that names it,
    /// never a panic.
    pub fn decode(bytes: &[u8]) -> Result<Dataset, MlError> {
        let mut r = Reader { bytes, at: 0 };
        let magic = r.take(8, "the header").map_err(|_| {
            bad(format_args!("it is {} bytes long, shorter than the 8-byte header `IOGDS v1`", bytes.len()))
        })?;
        if magic != MAGIC {
            if magic.starts_with(MAGIC_NAME) {
                return Err(bad(format_args!(
                    "format version {:?} is not supported (v1 is)",
                    String::from_utf8_lossy(&magic[MAGIC_NAME.len()..])
                )));
            }
            return Err(bad("it does not start with `IOGDS v1`"));
        }
        let kind = r.u8("the kind")?;
        let dataset = match kind {
            KIND_REGRESSION => {
                let inputs = r.dimension("inputs")?;
                let outputs = r.dimension("outputs")?;
                let rows = r.dimension("rows")?;
                let x = r.f32s(values(rows, inputs, "inputs")?, "the inputs")?;
                let y = r.f32s(values(rows, outputs, "targets")?, "the targets")?;
                finish(&r)?;
                Dataset::regression(inputs, x, outputs, y)
            }
            KIND_CLASSIFICATION => {
                let inputs = r.dimension("inputs")?;
                let classes = r.dimension("classes")?;
                let rows = r.dimension("rows")?;
                let x = r.f32s(values(rows, inputs, "inputs")?, "the inputs")?;
                let labels = r.u32s(rows, "the labels")?;
                finish(&r)?;
                Dataset::classification_with_classes(inputs, x, labels, classes)
            }
            KIND_TEXT => {
                let vocab = r.dimension("vocab")?;
                let context = r.dimension("context")?;
                let count = r.dimension("tokens")?;
                let tokens = r.u32s(count, "the tokens")?;
                finish(&r)?;
                Dataset::text(tokens, vocab, context)
            }
            other => {
                return Err(bad(format_args!("kind {other} is not known (1 regression, 2 classification, 3 text)")));
            }
        };
        dataset.map_err(|e| bad(e.message()))
    }
}

/// Checks that nothing follows the values.
fn finish(r: &Reader<'_>) -> Result<(), MlError> {
    let extra = r.bytes.len() - r.at;
    if extra != 0 {
        return Err(bad(format_args!("{extra} bytes follow the values at byte {}", r.at)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CharVocab;
    use crate::data::{grammar_text, spirals, waves};

    fn same_bits(a: &Dataset, b: &Dataset) -> bool {
        a.encode() == b.encode() && a == b
    }

    fn text_set() -> Dataset {
        let text = grammar_text(500, 3);
        let vocab = CharVocab::from_text(&text);
        Dataset::text(vocab.encode(&text).unwrap(), vocab.len(), 8).unwrap()
    }

    fn decode_err(bytes: &[u8]) -> String {
        let e = Dataset::decode(bytes).unwrap_err();
        assert_eq!(e.kind(), MlErrorKind::Data, "{e}");
        let message = e.to_string();
        assert!(!message.contains('\n'), "{message}");
        assert!(message.starts_with("not a usable encoded data set: "), "{message}");
        message
    }

    #[test]
    fn round_trips_are_exact() {
        // Negative zero, subnormals and extremes keep their bits.
        let odd = vec![-0.0, f32::MIN_POSITIVE / 3.0, f32::MAX, -1.5e-38, 0.1, 7.0];
        let sets = [
            waves(37, 2).unwrap(),
            spirals(40, 3, 1).unwrap(),
            text_set(),
            Dataset::regression(3, odd.clone(), 2, vec![1.0, -0.0, 3.0, 4.0]).unwrap(),
            Dataset::classification(2, odd, vec![4, 0, 1]).unwrap(),
            spirals(40, 4, 1).unwrap().slice(0..3).unwrap(),
        ];
        for set in sets {
            let bytes = set.encode();
            assert_eq!(&bytes[..8], b"IOGDS v1");
            let back = Dataset::decode(&bytes).unwrap();
            assert!(same_bits(&set, &back), "{set:?}");
            assert_eq!(back.classes(), set.classes());
        }
    }

    #[test]
    fn the_layout_is_as_documented() {
        let set = Dataset::classification(1, vec![1.0, -2.0], vec![1, 0]).unwrap();
        let mut expected = b"IOGDS v1".to_vec();
        expected.push(2);
        for d in [1u64, 2, 2] {
            expected.extend(d.to_le_bytes());
        }
        expected.extend(1.0f32.to_le_bytes());
        expected.extend((-2.0f32).to_le_bytes());
        expected.extend(1u32.to_le_bytes());
        expected.extend(0u32.to_le_bytes());
        assert_eq!(set.encode(), expected);
        assert_eq!(expected.len(), HEADER_LEN + 16);
    }

    #[test]
    fn truncated_bytes_are_refused_at_every_length() {
        for set in [waves(5, 1).unwrap(), spirals(6, 3, 1).unwrap(), text_set()] {
            let bytes = set.encode();
            for cut in 0..bytes.len() {
                decode_err(&bytes[..cut]);
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(decode_err(&longer).contains("1 bytes follow the values"));
        }
        assert_eq!(
            decode_err(b"IOGDS"),
            "not a usable encoded data set: it is 5 bytes long, shorter than the 8-byte header `IOGDS v1`"
        );
        let bytes = waves(5, 1).unwrap().encode();
        assert!(
            decode_err(&bytes[..HEADER_LEN + 4])
                .contains("cut short at byte 33: 40 bytes of the inputs are needed, 4 are left")
        );
    }

    #[test]
    fn garbage_is_refused() {
        assert!(decode_err(b"").contains("0 bytes long"));
        assert!(decode_err(b"PK\x03\x04 a zip file, not a data set").contains("does not start with `IOGDS v1`"));
        let mut bytes = waves(5, 1).unwrap().encode();
        bytes[6..8].copy_from_slice(b"v9");
        assert!(decode_err(&bytes).contains(r#"format version "v9" is not supported (v1 is)"#));
        let mut bytes = waves(5, 1).unwrap().encode();
        bytes[8] = 7;
        assert!(decode_err(&bytes).contains("kind 7 is not known"));
        // Pseudo-random bytes behind a valid magic: an error, never a panic.
        let mut state = 1u64;
        for len in 0..400 {
            let mut bytes = MAGIC.to_vec();
            for _ in 0..len {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                bytes.push((state >> 56) as u8);
            }
            if len > 0 {
                bytes[8] = 1 + (len % 3) as u8;
            }
            let _ = Dataset::decode(&bytes);
        }
    }

    /// A header with these dimensions and `tail` after it.
    fn with_header(kind: u8, dims: [u64; 3], tail: &[u8]) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.push(kind);
        for d in dims {
            bytes.extend(d.to_le_bytes());
        }
        bytes.extend_from_slice(tail);
        bytes
    }

    #[test]
    fn hostile_lengths_are_refused_before_allocating() {
        // Dimensions whose products overflow, or ask for far more than is there.
        let e = decode_err(&with_header(1, [u64::MAX, u64::MAX, u64::MAX], &[]));
        assert!(e.contains("too many"), "{e}");
        let e = decode_err(&with_header(1, [1, 1, 1 << 60], &[0; 8]));
        assert!(e.contains("too many") || e.contains("cut short"), "{e}");
        let e = decode_err(&with_header(2, [2, 3, 1 << 40], &[0; 64]));
        assert!(e.contains("8796093022208 bytes of the inputs are needed, 64 are left"), "{e}");
        let e = decode_err(&with_header(3, [10, 4, u64::MAX / 2], &[0; 16]));
        assert!(e.contains("too many"), "{e}");
        let e = decode_err(&with_header(3, [10, 4, 1 << 50], &[0; 16]));
        assert!(e.contains("cut short"), "{e}");
        // Zero-width rows: no values to read, refused by the constructor.
        let e = decode_err(&with_header(1, [0, 0, u64::MAX], &[]));
        assert!(e.contains("need at least one column"), "{e}");
    }

    #[test]
    fn contents_are_checked_as_the_constructors_check_them() {
        let f = |v: f32| v.to_le_bytes();
        let u = |v: u32| v.to_le_bytes();
        let e = decode_err(&with_header(1, [1, 1, 1], &[f(f32::NAN), f(1.0)].concat()));
        assert_eq!(e, "not a usable encoded data set: an input of example 0 (column 0) is NaN, not a finite number");
        let e = decode_err(&with_header(1, [1, 1, 1], &[f(0.0), f(f32::NEG_INFINITY)].concat()));
        assert!(e.contains("a target of example 0 (column 0) is -inf"), "{e}");
        let e = decode_err(&with_header(1, [1, 1, 0], &[]));
        assert!(e.contains("no examples"), "{e}");
        let e = decode_err(&with_header(2, [1, 2, 2], &[f(0.0), f(1.0), u(1), u(2)].concat()));
        assert_eq!(e, "not a usable encoded data set: the label of example 1 is 2, outside the 2 classes");
        let e = decode_err(&with_header(2, [1, 1 << 33, 1], &[f(0.0), u(0)].concat()));
        assert!(e.contains("classes must be at most 2^32"), "{e}");
        let e = decode_err(&with_header(3, [3, 1, 3], &[u(0), u(1), u(3)].concat()));
        assert_eq!(e, "not a usable encoded data set: token 2 is 3, outside a vocabulary of 3");
        let e = decode_err(&with_header(3, [3, 0, 2], &[u(0), u(1)].concat()));
        assert!(e.contains("context must be at least 1"), "{e}");
        let e = decode_err(&with_header(3, [3, 2, 2], &[u(0), u(1)].concat()));
        assert!(e.contains("the text has 2 tokens; a context of 2 needs at least 3"), "{e}");
    }
}
