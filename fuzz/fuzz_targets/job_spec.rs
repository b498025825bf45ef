#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| iog_fuzz::job_spec(data));
