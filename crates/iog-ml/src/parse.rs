//! Reading a user's data: CSV text and NumPy `.npy` arrays.

use crate::data::Dataset;
use crate::error::{MlError, MlErrorKind};
use crate::spec::WIDTH_MAX;

/// Which columns of a file are the targets, and what they mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// The last `n` columns are real-valued targets (a regression set); the
    /// columns before them are the inputs.
    Values(usize),
    /// The last column is a class index, a whole number from 0 to 65535 (a
    /// classification set); the columns before it are the inputs.
    Class,
}

fn data_error(message: String) -> MlError {
    MlError::new(MlErrorKind::Data, message)
}

fn class_label(value: f32, place: impl FnOnce() -> String) -> Result<u32, MlError> {
    if value.fract() != 0.0 || value < 0.0 || value >= WIDTH_MAX as f32 {
        return Err(data_error(format!(
            "{}: class label {value} must be a whole number from 0 to {}",
            place(),
            WIDTH_MAX - 1
        )));
    }
    Ok(value as u32)
}

/// Reads comma-separated numbers into a data set.
///
/// Blank lines and lines starting with `#` are skipped. The first remaining
/// line is a header, and skipped, if any of its fields is not a number.
/// Every other line must have as many fields as the first data line, each a
/// finite number (surrounding spaces are ignored). Errors name the line and
/// column, counting from 1, for example
/// `line 7, column 3: "abc" is not a number`.
pub fn parse_csv(text: &str, target: Target) -> Result<Dataset, MlError> {
    let target_columns = match target {
        Target::Values(0) => {
            return Err(MlError::at_field(MlErrorKind::Data, "target columns", "must be at least 1, got 0"));
        }
        Target::Values(n) => n,
        Target::Class => 1,
    };
    let mut x = Vec::new();
    let mut y = Vec::new();
    let mut labels = Vec::new();
    let count = read_csv(text, target_columns, |number, row| {
        let inputs = row.len() - target_columns;
        x.extend_from_slice(&row[..inputs]);
        match target {
            Target::Values(_) => y.extend_from_slice(&row[inputs..]),
            Target::Class => labels.push(class_label(row[inputs], || format!("line {number}, column {}", row.len()))?),
        }
        Ok(())
    })?;
    let inputs = count - target_columns;
    match target {
        Target::Values(n) => Dataset::regression(inputs, x, n, y),
        Target::Class => Dataset::classification(inputs, x, labels),
    }
}

/// Reads comma-separated numbers that are all inputs (no target column),
/// as a model's features for inference: returns the columns per line and
/// the values, row-major. Blank, comment and header lines and the errors
/// are as for [`parse_csv`].
pub fn parse_csv_inputs(text: &str) -> Result<(usize, Vec<f32>), MlError> {
    let mut x = Vec::new();
    let count = read_csv(text, 0, |_, row| {
        x.extend_from_slice(row);
        Ok(())
    })?;
    if count > WIDTH_MAX {
        return Err(data_error(format!("the CSV has {count} columns; a model takes at most {WIDTH_MAX} inputs")));
    }
    Ok((count, x))
}

/// Calls `each` with every data line's number and values, after checking
/// that every line has the first data line's column count, more than
/// `target_columns` of them, each a finite number; returns that count.
fn read_csv(
    text: &str,
    target_columns: usize,
    mut each: impl FnMut(usize, &[f32]) -> Result<(), MlError>,
) -> Result<usize, MlError> {
    let mut columns: Option<(usize, usize)> = None; // (count, line it was set by)
    let mut header_checked = false;
    let mut row = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if !header_checked {
            header_checked = true;
            if fields.iter().any(|f| f.parse::<f32>().is_err()) {
                continue;
            }
        }
        let (count, first_line) = *columns.get_or_insert((fields.len(), number));
        if fields.len() != count {
            return Err(data_error(format!(
                "line {number} has {} columns, but the first data line (line {first_line}) has {count}",
                fields.len()
            )));
        }
        if count <= target_columns {
            return Err(data_error(format!(
                "line {number} has {count} columns; {target_columns} target column(s) and at least one input column are needed"
            )));
        }
        row.clear();
        for (col, field) in fields.iter().enumerate() {
            let value: f32 = field
                .parse()
                .map_err(|_| data_error(format!("line {number}, column {}: {field:?} is not a number", col + 1)))?;
            if !value.is_finite() {
                return Err(data_error(format!("line {number}, column {}: {field:?} is not a finite number", col + 1)));
            }
            row.push(value);
        }
        each(number, &row)?;
    }
    let Some((count, _)) = columns else {
        return Err(data_error("the CSV has no data lines".to_owned()));
    };
    Ok(count)
}

/// A NumPy array read from a `.npy` file, its values converted to `f32`.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// The array's shape; empty for a scalar.
    pub shape: Vec<usize>,
    /// The values in row-major (C) order.
    pub values: Vec<f32>,
}

const NPY_MAGIC: &[u8] = b"\x93NUMPY";

