//! iog wasm test helper: each mode tries one thing a sandbox must allow or
//! refuse, and reports what happened through `/out`, stderr and its exit code.
//!
//! Output files hold exactly the text described, with no trailing newline.

use std::fmt::Display;
use std::fs;
use std::hint::black_box;
use std::path::Path;
use std::process::ExitCode;

const USAGE: &str = "usage: sandbox-probe MODE [ARGS]
modes:
  ok TEXT           write TEXT to /out/ok.txt, exit 0
  loop              spin forever
  alloc MIB         allocate and touch MIB mebibytes, then write the count to /out/alloc.txt
  read PATH         read PATH and write its length in bytes to /out/read.txt (exit 3 if it fails)
  net ADDR          open a TCP connection to ADDR, write /out/net.txt (exit 4 if it fails)
  write PATH TEXT   write TEXT to PATH (exit 5 if it fails)
  echo-input        copy every regular file in /in to /out under the same name
  flood             append 1 MiB at a time to /out/flood.bin, forever
  exit CODE         print `exiting with CODE` to stderr and exit with CODE";

/// Bad arguments.
const EXIT_USAGE: u8 = 2;
const EXIT_READ_FAILED: u8 = 3;
const EXIT_NET_FAILED: u8 = 4;
const EXIT_WRITE_FAILED: u8 = 5;
/// A step that should always work (writing a report to /out) did not.
const EXIT_UNEXPECTED: u8 = 1;

const MIB: usize = 1 << 20;
const PAGE: usize = 4096;

/// Something went wrong: print `message` to stderr, exit with `code`.
struct Failure {
    code: u8,
    message: String,
}

fn fail(code: u8, message: impl Display) -> Failure {
    Failure { code, message: message.to_string() }
}

fn usage(message: impl Display) -> Failure {
    fail(EXIT_USAGE, format!("sandbox-probe: {message}\n{USAGE}"))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

fn run(args: &[&str]) -> Result<(), Failure> {
    match args {
        ["ok", text] => write_report("ok.txt", text),
        ["loop"] => spin(),
        ["alloc", mib] => {
            let mib: usize = mib.parse().map_err(|_| usage(format!("alloc: {mib:?} is not a whole number of MiB")))?;
            alloc(mib)
        }
        ["read", path] => {
            let data = fs::read(path).map_err(|e| fail(EXIT_READ_FAILED, format!("read failed: {e}")))?;
            write_report("read.txt", &data.len().to_string())
        }
        ["net", addr] => {
            let stream =
                std::net::TcpStream::connect(addr).map_err(|e| fail(EXIT_NET_FAILED, format!("net failed: {e}")))?;
            drop(stream);
            write_report("net.txt", &format!("connected to {addr}"))
        }
        ["write", path, text] => {
            fs::write(path, text).map_err(|e| fail(EXIT_WRITE_FAILED, format!("write failed: {e}")))
        }
        ["echo-input"] => echo_input(),
        ["flood"] => flood(),
        ["exit", code] => {
            let code: i32 = code.parse().map_err(|_| usage(format!("exit: {code:?} is not an integer")))?;
            eprintln!("exiting with {code}");
            std::process::exit(code)
        }
        [] => Err(usage("no mode given")),
        [mode, ..] => {
            let known = ["ok", "loop", "alloc", "read", "net", "write", "echo-input", "flood", "exit"];
            if known.contains(mode) {
                Err(usage(format!("wrong number of arguments for {mode:?}")))
            } else {
                Err(usage(format!("unknown mode {mode:?}")))
            }
        }
    }
}

/// Writes `text` to `/out/<name>`.
fn write_report(name: &str, text: &str) -> Result<(), Failure> {
    let path = Path::new("/out").join(name);
    fs::write(&path, text).map_err(|e| fail(EXIT_UNEXPECTED, format!("cannot write {}: {e}", path.display())))
}

/// Never returns; `black_box` keeps the optimizer from proving the loop
/// has no effect and deleting it.
fn spin() -> ! {
    let mut counter = 0u64;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Appends 1 MiB at a time to `/out/flood.bin` until stopped (or the
/// write fails, which exits 1).
fn flood() -> Result<(), Failure> {
    use std::io::Write;
    let path = Path::new("/out/flood.bin");
    let mut file =
        fs::File::create(path).map_err(|e| fail(EXIT_UNEXPECTED, format!("cannot create {}: {e}", path.display())))?;
    let chunk = vec![0x5au8; MIB];
    loop {
        file.write_all(&chunk).map_err(|e| fail(EXIT_UNEXPECTED, format!("cannot write {}: {e}", path.display())))?;
    }
}

/// Allocates `mib` MiB in 1 MiB chunks, all kept alive, writing one byte per
/// 4 KiB page so the memory is really used. If the allocator cannot grow
/// memory the module aborts (traps) before writing the report.
fn alloc(mib: usize) -> Result<(), Failure> {
    let mut chunks: Vec<Vec<u8>> = Vec::with_capacity(mib);
    for i in 0..mib {
        let mut chunk = vec![0u8; MIB];
        for page in (0..MIB).step_by(PAGE) {
            chunk[page] = i as u8 | 1;
        }
        chunks.push(black_box(chunk));
    }
    black_box(&chunks);
    write_report("alloc.txt", &chunks.len().to_string())
}

/// Copies each regular file in `/in`, in name order, to `/out`.
/// Directories and other entries are skipped.
fn echo_input() -> Result<(), Failure> {
    let read_dir = fs::read_dir("/in").map_err(|e| fail(EXIT_UNEXPECTED, format!("cannot list /in: {e}")))?;
    let mut files = Vec::new();
    for entry in read_dir {
        let entry = entry.map_err(|e| fail(EXIT_UNEXPECTED, format!("cannot list /in: {e}")))?;
        let file_type = entry
            .file_type()
            .map_err(|e| fail(EXIT_UNEXPECTED, format!("cannot stat {}: {e}", entry.path().display())))?;
        if file_type.is_file() {
            files.push(entry.file_name());
        }
    }
    files.sort();
    for name in files {
        let (from, to) = (Path::new("/in").join(&name), Path::new("/out").join(&name));
        fs::copy(&from, &to)
            .map_err(|e| fail(EXIT_UNEXPECTED, format!("cannot copy {} to {}: {e}", from.display(), to.display())))?;
    }
    Ok(())
}
