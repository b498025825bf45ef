//! Data sets: what a model trains on, generated from a seed or read from a
//! user's file, and the split of a data set into shards.

use std::collections::BTreeSet;
use std::ops::Range;

use crate::error::{MlError, MlErrorKind};
use crate::rng;

/// What a data set asks a model to do, and so which loss it is scored by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Task {
    /// Predict real values; the loss is the mean squared error over every
    /// output of every example.
    Regression,
    /// Pick one class; the loss is the mean cross-entropy of the softmax of
    /// the outputs.
    Classification,
    /// Predict each next token of a window of text; the loss is the mean
    /// cross-entropy over every position of every window.
    Text,
}

/// Examples for a model: feature rows with targets (for an MLP), or a token
/// sequence cut into overlapping windows (for a CharLm). Built only through
/// the checked constructors, [`slice`](Dataset::slice) and
/// [`decode`](Dataset::decode), so its contents are always consistent.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub(crate) data: Data,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Data {
    Regression { inputs: usize, outputs: usize, x: Vec<f32>, y: Vec<f32> },
    Classification { inputs: usize, classes: usize, x: Vec<f32>, labels: Vec<u32> },
    Text { vocab: usize, context: usize, tokens: Vec<u32> },
}

fn check_finite(what: &str, values: &[f32], width: usize) -> Result<(), MlError> {
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(MlError::new(
            MlErrorKind::Data,
            format!("{what} of example {} (column {}) is {}, not a finite number", i / width, i % width, values[i]),
        ));
    }
    Ok(())
}

fn check_rows(what: &str, len: usize, width: usize) -> Result<usize, MlError> {
    if width == 0 {
        return Err(MlError::new(MlErrorKind::Data, format!("{what} need at least one column")));
    }
    if !len.is_multiple_of(width) {
        return Err(MlError::new(
            MlErrorKind::Data,
            format!("{what} hold {len} values, not a whole number of rows of {width}"),
        ));
    }
    Ok(len / width)
}

impl Dataset {
    /// A regression set: `x` holds `inputs` features per example and `y`
    /// holds `outputs` targets per example, both row-major.
    pub fn regression(inputs: usize, x: Vec<f32>, outputs: usize, y: Vec<f32>) -> Result<Dataset, MlError> {
        let rows = check_rows("the inputs", x.len(), inputs)?;
        let target_rows = check_rows("the targets", y.len(), outputs)?;
        if rows != target_rows {
            return Err(MlError::new(
                MlErrorKind::Data,
                format!("there are {rows} input rows but {target_rows} target rows"),
            ));
        }
        if rows == 0 {
            return Err(MlError::new(MlErrorKind::Data, "the data set has no examples"));
        }
        check_finite("an input", &x, inputs)?;
        check_finite("a target", &y, outputs)?;
        Ok(Dataset { data: Data::Regression { inputs, outputs, x, y } })
    }

    /// A classification set: `x` holds `inputs` features per example,
    /// row-major, and `labels` one class index per example. The number of
    /// classes is taken as the largest label plus one.
    pub fn classification(inputs: usize, x: Vec<f32>, labels: Vec<u32>) -> Result<Dataset, MlError> {
        let classes = labels.iter().max().map_or(0, |&m| m as usize + 1);
        Dataset::classification_with_classes(inputs, x, labels, classes)
    }

