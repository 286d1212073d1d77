//! Writing a file: the header, the padding and each layer's values as the precision
//! stores them, then the checksum.

use super::header::{Architecture, Header, MAX_ROW};
use super::layout::{checksum, payload_offset, CRC_LEN, FORMAT_VERSION, MAGIC, MAX_HEADER_LEN};
use super::names::Precision;
use super::rounding::{i8_scale, quantize_i8, to_f16};
use crate::Error;

/// Total file length for a decoder of shape `arch` stored at `precision`.
///
/// ```
/// use vae_core::{encoded_len, Activation, Architecture, Precision};
/// let arch = Architecture::dense(2, 0, heapless::Vec::new(), Activation::Relu);
/// let payload = 2 * (2 * 784 + 784);
/// assert!(encoded_len(&arch, Precision::F16).unwrap() > payload);
/// ```
pub fn encoded_len(arch: &Architecture, precision: Precision) -> Result<usize, Error> {
    let mut buf = [0u8; MAX_HEADER_LEN];
    let header_len = serialized_header(arch, precision, &mut buf)?.len();
    Ok(payload_offset(header_len).saturating_add(arch.payload_len(precision)))
}

/// The header of a file for `arch` at `precision`, CRC field zeroed, serialized into
/// `buf`.
fn serialized_header<'a>(
    arch: &Architecture,
    precision: Precision,
    buf: &'a mut [u8; MAX_HEADER_LEN],
) -> Result<&'a mut [u8], Error> {
    let header = header_for(arch, precision)?;
    postcard::to_slice(&header, buf)
        .map_err(|_| Error::UnsupportedArchitecture("header longer than MAX_HEADER_LEN"))
}

fn header_for(arch: &Architecture, precision: Precision) -> Result<Header, Error> {
    arch.validate()?;
    let payload_len = u32::try_from(arch.payload_len(precision))
        .map_err(|_| Error::UnsupportedArchitecture("payload larger than 4 GiB"))?;
    Ok(Header {
        magic: MAGIC,
        version: FORMAT_VERSION,
        arch: arch.clone(),
        precision,
        payload_len,
        crc32: [0; CRC_LEN],
    })
}

/// Writes a model file into `out` and returns its length.
///
/// `values` yields every parameter in layer order: for each layer, the weights row by row
/// (`[out][in]`, so output `o` reads inputs `0..in` from one contiguous row), then the
/// biases. Values are rounded to `precision` here, as [`Precision::round_layer`] rounds
/// them. Errors: [`Error::BufferTooSmall`] if `out` is shorter than [`encoded_len`],
/// [`Error::TooFewValues`] or [`Error::TooManyValues`] if `values` does not yield exactly
/// [`Architecture::parameter_count`] values (one past that many is read, no more).
///
/// ```
/// use vae_core::{encode, encoded_len, Activation, Architecture, Error, Model, Precision};
/// let arch = Architecture::dense(2, 0, heapless::Vec::new(), Activation::Relu);
/// let values = (0..arch.parameter_count()).map(|i| i as f32 * 1e-3);
/// let mut file = vec![0u8; encoded_len(&arch, Precision::I8).unwrap()];
/// let len = encode(&arch, Precision::I8, values, &mut file).unwrap();
/// assert_eq!(len, file.len());
/// assert_eq!(Model::parse(&file).unwrap().architecture(), &arch);
///
/// let expected = arch.parameter_count(); // 2 * 784 + 784
/// let err = encode(&arch, Precision::I8, [0.5; 100], &mut file).unwrap_err();
/// assert_eq!(err, Error::TooFewValues { expected, found: 100 });
/// let err = encode(&arch, Precision::I8, core::iter::repeat(0.5), &mut file).unwrap_err();
/// assert_eq!(err, Error::TooManyValues { expected });
/// ```
pub fn encode(
    arch: &Architecture,
    precision: Precision,
    values: impl IntoIterator<Item = f32>,
    out: &mut [u8],
) -> Result<usize, Error> {
    // The header is serialized here with its CRC field zeroed, and copied into `out` once
    // the payload, which the CRC covers, is written. The CRC is its last four bytes.
    let mut header_buf = [0u8; MAX_HEADER_LEN];
    let header_bytes = serialized_header(arch, precision, &mut header_buf)?;
    let needed = payload_offset(header_bytes.len()).saturating_add(arch.payload_len(precision));
    let available = out.len();
    let file = out
        .get_mut(..needed)
        .ok_or(Error::BufferTooSmall { needed, available })?;
    let (head, payload) = split_buffer(file, payload_offset(header_bytes.len()))?;
    let (head, padding) = split_buffer(head, header_bytes.len())?;

    let mut values = Values {
        iter: values.into_iter(),
        expected: arch.parameter_count(),
        taken: 0,
    };
    let mut rest = &mut *payload;
    for (inputs, outputs) in arch.layers() {
        let (layer, tail) = split_buffer(rest, precision.layer_bytes(inputs, outputs))?;
        write_layer(precision, inputs, outputs, &mut values, layer)?;
        rest = tail;
    }
    values.end()?;

    padding.fill(0);
    let header_len = header_bytes.len();
    let (before_crc, crc) =
        header_bytes
            .split_last_chunk_mut::<CRC_LEN>()
            .ok_or(Error::BufferTooSmall {
                needed: CRC_LEN,
                available: header_len,
            })?;
    *crc = checksum(&[before_crc, padding, payload]).to_le_bytes();
    for (slot, byte) in head.iter_mut().zip(header_bytes.iter()) {
        *slot = *byte;
    }
    Ok(needed)
}

