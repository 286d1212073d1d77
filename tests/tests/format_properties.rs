//! Properties of the model file format over many generated models (proptest): every
//! valid file round-trips, every truncation and every single-bit flip is refused with a
//! typed error, and a file of another format version is refused naming both versions.

use proptest::prelude::*;
use vae_core::{
    encode, encoded_len, Activation, Architecture, Error, Model, Precision, FORMAT_VERSION,
    MAX_WIDTH, PIXELS,
};

/// A decoder the format allows, kept small so each case is quick: latent 1-6, no label or
/// 2-10 classes, up to two hidden layers of 1-24, any activation and precision.
fn model_file() -> impl Strategy<Value = (Architecture, Precision, Vec<u8>)> {
    let arch = (
        1u16..=6,
        prop_oneof![Just(0u16), 2u16..=10],
        proptest::collection::vec(1u16..=24, 0..=2),
        prop_oneof![Just(Activation::Relu), Just(Activation::Sigmoid)],
    );
    let precision = prop_oneof![
        Just(Precision::F32),
        Just(Precision::F16),
        Just(Precision::I8)
    ];
    (arch, precision, any::<u64>()).prop_map(
        |((latent, classes, widths, activation), precision, seed)| {
            let mut hidden = heapless::Vec::new();
            for w in widths {
                let _ = hidden.push(w);
            }
            let arch = Architecture {
                latent,
                classes,
                hidden,
                activation,
                output: PIXELS as u16,
            };
            // Weights in [-1, 1) from a small LCG (values need not be learned, only stored).
            let mut state = seed | 1;
            let values = (0..arch.parameter_count()).map(move |_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            });
            let mut file = vec![0u8; encoded_len(&arch, precision).expect("a valid architecture")];
            let n = encode(&arch, precision, values, &mut file).expect("encodes");
            file.truncate(n);
            (arch, precision, file)
        },
    )
}

proptest! {
    // 64 cases per property in CI; PROPTEST_CASES=N for a longer run.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64),
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_valid_model_round_trips((arch, precision, file) in model_file()) {
        let model = Model::parse(&file).expect("a freshly encoded file parses");
        prop_assert_eq!(model.architecture(), &arch);
        prop_assert_eq!(model.precision(), precision);
        let mut input = [0.0f32; MAX_WIDTH];
        let digit = (arch.classes > 0).then(|| arch.classes as u8 - 1);
        let (len, _) = model.sample_input(3, digit, &mut input).expect("input for the model");
        let mut probs = [0.0f32; PIXELS];
        model.decode_into(&input[..len], &mut probs).expect("decodes");
        prop_assert!(probs.iter().all(|p| (0.0..=1.0).contains(p)));
    }

    #[test]
    fn every_truncation_is_refused((_, _, file) in model_file(), cut in any::<prop::sample::Index>()) {
        let len = cut.index(file.len());
        prop_assert!(Model::parse(&file[..len]).is_err(), "{} of {} bytes accepted", len, file.len());
    }

    #[test]
    fn every_single_bit_flip_is_refused((_, _, file) in model_file(), at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut bad = file.clone();
        let byte = at.index(bad.len());
        bad[byte] ^= 1 << bit;
        prop_assert!(Model::parse(&bad).is_err(), "flip of bit {} in byte {} accepted", bit, byte);
    }

    #[test]
    fn another_format_version_is_refused_by_name((_, _, file) in model_file(), version in 0u8..0x80) {
        prop_assume!(u16::from(version) != FORMAT_VERSION);
        // The version is the varint after the 4-byte magic; below 0x80 it is one byte.
        let mut other = file.clone();
        other[4] = version;
        let err = Model::parse(&other).expect_err("another version is refused");
        prop_assert_eq!(err, Error::UnsupportedVersion { found: u16::from(version), supported: FORMAT_VERSION });
        let message = err.to_string();
        prop_assert!(message.contains(&format!("version {version}")), "{}", message);
        prop_assert!(message.contains(&format!("version {FORMAT_VERSION}")), "{}", message);
    }
}