    /// A classification set with `classes` classes, which may be more than
    /// the largest label plus one (a slice of a bigger set, a decoded one):
    /// checked as [`classification`](Self::classification) is, and every
    /// label must be below `classes`, at most 2³² (the labels are `u32`).
    pub(crate) fn classification_with_classes(
        inputs: usize,
        x: Vec<f32>,
        labels: Vec<u32>,
        classes: usize,
    ) -> Result<Dataset, MlError> {
        let rows = check_rows("the inputs", x.len(), inputs)?;
        if rows != labels.len() {
            return Err(MlError::new(
                MlErrorKind::Data,
                format!("there are {rows} input rows but {} labels", labels.len()),
            ));
        }
        if rows == 0 {
            return Err(MlError::new(MlErrorKind::Data, "the data set has no examples"));
        }
        check_finite("an input", &x, inputs)?;
        if classes as u64 > 1 << 32 {
            return Err(MlError::at_field(
                MlErrorKind::Data,
                "classes",
                format!("must be at most 2^32 (labels are 32-bit), got {classes}"),
            ));
        }
        if let Some(i) = labels.iter().position(|&l| l as usize >= classes) {
            return Err(MlError::new(
                MlErrorKind::Data,
                format!("the label of example {i} is {}, outside the {classes} classes", labels[i]),
            ));
        }
        Ok(Dataset { data: Data::Classification { inputs, classes, x, labels } })
    }

    /// A text set for a CharLm with this `context`: example `i` is the
    /// window `tokens[i..i + context]` and its targets are the same window
    /// moved on by one, `tokens[i + 1..i + context + 1]`, so there are
    /// `tokens.len() − context` examples. Every token must be below `vocab`.
    pub fn text(tokens: Vec<u32>, vocab: usize, context: usize) -> Result<Dataset, MlError> {
        if context == 0 {
            return Err(MlError::at_field(MlErrorKind::Data, "context", "must be at least 1, got 0"));
        }
        if tokens.len() <= context {
            return Err(MlError::new(
                MlErrorKind::Data,
                format!("the text has {} tokens; a context of {context} needs at least {}", tokens.len(), context + 1),
            ));
        }
        if let Some(i) = tokens.iter().position(|&t| t as usize >= vocab) {
            return Err(MlError::new(
                MlErrorKind::Data,
                format!("token {i} is {}, outside a vocabulary of {vocab}", tokens[i]),
            ));
        }
        Ok(Dataset { data: Data::Text { vocab, context, tokens } })
    }

    /// Number of examples (rows, or windows of text).
    pub fn len(&self) -> usize {
        match &self.data {
            Data::Regression { outputs, y, .. } => y.len() / outputs,
            Data::Classification { labels, .. } => labels.len(),
            Data::Text { context, tokens, .. } => tokens.len() - context,
        }
    }

    /// Whether there are no examples (never: the constructors refuse that).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the data asks of a model.
    pub fn task(&self) -> Task {
        match &self.data {
            Data::Regression { .. } => Task::Regression,
            Data::Classification { .. } => Task::Classification,
            Data::Text { .. } => Task::Text,
        }
    }

    /// Features per example (the columns an MLP reads, `mlp.inputs`), for a
    /// regression or classification set; `None` for text.
    pub fn inputs(&self) -> Option<usize> {
        match &self.data {
            Data::Regression { inputs, .. } | Data::Classification { inputs, .. } => Some(*inputs),
            Data::Text { .. } => None,
        }
    }

    /// Targets per example of a regression set (`mlp.outputs`); `None` for
    /// the other kinds.
    pub fn outputs(&self) -> Option<usize> {
        match &self.data {
            Data::Regression { outputs, .. } => Some(*outputs),
            _ => None,
        }
    }

    /// Number of classes of a classification set: a classifier needs at
    /// least this many outputs. It is the largest label plus one for a set
    /// built by [`classification`](Self::classification), and the parent's
    /// number for a [`slice`](Self::slice), whatever labels the slice holds.
    /// `None` for the other kinds.
    pub fn classes(&self) -> Option<usize> {
        match &self.data {
            Data::Classification { classes, .. } => Some(*classes),
            _ => None,
        }
    }

    /// The feature rows of a regression or classification set, row-major
    /// ([`inputs`](Self::inputs) values a row); `None` for text.
    pub fn features(&self) -> Option<&[f32]> {
        match &self.data {
            Data::Regression { x, .. } | Data::Classification { x, .. } => Some(x),
            Data::Text { .. } => None,
        }
    }

    /// Each example's class, for a classification set; `None` for the
    /// other kinds.
    pub fn labels(&self) -> Option<&[u32]> {
        match &self.data {
            Data::Classification { labels, .. } => Some(labels),
            _ => None,
        }
    }

