//! The decoded header of a model file, and the decoder's shape it holds.

use core::fmt;

use serde::{Deserialize, Serialize};

use super::layout::{MAX_CLASSES, MAX_HIDDEN_LAYERS, MAX_WIDTH, PIXELS};
use super::names::{Activation, Precision};
use super::transposed_conv::{TransposedConvs, KERNEL};
use crate::Error;

/// The longest weight row ([`Architecture::layers`]) a valid file has: a transposed
/// convolution's, 3 x 3 taps of up to [`MAX_WIDTH`] input channels (a dense layer's has
/// at most `MAX_WIDTH`). The i8 writer holds one row (18 KiB) to find its scale.
pub(crate) const MAX_ROW: usize = KERNEL as usize * KERNEL as usize * MAX_WIDTH;

/// Decoder shape: `[z, one-hot(class)] -> hidden... -> output`, or with an
/// [`TransposedConvs`] part `[z, one-hot(class)] -> hidden... -> map -> transposed
/// convolutions -> output`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Architecture {
    /// Size of the latent code `z`.
    pub latent: u16,
    /// Number of classes fed as a one-hot vector after `z` (10 for digits, 0 for none).
    pub classes: u16,
    /// Widths of the hidden layers, input side first.
    pub hidden: heapless::Vec<u16, MAX_HIDDEN_LAYERS>,
    /// Non-linearity after each hidden layer (and after the map and each transposed
    /// convolution but the last).
    pub activation: Activation,
    /// The convolutional part after the dense layers, `None` for a dense decoder (every
    /// version 2 file).
    pub transposed_convs: Option<TransposedConvs>,
    /// Output size; always [`PIXELS`] in this version.
    pub output: u16,
}

impl Architecture {
    /// A dense decoder, `[z, one-hot(class)] -> hidden... -> 784`, each hidden layer
    /// followed by `activation`.
    ///
    /// ```
    /// use vae_core::{Activation, Architecture};
    /// let hidden = heapless::Vec::from_slice(&[128]).unwrap();
    /// let arch = Architecture::dense(10, 10, hidden, Activation::Relu);
    /// assert_eq!(arch.to_string(), "[z 10 + one-hot 10] -> 128 relu -> 784 sigmoid");
    /// assert!(arch.validate().is_ok());
    /// ```
    pub fn dense(
        latent: u16,
        classes: u16,
        hidden: heapless::Vec<u16, MAX_HIDDEN_LAYERS>,
        activation: Activation,
    ) -> Self {
        Architecture {
            latent,
            classes,
            hidden,
            activation,
            transposed_convs: None,
            output: PIXELS as u16,
        }
    }

    /// Length of the decoder input: latent size plus classes.
    ///
    /// ```
    /// # let arch = vae_core::Architecture::dense(10, 10, heapless::Vec::new(), vae_core::Activation::Relu);
    /// assert_eq!(arch.input_len(), 20);
    /// ```
    pub fn input_len(&self) -> usize {
        usize::from(self.latent) + usize::from(self.classes)
    }

    /// `(inputs, outputs)` of each dense layer, input side first: the last one has
    /// `output` outputs, or with an [`TransposedConvs`] part the map's
    /// [`map_len`](TransposedConvs::map_len).
    ///
    /// ```
    /// use vae_core::{Activation, Architecture};
    /// let arch = Architecture::dense(10, 10, heapless::Vec::from_slice(&[128]).unwrap(), Activation::Relu);
    /// assert!(arch.dense_layers().eq([(20, 128), (128, 784)]));
    /// ```
    pub fn dense_layers(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let last = match &self.transposed_convs {
            Some(up) => up.map_len(),
            None => usize::from(self.output),
        };
        let widths = self
            .hidden
            .iter()
            .map(|&h| usize::from(h))
            .chain(core::iter::once(last));
        let inputs =
            core::iter::once(self.input_len()).chain(self.hidden.iter().map(|&h| h.into()));
        inputs.zip(widths)
    }

