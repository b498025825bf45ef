//! iog wasm task: estimates pi by Monte Carlo sampling.
//!
//! Samples points uniformly in the unit square and counts those inside the
//! quarter circle; `4 * inside / samples` approaches pi. Each task seeds its
//! own PRNG from `--seed` mixed with `IOG_TASK_INDEX`, so tasks draw
//! different points yet every run of the same task gives the same bytes.
//!
//! Usage: `montecarlo [--samples N] [--seed S]`
//!
//! `samples` may also come from `/in/params.json` (`{"samples": N}`); a
//! `--samples` argument wins over the file. Writes `/out/result.json`:
//! `{"task":3,"samples":1000000,"inside":785321,"estimate":3.141284}`.

use std::fmt::Display;
use std::fs;
use std::io;
use std::process::ExitCode;

const DEFAULT_SAMPLES: u64 = 1_000_000;
const PARAMS_PATH: &str = "/in/params.json";
const RESULT_PATH: &str = "/out/result.json";

/// Bad input: argv, environment or params.json. Exits 2.
const EXIT_USAGE: u8 = 2;
/// The result could not be written. Exits 1.
const EXIT_IO: u8 = 1;

const USAGE: &str = "usage: montecarlo [--samples N] [--seed S]  (N >= 1, S an unsigned 64-bit integer)";