    /// The targets of a regression set, row-major
    /// ([`outputs`](Self::outputs) values a row); `None` for the other
    /// kinds.
    pub fn targets(&self) -> Option<&[f32]> {
        match &self.data {
            Data::Regression { y, .. } => Some(y),
            _ => None,
        }
    }

    /// Size of a text set's vocabulary (every token is below it); `None`
    /// for the other kinds.
    pub fn vocab(&self) -> Option<usize> {
        match &self.data {
            Data::Text { vocab, .. } => Some(*vocab),
            _ => None,
        }
    }

    /// Tokens per window of a text set (`char_lm.context`); `None` for the
    /// other kinds.
    pub fn context(&self) -> Option<usize> {
        match &self.data {
            Data::Text { context, .. } => Some(*context),
            _ => None,
        }
    }

    /// The examples `range` as a data set of their own, of the same kind and
    /// dimensions: rows `range` of a regression or classification set
    /// (which keeps the parent's number of [`classes`](Self::classes)), or
    /// windows `range` of a text set, that is tokens
    /// `range.start..range.end + context`. Example `i` of the slice is
    /// example `range.start + i` of `self`.
    ///
    /// Fails (kind [`Mismatch`](MlErrorKind::Mismatch)) if `range` is empty
    /// or reaches past [`len`](Self::len).
    pub fn slice(&self, range: Range<usize>) -> Result<Dataset, MlError> {
        self.check_range(&range, "range")?;
        let (start, end) = (range.start, range.end);
        let data = match &self.data {
            Data::Regression { inputs, outputs, x, y } => Data::Regression {
                inputs: *inputs,
                outputs: *outputs,
                x: x[start * inputs..end * inputs].to_vec(),
                y: y[start * outputs..end * outputs].to_vec(),
            },
            Data::Classification { inputs, classes, x, labels } => Data::Classification {
                inputs: *inputs,
                classes: *classes,
                x: x[start * inputs..end * inputs].to_vec(),
                labels: labels[range].to_vec(),
            },
            Data::Text { vocab, context, tokens } => {
                Data::Text { vocab: *vocab, context: *context, tokens: tokens[start..end + context].to_vec() }
            }
        };
        Ok(Dataset { data })
    }

    /// The examples at `order`, in that order (a shuffle, or any pick with
    /// repeats): a feature set's rows, keeping the number of classes. Text
    /// has no examples of its own to reorder (its windows overlap), so it
    /// is refused, as is an empty `order` or an index past the end.
    pub fn select(&self, order: &[usize]) -> Result<Dataset, MlError> {
        if order.is_empty() {
            return Err(MlError::new(MlErrorKind::Mismatch, "a selection of no examples is not a data set"));
        }
        if let Some(&index) = order.iter().find(|&&index| index >= self.len()) {
            return Err(MlError::new(
                MlErrorKind::Mismatch,
                format!("example {index} is not in the data set's {} examples", self.len()),
            ));
        }
        let rows = |values: &[f32], width: usize| -> Vec<f32> {
            order.iter().flat_map(|&i| values[i * width..(i + 1) * width].iter().copied()).collect()
        };
        let data = match &self.data {
            Data::Regression { inputs, outputs, x, y } => {
                Data::Regression { inputs: *inputs, outputs: *outputs, x: rows(x, *inputs), y: rows(y, *outputs) }
            }
            Data::Classification { inputs, classes, x, labels } => Data::Classification {
                inputs: *inputs,
                classes: *classes,
                x: rows(x, *inputs),
                labels: order.iter().map(|&i| labels[i]).collect(),
            },
            Data::Text { .. } => {
                return Err(MlError::new(
                    MlErrorKind::Mismatch,
                    "text cannot be reordered by example: its windows overlap; slice it instead",
                ));
            }
        };
        Ok(Dataset { data })
    }