    /// Every layer as the payload stores it, input side first: `(inputs, outputs)` of a
    /// weight matrix of `outputs` rows of `inputs` values, followed by `outputs` biases.
    /// The dense layers ([`dense_layers`](Self::dense_layers)), then each transposed
    /// convolution as `(kernel * kernel * input channels, output channels)`: row `o` is
    /// `w[o][ky][kx][ci]`.
    ///
    /// ```
    /// use vae_core::{Activation, Architecture, TransposedConv, TransposedConvs};
    /// let arch = Architecture::dense(10, 10, heapless::Vec::from_slice(&[128]).unwrap(), Activation::Relu);
    /// assert!(arch.layers().eq([(20, 128), (128, 784)]));
    /// assert_eq!(arch.parameter_count(), 20 * 128 + 128 + 128 * 784 + 784);
    ///
    /// let conv = |channels, stride| TransposedConv { channels, kernel: 3, stride };
    /// let tutorial = Architecture {
    ///     latent: 2, classes: 0, hidden: heapless::Vec::new(), activation: Activation::Relu,
    ///     transposed_convs: Some(TransposedConvs {
    ///         side: 7, channels: 32,
    ///         layers: heapless::Vec::from_slice(&[conv(64, 2), conv(32, 2), conv(1, 1)]).unwrap(),
    ///     }),
    ///     output: 784,
    /// };
    /// assert!(tutorial.layers().eq([(2, 1568), (288, 64), (576, 32), (288, 1)]));
    /// assert_eq!(tutorial.parameter_count(), 41_953);
    /// assert_eq!(tutorial.multiply_accumulates(), 4_480_192);
    /// ```
    pub fn layers(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let convs = self
            .transposed_convs
            .iter()
            .flat_map(|up| up.shapes())
            .map(|s| (s.row_len(), s.output_channels));
        self.dense_layers().chain(convs)
    }

    /// Multiply-accumulates per decoded image (the figure the firmware divides its cost
    /// by): for each dense layer inputs times outputs, for each transposed convolution
    /// the products it computes, those of the kernel taps that land inside its output
    /// ([`TransposedConvs::multiply_accumulates`]).
    ///
    /// ```
    /// use vae_core::{Activation, Architecture};
    /// let arch = Architecture::dense(10, 10, heapless::Vec::from_slice(&[128]).unwrap(), Activation::Relu);
    /// assert_eq!(arch.multiply_accumulates(), 20 * 128 + 128 * 784);
    /// ```
    pub fn multiply_accumulates(&self) -> usize {
        let dense = self.dense_layers().map(|(i, o)| i.saturating_mul(o));
        let convs = self
            .transposed_convs
            .iter()
            .map(TransposedConvs::multiply_accumulates);
        dense.chain(convs).fold(0usize, usize::saturating_add)
    }

    /// Number of stored values (weights and biases).
    pub fn parameter_count(&self) -> usize {
        // Saturated: `validate` caps every width, so a valid shape never reaches u32::MAX.
        self.layers()
            .map(|(i, o)| i.saturating_mul(o).saturating_add(o))
            .fold(0usize, usize::saturating_add)
    }

    /// Checks that this decoder fits the fixed-size buffers of this crate.
    ///
    /// ```
    /// use vae_core::{Activation, Architecture, Error};
    /// let arch = Architecture::dense(0, 10, heapless::Vec::new(), Activation::Relu);
    /// assert!(matches!(arch.validate(), Err(Error::UnsupportedArchitecture(_))));
    /// let many = Architecture { latent: 2, classes: 257, ..arch.clone() };
    /// assert!(matches!(many.validate(), Err(Error::UnsupportedArchitecture(_))));
    /// assert!(Architecture { classes: 256, ..many }.validate().is_ok());
    /// ```
    ///
    /// An [`TransposedConvs`] part must pass [`TransposedConvs::validate`].
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
        if let Some(up) = &self.transposed_convs {
            up.validate()?;
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
/// use vae_core::{Activation, Architecture, TransposedConv, TransposedConvs};
/// let conv = |channels, stride| TransposedConv { channels, kernel: 3, stride };
/// let arch = Architecture {
///     latent: 2, classes: 0, hidden: heapless::Vec::new(), activation: Activation::Relu,
///     transposed_convs: Some(TransposedConvs {
///         side: 7, channels: 32,
///         layers: heapless::Vec::from_slice(&[conv(64, 2), conv(32, 2), conv(1, 1)]).unwrap(),
///     }),
///     output: 784,
/// };
/// assert_eq!(
///     arch.to_string(),
///     "[z 2 + one-hot 0] -> 7x7x32 relu -> tconv 3x3/2 14x14x64 relu \
///      -> tconv 3x3/2 28x28x32 relu -> tconv 3x3/1 28x28x1 -> 784 sigmoid"
/// );
/// ```
///
/// ```
/// use vae_core::{Activation, Architecture};
/// let arch = Architecture::dense(10, 10, heapless::Vec::from_slice(&[128, 256]).unwrap(), Activation::Relu);
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
        if let Some(up) = &self.transposed_convs {
            up.describe(f, self.activation)?;
        }
        write!(f, " -> {} {}", self.output, Activation::Sigmoid)
    }
}

/// The decoded header of a model file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`MAGIC`](crate::MAGIC).
    pub magic: [u8; 4],
    /// Format version, [`FORMAT_VERSION`](crate::FORMAT_VERSION) for files this build writes.
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

impl Header {
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
///     "format:      VAED version 3\n\
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
