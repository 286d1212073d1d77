//! Any bytes at all, as a model file: `Header::read` and `Model::parse` return a typed
//! error or a model; a model that parses runs through every decoder entry point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vae_core::{Header, Model};

fuzz_target!(|bytes: &[u8]| {
    let _ = Header::read(bytes);
    if let Ok(model) = Model::parse(bytes) {
        vae_fuzz::exercise(&model, &[0.5, -1.0, 2.0], 7, Some(3), true);
    }
});
