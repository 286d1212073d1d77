//! Properties of the model file format over many generated models (proptest): every
//! valid file round-trips, every truncation and every single-bit flip is refused with a
//! typed error, and a file of another format version is refused naming both versions.

use proptest::prelude::*;
use vae_core::{
    encode, encoded_len, Activation, Architecture, Error, Model, Precision, Sample, FORMAT_VERSION,
    MAX_WIDTH, OLDEST_VERSION, PIXELS, STACK_SCRATCH,
};

/// A decoder the format allows, kept small so each case is quick: latent 1-6, no label or
/// 2-10 classes, up to two hidden layers of 1-24, any activation; and a value for each of
/// its parameters.
fn model_values() -> impl Strategy<Value = (Architecture, Vec<f32>)> {
    let arch = (
        1u16..=6,
        prop_oneof![Just(0u16), 2u16..=10],
        proptest::collection::vec(1u16..=24, 0..=2),
        prop_oneof![Just(Activation::Relu), Just(Activation::Sigmoid)],
    );
    (arch, any::<u64>()).prop_map(|((latent, classes, widths, activation), seed)| {
        let mut hidden = heapless::Vec::new();
        for w in widths {
            let _ = hidden.push(w);
        }
        let arch = Architecture::dense(latent, classes, hidden, activation);
        // Weights in [-1, 1) from a small LCG (values need not be learned, only stored).
        let mut state = seed | 1;
        let values = (0..arch.parameter_count())
            .map(move |_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect();
        (arch, values)
    })
}

fn precision() -> impl Strategy<Value = Precision> {
    prop_oneof![
        Just(Precision::F32),
        Just(Precision::F16),
        Just(Precision::I8)
    ]
}

fn encode_to_vec(arch: &Architecture, precision: Precision, values: &[f32]) -> Vec<u8> {
    let mut file = vec![0u8; encoded_len(arch, precision).expect("a valid architecture")];
    let n = encode(arch, precision, values.iter().copied(), &mut file).expect("encodes");
    file.truncate(n);
    file
}

/// A model of [`model_values`] encoded at any precision.
fn model_file() -> impl Strategy<Value = (Architecture, Precision, Vec<u8>)> {
    (model_values(), precision()).prop_map(|((arch, values), precision)| {
        let file = encode_to_vec(&arch, precision, &values);
        (arch, precision, file)
    })
}

/// `values` rounded with `Precision::round_model`.
fn rounded(arch: &Architecture, precision: Precision, values: &[f32]) -> Vec<f32> {
    let mut out = values.to_vec();
    precision.round_model(arch, &mut out).expect("model length");
    out
}

/// An i8 file's values as numbers (`q * scale`, biases), by the documented layout.
fn i8_values(arch: &Architecture, file: &[u8]) -> Vec<f32> {
    let mut payload = &file[file.len() - arch.payload_len(Precision::I8)..];
    let mut take = |n: usize| {
        let (head, tail) = payload.split_at(n);
        payload = tail;
        head
    };
    let f32s = |b: &[u8]| -> Vec<f32> {
        b.chunks_exact(4)
            .map(|w| f32::from_le_bytes(w.try_into().unwrap()))
            .collect()
    };
    let mut out = Vec::new();
    for (inputs, outputs) in arch.layers() {
        let q = take(inputs * outputs).to_vec();
        let scales = f32s(take(4 * outputs));
        for (row, scale) in q.chunks_exact(inputs).zip(&scales) {
            out.extend(row.iter().map(|&q| f32::from(q as i8) * scale));
        }
        out.extend(f32s(take(4 * outputs)));
    }
    out
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
        let (input, _) = model.sample_input(Sample::new(3, digit), &mut input).expect("input for the model");
        let mut probs = [0.0f32; PIXELS];
        model.decode(input, &mut vec![0; model.scratch_len()], &mut probs).expect("decodes");
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
        // Versions 2 and 3 are read (a changed byte is still refused, by its checksum).
        prop_assume!(!(OLDEST_VERSION..=FORMAT_VERSION).contains(&u16::from(version)));
        // The version is the varint after the 4-byte magic; below 0x80 it is one byte.
        let mut other = file.clone();
        other[4] = version;
        let err = Model::parse(&other).expect_err("another version is refused");
        prop_assert_eq!(err, Error::UnsupportedVersion { found: u16::from(version), oldest: OLDEST_VERSION, supported: FORMAT_VERSION });
        let message = err.to_string();
        prop_assert!(message.contains(&format!("version {version}")), "{}", message);
        prop_assert!(message.contains(&format!("version {FORMAT_VERSION}")), "{}", message);
    }

    /// The writer and `round_layer` agree: an f16 model decodes to the same bits as an
    /// f32 model of its `round_layer` values (the f16 and f32 decoders both sum in f32,
    /// left to right, so any value rounded differently shows), and an i8 file stores, as
    /// numbers, exactly the `round_layer` values (its decoder quantizes the input too, so
    /// its outputs cannot be compared bit for bit with f32).
    #[test]
    fn the_file_stores_what_round_layer_gives((arch, values) in model_values(), z_seed in any::<u64>()) {
        let f16 = encode_to_vec(&arch, Precision::F16, &values);
        let f32_of_rounded = encode_to_vec(&arch, Precision::F32, &rounded(&arch, Precision::F16, &values));
        let (f16, f32_of_rounded) = (Model::parse(&f16).unwrap(), Model::parse(&f32_of_rounded).unwrap());
        let mut input = [0.0f32; MAX_WIDTH];
        let digit = (arch.classes > 0).then_some(0);
        let (input, _) = f16.sample_input(Sample::new(z_seed, digit), &mut input).unwrap();
        let (mut a, mut b) = ([0.0f32; PIXELS], [0.0f32; PIXELS]);
        let scratch = &mut [0; STACK_SCRATCH];
        f16.decode(input, scratch, &mut a).unwrap();
        f32_of_rounded.decode(input, scratch, &mut b).unwrap();
        prop_assert!(a.iter().zip(&b).all(|(a, b)| a.to_bits() == b.to_bits()));

        // f32 stores the values themselves.
        prop_assert_eq!(rounded(&arch, Precision::F32, &values), values.clone());

        let i8_file = encode_to_vec(&arch, Precision::I8, &values);
        prop_assert_eq!(i8_values(&arch, &i8_file), rounded(&arch, Precision::I8, &values));
    }
}
