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
//! [`Precision::round_layer`] gives the values a file stores, as f32, by the same
//! functions the writer uses.

use core::fmt;
use core::str::FromStr;

use crc::{Crc, CRC_32_ISO_HDLC};
use serde::{Deserialize, Serialize};

use crate::{Error, UnknownName};

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
///
/// Serde names are the lowercase [`name`](Self::name)s; postcard, the model file's
/// encoding, stores the variant's index instead, so the names are not in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// `max(x, 0)`.
    Relu,
    /// `1 / (1 + e^-x)`, as in the conditional-VAE tutorial.
    Sigmoid,
}

impl Activation {
    /// Every activation, in declaration order.
    pub const ALL: [Activation; 2] = [Activation::Relu, Activation::Sigmoid];

    /// The name used on the command line and in JSON: `relu` or `sigmoid`.
    ///
    /// ```
    /// use vae_core::Activation;
    /// assert_eq!(Activation::ALL.map(Activation::name), ["relu", "sigmoid"]);
    /// assert_eq!("sigmoid".parse(), Ok(Activation::Sigmoid));
    /// assert_eq!(Activation::Relu.to_string(), "relu");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
        }
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Activation {
    type Err = UnknownName;

    /// Parses a [`name`](Self::name), exactly (lowercase).
    fn from_str(name: &str) -> Result<Self, UnknownName> {
        Activation::ALL
            .into_iter()
            .find(|a| a.name() == name)
            .ok_or(UnknownName::Activation)
    }
}

/// How weights are stored in the payload.
///
/// Serde names are the lowercase [`name`](Self::name)s (`f16`, ...); postcard stores the
/// variant's index, so the model file's bytes do not depend on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// IEEE 754 single precision, 4 bytes per value.
    F32,
    /// IEEE 754 half precision, 2 bytes per value.
    F16,
    /// Signed 8-bit weights with one f32 scale per output row; f32 biases.
    I8,
}

impl Precision {
    /// Every precision, in the order the trainer exports them: f16, f32, i8.
    pub const ALL: [Precision; 3] = [Precision::F16, Precision::F32, Precision::I8];

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

