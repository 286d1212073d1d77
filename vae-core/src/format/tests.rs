//! The format's tests: the writer against the documented layout and `round_layer`,
//! errors, names.
#![allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
use std::string::ToString;
use std::vec;
use std::vec::Vec;

use serde::Deserialize;

use super::*;
use crate::{Error, UnknownName};

fn arch(latent: u16, classes: u16, hidden: &[u16], activation: Activation) -> Architecture {
    Architecture::dense(
        latent,
        classes,
        heapless::Vec::from_slice(hidden).unwrap(),
        activation,
    )
}

/// Values that probe every way two roundings can differ: i8 quotients at exact halves
/// (row `[127, k + 0.5, ...]` has scale 1), f16 ties and overflow, rows of zeros, a row
/// whose scale underflows to 0, negative weights that round to -0, a NaN and an
/// infinite weight; then a pseudo-random tail.
fn awkward_values(count: usize) -> Vec<f32> {
    let mut special = vec![127.0, 0.5, -0.5, 1.5, -1.5, 2.5, -2.5, 126.5, -126.5];
    special.extend([
        1.0 + f32::EPSILON * 4096.0,
        1.0 + 3.0 * f32::EPSILON * 4096.0,
    ]);
    special.extend([65520.0, -7e4, 1e-8, -1e-8, 0.0, -0.0, f32::MIN_POSITIVE]);
    special.extend([f32::from_bits(1), -f32::from_bits(3), 0.0, 0.0, 0.0, 0.0]);
    special.extend([100.0, -0.3, f32::NAN, 0.2, f32::INFINITY, 1.0, 0.0, 0.0]);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let tail = core::iter::repeat_with(move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 22) as f32 - 2.0
    });
    special.into_iter().chain(tail).take(count).collect()
}

/// Each layer's values as the file stores them, as f32, read by the layout the module
/// documentation gives (not by the writer's code).
fn stored_values(arch: &Architecture, precision: Precision, file: &[u8]) -> Vec<f32> {
    let mut payload = &file[file.len() - arch.payload_len(precision)..];
    let mut take = |n: usize| {
        let (head, tail) = payload.split_at(n);
        payload = tail;
        head
    };
    let f32s = |b: &[u8]| -> Vec<f32> {
        let words = b.chunks_exact(4);
        words
            .map(|w| f32::from_le_bytes(w.try_into().unwrap()))
            .collect()
    };
    let mut out = Vec::new();
    for (inputs, outputs) in arch.layers() {
        let values = inputs * outputs + outputs;
        match precision {
            Precision::F32 => out.extend(f32s(take(4 * values))),
            Precision::F16 => out.extend(
                take(2 * values)
                    .chunks_exact(2)
                    .map(|h| half::f16::from_le_bytes([h[0], h[1]]).to_f32()),
            ),
            Precision::I8 => {
                let q = take(inputs * outputs).to_vec();
                // -127..=127, even where the scale is 0 and q does not matter.
                assert!(!q.contains(&0x80), "-128 stored");
                let scales = f32s(take(4 * outputs));
                for (row, scale) in q.chunks_exact(inputs).zip(&scales) {
                    out.extend(row.iter().map(|&q| f32::from(q as i8) * scale));
                }
                out.extend(f32s(take(4 * outputs)));
            }
        }
    }
    assert!(payload.is_empty());
    out
}

/// `values` rounded layer by layer with `round_layer`.
fn rounded(arch: &Architecture, precision: Precision, values: &[f32]) -> Vec<f32> {
    let mut out = values.to_vec();
    precision.round_model(arch, &mut out).unwrap();
    out
}

