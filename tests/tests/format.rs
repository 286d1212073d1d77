//! The model file format: golden bytes, round trip, and one typed error per corruption.

use vae_core::{
    encode, encoded_len, Activation, Architecture, Error, Model, Precision, Sample, FORMAT_VERSION,
    PIXELS, STACK_SCRATCH,
};
use vae_tests::decode_latent;

/// The smallest decoder the format allows: z (1 value) -> 784 outputs, no hidden layer.
fn tiny_arch() -> Architecture {
    Architecture::dense(1, 0, heapless::Vec::new(), Activation::Relu)
}

/// Weights and biases exactly representable in f16: w[o] = (o % 8 - 4) / 4,
/// b[o] = (o % 5 - 2) / 8.
fn tiny_values() -> Vec<f32> {
    let w = (0..PIXELS).map(|o| ((o % 8) as f32 - 4.0) / 4.0);
    let b = (0..PIXELS).map(|o| ((o % 5) as f32 - 2.0) / 8.0);
    w.chain(b).collect()
}

fn tiny_file(precision: Precision) -> Vec<u8> {
    let arch = tiny_arch();
    let mut out = vec![0u8; encoded_len(&arch, precision).unwrap()];
    let n = encode(&arch, precision, tiny_values(), &mut out).unwrap();
    assert_eq!(n, out.len());
    out
}

/// Bitwise CRC-32 (reflected, polynomial 0xEDB88320, as zlib and PNG), written out here
/// so the test does not trust the crate under test for the checksum it pins.
fn reference_crc32(chunks: &[&[u8]]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in chunks.iter().flat_map(|c| c.iter()) {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn golden_bytes_of_a_tiny_f16_model() {
    let file = tiny_file(Precision::F16);
    let payload_len = 2 * (PIXELS + PIXELS); // 3136 bytes
    let header: [u8; 15] = [
        b'V', b'A', b'E', b'D', // magic
        0x03, // version 3 (varint)
        0x01, // latent 1
        0x00, // classes 0
        0x00, // no hidden layers (sequence length 0)
        0x00, // activation: Relu (variant 0)
        0x00, // no transposed convolutions (Option::None)
        0x90, 0x06, // output 784 (varint: 0x10 | 0x80, 6)
        0x01, // precision: F16 (variant 1)
        0xC0, 0x18, // payload length 3136 (varint: 0x40 | 0x80, 24)
    ]; // then the CRC-32, 4 bytes little-endian, then 1 zero byte: the payload starts at 20
    assert_eq!(file.len(), 15 + 4 + 1 + payload_len);
    assert_eq!(&file[..15], &header);
    assert_eq!(&file[19..20], &[0]);

    // Payload: weights then biases, f16 little-endian. w[0] = -1.0 (0xBC00),
    // w[1] = -0.75 (0xBA00), b[0] = -0.25 (0xB400), b[1] = -0.125 (0xB000).
    let payload = &file[20..];
    assert_eq!(&payload[..4], &[0x00, 0xBC, 0x00, 0xBA]);
    assert_eq!(
        &payload[2 * PIXELS..2 * PIXELS + 4],
        &[0x00, 0xB4, 0x00, 0xB0]
    );

    let crc = u32::from_le_bytes(file[15..19].try_into().unwrap());
    // Everything but the CRC itself: header, padding, payload.
    assert_eq!(crc, reference_crc32(&[&header, &file[19..]]));
}

#[test]
fn round_trip_keeps_architecture_and_weights() {
    for precision in [Precision::F16, Precision::F32, Precision::I8] {
        let file = tiny_file(precision);
        let model = Model::parse(&file).unwrap();
        assert_eq!(model.architecture(), &tiny_arch());
        assert_eq!(model.precision(), precision);
        assert_eq!(model.header().version, FORMAT_VERSION);

        // With no hidden layer and z = [1], pixel o = sigmoid(w[o] + b[o]): every stored
        // value shows up in the output, checked against an f64 reference. These weights
        // are exact in f16 and i8 (one per row, so q = +-127 and the scale is |w| / 127),
        // so f32 and f16 agree to f32 rounding (1e-6). The i8 decoder adds its fixed-point
        // steps to the logit: the scale's 15-bit mantissa (at most 1.5e-5 of |w| <= 1),
        // the product and the bias each rounded to 1/65536 (7.6e-6 each), together at
        // most 3.1e-5, times the sigmoid's slope (at most 1/4): 7.7e-6, so 1e-5.
        let tolerance = if precision == Precision::I8 {
            1e-5
        } else {
            1e-6
        };
        let mut probs = [0.0f32; PIXELS];
        decode_latent(&model, &[1.0], None, &mut probs).unwrap();
        let values = tiny_values();
        for o in 0..PIXELS {
            let logit = f64::from(values[o]) + f64::from(values[PIXELS + o]);
            let want = 1.0 / (1.0 + (-logit).exp());
            assert!(
                (f64::from(probs[o]) - want).abs() < tolerance,
                "pixel {o}: {} vs {want}",
                probs[o]
            );
        }
    }
}

#[test]
fn a_larger_model_round_trips_through_f32_exactly() {
    let mut buf = vec![0u8; 1 << 16];
    let file = vae_core::example_model(Precision::F32, &mut buf)
        .unwrap()
        .to_vec();
    let model = Model::parse(&file).unwrap();
    let arch = model.architecture().clone();
    assert_eq!(arch.hidden.as_slice(), &[8]);
    let mut again = vec![0u8; file.len()];
    // Re-encoding the values read back (through the payload) gives the same bytes.
    let payload = &file[file.len() - arch.payload_len(Precision::F32)..];
    let values = payload
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()));
    encode(&arch, Precision::F32, values, &mut again).unwrap();
    assert_eq!(again, file);
}