/// Reads a `.npy` file (format versions 1, 2 and 3) holding a C-ordered
/// array of `f4`, `f8`, `i1`, `i2`, `i4`, `i8`, `u1`, `u2` or `u4` values in
/// either byte order; the values become `f32` (`f8` rounds; integers beyond
/// 2²⁴ may round). Fortran-ordered arrays are refused: save them with
/// `np.ascontiguousarray` first.
pub fn parse_npy(bytes: &[u8]) -> Result<NpyArray, MlError> {
    let npy_error = |what: &str| data_error(format!("not a usable .npy file: {what}"));
    if bytes.len() < 10 || &bytes[..6] != NPY_MAGIC {
        return Err(npy_error("it does not start with the NumPy magic string"));
    }
    let major = bytes[6];
    let (header_len, header_start) = match major {
        1 => (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(npy_error("the header is cut short"));
            }
            (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
        }
        _ => return Err(npy_error(&format!("format version {major} is not supported (1, 2 and 3 are)"))),
    };
    let data_start = header_start + header_len;
    if bytes.len() < data_start {
        return Err(npy_error("the header is cut short"));
    }
    let header =
        std::str::from_utf8(&bytes[header_start..data_start]).map_err(|_| npy_error("the header is not text"))?;
    let descr = header_value(header, "descr").ok_or_else(|| npy_error("the header has no 'descr'"))?;
    let fortran =
        header_value(header, "fortran_order").ok_or_else(|| npy_error("the header has no 'fortran_order'"))?;
    let shape_text = header_value(header, "shape").ok_or_else(|| npy_error("the header has no 'shape'"))?;
    if fortran != "False" {
        return Err(npy_error("the array is in Fortran order; save it with np.ascontiguousarray first"));
    }
    let shape = shape_text
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| npy_error(&format!("the shape {shape_text} is not a tuple of sizes"))))
        .collect::<Result<Vec<usize>, MlError>>()?;
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| npy_error("the shape is too large"))?;

    let descr = descr.trim_matches('\'').trim_matches('"');
    // The byte order is one ASCII character; anything else (a multi-byte
    // character included) is not a dtype this reads.
    let (order, kind) = match descr.char_indices().nth(1) {
        Some((at, _)) => descr.split_at(at),
        None => (descr, ""),
    };
    let little = match order {
        "<" | "|" => true,
        ">" => false,
        _ => return Err(npy_error(&format!("dtype {descr:?} is not supported"))),
    };
    let size = match kind {
        "f4" | "i4" | "u4" => 4,
        "f8" | "i8" => 8,
        "i2" | "u2" => 2,
        "i1" | "u1" => 1,
        _ => {
            return Err(npy_error(&format!(
                "dtype {descr:?} is not supported (f4, f8, i1, i2, i4, i8, u1, u2 and u4 are)"
            )));
        }
    };
    let body = &bytes[data_start..];
    let needed = count.checked_mul(size).ok_or_else(|| npy_error("the shape is too large"))?;
    if body.len() != needed {
        return Err(npy_error(&format!(
            "shape {shape:?} of {descr} needs {needed} data bytes, the file has {}",
            body.len()
        )));
    }
    let values = body
        .chunks_exact(size)
        .map(|chunk| {
            let mut b = [0u8; 8];
            b[..size].copy_from_slice(chunk);
            if !little {
                b[..size].reverse();
            }
            match kind {
                "f4" => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                "f8" => f64::from_le_bytes(b) as f32,
                "i8" => i64::from_le_bytes(b) as f32,
                "i4" => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32,
                "u4" => u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32,
                "i2" => f32::from(i16::from_le_bytes([b[0], b[1]])),
                "u2" => f32::from(u16::from_le_bytes([b[0], b[1]])),
                "i1" => f32::from(b[0] as i8),
                _ => f32::from(b[0]),
            }
        })
        .collect();
    Ok(NpyArray { shape, values })
}

/// The raw text of `key`'s value in a `.npy` header, a Python dict literal
/// such as `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`.
fn header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let quoted = format!("'{key}'");
    let rest = header[header.find(&quoted)? + quoted.len()..].trim_start().strip_prefix(':')?.trim_start();
    let end = match rest.chars().next()? {
        '\'' => rest[1..].find('\'')? + 2,
        '(' => rest.find(')')? + 1,
        _ => rest.find([',', '}']).unwrap_or(rest.len()),
    };
    Some(rest[..end].trim())
}

/// A data set from two arrays: `x` of shape `[examples, inputs]` and `y` of
/// shape `[examples]` or `[examples, outputs]`. With [`Target::Values`]`(n)`
/// `y` must have `n` columns; with [`Target::Class`] it must have one, of
/// whole numbers.
pub fn npy_dataset(x: &NpyArray, y: &NpyArray, target: Target) -> Result<Dataset, MlError> {
    let [rows, inputs] = x.shape[..] else {
        return Err(data_error(format!(
            "the input array must have 2 dimensions [examples, inputs], it has shape {:?}",
            x.shape
        )));
    };
    let (y_rows, y_columns) = match y.shape[..] {
        [r] => (r, 1),
        [r, c] => (r, c),
        _ => {
            return Err(data_error(format!(
                "the target array must have 1 or 2 dimensions [examples, outputs], it has shape {:?}",
                y.shape
            )));
        }
    };
    if y_rows != rows {
        return Err(data_error(format!("the input array has {rows} rows but the target array has {y_rows}")));
    }
    match target {
        Target::Values(n) => {
            if y_columns != n {
                return Err(data_error(format!("the target array has {y_columns} column(s), {n} were asked for")));
            }
            Dataset::regression(inputs, x.values.clone(), n, y.values.clone())
        }
        Target::Class => {
            if y_columns != 1 {
                return Err(data_error(format!("class labels must be one column, the target array has {y_columns}")));
            }
            let labels = y
                .values
                .iter()
                .enumerate()
                .map(|(i, &v)| class_label(v, || format!("target {i}")))
                .collect::<Result<Vec<u32>, MlError>>()?;
            Dataset::classification(inputs, x.values.clone(), labels)
        }
    }
}
