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
//! | payload: for each layer, weights row by row ([out][in]),     |
//! | then biases [out]; each value f16 or f32, little-endian      |
//! +--------------------------------------------------------------+
//! ```
//!
//! The CRC covers every header byte before it and the whole payload, so a flipped bit
//! anywhere is caught, not only in the weights. The payload is read in place: values are
//! decoded from bytes one at a time, so the file needs no particular alignment in flash.

use crc::{Crc, CRC_32_ISO_HDLC};
use serde::{Deserialize, Serialize};

use crate::Error;

/// First four bytes of every model file.
pub const MAGIC: [u8; 4] = *b"VAED";

/// The format version this build reads and writes. Bump on any layout change and record
/// the change in CHANGELOG.md.
pub const FORMAT_VERSION: u16 = 1;

/// Pixels in one generated image (28 x 28).
pub const PIXELS: usize = 28 * 28;

/// Side length of a generated image.
pub const IMAGE_SIDE: usize = 28;

/// Most hidden layers a decoder may have.
pub const MAX_HIDDEN_LAYERS: usize = 4;

/// Widest decoder input or hidden layer the fixed-size scratch buffers hold.
pub const MAX_WIDTH: usize = 512;

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
}

impl Precision {
    /// Bytes per stored value.
    pub const fn bytes(self) -> usize {
        match self {
            Precision::F32 => 4,
            Precision::F16 => 2,
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
        self.parameter_count().saturating_mul(precision.bytes())
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
        postcard::take_from_bytes::<Header>(bytes).map_err(|_| Error::MalformedHeader)
    }

    /// The stored checksum as a number.
    pub fn stored_crc(&self) -> u32 {
        u32::from_le_bytes(self.crc32)
    }
}

/// Splits a whole file into its header and payload, checking sizes and the checksum.
pub(crate) fn split_and_verify(bytes: &[u8]) -> Result<(Header, &[u8]), Error> {
    let (header, rest) = Header::read(bytes)?;
    header.arch.validate()?;
    let expected = header.arch.payload_len(header.precision);
    let announced = header.payload_len as usize;
    if announced != expected {
        return Err(Error::SizeMismatch {
            expected,
            found: announced,
        });
    }
    if rest.len() < expected {
        return Err(Error::Truncated {
            expected,
            found: rest.len(),
        });
    }
    if rest.len() > expected {
        return Err(Error::SizeMismatch {
            expected,
            found: rest.len(),
        });
    }
    let header_len = bytes.len() - rest.len();
    let covered = bytes
        .get(..header_len.saturating_sub(CRC_LEN))
        .ok_or(Error::MalformedHeader)?;
    let computed = checksum(covered, rest);
    if computed != header.stored_crc() {
        return Err(Error::ChecksumMismatch {
            stored: header.stored_crc(),
            computed,
        });
    }
    Ok((header, rest))
}

fn checksum(header_prefix: &[u8], payload: &[u8]) -> u32 {
    let mut digest = CRC32.digest();
    digest.update(header_prefix);
    digest.update(payload);
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
    Ok(header_len.saturating_add(arch.payload_len(precision)))
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
/// `values` yields every parameter in payload order: for each layer, the weights row by
/// row (`[out][in]`, so output `o` reads inputs `0..in` from one contiguous row), then the
/// biases. Values are rounded to `precision` here, so quantization is defined once.
///
/// ```
/// use vae_core::{encode, encoded_len, Activation, Architecture, Model, Precision};
/// let arch = Architecture {
///     latent: 2, classes: 0, hidden: heapless::Vec::new(),
///     activation: Activation::Relu, output: 784,
/// };
/// let values = (0..arch.parameter_count()).map(|i| i as f32 * 1e-3);
/// let mut file = vec![0u8; encoded_len(&arch, Precision::F16).unwrap()];
/// let len = encode(&arch, Precision::F16, values, &mut file).unwrap();
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
    let header_len = needed - payload_len;
    let (head, payload) = file.split_at_mut(header_len);

    let mut written = 0usize;
    let mut slots = payload.chunks_exact_mut(precision.bytes());
    for value in values {
        let slot = slots.next().ok_or(Error::SizeMismatch {
            expected: payload_len,
            found: payload_len.saturating_add(precision.bytes()),
        })?;
        match precision {
            Precision::F32 => slot.copy_from_slice(&value.to_le_bytes()),
            Precision::F16 => slot.copy_from_slice(&half::f16::from_f32(value).to_le_bytes()),
        }
        written = written.saturating_add(precision.bytes());
    }
    if written != payload_len {
        return Err(Error::SizeMismatch {
            expected: payload_len,
            found: written,
        });
    }

    // The header is written twice: once to learn where the CRC field sits (it is the
    // last four header bytes), once with the CRC filled in. Its length does not change.
    let mut header = header_for(arch, precision)?;
    postcard::to_slice(&header, head).map_err(|_| Error::MalformedHeader)?;
    let crc = checksum(head.get(..header_len - CRC_LEN).unwrap_or(&[]), payload);
    header.crc32 = crc.to_le_bytes();
    postcard::to_slice(&header, head).map_err(|_| Error::MalformedHeader)?;
    Ok(needed)
}