/// Splits `buf` at `at`, or says how many bytes were needed.
fn split_buffer(buf: &mut [u8], at: usize) -> Result<(&mut [u8], &mut [u8]), Error> {
    let available = buf.len();
    buf.split_at_mut_checked(at).ok_or(Error::BufferTooSmall {
        needed: at,
        available,
    })
}

/// The writer's values, counted so that too few or too many are reported as such.
struct Values<I> {
    iter: I,
    /// Values the architecture has.
    expected: usize,
    /// Values taken so far.
    taken: usize,
}

impl<I: Iterator<Item = f32>> Values<I> {
    fn next(&mut self) -> Result<f32, Error> {
        let value = self.iter.next().ok_or(Error::TooFewValues {
            expected: self.expected,
            found: self.taken,
        })?;
        self.taken = self.taken.saturating_add(1);
        Ok(value)
    }

    /// Checks that every value was taken, reading at most one more.
    fn end(mut self) -> Result<(), Error> {
        match self.iter.next() {
            Some(_) => Err(Error::TooManyValues {
                expected: self.expected,
            }),
            None => Ok(()),
        }
    }
}

/// Writes one layer's weights and biases, taken from `values`, into `out`, which holds
/// exactly [`Precision::layer_bytes`]`(inputs, outputs)` bytes: each value fills the
/// next slot, so the slots and the values run out together.
fn write_layer(
    precision: Precision,
    inputs: usize,
    outputs: usize,
    values: &mut Values<impl Iterator<Item = f32>>,
    out: &mut [u8],
) -> Result<(), Error> {
    match precision {
        Precision::F32 => {
            for slot in out.as_chunks_mut::<4>().0 {
                *slot = values.next()?.to_le_bytes();
            }
        }
        Precision::F16 => {
            for slot in out.as_chunks_mut::<2>().0 {
                *slot = to_f16(values.next()?).to_le_bytes();
            }
        }
        Precision::I8 => {
            let (weights, rest) = split_buffer(out, inputs.saturating_mul(outputs))?;
            let (scales, biases) = split_buffer(rest, outputs.saturating_mul(4))?;
            let mut row = [0.0f32; MAX_ROW];
            let row = row.get_mut(..inputs).ok_or(Error::UnsupportedArchitecture(
                "a layer has more inputs than a row of the file may",
            ))?;
            // `max(1)`: a layer with no inputs has no weight bytes, and no rows to visit.
            let q_rows = weights.chunks_exact_mut(inputs.max(1));
            for (q_row, scale_slot) in q_rows.zip(scales.as_chunks_mut::<4>().0) {
                for w in row.iter_mut() {
                    *w = values.next()?;
                }
                *scale_slot = quantize_row(row, q_row).to_le_bytes();
            }
            for slot in biases.as_chunks_mut::<4>().0 {
                *slot = values.next()?.to_le_bytes();
            }
        }
    }
    Ok(())
}

/// Symmetric 8-bit quantization of one weight row: returns the scale `s` and writes
/// `q[i] = round(w[i] / s)`, `s = max |w[i]| / 127` (0 for an all-zero row).
fn quantize_row(row: &[f32], q: &mut [u8]) -> f32 {
    let scale = i8_scale(row);
    for (q, w) in q.iter_mut().zip(row) {
        // Exact: an integer in -127..=127.
        *q = quantize_i8(*w, scale) as i8 as u8;
    }
    scale
}