#[test]
fn each_corruption_has_its_own_error() {
    let good = tiny_file(Precision::F16);
    let payload_at = 20;

    // Cut inside the payload.
    let err = Model::parse(&good[..good.len() - 1]).unwrap_err();
    assert_eq!(
        err,
        Error::Truncated {
            expected: 3136,
            found: 3135
        }
    );
    // Cut inside the header.
    assert_eq!(
        Model::parse(&good[..10]).unwrap_err(),
        Error::MalformedHeader
    );
    // Empty file.
    assert_eq!(Model::parse(&[]).unwrap_err(), Error::BadMagic);
    // Bytes after the payload.
    let mut long = good.clone();
    long.push(0);
    assert_eq!(
        Model::parse(&long).unwrap_err(),
        Error::SizeMismatch {
            expected: 3136,
            found: 3137
        }
    );
    // A flipped byte in the payload.
    let mut flipped = good.clone();
    flipped[payload_at + 1000] ^= 0x40;
    assert!(matches!(
        Model::parse(&flipped).unwrap_err(),
        Error::ChecksumMismatch { .. }
    ));
    // A flipped header bit that still decodes (activation Relu -> Sigmoid) is caught too.
    let mut act = good.clone();
    act[8] ^= 0x01;
    assert!(matches!(
        Model::parse(&act).unwrap_err(),
        Error::ChecksumMismatch { .. }
    ));
    // A non-zero padding byte with a matching CRC (a writer that got the padding wrong).
    let mut padded = good.clone();
    padded[19] = 1;
    let crc = reference_crc32(&[&padded[..15], &padded[19..]]);
    padded[15..19].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(Model::parse(&padded).unwrap_err(), Error::MalformedHeader);
    // Another format version: version 1 files had no padding and no i8.
    let mut v1 = good.clone();
    v1[4] = 1;
    assert_eq!(
        Model::parse(&v1).unwrap_err(),
        Error::UnsupportedVersion {
            found: 1,
            oldest: 2,
            supported: 3
        }
    );
    let message = Model::parse(&v1).unwrap_err().to_string();
    assert!(
        message.contains("version 1") && message.contains("version 2 to version 3"),
        "{message}"
    );
    // Wrong magic.
    let mut magic = good.clone();
    magic[0] = b'X';
    assert_eq!(Model::parse(&magic).unwrap_err(), Error::BadMagic);
    // The good file still parses: the corruptions above were all on copies.
    assert!(Model::parse(&good).is_ok());
}

#[test]
fn every_single_bit_flip_is_rejected() {
    let good = tiny_file(Precision::F16);
    for byte in 0..good.len() {
        for bit in 0..8 {
            let mut bad = good.clone();
            bad[byte] ^= 1 << bit;
            assert!(
                Model::parse(&bad).is_err(),
                "flip of bit {bit} in byte {byte} was accepted"
            );
        }
    }
}

#[test]
fn bad_requests_are_typed_errors() {
    let file = tiny_file(Precision::F32);
    let model = Model::parse(&file).unwrap();
    let mut probs = [0.0f32; PIXELS];
    assert_eq!(
        decode_latent(&model, &[1.0, 2.0], None, &mut probs).unwrap_err(),
        Error::LengthMismatch {
            expected: 1,
            found: 2
        }
    );
    assert_eq!(
        decode_latent(&model, &[1.0], Some(3), &mut probs).unwrap_err(),
        Error::NotConditional
    );

    let mut buf = vec![0u8; 1 << 16];
    let conditional = vae_core::example_model(Precision::F16, &mut buf).unwrap();
    let model = Model::parse(conditional).unwrap();
    assert_eq!(
        decode_latent(&model, &[0.0, 0.0], Some(10), &mut probs).unwrap_err(),
        Error::DigitOutOfRange {
            digit: 10,
            classes: 10
        }
    );
    assert_eq!(
        decode_latent(&model, &[0.0, 0.0], None, &mut probs).unwrap_err(),
        Error::DigitRequired
    );

    let mut small = [0u8; 100];
    assert_eq!(
        encode(&tiny_arch(), Precision::F16, tiny_values(), &mut small).unwrap_err(),
        Error::BufferTooSmall {
            needed: 20 + 3136,
            available: 100
        }
    );
    let mut out = vec![0u8; 8192];
    let too_few = tiny_values().into_iter().skip(1);
    assert_eq!(
        encode(&tiny_arch(), Precision::F16, too_few, &mut out).unwrap_err(),
        Error::TooFewValues {
            expected: 2 * PIXELS,
            found: 2 * PIXELS - 1
        }
    );
    let too_many = tiny_values().into_iter().chain([0.0]);
    assert_eq!(
        encode(&tiny_arch(), Precision::F16, too_many, &mut out).unwrap_err(),
        Error::TooManyValues {
            expected: 2 * PIXELS
        }
    );
    assert_eq!(
        model.morph(
            Sample::new(1, Some(3)),
            Sample::new(2, Some(8)),
            6,
            6,
            &mut [0; STACK_SCRATCH],
            &mut [0u8; PIXELS]
        ),
        Err(Error::StepOutOfRange { step: 6, steps: 6 })
    );
}
