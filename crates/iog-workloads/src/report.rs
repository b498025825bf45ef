//! Files for a training job's report: weights as safetensors, curves as PNG.
//!
//! [`safetensors()`] writes named `f32` tensors in the standard safetensors
//! format (an 8-byte little-endian header length, a JSON header, then the raw
//! little-endian data), the format that PyTorch, JAX and Hugging Face tools
//! load directly. [`line_plot_png`] draws a line chart, such as a loss curve,
//! to PNG bytes.
//!
//! Both are deterministic. A safetensors file depends only on its inputs
//! (not on their order), so one assembled by several parties can be compared
//! by digest. A chart is the same bytes for the same inputs on one build, but
//! its pixels go through floating-point library functions that may differ in
//! the last bit between platforms, so compare charts by eye, not by digest.
//! Text in charts is drawn with DejaVu Sans embedded in the binary (through
//! the `dejavu` crate); no system font, fontconfig or freetype is used.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::OnceLock;

use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

/// Largest width or height [`line_plot_png`] draws, in pixels.
pub const PLOT_SIDE_MAX: u32 = 8192;

/// Smallest width or height [`line_plot_png`] draws, in pixels: below it the
/// axes, labels and legend do not fit.
pub const PLOT_SIDE_MIN: u32 = 64;

/// The safetensors header key that holds free-form string metadata.
const METADATA_KEY: &str = "__metadata__";

/// Largest header the safetensors format allows (and its readers accept).
const HEADER_BYTES_MAX: usize = 100_000_000;

/// The font family name charts use. Plotters' default text styles (mesh
/// labels, legend) ask for "sans-serif", so registering under that name covers
/// them too.
const FONT_FAMILY: &str = "sans-serif";

/// Why a report file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A tensor's shape does not multiply out to its number of values.
    #[error("tensor `{name}`: shape {shape:?} holds {expected} values but {got} were given")]
    ShapeMismatch {
        /// The tensor's name.
        name: String,
        /// The shape given for it.
        shape: Vec<usize>,
        /// How many values that shape holds.
        expected: usize,
        /// How many values were given.
        got: usize,
    },
    /// A tensor's shape has more elements than fit in memory.
    #[error("tensor `{0}`: shape {1:?} overflows the element count")]
    ShapeOverflow(String, Vec<usize>),
    /// Two tensors share one name.
    #[error("tensor `{0}` is named twice")]
    DuplicateTensor(String),
    /// A tensor's name is empty or is the reserved `__metadata__`.
    #[error("tensor name `{0}` is not allowed (empty or reserved)")]
    BadTensorName(String),
    /// The safetensors header would be larger than the format allows.
    #[error("safetensors header is {0} bytes, over the format's {HEADER_BYTES_MAX}-byte limit")]
    HeaderTooLarge(usize),
    /// The safetensors crate refused the tensors.
    #[error("safetensors: {0}")]
    Safetensors(#[from] ::safetensors::SafeTensorError),
    /// Metadata could not be encoded as JSON.
    #[error("safetensors metadata: {0}")]
    Json(#[from] serde_json::Error),
    /// A chart size is out of range.
    #[error("plot size {width}x{height} is outside {PLOT_SIDE_MIN}..={PLOT_SIDE_MAX} pixels a side")]
    PlotSize {
        /// The width asked for.
        width: u32,
        /// The height asked for.
        height: u32,
    },
    /// The embedded font could not be loaded.
    #[error("the embedded chart font could not be loaded")]
    Font,
    /// Plotters failed to draw the chart.
    #[error("drawing the chart: {0}")]
    Plot(String),
    /// The chart could not be encoded as PNG.
    #[error("encoding the chart as PNG: {0}")]
    Png(#[from] png::EncodingError),
}

/// One `f32` tensor as a [`::safetensors::View`]: data is written little-endian.
struct F32View<'a> {
    shape: &'a [usize],
    values: &'a [f32],
}

impl ::safetensors::View for F32View<'_> {
    fn dtype(&self) -> ::safetensors::Dtype {
        ::safetensors::Dtype::F32
    }

    fn shape(&self) -> &[usize] {
        self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.values.iter().flat_map(|v| v.to_le_bytes()).collect())
    }

    fn data_len(&self) -> usize {
        size_of_val(self.values)
    }
}

