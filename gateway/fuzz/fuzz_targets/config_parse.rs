#![no_main]
//! Config parsing and validation on arbitrary text: errors, never panics.

use gateway::config::Config;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Config::parse(
        text,
        Path::new("fuzz.toml"),
        Path::new("/nonexistent"),
        Vec::new(),
    );
});