    /// The name used on the command line, in JSON and in file names: `f32`, `f16` or
    /// `i8`.
    ///
    /// ```
    /// use vae_core::Precision;
    /// assert_eq!(Precision::ALL.map(Precision::name), ["f16", "f32", "i8"]);
    /// assert_eq!("i8".parse(), Ok(Precision::I8));
    /// assert!("F16".parse::<Precision>().is_err());
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::I8 => "i8",
        }
    }

    /// How the payload stores values at this precision, in words.
    ///
    /// ```
    /// assert_eq!(vae_core::Precision::F16.storage(), "f16 weights and biases");
    /// ```
    pub const fn storage(self) -> &'static str {
        match self {
            Precision::F32 => "f32 weights and biases",
            Precision::F16 => "f16 weights and biases",
            Precision::I8 => "i8 weights with an f32 scale per row, f32 biases",
        }
    }

    /// Rounds one dense layer's parameters, in place, to the values a file of this
    /// precision stores, as f32: what a decoder reading the file computes with.
    ///
    /// `weights` holds `biases.len()` rows of `inputs` values (`[out][in]`, the file's
    /// order); the error is [`Error::LengthMismatch`] if its length is not
    /// `inputs * biases.len()`.
    /// - `F32`: unchanged.
    /// - `F16`: every weight and bias to the nearest f16 (ties to even).
    /// - `I8`: each weight `w` of a row to `round(w / s).clamp(-127, 127) * s` (0 where
    ///   `s == 0`), `s = max |w| / 127` over the row (NaN ignored), rounding halves away
    ///   from zero; biases unchanged. The file stores the integer `q = round(w / s)` and
    ///   `s`, so the value here equals `q as f32 * s` (a -0.0 here is +0.0 there). A NaN
    ///   weight is stored as `q = 0`, so it becomes 0 (or NaN where `s` is infinite).
    ///
    /// The writer ([`encode`]) quantizes through the same functions, so the two cannot
    /// drift apart.
    ///
    /// ```
    /// use vae_core::Precision;
    /// // Two rows of three: scales 1 and 2.
    /// let (mut weights, mut biases) = ([127.0, 0.5, -2.5, 254.0, 1.0, 0.9], [0.1, 0.2]);
    /// Precision::I8.round_layer(3, &mut weights, &mut biases)?;
    /// assert_eq!(weights, [127.0, 1.0, -3.0, 254.0, 2.0, 0.0]);
    /// assert_eq!(biases, [0.1, 0.2]);
    ///
    /// let mut weights = [0.1f32];
    /// Precision::F16.round_layer(1, &mut weights, &mut [0.0])?;
    /// assert_eq!(weights, [0.099975586]);
    /// # Ok::<(), vae_core::Error>(())
    /// ```
    pub fn round_layer(
        self,
        inputs: usize,
        weights: &mut [f32],
        biases: &mut [f32],
    ) -> Result<(), Error> {
        let expected = inputs.saturating_mul(biases.len());
        if weights.len() != expected {
            return Err(Error::LengthMismatch {
                expected,
                found: weights.len(),
            });
        }
        match self {
            Precision::F32 => {}
            Precision::F16 => {
                for v in weights.iter_mut().chain(biases.iter_mut()) {
                    *v = to_f16(*v).to_f32();
                }
            }
            Precision::I8 => {
                // `max(1)`: with no inputs there are no weights, and no rows to visit.
                for row in weights.chunks_exact_mut(inputs.max(1)) {
                    let scale = i8_scale(row);
                    for w in row {
                        *w = if scale > 0.0 {
                            quantize_i8(*w, scale) * scale
                        } else {
                            0.0
                        };
                    }
                }
            }
        }
        Ok(())
    }

    /// [`round_layer`](Self::round_layer) for every layer of a model of shape `arch`,
    /// whose parameters `values` holds in the order [`encode`] takes them; the error is
    /// [`Error::LengthMismatch`] unless it holds exactly `arch.parameter_count()`.
    ///
    /// ```
    /// use vae_core::{Activation, Architecture, Precision};
    /// let arch = Architecture {
    ///     latent: 2, classes: 0, hidden: heapless::Vec::new(),
    ///     activation: Activation::Relu, output: 784,
    /// };
    /// let mut values = vec![0.1f32; arch.parameter_count()];
    /// Precision::F16.round_model(&arch, &mut values)?;
    /// assert_eq!(values[0], half::f16::from_f32(0.1).to_f32());
    /// assert!(Precision::F16.round_model(&arch, &mut values[1..]).is_err());
    /// # Ok::<(), vae_core::Error>(())
    /// ```
    pub fn round_model(self, arch: &Architecture, values: &mut [f32]) -> Result<(), Error> {
        let (expected, found) = (arch.parameter_count(), values.len());
        if found != expected {
            return Err(Error::LengthMismatch { expected, found });
        }
        let mut rest = values;
        for (inputs, outputs) in arch.layers() {
            let weights = inputs.saturating_mul(outputs);
            let (layer, tail) = rest
                .split_at_mut_checked(weights.saturating_add(outputs))
                .ok_or(Error::LengthMismatch { expected, found })?;
            let (weights, biases) = layer
                .split_at_mut_checked(weights)
                .ok_or(Error::LengthMismatch { expected, found })?;
            self.round_layer(inputs, weights, biases)?;
            rest = tail;
        }
        Ok(())
    }
}

impl fmt::Display for Precision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Precision {
    type Err = UnknownName;

    /// Parses a [`name`](Self::name), exactly (lowercase).
    fn from_str(name: &str) -> Result<Self, UnknownName> {
        Precision::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or(UnknownName::Precision)
    }
}

/// The f16 a file stores for `v`: nearest, ties to even.
fn to_f16(v: f32) -> half::f16 {
    half::f16::from_f32(v)
}