/// Writes named `f32` tensors as a safetensors file and returns its bytes.
///
/// Each tensor is `(name, shape, values)` with values in row-major (C) order;
/// the product of `shape` must equal the number of values (an empty shape is a
/// scalar holding one value). Names must be unique, non-empty and not
/// `__metadata__`. `metadata`, when not empty, is stored as the header's
/// `__metadata__` map of strings.
///
/// The output is deterministic: tensors are laid out sorted by name (as the
/// `safetensors` crate does) and metadata keys are written in sorted order,
/// so equal inputs give equal bytes whatever the order of `tensors`.
///
/// # Errors
///
/// [`ReportError::ShapeMismatch`] (naming the tensor) when a shape does not fit
/// its values, [`ReportError::DuplicateTensor`] or
/// [`ReportError::BadTensorName`] for a bad name, and
/// [`ReportError::HeaderTooLarge`] past the format's header limit.
pub fn safetensors(
    tensors: &[(String, Vec<usize>, &[f32])],
    metadata: &BTreeMap<String, String>,
) -> Result<Vec<u8>, ReportError> {
    let mut names = BTreeSet::new();
    let mut views = Vec::with_capacity(tensors.len());
    for (name, shape, values) in tensors {
        if name.is_empty() || name == METADATA_KEY {
            return Err(ReportError::BadTensorName(name.clone()));
        }
        if !names.insert(name.as_str()) {
            return Err(ReportError::DuplicateTensor(name.clone()));
        }
        let expected = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .filter(|n| n.checked_mul(size_of::<f32>()).is_some())
            .ok_or_else(|| ReportError::ShapeOverflow(name.clone(), shape.clone()))?;
        if expected != values.len() {
            return Err(ReportError::ShapeMismatch {
                name: name.clone(),
                shape: shape.clone(),
                expected,
                got: values.len(),
            });
        }
        views.push((name.as_str(), F32View { shape, values }));
    }

    // The crate lays out and validates the tensors. Its metadata argument is
    // a HashMap written in random order, so the metadata is added below in
    // sorted order instead, keeping the bytes deterministic.
    let bytes = ::safetensors::serialize(views, None)?;
    if metadata.is_empty() {
        return Ok(bytes);
    }
    with_metadata(&bytes, metadata)
}

/// Adds `"__metadata__": {...}` as the first entry of a serialized
/// safetensors header. Data offsets count from the end of the header, so the
/// data is copied unchanged.
fn with_metadata(bytes: &[u8], metadata: &BTreeMap<String, String>) -> Result<Vec<u8>, ReportError> {
    // The crate wrote these bytes, so this cannot fail in practice.
    let malformed = || ReportError::Safetensors(::safetensors::SafeTensorError::InvalidHeaderLength);
    let mut len = [0u8; 8];
    len.copy_from_slice(bytes.get(..8).ok_or_else(malformed)?);
    let header_len = usize::try_from(u64::from_le_bytes(len)).map_err(|_| malformed())?;
    let data_start = header_len.checked_add(8).ok_or_else(malformed)?;
    let header = bytes.get(8..data_start).ok_or_else(malformed)?;
    let data = &bytes[data_start..];
    // The header is a JSON object padded with trailing spaces.
    let header = std::str::from_utf8(header).map_err(|_| malformed())?.trim_end_matches(' ');
    let rest = header.strip_prefix('{').ok_or_else(malformed)?;

    let mut new_header = format!("{{\"{METADATA_KEY}\":{}", serde_json::to_string(metadata)?);
    if rest.trim_start() != "}" {
        new_header.push(',');
    }
    new_header.push_str(rest);
    // Readers expect the data to start 8-byte aligned; pad with spaces as the
    // crate does.
    let padded = new_header.len().next_multiple_of(8);
    if padded > HEADER_BYTES_MAX {
        return Err(ReportError::HeaderTooLarge(padded));
    }
    let mut out = Vec::with_capacity(8 + padded + data.len());
    out.extend_from_slice(&(padded as u64).to_le_bytes());
    out.extend_from_slice(new_header.as_bytes());
    out.resize(8 + padded, b' ');
    out.extend_from_slice(data);
    Ok(out)
}

