//! Any bytes, as an MNIST images file and a labels file (the first two bytes give the
//! images file's length, little-endian; the labels file is the rest): the `mnist` crate's IDX
//! reader returns an error or a dataset whose sizes and labels are consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mnist::Dataset;
use vae_core::PIXELS;

fuzz_target!(|bytes: &[u8]| {
    let Some((len, files)) = bytes.split_first_chunk::<2>() else {
        return;
    };
    let (images, labels) = files.split_at(usize::from(u16::from_le_bytes(*len)).min(files.len()));
    if let Ok(set) = Dataset::from_idx_bytes(images, labels) {
        assert_eq!(set.pixels.len(), set.len() * PIXELS);
        assert!(set.labels.iter().all(|&l| l <= 9));
        for i in 0..set.len() {
            assert_eq!(set.image(i).len(), PIXELS);
        }
    }
});
