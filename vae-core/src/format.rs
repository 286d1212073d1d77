//! The model file format, defined once for the trainer and the firmware.
//!
//! ```text
//! +--------------------------------------------------------------+
//! | header (postcard)                                            |
//! |   magic      [u8; 4]  b"VAED"                                |
//! |   version    u16      FORMAT_VERSION (varint)                |
//! |   arch       Architecture                                    |
//! |   precision  Precision                                       |
//! |   payload    u32      payload length in bytes (varint)       |
//! |   crc32      [u8; 4]  CRC-32/ISO-HDLC, little-endian         |
//! +--------------------------------------------------------------+
//! | 0-3 zero bytes, so the payload starts at a multiple of 4     |
//! +--------------------------------------------------------------+
//! | payload, for each dense layer (input side first):            |
//! |   F32, F16: weights row by row ([out][in]), then biases [out]|
//! |   I8:  weights row by row as i8, then one f32 scale per row, |
//! |        then biases [out] as f32                              |
//! | all values little-endian                                     |
//! +--------------------------------------------------------------+
//! ```
//!
//! The CRC covers every byte of the file except its own four, so a flipped bit anywhere is
//! caught, not only in the weights. The payload is read in place. Values are decoded from
//! bytes, so no alignment is required for correctness; the padding lets a word-aligned
//! copy of the file (as the firmware embeds it) load weights a word at a time.
//!
//! An `I8` row stores `q[o][i] = round(w[o][i] / s[o])` with `s[o] = max_i |w[o][i]| / 127`,
//! so every row uses the full range -127..=127 whatever its magnitude.

use crc::{Crc, CRC_32_ISO_HDLC};
use serde::{Deserialize, Serialize};

use crate::Error;

/// First four bytes of every model file.
pub const MAGIC: [u8; 4] = *b"VAED";

/// The format version this build reads and writes. Bump on any layout change and record
/// the change in CHANGELOG.md.
pub const FORMAT_VERSION: u16 = 2;

/// The payload starts at a multiple of this many bytes from the start of the file.
pub const PAYLOAD_ALIGN: usize = 4;

/// Pixels in one generated image (28 x 28).
pub const PIXELS: usize = 28 * 28;

/// Side length of a generated image.
pub const IMAGE_SIDE: usize = 28;

/// Most hidden layers a decoder may have.
pub const MAX_HIDDEN_LAYERS: usize = 4;

/// Widest decoder input or hidden layer the fixed-size scratch buffers hold.
pub const MAX_WIDTH: usize = 512;

/// Most classes a conditional model may have: digits are asked for as a `u8`.
pub const MAX_CLASSES: u16 = 256;

/// Longest header the writer produces (the real one is about 20 bytes).
pub const MAX_HEADER_LEN: usize = 64;

const CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);
const CRC_LEN: usize = 4;

/// Non-linearity between decoder layers. The output layer is always a sigmoid, giving
/// Bernoulli pixel probabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// `1 / (1 + e^-x)`, as in the conditional-VAE tutorial.
    Sigmoid,
}

/// How weights are stored in the payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Precision {
    /// IEEE 754 single precision, 4 bytes per value.
    F32,
    /// IEEE 754 half precision, 2 bytes per value.
    F16,
    /// Signed 8-bit weights with one f32 scale per output row; f32 biases.
    I8,
}

impl Precision {
    /// Payload bytes of one dense layer with `inputs` inputs and `outputs` outputs.
    ///
    /// ```
    /// use vae_core::Precision;
    /// assert_eq!(Precision::F16.layer_bytes(20, 128), 2 * (20 * 128 + 128));
    /// assert_eq!(Precision::I8.layer_bytes(20, 128), 20 * 128 + 4 * 128 + 4 * 128);
    /// ```
    pub const fn layer_bytes(self, inputs: usize, outputs: usize) -> usize {
        let weights = inputs.saturating_mul(outputs);
        match self {
            Precision::F32 => weights.saturating_add(outputs).saturating_mul(4),
            Precision::F16 => weights.saturating_add(outputs).saturating_mul(2),
            Precision::I8 => weights.saturating_add(outputs.saturating_mul(8)),
        }
    }

