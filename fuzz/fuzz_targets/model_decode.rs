//! Files that carry a correct checksum but anything else the fuzzer chooses (any shape,
//! version, declared size, weights incl. NaN and infinities), as a hostile writer could
//! make them. `Model::parse` must accept exactly the well-formed ones, refuse any file
//! with one byte changed, and a model that parses must decode through every entry
//! point to the same bits as a plain reference implementation.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|case: vae_fuzz::Case| {
    vae_fuzz::check_case(&case);
});