/// Line colours, cycled through by series index (Tableau 10).
const SERIES_COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Registers the embedded font with plotters once per process.
fn ensure_font() -> Result<(), ReportError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| register_font(FONT_FAMILY, FontStyle::Normal, dejavu::sans::regular()).is_ok());
    if ok { Ok(()) } else { Err(ReportError::Font) }
}

/// Largest coordinate drawn: points beyond ±this are skipped like
/// non-finite ones, since plotters needs a finite axis span and pixel
/// positions that fit an `i32`.
const COORD_LIMIT: f64 = 1e300;

/// Smallest axis span relative to the values' magnitude. A narrower span
/// (a constant series, or one that varies only in its last few bits) is
/// widened around its centre so that tick positions stay representable.
const AXIS_SPAN_RELATIVE_MIN: f64 = 1e-9;

/// The axis range for finite values `lo..=hi`, widened by `margin` of the
/// span on each side (or by a tenth of the value around a near-constant
/// one), and `0..1` when there are none.
fn axis_range(bounds: Option<(f64, f64)>, margin: f64) -> Range<f64> {
    let Some((lo, hi)) = bounds else {
        return 0.0..1.0;
    };
    let span = hi - lo;
    let magnitude = lo.abs().max(hi.abs());
    if span > 0.0 && span >= magnitude * AXIS_SPAN_RELATIVE_MIN {
        let pad = span * margin;
        return lo - pad..hi + pad;
    }
    let centre = lo / 2.0 + hi / 2.0;
    let pad = if centre == 0.0 { 1.0 } else { centre.abs() * 0.1 };
    centre - pad..centre + pad
}

/// Formats tick labels on an axis spanning `range`: fixed-point with as many
/// decimals as the tick spacing needs, or scientific notation for very large
/// or very small values, without trailing zeros.
fn tick_formatter(range: &Range<f64>) -> impl Fn(&f64) -> String + use<> {
    // Plotters puts at most about ten labels on an axis; allow for twenty.
    let step = (range.end - range.start) / 20.0;
    let magnitude = range.start.abs().max(range.end.abs());
    let scientific = !(1e-3..1e5).contains(&magnitude);
    let digits = |ratio: f64| ratio.log10().ceil().clamp(0.0, 15.0) as usize;
    let precision = if scientific { digits(magnitude / step) } else { digits(1.0 / step) };
    move |&v: &f64| {
        let text = if scientific { format!("{v:.precision$e}") } else { format!("{v:.precision$}") };
        let (mantissa, exponent) = text.split_once('e').map_or((text.as_str(), None), |(m, e)| (m, Some(e)));
        let mut mantissa = mantissa;
        if mantissa.contains('.') {
            mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
        }
        if mantissa == "-0" {
            mantissa = "0";
        }
        match exponent {
            Some(_) if mantissa == "0" => "0".to_string(),
            Some(e) => format!("{mantissa}e{e}"),
            None => mantissa.to_string(),
        }
    }
}