    /// The name used on the command line and in file names: `f32`, `f16` or `i8`.
    pub const fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::I8 => "i8",
        }
    }
}

/// Decoder shape: `[z, one-hot(class)] -> hidden... -> output`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Architecture {
    /// Size of the latent code `z`.
    pub latent: u16,
    /// Number of classes fed as a one-hot vector after `z` (10 for digits, 0 for none).
    pub classes: u16,
    /// Widths of the hidden layers, input side first.
    pub hidden: heapless::Vec<u16, MAX_HIDDEN_LAYERS>,
    /// Non-linearity after each hidden layer.
    pub activation: Activation,
    /// Output size; always [`PIXELS`] in this version.
    pub output: u16,
}

impl Architecture {
    /// Length of the decoder input: latent size plus classes.
    ///
    /// ```
    /// # let arch = vae_core::Architecture { latent: 10, classes: 10, hidden: heapless::Vec::new(),
    /// #     activation: vae_core::Activation::Relu, output: 784 };
    /// assert_eq!(arch.input_len(), 20);
    /// ```
    pub fn input_len(&self) -> usize {
        usize::from(self.latent) + usize::from(self.classes)
    }

    /// `(inputs, outputs)` of each dense layer, input side first.
    ///
    /// ```
    /// use vae_core::{Activation, Architecture};
    /// let arch = Architecture {
    ///     latent: 10, classes: 10, hidden: heapless::Vec::from_slice(&[128]).unwrap(),
    ///     activation: Activation::Relu, output: 784,
    /// };
    /// assert!(arch.layers().eq([(20, 128), (128, 784)]));
    /// assert_eq!(arch.parameter_count(), 20 * 128 + 128 + 128 * 784 + 784);
    /// ```
    pub fn layers(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let widths = self
            .hidden
            .iter()
            .map(|&h| usize::from(h))
            .chain(core::iter::once(usize::from(self.output)));
        let inputs =
            core::iter::once(self.input_len()).chain(self.hidden.iter().map(|&h| h.into()));
        inputs.zip(widths)
    }

    /// Number of stored values (weights and biases).
    pub fn parameter_count(&self) -> usize {
        // At most 5 layers of at most 65535 x 65535 + 65535: fits a u64, and on 32-bit
        // targets `validate` has already capped widths at MAX_WIDTH.
        self.layers()
            .map(|(i, o)| i.saturating_mul(o).saturating_add(o))
            .fold(0usize, usize::saturating_add)
    }

    /// Checks that this decoder fits the fixed-size buffers of this crate.
    ///
    /// ```
    /// use vae_core::{Activation, Architecture, Error};
    /// let arch = Architecture {
    ///     latent: 0, classes: 10, hidden: heapless::Vec::new(),
    ///     activation: Activation::Relu, output: 784,
    /// };
    /// assert!(matches!(arch.validate(), Err(Error::UnsupportedArchitecture(_))));
    /// let many = Architecture { latent: 2, classes: 257, ..arch.clone() };
    /// assert!(matches!(many.validate(), Err(Error::UnsupportedArchitecture(_))));
    /// assert!(Architecture { classes: 256, ..many }.validate().is_ok());
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        if self.latent == 0 {
            return Err(Error::UnsupportedArchitecture("latent size is 0"));
        }
        if self.classes == 1 {
            return Err(Error::UnsupportedArchitecture(
                "a conditional model needs at least 2 classes",
            ));
        }
        if self.classes > MAX_CLASSES {
            return Err(Error::UnsupportedArchitecture(
                "more classes than a digit (u8) can name",
            ));
        }
        if usize::from(self.output) != PIXELS {
            return Err(Error::UnsupportedArchitecture(
                "output size must be 784 (28x28)",
            ));
        }
        if self.input_len() > MAX_WIDTH {
            return Err(Error::UnsupportedArchitecture(
                "decoder input wider than MAX_WIDTH",
            ));
        }
        if self.hidden.contains(&0) {
            return Err(Error::UnsupportedArchitecture("a hidden layer has width 0"));
        }
        if self.hidden.iter().any(|&h| usize::from(h) > MAX_WIDTH) {
            return Err(Error::UnsupportedArchitecture(
                "a hidden layer is wider than MAX_WIDTH",
            ));
        }
        Ok(())
    }

    /// Payload bytes for this architecture at `precision`.
    pub fn payload_len(&self, precision: Precision) -> usize {
        self.layers()
            .map(|(i, o)| precision.layer_bytes(i, o))
            .fold(0usize, usize::saturating_add)
    }
}