/// The same bits, or both NaN.
fn same_bits(a: f32, b: f32) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Fails if the writer and `round_layer` round any value differently: the scale (max,
/// NaN handling), the rounding (halves away from zero, f16 ties to even), the clamp,
/// which values form a row, or the biases' treatment. f32 and f16 values must match
/// bit for bit, i8 values as numbers (only the sign of a zero may differ).
#[test]
fn the_writer_stores_what_round_layer_gives() {
    for arch in [
        arch(3, 0, &[9], Activation::Relu),
        arch(2, 10, &[7, 5], Activation::Sigmoid),
        // The longest row a file may hold: a transposed convolution's 3 x 3 taps over
        // MAX_WIDTH channels (the i8 writer finds each row's scale in a buffer that long).
        Architecture {
            transposed_convs: Some(TransposedConvs {
                side: 7,
                channels: MAX_WIDTH as u16,
                layers: heapless::Vec::from_slice(
                    &[TransposedConv {
                        channels: 1,
                        kernel: KERNEL,
                        stride: 2,
                    }; 2],
                )
                .unwrap(),
            }),
            ..arch(1, 0, &[], Activation::Relu)
        },
    ] {
        let values = awkward_values(arch.parameter_count());
        for precision in Precision::ALL {
            let mut file = vec![0u8; encoded_len(&arch, precision).unwrap()];
            encode(&arch, precision, values.iter().copied(), &mut file).unwrap();
            let stored = stored_values(&arch, precision, &file);
            let rounded = rounded(&arch, precision, &values);
            for (k, (&s, &r)) in stored.iter().zip(&rounded).enumerate() {
                // The file's `q as f32 * s` is +0.0 where `round(w / s) * s` is -0.0.
                let zeros = precision == Precision::I8 && s == 0.0 && r == 0.0;
                let ok = same_bits(s, r) || zeros;
                assert!(ok, "{precision} value {k}: stored {s:e}, rounded {r:e}");
            }
        }
    }
}

#[test]
fn round_layer_checks_lengths_and_allows_empty_layers() {
    let (mut w, mut b) = ([0.0f32; 6], [0.0f32; 2]);
    assert_eq!(
        Precision::I8.round_layer(4, &mut w, &mut b),
        Err(Error::LengthMismatch {
            expected: 8,
            found: 6
        })
    );
    for precision in Precision::ALL {
        assert_eq!(precision.round_layer(0, &mut [], &mut b), Ok(()));
        assert_eq!(precision.round_layer(5, &mut [], &mut []), Ok(()));
    }
}

#[test]
fn writer_errors_report_true_numbers() {
    let arch = arch(1, 0, &[], Activation::Relu);
    let count = arch.parameter_count();
    let needed = encoded_len(&arch, Precision::F16).unwrap();
    let mut out = vec![0u8; 4 * needed];
    assert_eq!(
        encode(
            &arch,
            Precision::F16,
            vec![0.5; count],
            &mut out[..needed - 1]
        ),
        Err(Error::BufferTooSmall {
            needed,
            available: needed - 1
        })
    );
    for precision in Precision::ALL {
        for given in [0, 1, 784, count - 1] {
            assert_eq!(
                encode(&arch, precision, vec![0.5; given], &mut out),
                Err(Error::TooFewValues {
                    expected: count,
                    found: given
                })
            );
        }
        assert_eq!(
            encode(&arch, precision, core::iter::repeat(0.5), &mut out),
            Err(Error::TooManyValues { expected: count })
        );
        assert_eq!(
            encode(&arch, precision, vec![0.5; count], &mut out),
            Ok(encoded_len(&arch, precision).unwrap())
        );
    }
}

/// The value serde reads from a string (as serde_json reads `"relu"`).
fn from_serde_name<'a, T: Deserialize<'a>>(name: &'a str) -> Option<T> {
    use serde::de::{value::Error, IntoDeserializer};
    T::deserialize(IntoDeserializer::<Error>::into_deserializer(name)).ok()
}

#[test]
fn names_parse_back_and_are_the_serde_names() {
    for activation in Activation::ALL {
        assert_eq!(activation.name().parse(), Ok(activation));
        assert_eq!(activation.to_string(), activation.name());
        assert_eq!(from_serde_name(activation.name()), Some(activation));
    }
    for precision in Precision::ALL {
        assert_eq!(precision.name().parse(), Ok(precision));
        assert_eq!(precision.to_string(), precision.name());
        assert_eq!(from_serde_name(precision.name()), Some(precision));
    }
    assert_eq!(from_serde_name::<Activation>("Relu"), None);
    assert_eq!("Relu".parse::<Activation>(), Err(UnknownName::Activation));
    assert_eq!("".parse::<Precision>(), Err(UnknownName::Precision));
    assert_eq!(
        UnknownName::Activation.to_string(),
        "unknown activation: expected relu or sigmoid"
    );
}

/// The header's length in bytes, as postcard writes it (the CRC field included).
fn header_len(header: &Header) -> usize {
    postcard::to_allocvec(header).unwrap().len()
}

/// Each damage has its own error, with the true numbers: a payload one byte short is
/// `Truncated`, one byte long `SizeMismatch`, a flipped payload bit `ChecksumMismatch`
/// naming the stored CRC, and a padding byte that is not 0 (its CRC made right, so only
/// the padding is wrong) `MalformedHeader`. The last padding byte is set, so a check of
/// only the first would let it through; some of these files have 2 or 3 padding bytes.
#[test]
fn each_damage_has_its_own_error() {
    let mut longest_padding = 0;
    for (hidden, precision) in [&[8u16][..], &[], &[300, 7], &[5, 6, 7]]
        .into_iter()
        .flat_map(|h| Precision::ALL.map(|p| (h, p)))
    {
        let arch = arch(2, 10, hidden, Activation::Relu);
        let mut file = vec![0u8; encoded_len(&arch, precision).unwrap()];
        let values = awkward_values(arch.parameter_count());
        encode(&arch, precision, values, &mut file).unwrap();
        assert!(crate::Model::parse(&file).is_ok());
        let (header, payload) = Header::read(&file).unwrap();
        let expected = header.payload_len as usize;
        assert_eq!(payload.len(), expected);

        let short = &file[..file.len() - 1];
        let found = expected - 1;
        let want = Error::Truncated { expected, found };
        assert_eq!(crate::Model::parse(short).unwrap_err(), want);
        let mut long = file.clone();
        long.push(0);
        let found = expected + 1;
        let want = Error::SizeMismatch { expected, found };
        assert_eq!(crate::Model::parse(&long).unwrap_err(), want);
        let mut flipped = file.clone();
        *flipped.last_mut().unwrap() ^= 0x10;
        match crate::Model::parse(&flipped).unwrap_err() {
            Error::ChecksumMismatch { stored, computed } => {
                assert_eq!(stored, header.stored_crc());
                assert_ne!(computed, stored);
            }
            other => panic!("{other:?}"),
        }

        let header_len = header_len(&header);
        let offset = file.len() - expected;
        assert_eq!(offset % PAYLOAD_ALIGN, 0);
        longest_padding = longest_padding.max(offset - header_len);
        if offset > header_len {
            let mut padded = file.clone();
            padded[offset - 1] = 1;
            let crc = layout::CRC32
                .checksum(&[&padded[..header_len - 4], &padded[header_len..]].concat());
            padded[header_len - 4..header_len].copy_from_slice(&crc.to_le_bytes());
            let err = crate::Model::parse(&padded).unwrap_err();
            assert_eq!(err, Error::MalformedHeader, "{arch} {precision}");
        }
    }
    assert!(longest_padding >= 2, "{longest_padding}");
}

/// Widths up to `MAX_WIDTH` are accepted, one more is not; so are the class counts
/// 0, 2 and 256 but not 1 or 257, and a latent of 0 is refused.
#[test]
fn validate_accepts_exactly_the_documented_limits() {
    let max = MAX_WIDTH as u16;
    assert_eq!(arch(2, 0, &[max], Activation::Relu).validate(), Ok(()));
    assert_eq!(arch(2, 0, &[4, max], Activation::Relu).validate(), Ok(()));
    for bad in [
        arch(2, 0, &[max + 1], Activation::Relu),
        arch(2, 0, &[4, 0], Activation::Relu),
        arch(0, 10, &[4], Activation::Relu),
        arch(2, 1, &[4], Activation::Relu),
        arch(2, 257, &[4], Activation::Relu),
        arch(max - 9, 10, &[4], Activation::Relu),
        Architecture {
            output: 100,
            ..arch(2, 0, &[4], Activation::Relu)
        },
    ] {
        assert!(
            matches!(bad.validate(), Err(Error::UnsupportedArchitecture(_))),
            "{bad}"
        );
    }
    for good in [
        arch(2, 2, &[], Activation::Relu),
        arch(2, 256, &[], Activation::Relu),
    ] {
        assert_eq!(good.validate(), Ok(()), "{good}");
    }
    assert_eq!(arch(max - 10, 10, &[], Activation::Relu).validate(), Ok(()));
}

/// The header's description says whether the decoder takes a label.
#[test]
fn a_header_says_whether_its_decoder_is_conditional() {
    for (classes, kind) in [
        (0, "(unconditional)"),
        (2, "(conditional)"),
        (10, "(conditional)"),
    ] {
        let arch = arch(2, classes, &[], Activation::Relu);
        let mut file = vec![0u8; encoded_len(&arch, Precision::F32).unwrap()];
        let values = (0..arch.parameter_count()).map(|i| i as f32 * 1e-3);
        encode(&arch, Precision::F32, values, &mut file).unwrap();
        let (header, _) = Header::read(&file).unwrap();
        let text = header.to_string();
        let line = text.lines().nth(1).unwrap();
        assert!(line.ends_with(kind), "{classes} classes: {line}");
    }
}