/// The smallest and largest of some values, if any.
fn bounds(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// Splits a series at its non-finite points (and those beyond
/// [`COORD_LIMIT`]) into runs of drawable points.
fn finite_runs(points: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
    let drawable = |v: f64| v.abs() <= COORD_LIMIT;
    points.split(|&(x, y)| !drawable(x) || !drawable(y)).filter(|run| !run.is_empty()).map(<[_]>::to_vec).collect()
}

/// Draws a line chart and returns it as PNG bytes (8-bit RGB).
///
/// Each series is `(name, points)`; points are joined in the order given, and
/// every series gets its own colour and an entry in the legend. Points with a
/// non-finite coordinate (or one beyond ±1e300) are skipped, leaving a gap
/// in the line; a point with
/// no finite neighbour is drawn as a dot, so a single-point series shows. The
/// x range spans the finite data, the y range the finite data plus a small
/// margin; a constant series is centred. With no finite point at all the
/// chart is drawn with empty `0..1` axes.
///
/// # Errors
///
/// [`ReportError::PlotSize`] when `width` or `height` is outside
/// [`PLOT_SIDE_MIN`]`..=`[`PLOT_SIDE_MAX`]; [`ReportError::Plot`],
/// [`ReportError::Font`] or [`ReportError::Png`] if drawing or encoding fails.
pub fn line_plot_png(
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(&str, &[(f64, f64)])],
    width: u32,
    height: u32,
) -> Result<Vec<u8>, ReportError> {
    let side = PLOT_SIDE_MIN..=PLOT_SIDE_MAX;
    if !side.contains(&width) || !side.contains(&height) {
        return Err(ReportError::PlotSize { width, height });
    }
    ensure_font()?;

    let runs: Vec<Vec<Vec<(f64, f64)>>> = series.iter().map(|(_, points)| finite_runs(points)).collect();
    let finite = || runs.iter().flatten().flatten();
    let x_range = axis_range(bounds(finite().map(|p| p.0)), 0.0);
    let y_range = axis_range(bounds(finite().map(|p| p.1)), 0.05);

    let mut rgb = vec![0u8; width as usize * height as usize * 3];
    draw_chart(&mut rgb, (width, height), title, x_label, y_label, series, &runs, x_range, y_range)
        .map_err(|e| ReportError::Plot(e.to_string()))?;

    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&rgb)?;
    writer.finish()?;
    Ok(out)
}