/// The decoded header of a model file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`MAGIC`].
    pub magic: [u8; 4],
    /// Format version, [`FORMAT_VERSION`] for files this build writes.
    pub version: u16,
    /// Decoder shape.
    pub arch: Architecture,
    /// Weight precision.
    pub precision: Precision,
    /// Payload length in bytes.
    pub payload_len: u32,
    /// CRC-32 of the header bytes before this field and of the payload, little-endian.
    pub crc32: [u8; 4],
}

/// The two fields every version starts with, read before the rest so that a file of
/// another version is named as such instead of failing as a garbled header.
#[derive(Deserialize)]
struct Preamble {
    _magic: [u8; 4],
    version: u16,
}

impl Header {
    /// Decodes and checks the header at the start of `bytes`, returning it and the bytes
    /// after it. Checks magic and version, not sizes or checksum: use
    /// [`Model::parse`](crate::Model::parse) for a full check.
    ///
    /// ```
    /// use vae_core::{Error, Header, Precision};
    /// # let mut buf = vec![0u8; 1 << 16];
    /// let file = vae_core::example_model(Precision::F16, &mut buf)?;
    /// let (header, payload) = Header::read(file)?;
    /// assert_eq!(header.precision, Precision::F16);
    /// assert_eq!(payload.len(), header.payload_len as usize);
    /// assert_eq!(Header::read(b"PNG!").unwrap_err(), Error::BadMagic);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn read(bytes: &[u8]) -> Result<(Header, &[u8]), Error> {
        let (header, header_len) = read_header(bytes)?;
        let payload = bytes
            .get(payload_offset(header_len)..)
            .ok_or(Error::MalformedHeader)?;
        Ok((header, payload))
    }

    /// The stored checksum as a number.
    pub fn stored_crc(&self) -> u32 {
        u32::from_le_bytes(self.crc32)
    }
}

/// Decodes the header at the start of `bytes` and returns it with its length in bytes.
fn read_header(bytes: &[u8]) -> Result<(Header, usize), Error> {
    if bytes.get(..MAGIC.len()) != Some(&MAGIC[..]) {
        return Err(Error::BadMagic);
    }
    let (preamble, _) =
        postcard::take_from_bytes::<Preamble>(bytes).map_err(|_| Error::MalformedHeader)?;
    if preamble.version != FORMAT_VERSION {
        return Err(Error::UnsupportedVersion {
            found: preamble.version,
            supported: FORMAT_VERSION,
        });
    }
    let (header, rest) =
        postcard::take_from_bytes::<Header>(bytes).map_err(|_| Error::MalformedHeader)?;
    Ok((header, bytes.len() - rest.len()))
}

/// Where the payload starts after a header of `header_len` bytes.
const fn payload_offset(header_len: usize) -> usize {
    header_len.next_multiple_of(PAYLOAD_ALIGN)
}