/// What went wrong, and the exit code that says so.
struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    fn usage(message: impl Display) -> Self {
        Failure { code: EXIT_USAGE, message: message.to_string() }
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("montecarlo: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn run() -> Result<(), Failure> {
    let args = Args::parse(std::env::args().skip(1))?;
    let task = env_u64("IOG_TASK_INDEX")?.unwrap_or(0);
    if let Some(n_tasks) = env_u64("IOG_N_TASKS")?
        && task >= n_tasks
    {
        return Err(Failure::usage(format!(
            "IOG_TASK_INDEX={task} is out of range for IOG_N_TASKS={n_tasks}; the index is 0-based"
        )));
    }
    let samples = match args.samples {
        Some(samples) => samples,
        None => read_params()?.unwrap_or(DEFAULT_SAMPLES),
    };

    let inside = count_inside(samples, args.seed, task);
    // Fixed-point formatting of an f64 is exact and platform-independent.
    let estimate = 4.0 * inside as f64 / samples as f64;
    let result = format!(r#"{{"task":{task},"samples":{samples},"inside":{inside},"estimate":{estimate:.6}}}"#);
    fs::write(RESULT_PATH, &result).map_err(|e| Failure {
        code: EXIT_IO,
        message: format!("cannot write {RESULT_PATH}: {e} (is /out preopened and writable?)"),
    })?;
    println!("{result}");
    Ok(())
}

/// Command-line options; `None` means "not given".
struct Args {
    samples: Option<u64>,
    seed: u64,
}

impl Args {
    fn parse(mut argv: impl Iterator<Item = String>) -> Result<Self, Failure> {
        let mut parsed = Args { samples: None, seed: 0 };
        while let Some(arg) = argv.next() {
            // Accept both `--name value` and `--name=value`.
            let (name, inline) = match arg.split_once('=') {
                Some((name, value)) => (name.to_string(), Some(value.to_string())),
                None => (arg.clone(), None),
            };
            if name != "--samples" && name != "--seed" {
                return Err(Failure::usage(format!("unknown argument {arg:?}; {USAGE}")));
            }
            let Some(value) = inline.or_else(|| argv.next()) else {
                return Err(Failure::usage(format!("{name} needs a value; {USAGE}")));
            };
            let number = parse_u64(&value)
                .ok_or_else(|| Failure::usage(format!("{name} {value:?} is not an unsigned integer; {USAGE}")))?;
            if name == "--samples" {
                parsed.samples = Some(check_samples(number, "--samples")?);
            } else {
                parsed.seed = number;
            }
        }
        Ok(parsed)
    }
}

fn check_samples(samples: u64, source: &str) -> Result<u64, Failure> {
    if samples == 0 {
        return Err(Failure::usage(format!("{source} is 0; it must be at least 1")));
    }
    Ok(samples)
}

/// Parses a plain decimal unsigned integer (digits only, no sign).
fn parse_u64(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Reads an optional unsigned integer from the environment.
fn env_u64(name: &str) -> Result<Option<u64>, Failure> {
    match std::env::var(name) {
        Ok(value) => parse_u64(&value)
            .map(Some)
            .ok_or_else(|| Failure::usage(format!("environment variable {name}={value:?} is not an unsigned integer"))),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(Failure::usage(format!("environment variable {name} is not valid UTF-8")))
        }
    }
}

/// `samples` from `/in/params.json`, or `None` when there is no such file.
fn read_params() -> Result<Option<u64>, Failure> {
    let text = match fs::read_to_string(PARAMS_PATH) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Failure::usage(format!("cannot read {PARAMS_PATH}: {e}"))),
    };
    let samples = parse_params(&text).map_err(|e| {
        Failure::usage(format!(r#"bad {PARAMS_PATH}: {e}; expected an object like {{"samples": 1000000}}"#))
    })?;
    samples.map(|n| check_samples(n, &format!("\"samples\" in {PARAMS_PATH}"))).transpose()
}

/// Parses `{"samples": N}`: a JSON object whose only allowed key is
/// `samples`, with an unsigned integer value. `{}` is allowed and gives
/// `None`. Strings with escapes, other keys and other value types are
/// rejected rather than guessed at.
fn parse_params(text: &str) -> Result<Option<u64>, String> {
    let mut p = Parser { bytes: text.as_bytes(), pos: 0 };
    let mut samples = None;
    p.expect(b'{')?;
    if !p.eat(b'}') {
        loop {
            let key = p.string()?;
            if key != "samples" {
                return Err(format!("unknown key {key:?} (only \"samples\" is read)"));
            }
            if samples.is_some() {
                return Err("\"samples\" appears twice".to_string());
            }
            p.expect(b':')?;
            samples = Some(p.unsigned()?);
            if p.eat(b'}') {
                break;
            }
            p.expect(b',')?;
        }
    }
    p.skip_whitespace();
    if p.pos != p.bytes.len() {
        return Err(format!("unexpected text after the object at byte {}", p.pos));
    }
    Ok(samples)
}

/// Just enough of a JSON reader for `parse_params`.
struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Parser<'_> {
    fn skip_whitespace(&mut self) {
        while self.bytes.get(self.pos).is_some_and(|b| b" \t\r\n".contains(b)) {
            self.pos += 1;
        }
    }

    /// Consumes `byte` (after whitespace) if it is next.
    fn eat(&mut self, byte: u8) -> bool {
        self.skip_whitespace();
        let found = self.bytes.get(self.pos) == Some(&byte);
        if found {
            self.pos += 1;
        }
        found
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        if self.eat(byte) { Ok(()) } else { Err(format!("expected '{}' at byte {}", byte as char, self.pos)) }
    }

    /// A string without escapes.
    fn string(&mut self) -> Result<&str, String> {
        self.expect(b'"')?;
        let start = self.pos;
        let len = self.bytes[start..]
            .iter()
            .position(|&b| b == b'"')
            .ok_or_else(|| format!("unterminated string starting at byte {}", start - 1))?;
        let raw = &self.bytes[start..start + len];
        if raw.contains(&b'\\') {
            return Err(format!("escapes in strings are not supported (string at byte {})", start - 1));
        }
        self.pos = start + len + 1;
        std::str::from_utf8(raw).map_err(|_| format!("string at byte {} is not UTF-8", start - 1))
    }

    /// An unsigned integer without sign, fraction or exponent.
    fn unsigned(&mut self) -> Result<u64, String> {
        self.skip_whitespace();
        let start = self.pos;
        let len = self.bytes[start..].iter().take_while(|b| b.is_ascii_digit()).count();
        self.pos += len;
        let digits = std::str::from_utf8(&self.bytes[start..self.pos]).unwrap_or_default();
        parse_u64(digits).ok_or_else(|| format!("expected an unsigned integer at byte {start}"))
    }
}

/// Counts how many of `samples` points fall inside the quarter circle.
///
/// Points are integer coordinates in `[0, 2^31)²`, tested with exact integer
/// arithmetic (`x² + y² < 2^62` fits in a u64), so no floating point is
/// involved in the count.
fn count_inside(samples: u64, seed: u64, task: u64) -> u64 {
    const MASK: u64 = (1 << 31) - 1;
    const RADIUS_SQUARED: u64 = 1 << 62;
    let mut rng = Xoshiro256StarStar::new(seed, task);
    let mut inside = 0;
    for _ in 0..samples {
        let r = rng.next_u64();
        // One 64-bit draw gives both coordinates: the top and next 31 bits.
        let x = r >> 33;
        let y = (r >> 2) & MASK;
        if x * x + y * y < RADIUS_SQUARED {
            inside += 1;
        }
    }
    inside
}

/// `SplitMix64` (Steele, Lea, Flood 2014); used to expand seeds.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// xoshiro256** 1.0 (Blackman, Vigna 2018).
struct Xoshiro256StarStar {
    s: [u64; 4],
}

impl Xoshiro256StarStar {
    /// Seeds from the user seed and the task index: the index is hashed
    /// into the `SplitMix64` starting state, so neighbouring tasks (and
    /// neighbouring seeds) get unrelated streams.
    fn new(seed: u64, task: u64) -> Self {
        let mut task_state = task;
        let mut state = seed ^ splitmix64(&mut task_state);
        let s = [splitmix64(&mut state), splitmix64(&mut state), splitmix64(&mut state), splitmix64(&mut state)];
        // SplitMix64 is a bijection, so four consecutive outputs are never
        // all zero; xoshiro's one forbidden state cannot occur.
        Xoshiro256StarStar { s }
    }

    fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_accepts_the_documented_shape() {
        assert_eq!(parse_params(r#"{"samples": 42}"#), Ok(Some(42)));
        assert_eq!(parse_params(" {\n  \"samples\" : 7 \n}\n"), Ok(Some(7)));
        assert_eq!(parse_params("{}"), Ok(None));
    }

    #[test]
    fn params_rejects_anything_else() {
        for bad in [
            "",
            "{",
            r#"{"samples": -1}"#,
            r#"{"samples": 1.5}"#,
            r#"{"samples": "9"}"#,
            r#"{"samples": 1,}"#,
            r#"{"samples": 1} x"#,
            r#"{"other": 1}"#,
            r#"{"samples": 1, "samples": 2}"#,
            r#"{"samples": 99999999999999999999}"#,
        ] {
            assert!(parse_params(bad).is_err(), "accepted {bad:?}");
        }
    }

    #[test]
    fn xoshiro_matches_reference() {
        // Reference outputs for state [1, 2, 3, 4] from the C implementation.
        let mut rng = Xoshiro256StarStar { s: [1, 2, 3, 4] };
        let first: Vec<u64> = (0..3).map(|_| rng.next_u64()).collect();
        assert_eq!(first, [11520, 0, 1_509_978_240]);
    }

    #[test]
    fn estimate_is_close_and_tasks_differ() {
        let a = count_inside(100_000, 0, 0);
        let b = count_inside(100_000, 0, 1);
        assert_ne!(a, b);
        let pi = 4.0 * a as f64 / 100_000.0;
        assert!((pi - std::f64::consts::PI).abs() < 0.02, "{pi}");
    }
}