/// Draws the chart into an RGB buffer of `size` pixels.
#[allow(clippy::too_many_arguments)]
fn draw_chart(
    rgb: &mut [u8],
    size: (u32, u32),
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[(&str, &[(f64, f64)])],
    runs: &[Vec<Vec<(f64, f64)>>],
    x_range: Range<f64>,
    y_range: Range<f64>,
) -> Result<(), Box<dyn std::error::Error>> {
    // Text and spacing grow with the picture; 480 pixels high is scale 1.
    let scale = (f64::from(size.0.min(size.1)) / 480.0).clamp(0.7, 4.0);
    let px = |n: f64| (n * scale).round().max(1.0) as u32;

    let root = BitMapBackend::with_buffer(rgb, size).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT_FAMILY, px(22.0)))
        .margin(px(12.0))
        .x_label_area_size(px(44.0))
        .y_label_area_size(px(64.0))
        .build_cartesian_2d(x_range.clone(), y_range.clone())?;
    let x_ticks = tick_formatter(&x_range);
    let y_ticks = tick_formatter(&y_range);
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        // At most one label per 60 pixels across and 30 down keeps them apart.
        .x_labels((size.0 / 60).clamp(2, 10) as usize)
        .y_labels((size.1 / 30).clamp(2, 10) as usize)
        .x_label_formatter(&x_ticks)
        .y_label_formatter(&y_ticks)
        .label_style((FONT_FAMILY, px(13.0)))
        .axis_desc_style((FONT_FAMILY, px(15.0)))
        .light_line_style(RGBColor(242, 242, 242))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()?;

    let stroke = px(2.0);
    for (i, ((name, _), runs)) in series.iter().zip(runs).enumerate() {
        let colour = SERIES_COLOURS[i % SERIES_COLOURS.len()];
        let style = colour.stroke_width(stroke);
        chart
            .draw_series(runs.iter().filter(|run| run.len() > 1).map(|run| PathElement::new(run.clone(), style)))?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        chart.draw_series(
            runs.iter().filter(|run| run.len() == 1).map(|run| Circle::new(run[0], stroke + 2, colour.filled())),
        )?;
    }
    if !series.is_empty() {
        chart
            .configure_series_labels()
            .label_font((FONT_FAMILY, px(13.0)))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::safetensors::SafeTensors;

    fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let mut reader = decoder.read_info().expect("png header");
        let mut buf = vec![0; reader.output_buffer_size().expect("size")];
        let info = reader.next_frame(&mut buf).expect("png frame");
        assert_eq!(info.color_type, png::ColorType::Rgb);
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    fn colours(rgb: &[u8]) -> BTreeSet<[u8; 3]> {
        rgb.chunks_exact(3).map(|p| [p[0], p[1], p[2]]).collect()
    }

    #[test]
    fn safetensors_round_trip_is_bit_exact_with_metadata() {
        let weights: Vec<f32> = (0..6).map(|i| i as f32 * 0.25 - 1.0).collect();
        let odd = [f32::NAN, -0.0, f32::INFINITY, f32::MIN_POSITIVE / 2.0, 1e-45, f32::MAX];
        let scalar = [42.5f32];
        let tensors = vec![
            ("layer.weight".to_string(), vec![2, 3], weights.as_slice()),
            ("odd".to_string(), vec![6], odd.as_slice()),
            ("step".to_string(), vec![], scalar.as_slice()),
            ("empty".to_string(), vec![0, 4], &[][..]),
        ];
        let metadata = BTreeMap::from([
            ("format".to_string(), "pt".to_string()),
            ("job".to_string(), "demo \"quoted\" ünïcode".to_string()),
            ("loss".to_string(), "0.125".to_string()),
        ]);
        let bytes = safetensors(&tensors, &metadata).unwrap();

        let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!(header_len % 8, 0);
        let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
        assert_eq!(header["layer.weight"]["dtype"], "F32");
        assert_eq!(header["layer.weight"]["shape"], serde_json::json!([2, 3]));

        let read = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(read.len(), tensors.len());
        for (name, shape, values) in &tensors {
            let view = read.tensor(name).unwrap();
            assert_eq!(view.dtype(), ::safetensors::Dtype::F32);
            assert_eq!(view.shape(), shape.as_slice());
            let got: Vec<u32> =
                view.data().chunks_exact(4).map(|b| u32::from_le_bytes(b.try_into().unwrap())).collect();
            let want: Vec<u32> = values.iter().map(|v| v.to_bits()).collect();
            assert_eq!(got, want, "{name}");
        }
        let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
        let read_metadata = header.metadata().clone().expect("metadata present");
        assert_eq!(read_metadata.len(), metadata.len());
        for (k, v) in &metadata {
            assert_eq!(read_metadata.get(k), Some(v));
        }
    }

    #[test]
    fn safetensors_bytes_are_deterministic() {
        let a = [1.0f32, 2.0];
        let b = [3.0f32];
        let metadata: BTreeMap<String, String> = (0..20).map(|i| (format!("k{i}"), format!("v{i}"))).collect();
        let forward = vec![("a".to_string(), vec![2], &a[..]), ("b".to_string(), vec![1], &b[..])];
        let backward = vec![forward[1].clone(), forward[0].clone()];
        let first = safetensors(&forward, &metadata).unwrap();
        assert_eq!(first, safetensors(&forward, &metadata).unwrap());
        assert_eq!(first, safetensors(&backward, &metadata).unwrap());
    }

    #[test]
    fn safetensors_without_metadata_or_tensors() {
        let none = BTreeMap::new();
        let bytes = safetensors(&[], &none).unwrap();
        let read = SafeTensors::deserialize(&bytes).unwrap();
        assert!(read.is_empty());
        assert!(SafeTensors::read_metadata(&bytes).unwrap().1.metadata().is_none());

        let only_metadata = BTreeMap::from([("k".to_string(), "v".to_string())]);
        let bytes = safetensors(&[], &only_metadata).unwrap();
        let read = SafeTensors::deserialize(&bytes).unwrap();
        assert!(read.is_empty());
        assert_eq!(SafeTensors::read_metadata(&bytes).unwrap().1.metadata().as_ref().unwrap()["k"], "v");

        let one = [7.0f32];
        let bytes = safetensors(&[("x".to_string(), vec![1], &one[..])], &none).unwrap();
        let read = SafeTensors::deserialize(&bytes).unwrap();
        assert!(SafeTensors::read_metadata(&bytes).unwrap().1.metadata().is_none());
        assert_eq!(read.tensor("x").unwrap().data(), 7.0f32.to_le_bytes());
    }

    #[test]
    fn safetensors_rejects_bad_tensors() {
        let none = BTreeMap::new();
        let v = [1.0f32; 5];
        let err = safetensors(&[("w1".to_string(), vec![2, 3], &v[..])], &none).unwrap_err();
        assert!(matches!(&err, ReportError::ShapeMismatch { name, expected: 6, got: 5, .. } if name == "w1"));
        let message = err.to_string();
        assert!(message.contains("w1") && !message.contains('\n'), "{message}");

        let err = safetensors(&[("big".to_string(), vec![usize::MAX, 2], &v[..])], &none).unwrap_err();
        assert!(matches!(err, ReportError::ShapeOverflow(ref n, _) if n == "big"));

        let twice = vec![("a".to_string(), vec![5], &v[..]), ("a".to_string(), vec![5], &v[..])];
        assert!(matches!(safetensors(&twice, &none), Err(ReportError::DuplicateTensor(_))));
        for bad in ["", METADATA_KEY] {
            let tensors = [(bad.to_string(), vec![5], &v[..])];
            assert!(matches!(safetensors(&tensors, &none), Err(ReportError::BadTensorName(_))));
        }
    }

    #[test]
    fn line_plot_decodes_to_the_requested_size() {
        let loss: Vec<(f64, f64)> = (0..50).map(|i| (f64::from(i), 2.0 * (-f64::from(i) / 15.0).exp())).collect();
        let png = line_plot_png("Training loss", "step", "loss", &[("train", &loss)], 640, 400).unwrap();
        let (w, h, rgb) = decode(&png);
        assert_eq!((w, h), (640, 400));
        assert_eq!(rgb.len(), 640 * 400 * 3);
        let seen = colours(&rgb);
        assert!(seen.len() > 10, "only {} colours", seen.len());
        assert!(seen.contains(&[31, 119, 180]), "the series colour is drawn");
        // Text is drawn: anti-aliased glyphs leave many grey levels.
        let greys = seen.iter().filter(|[r, g, b]| r == g && g == b).count();
        assert!(greys > 20, "only {greys} grey levels: no text?");
        // Deterministic bytes.
        let again = line_plot_png("Training loss", "step", "loss", &[("train", &loss)], 640, 400).unwrap();
        assert_eq!(png, again);
    }

    #[test]
    fn line_plot_with_two_series_differs_from_one() {
        let train: Vec<(f64, f64)> = (0..30).map(|i| (f64::from(i), 1.0 / f64::from(i + 1))).collect();
        let eval: Vec<(f64, f64)> = (0..30).step_by(5).map(|i| (f64::from(i), 1.2 / f64::from(i + 1))).collect();
        let one = line_plot_png("loss", "step", "loss", &[("train", &train)], 320, 240).unwrap();
        let two = line_plot_png("loss", "step", "loss", &[("train", &train), ("eval", &eval)], 320, 240).unwrap();
        assert_ne!(one, two);
        let (_, _, rgb_one) = decode(&one);
        let (_, _, rgb_two) = decode(&two);
        assert!(!colours(&rgb_one).contains(&[255, 127, 14]));
        assert!(colours(&rgb_two).contains(&[255, 127, 14]), "second series colour");
    }

    #[test]
    fn line_plot_edge_cases_do_not_error() {
        let nan = [(0.0, 1.0), (1.0, f64::NAN), (2.0, f64::INFINITY), (f64::NEG_INFINITY, 3.0), (3.0, 2.0), (4.0, 2.5)];
        let single = [(5.0, 0.5)];
        let constant = [(0.0, 3.0), (1.0, 3.0), (2.0, 3.0)];
        let zeros = [(0.0, 0.0), (1.0, 0.0)];
        let all_bad = [(f64::NAN, f64::NAN)];
        let huge = [(-f64::MAX, -f64::MAX), (f64::MAX, f64::MAX)];
        let wide = [(-1e300, -1e300), (1e300, 1e300)];
        let narrow = [(1.0, 1.0), (1.0 + 1e-15, 1.0 + 2e-15), (1.0 + 4e-15, 1.0 + 1e-15)];
        let big_narrow = [(1e15, 1e15), (1e15 + 1.0, 1e15 + 0.5)];
        let tiny = [(0.0, 0.0), (1e-300, 2e-300), (f64::MIN_POSITIVE / 4.0, 1e-310)];
        type Chart<'a> = &'a [(&'a str, &'a [(f64, f64)])];
        let cases: [Chart; 12] = [
            &[("nan", &nan)],
            &[("single", &single)],
            &[("constant", &constant)],
            &[("zeros", &zeros)],
            &[("all bad", &all_bad)],
            &[("empty", &[])],
            &[],
            &[("huge", &huge)],
            &[("wide", &wide)],
            &[("narrow", &narrow)],
            &[("big narrow", &big_narrow)],
            &[("tiny", &tiny)],
        ];
        for case in cases {
            let png = line_plot_png("edge", "x", "y", case, 200, 150).unwrap_or_else(|e| panic!("{case:?}: {e}"));
            let (w, h, rgb) = decode(&png);
            assert_eq!((w, h), (200, 150));
            assert!(colours(&rgb).len() > 1, "{case:?} is one flat colour");
        }
        // The single point is drawn as a dot in the series colour.
        let (_, _, rgb) = decode(&line_plot_png("", "", "", &[("single", &single)], 200, 150).unwrap());
        assert!(colours(&rgb).contains(&[31, 119, 180]));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        #[test]
        fn line_plot_never_errors_on_any_points(
            series in proptest::collection::vec(
                proptest::collection::vec((proptest::num::f64::ANY, proptest::num::f64::ANY), 0..8),
                0..4,
            ),
        ) {
            let named: Vec<(&str, &[(f64, f64)])> = series.iter().map(|s| ("s", s.as_slice())).collect();
            let png = line_plot_png("t", "x", "y", &named, 96, 64).unwrap();
            proptest::prop_assert_eq!(decode(&png).0, 96);
        }
    }

    #[test]
    fn tick_labels_are_short() {
        let f = tick_formatter(&(0.0..50.0));
        assert_eq!((f(&0.0), f(&5.0), f(&10.0)), ("0".into(), "5".into(), "10".into()));
        let f = tick_formatter(&(-0.1..1.1));
        assert_eq!((f(&0.2), f(&-0.0), f(&1.0)), ("0.2".into(), "0".into(), "1".into()));
        let f = tick_formatter(&(-1e300..1e300));
        assert_eq!((f(&-5e299), f(&0.0)), ("-5e299".into(), "0".into()));
        let f = tick_formatter(&(1.0..1.000001));
        assert_eq!(f(&1.0000005), "1.0000005");
        let f = tick_formatter(&(1e-6..3e-6));
        assert_eq!(f(&1.5e-6), "1.5e-6");
    }

    #[test]
    fn line_plot_rejects_bad_sizes() {
        for (w, h) in [(0, 100), (100, 0), (PLOT_SIDE_MIN - 1, 100), (100, PLOT_SIDE_MAX + 1)] {
            let err = line_plot_png("t", "x", "y", &[], w, h).unwrap_err();
            assert!(matches!(err, ReportError::PlotSize { .. }), "{w}x{h}: {err}");
        }
        for (w, h) in [(PLOT_SIDE_MIN, PLOT_SIDE_MIN), (1920, 1080)] {
            let series = [(0.0, 1.0), (1.0, 0.0)];
            let png = line_plot_png("t", "x", "y", &[("s", &series)], w, h).unwrap();
            assert_eq!(decode(&png).0, w);
        }
    }
}