/// Splits a whole file into its header and payload, checking sizes and the checksum.
pub(crate) fn split_and_verify(bytes: &[u8]) -> Result<(Header, &[u8]), Error> {
    let (header, header_len) = read_header(bytes)?;
    header.arch.validate()?;
    let expected = header.arch.payload_len(header.precision);
    let announced = header.payload_len as usize;
    if announced != expected {
        return Err(Error::SizeMismatch {
            expected,
            found: announced,
        });
    }
    let offset = payload_offset(header_len);
    let found = bytes.len().saturating_sub(offset);
    if found < expected {
        return Err(Error::Truncated { expected, found });
    }
    if found > expected {
        return Err(Error::SizeMismatch { expected, found });
    }
    // Everything but the CRC field itself: the header before it, the padding, the payload.
    let crc_at = header_len.saturating_sub(CRC_LEN);
    let (Some(before), Some(after)) = (bytes.get(..crc_at), bytes.get(header_len..)) else {
        return Err(Error::MalformedHeader);
    };
    let computed = checksum(before, after);
    if computed != header.stored_crc() {
        return Err(Error::ChecksumMismatch {
            stored: header.stored_crc(),
            computed,
        });
    }
    let (padding, payload) = after
        .split_at_checked(offset - header_len)
        .ok_or(Error::MalformedHeader)?;
    if padding.iter().any(|&b| b != 0) {
        return Err(Error::MalformedHeader);
    }
    Ok((header, payload))
}

fn checksum(before_crc: &[u8], after_crc: &[u8]) -> u32 {
    let mut digest = CRC32.digest();
    digest.update(before_crc);
    digest.update(after_crc);
    digest.finalize()
}