/// The scale of an i8 row: `max |w| / 127`, NaN ignored; 0 for a row of zeros, infinite
/// if a weight is.
fn i8_scale(row: &[f32]) -> f32 {
    let max = row
        .iter()
        .fold(0.0f32, |m, w| if w.abs() > m { w.abs() } else { m });
    max / 127.0
}

/// The `q` the file stores for weight `w`: `round(w / scale)` clamped to -127..=127,
/// halves away from zero, as an f32 (exactly an `i8`'s value); 0 where the quotient is
/// NaN (a NaN weight, or a 0 weight over a 0 scale).
fn quantize_i8(w: f32, scale: f32) -> f32 {
    let q = libm::roundf(w / scale).clamp(-127.0, 127.0);
    if q.is_nan() {
        0.0
    } else {
        q
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

/// The decoder's shape, input side first.
///
/// ```
/// use vae_core::{Activation, Architecture};
/// let arch = Architecture {
///     latent: 10, classes: 10, hidden: heapless::Vec::from_slice(&[128, 256]).unwrap(),
///     activation: Activation::Relu, output: 784,
/// };
/// assert_eq!(
///     arch.to_string(),
///     "[z 10 + one-hot 10] -> 128 relu -> 256 relu -> 784 sigmoid"
/// );
/// ```
impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[z {} + one-hot {}]", self.latent, self.classes)?;
        for width in &self.hidden {
            write!(f, " -> {width} {}", self.activation)?;
        }
        write!(f, " -> {} {}", self.output, Activation::Sigmoid)
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

/// Four lines, each ending in `\n`: format, decoder, parameters, precision. The magic is
/// shown as text, a byte that is not UTF-8 as U+FFFD (as `String::from_utf8_lossy`).
///
/// ```
/// # let mut buf = vec![0u8; 1 << 16];
/// let file = vae_core::example_model(vae_core::Precision::I8, &mut buf)?;
/// let (header, _) = vae_core::Header::read(file)?;
/// assert_eq!(
///     header.to_string(),
///     "format:      VAED version 2\n\
///      decoder:     [z 2 + one-hot 10] -> 8 relu -> 784 sigmoid (conditional)\n\
///      parameters:  7160\n\
///      precision:   i8 (i8 weights with an f32 scale per row, f32 biases), payload 12704 bytes\n"
/// );
/// # Ok::<(), vae_core::Error>(())
/// ```
impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("format:      ")?;
        for chunk in self.magic.utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_str("\u{FFFD}")?;
            }
        }
        writeln!(f, " version {}", self.version)?;
        let kind = if self.arch.classes > 0 {
            "conditional"
        } else {
            "unconditional"
        };
        writeln!(f, "decoder:     {} ({kind})", self.arch)?;
        writeln!(f, "parameters:  {}", self.arch.parameter_count())?;
        writeln!(
            f,
            "precision:   {} ({}), payload {} bytes",
            self.precision,
            self.precision.storage(),
            self.payload_len
        )
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
    let computed = checksum(&[before, after]);
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

