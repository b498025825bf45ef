#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| iog_fuzz::blob_upload(data));