    /// Checks that `range` is a non-empty range of examples within the set;
    /// the error calls it `what` (`shard`, `range`).
    pub(crate) fn check_range(&self, range: &Range<usize>, what: &str) -> Result<(), MlError> {
        if range.start >= range.end || range.end > self.len() {
            return Err(MlError::new(
                MlErrorKind::Mismatch,
                format!(
                    "the {what} {}..{} must be a non-empty range within the data set's {} examples",
                    range.start,
                    range.end,
                    self.len()
                ),
            ));
        }
        Ok(())
    }
}

/// The range of examples that shard `k` of `n_shards` holds: contiguous
/// ranges in order, the first `len % n_shards` of them one example longer,
/// together covering `0..len` exactly once. A shard is empty when there are
/// more shards than examples.
///
/// For a text set, a shard's windows read up to `context` tokens past the
/// shard's last starting position, so neighbouring shards share that many
/// tokens.
pub fn shard(len: usize, n_shards: usize, k: usize) -> Result<Range<usize>, MlError> {
    if n_shards == 0 {
        return Err(MlError::at_field(MlErrorKind::Mismatch, "n_shards", "must be at least 1, got 0"));
    }
    if k >= n_shards {
        return Err(MlError::at_field(
            MlErrorKind::Mismatch,
            "k",
            format!("must be below n_shards ({n_shards}), got {k}"),
        ));
    }
    let base = len / n_shards;
    let extra = len % n_shards;
    let start = k * base + k.min(extra);
    let end = start + base + usize::from(k < extra);
    Ok(start..end)
}

/// Two or more interleaved spirals in the plane, `examples` points shared
/// out over `classes` arms in turn (example `i` is on arm `i % classes`),
/// each point jittered by a little noise: a classification set with 2
/// inputs that no linear model separates.
///
/// The points come from `seed` alone, through [`libm`]'s `sin` and `cos`,
/// so they are the same bits on every machine.
pub fn spirals(examples: usize, classes: usize, seed: u64) -> Result<Dataset, MlError> {
    if classes < 2 {
        return Err(MlError::at_field(MlErrorKind::Data, "classes", format!("must be at least 2, got {classes}")));
    }
    let mut x = Vec::with_capacity(examples * 2);
    let mut labels = Vec::with_capacity(examples);
    for i in 0..examples {
        let class = i % classes;
        let r = rng::unit_f64(rng::bits(seed, rng::STREAM_DATA, 3 * i as u64));
        let noise_x = rng::unit_f64(rng::bits(seed, rng::STREAM_DATA, 3 * i as u64 + 1)) - 0.5;
        let noise_y = rng::unit_f64(rng::bits(seed, rng::STREAM_DATA, 3 * i as u64 + 2)) - 0.5;
        // One and a half turns outwards from the centre, each arm rotated by
        // an equal share of a full turn.
        let angle = 3.0 * std::f64::consts::PI * r + 2.0 * std::f64::consts::PI * class as f64 / classes as f64;
        x.push((r * libm::cos(angle) + 0.05 * noise_x) as f32);
        x.push((r * libm::sin(angle) + 0.05 * noise_y) as f32);
        labels.push(class as u32);
    }
    Dataset::classification(2, x, labels)
}

/// A smooth regression set with 2 inputs and 1 output:
/// `y = sin(3·x₀) · cos(2·x₁)` for `x` uniform in `[-1, 1)²`, computed
/// with [`libm`] so it is the same bits on every machine.
pub fn waves(examples: usize, seed: u64) -> Result<Dataset, MlError> {
    let mut x = Vec::with_capacity(examples * 2);
    let mut y = Vec::with_capacity(examples);
    for i in 0..examples {
        let x0 = 2.0 * rng::unit_f64(rng::bits(seed, rng::STREAM_DATA, 2 * i as u64)) - 1.0;
        let x1 = 2.0 * rng::unit_f64(rng::bits(seed, rng::STREAM_DATA, 2 * i as u64 + 1)) - 1.0;
        x.push(x0 as f32);
        x.push(x1 as f32);
        y.push((libm::sin(3.0 * x0) * libm::cos(2.0 * x1)) as f32);
    }
    Dataset::regression(2, x, 1, y)
}