/// CRC-32 of `parts`, one after the other.
fn checksum(parts: &[&[u8]]) -> u32 {
    let mut digest = CRC32.digest();
    for part in parts {
        digest.update(part);
    }
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
/// let arch = Architecture {
///     latent: 2, classes: 0, hidden: heapless::Vec::new(),
///     activation: Activation::Relu, output: 784,
/// };
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
            let mut row = [0.0f32; MAX_WIDTH];
            let row = row.get_mut(..inputs).ok_or(Error::UnsupportedArchitecture(
                "a layer has more than MAX_WIDTH inputs",
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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use std::string::{String, ToString};
    use std::vec::Vec;
    use std::{format, vec};

    use super::*;

    fn arch(latent: u16, classes: u16, hidden: &[u16], activation: Activation) -> Architecture {
        Architecture {
            latent,
            classes,
            hidden: heapless::Vec::from_slice(hidden).unwrap(),
            activation,
            output: PIXELS as u16,
        }
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

    /// `round_layer` gives, bit for bit, what the trainer computed with its own copy of the
    /// rounding before it used this one (`f32::round`, `f32::max`, `f32::clamp` from std).
    #[test]
    fn round_layer_equals_the_trainers_formulas() {
        let inputs = 9;
        // The trainer's copy turned a NaN weight into NaN; the file stores it as 0.
        let values: Vec<f32> = awkward_values(inputs * 40 + 40)
            .into_iter()
            .map(|v| if v.is_nan() { 0.5 } else { v })
            .collect();
        let (weights, biases) = values.split_at(inputs * 40);
        for precision in Precision::ALL {
            let (mut w, mut b) = (weights.to_vec(), biases.to_vec());
            precision.round_layer(inputs, &mut w, &mut b).unwrap();
            let (mut w_ref, mut b_ref) = (weights.to_vec(), biases.to_vec());
            match precision {
                Precision::F32 => {}
                Precision::F16 => {
                    for v in w_ref.iter_mut().chain(b_ref.iter_mut()) {
                        *v = half::f16::from_f32(*v).to_f32();
                    }
                }
                Precision::I8 => {
                    for row in w_ref.chunks_mut(inputs) {
                        let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
                        let scale = max / 127.0;
                        for v in row {
                            *v = if scale > 0.0 {
                                (*v / scale).round().clamp(-127.0, 127.0) * scale
                            } else {
                                0.0
                            };
                        }
                    }
                }
            }
            let pairs = w.iter().chain(&b).zip(w_ref.iter().chain(&b_ref));
            for (k, (&got, &want)) in pairs.enumerate() {
                let ok = same_bits(got, want);
                assert!(ok, "{precision} value {k}: {got:e} vs {want:e}");
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

    /// What `vae inspect` printed before `Header` had a `Display`, written as it was.
    fn inspect_as_the_cli_did(header: &Header) -> String {
        let arch = &header.arch;
        let act = format!("{:?}", arch.activation).to_lowercase();
        let mut shape = format!("[z {} + one-hot {}]", arch.latent, arch.classes);
        for h in &arch.hidden {
            shape.push_str(&format!(" -> {h} {act}"));
        }
        shape.push_str(&format!(" -> {} sigmoid", arch.output));
        let kind = if arch.classes > 0 {
            "conditional"
        } else {
            "unconditional"
        };
        let storage = match header.precision {
            Precision::F32 => "f32 weights and biases",
            Precision::F16 => "f16 weights and biases",
            Precision::I8 => "i8 weights with an f32 scale per row, f32 biases",
        };
        format!(
            "format:      {} version {}\ndecoder:     {shape} ({kind})\nparameters:  {}\n\
             precision:   {} ({storage}), payload {} bytes\n",
            String::from_utf8_lossy(&header.magic),
            header.version,
            arch.parameter_count(),
            header.precision.name(),
            header.payload_len
        )
    }

    #[test]
    fn header_display_is_what_the_cli_printed() {
        let magics = [
            *b"VAED",
            *b"VA\xffD",
            *b"\xc3\xa9AB",
            *b"AB\xc3\xa9",
            *b"ABC\xc3",
        ];
        let shapes: [&[u16]; 4] = [&[], &[128], &[512, 1], &[3, 4, 5, 6]];
        for (k, magic) in magics.into_iter().enumerate() {
            for (hidden, activation) in shapes
                .iter()
                .zip([Activation::Relu, Activation::Sigmoid].iter().cycle())
            {
                for precision in Precision::ALL {
                    let header = Header {
                        magic,
                        version: k as u16 * 300,
                        arch: arch(20, [0, 10][k % 2], hidden, *activation),
                        precision,
                        payload_len: 70_000 + k as u32,
                        crc32: [1, 2, 3, 4],
                    };
                    assert_eq!(header.to_string(), inspect_as_the_cli_did(&header));
                }
            }
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
}