/// Total file length for a decoder of shape `arch` stored at `precision`.
///
/// ```
/// use vae_core::{encoded_len, Activation, Architecture, Precision};
/// let arch = Architecture {
///     latent: 2, classes: 0, hidden: heapless::Vec::new(),
///     activation: Activation::Relu, output: 784,
/// };
/// let payload = 2 * (2 * 784 + 784);
/// assert!(encoded_len(&arch, Precision::F16).unwrap() > payload);
/// ```
pub fn encoded_len(arch: &Architecture, precision: Precision) -> Result<usize, Error> {
    let header = header_for(arch, precision)?;
    let mut buf = [0u8; MAX_HEADER_LEN];
    let header_len = postcard::to_slice(&header, &mut buf)
        .map_err(|_| Error::UnsupportedArchitecture("header longer than MAX_HEADER_LEN"))?
        .len();
    Ok(payload_offset(header_len).saturating_add(arch.payload_len(precision)))
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
/// biases. Values are rounded to `precision` here, so quantization is defined once.
///
/// ```
/// use vae_core::{encode, encoded_len, Activation, Architecture, Model, Precision};
/// let arch = Architecture {
///     latent: 2, classes: 0, hidden: heapless::Vec::new(),
///     activation: Activation::Relu, output: 784,
/// };
/// let values = (0..arch.parameter_count()).map(|i| i as f32 * 1e-3);
/// let mut file = vec![0u8; encoded_len(&arch, Precision::I8).unwrap()];
/// let len = encode(&arch, Precision::I8, values, &mut file).unwrap();
/// assert_eq!(len, file.len());
/// assert_eq!(Model::parse(&file).unwrap().architecture(), &arch);
/// ```
pub fn encode(
    arch: &Architecture,
    precision: Precision,
    values: impl IntoIterator<Item = f32>,
    out: &mut [u8],
) -> Result<usize, Error> {
    let needed = encoded_len(arch, precision)?;
    let available = out.len();
    let file = out
        .get_mut(..needed)
        .ok_or(Error::BufferTooSmall { needed, available })?;
    let payload_len = arch.payload_len(precision);
    let offset = needed - payload_len;
    let (head, payload) = file
        .split_at_mut_checked(offset)
        .ok_or(Error::MalformedHeader)?;

    let mut values = values.into_iter();
    let mut rest: &mut [u8] = payload;
    for (inputs, outputs) in arch.layers() {
        let (layer, tail) = rest
            .split_at_mut_checked(precision.layer_bytes(inputs, outputs))
            .ok_or(Error::MalformedHeader)?;
        write_layer(precision, inputs, outputs, &mut values, layer)?;
        rest = tail;
    }
    if values.next().is_some() {
        return Err(Error::SizeMismatch {
            expected: arch.parameter_count(),
            found: arch.parameter_count().saturating_add(1),
        });
    }

    // The header is written twice: once to learn its length and where the CRC field sits
    // (its last four bytes), once with the CRC filled in. Its length does not change.
    let mut header = header_for(arch, precision)?;
    let header_len = postcard::to_slice(&header, head)
        .map_err(|_| Error::MalformedHeader)?
        .len();
    let (header_bytes, padding) = head
        .split_at_mut_checked(header_len)
        .ok_or(Error::MalformedHeader)?;
    padding.fill(0);
    let mut digest = CRC32.digest();
    digest.update(header_bytes.get(..header_len - CRC_LEN).unwrap_or(&[]));
    digest.update(padding);
    digest.update(payload);
    header.crc32 = digest.finalize().to_le_bytes();
    postcard::to_slice(&header, header_bytes).map_err(|_| Error::MalformedHeader)?;
    Ok(needed)
}

/// Writes one layer's weights and biases, taken from `values`, into `out`.
fn write_layer(
    precision: Precision,
    inputs: usize,
    outputs: usize,
    values: &mut impl Iterator<Item = f32>,
    out: &mut [u8],
) -> Result<(), Error> {
    let short = Error::SizeMismatch {
        expected: inputs.saturating_mul(outputs).saturating_add(outputs),
        found: 0,
    };
    let mut take = || values.next().ok_or(short);
    let put = |slots: &mut core::slice::ChunksExactMut<'_, u8>, bytes: &[u8]| {
        slots
            .next()
            .ok_or(Error::MalformedHeader)
            .map(|slot| slot.copy_from_slice(bytes))
    };
    match precision {
        Precision::F32 => {
            let mut slots = out.chunks_exact_mut(4);
            for _ in 0..inputs.saturating_mul(outputs).saturating_add(outputs) {
                put(&mut slots, &take()?.to_le_bytes())?;
            }
        }
        Precision::F16 => {
            let mut slots = out.chunks_exact_mut(2);
            for _ in 0..inputs.saturating_mul(outputs).saturating_add(outputs) {
                put(&mut slots, &half::f16::from_f32(take()?).to_le_bytes())?;
            }
        }
        Precision::I8 => {
            let (weights, rest) = out
                .split_at_mut_checked(inputs.saturating_mul(outputs))
                .ok_or(Error::MalformedHeader)?;
            let (scales, biases) = rest
                .split_at_mut_checked(outputs.saturating_mul(4))
                .ok_or(Error::MalformedHeader)?;
            let mut scale_slots = scales.chunks_exact_mut(4);
            let mut row = [0.0f32; MAX_WIDTH];
            let row = row.get_mut(..inputs).ok_or(Error::UnsupportedArchitecture(
                "decoder input wider than MAX_WIDTH",
            ))?;
            for q_row in weights.chunks_exact_mut(inputs.max(1)) {
                for w in row.iter_mut() {
                    *w = take()?;
                }
                let scale = quantize_row(row, q_row);
                put(&mut scale_slots, &scale.to_le_bytes())?;
            }
            let mut bias_slots = biases.chunks_exact_mut(4);
            for _ in 0..outputs {
                put(&mut bias_slots, &take()?.to_le_bytes())?;
            }
        }
    }
    Ok(())
}

/// Symmetric 8-bit quantization of one weight row: returns the scale `s` and writes
/// `q[i] = round(w[i] / s)`, `s = max |w[i]| / 127` (0 for an all-zero row).
fn quantize_row(row: &[f32], q: &mut [u8]) -> f32 {
    let max = row
        .iter()
        .fold(0.0f32, |m, w| if w.abs() > m { w.abs() } else { m });
    if max == 0.0 || !max.is_finite() {
        q.fill(0);
        return if max == 0.0 { 0.0 } else { max };
    }
    let scale = max / 127.0;
    for (q, w) in q.iter_mut().zip(row) {
        // `as` saturates and maps NaN to 0; |w / scale| <= 127 up to rounding.
        *q = (libm::roundf(w / scale) as i8).clamp(-127, 127) as u8;
    }
    scale
}