const SUBJECTS: &[&str] =
    &["the cat", "the dog", "a bird", "the old man", "my sister", "a small fox", "the farmer", "our teacher"];
const VERBS: &[&str] = &["sees", "likes", "follows", "finds", "calls", "feeds", "watches", "meets"];
const OBJECTS: &[&str] = &[
    "the river",
    "a red ball",
    "the green hill",
    "an apple",
    "the little house",
    "a quiet road",
    "the moon",
    "some bread",
];
const ENDINGS: &[&str] = &["", " in the morning", " at night", " every day", " near the barn", " with joy"];

/// English-like text from a tiny grammar (`subject verb object [ending].`,
/// sentences joined by spaces, a newline after every fourth), at least
/// `chars` characters long, chosen from `seed`. Its characters are lowercase
/// ASCII letters, space, `.` and newline. Made for training a CharLm without
/// shipping or downloading a corpus: the structure is easy to learn a little
/// and hard to learn entirely.
pub fn grammar_text(chars: usize, seed: u64) -> String {
    let mut text = String::with_capacity(chars + 64);
    let mut counter = 0u64;
    let mut pick = |list: &[&'static str]| {
        counter += 1;
        list[rng::below(rng::bits(seed, rng::STREAM_DATA, counter), list.len())]
    };
    let mut sentence = 0u64;
    while text.len() < chars {
        let (subject, verb, object, ending) = (pick(SUBJECTS), pick(VERBS), pick(OBJECTS), pick(ENDINGS));
        text.push_str(subject);
        text.push(' ');
        text.push_str(verb);
        text.push(' ');
        text.push_str(object);
        text.push_str(ending);
        text.push('.');
        sentence += 1;
        text.push(if sentence.is_multiple_of(4) { '\n' } else { ' ' });
    }
    text
}

/// A character vocabulary: token `i` is the `i`-th character in code point
/// order of the set it was built from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CharVocab {
    chars: Vec<char>,
}

impl CharVocab {
    /// The distinct characters of `text`, sorted, so the same text always
    /// gives the same vocabulary.
    pub fn from_text(text: &str) -> CharVocab {
        CharVocab { chars: text.chars().collect::<BTreeSet<char>>().into_iter().collect() }
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    /// Whether it has no tokens.
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// The characters, token 0 first.
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// The token ids of `text`, or an error naming the first character the
    /// vocabulary lacks.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, MlError> {
        text.chars()
            .enumerate()
            .map(|(i, c)| {
                self.chars.binary_search(&c).map(|t| t as u32).map_err(|_| {
                    MlError::new(MlErrorKind::Data, format!("character {i} ({c:?}) is not in the vocabulary"))
                })
            })
            .collect()
    }

    /// The text of `tokens`; an id outside the vocabulary becomes U+FFFD.
    pub fn decode(&self, tokens: &[u32]) -> String {
        tokens.iter().map(|&t| self.chars.get(t as usize).copied().unwrap_or('\u{FFFD}')).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text_set(context: usize) -> Dataset {
        Dataset::text((0..40).map(|i| i % 7).collect(), 7, context).unwrap()
    }

    #[test]
    fn regression_slices_are_rows() {
        let data = waves(10, 3).unwrap();
        let part = data.slice(2..5).unwrap();
        let Data::Regression { x, y, .. } = &data.data else { panic!("waves is a regression set") };
        assert_eq!(part, Dataset::regression(2, x[4..10].to_vec(), 1, y[2..5].to_vec()).unwrap());
        assert_eq!((part.len(), part.inputs(), part.outputs()), (3, Some(2), Some(1)));
        assert_eq!(data.slice(0..10).unwrap(), data);
        assert_eq!(data.slice(9..10).unwrap().len(), 1);
    }

    #[test]
    fn a_selection_reorders_rows_keeps_the_classes_and_refuses_text() {
        let data = spirals(30, 3, 1).unwrap();
        let picked = data.select(&[4, 0, 4]).unwrap();
        let Data::Classification { x, labels, .. } = &data.data else { panic!("a classification set") };
        let Data::Classification { x: px, labels: pl, classes, .. } = &picked.data else { panic!("still one") };
        assert_eq!((pl.as_slice(), *classes), (&[labels[4], labels[0], labels[4]][..], 3));
        assert_eq!(px.as_slice(), [&x[8..10], &x[0..2], &x[8..10]].concat());
        let waves = waves(5, 2).unwrap();
        assert_eq!(waves.select(&[0, 1, 2, 3, 4]).unwrap(), waves);
        assert!(data.select(&[30]).unwrap_err().to_string().contains("example 30 is not in the data set's 30"));
        assert!(data.select(&[]).is_err());
        assert!(text_set(4).select(&[0]).unwrap_err().to_string().contains("overlap"));
    }

    #[test]
    fn classification_slices_keep_the_number_of_classes() {
        let data = spirals(30, 3, 1).unwrap();
        assert_eq!(data.classes(), Some(3));
        // Example 0 is on arm 0: one label, 0, and still three classes.
        let part = data.slice(0..1).unwrap();
        let Data::Classification { labels, x, .. } = &part.data else { panic!("a classification set") };
        assert_eq!((labels.as_slice(), part.classes(), part.inputs()), (&[0][..], Some(3), Some(2)));
        assert_eq!(Dataset::classification(2, x.clone(), labels.clone()).unwrap().classes(), Some(1));
        let nested = data.slice(3..9).unwrap().slice(1..2).unwrap();
        assert_eq!(nested.classes(), Some(3));
        assert_eq!(nested, data.slice(4..5).unwrap());
        assert_eq!(data.slice(4..5).unwrap().slice(0..1).unwrap(), data.slice(4..5).unwrap());
        assert_eq!(part.outputs(), None);
    }

    #[test]
    fn text_slices_are_windows() {
        let data = text_set(4);
        assert_eq!(data.len(), 36);
        let part = data.slice(2..5).unwrap();
        let expected: Vec<u32> = (2..9).map(|i| i % 7).collect();
        assert_eq!(part, Dataset::text(expected, 7, 4).unwrap());
        assert_eq!((part.len(), part.vocab(), part.context()), (3, Some(7), Some(4)));
        assert_eq!((part.inputs(), part.classes()), (None, None));
        // The last window reads the last token.
        assert_eq!(data.slice(35..36).unwrap(), Dataset::text((35..40).map(|i| i % 7).collect(), 7, 4).unwrap());
        assert_eq!(data.slice(0..36).unwrap(), data);
    }

    #[test]
    fn bad_slices_name_the_range_and_the_length() {
        let data = waves(10, 3).unwrap();
        let e = data.slice(5..5).unwrap_err();
        assert_eq!(e.kind(), MlErrorKind::Mismatch);
        assert_eq!(e.to_string(), "the range 5..5 must be a non-empty range within the data set's 10 examples");
        let e = data.slice(Range { start: 6, end: 2 }).unwrap_err();
        assert!(e.to_string().starts_with("the range 6..2 must be"), "{e}");
        let e = data.slice(8..11).unwrap_err();
        assert!(e.to_string().contains("8..11") && e.to_string().contains("10 examples"), "{e}");
        let e = text_set(4).slice(30..37).unwrap_err();
        assert_eq!(e.to_string(), "the range 30..37 must be a non-empty range within the data set's 36 examples");
        assert_eq!(spirals(6, 2, 1).unwrap().slice(0..usize::MAX).unwrap_err().kind(), MlErrorKind::Mismatch);
    }

    #[test]
    fn explicit_classes_are_checked() {
        let e = Dataset::classification_with_classes(1, vec![0.0, 1.0], vec![0, 3], 3).unwrap_err();
        assert_eq!(e.to_string(), "the label of example 1 is 3, outside the 3 classes");
        let data = Dataset::classification_with_classes(1, vec![0.0, 1.0], vec![0, 1], 5).unwrap();
        assert_eq!(data.classes(), Some(5));
    }
}
