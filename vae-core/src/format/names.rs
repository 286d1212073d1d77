//! The activations and weight precisions a file can name, with the names the command
//! line, JSON and file names use.

use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

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

/// A name that is not one of [`Activation::ALL`](Activation::ALL)'s or
/// [`Precision::ALL`](Precision::ALL)'s, from their `FromStr`.
///
/// ```
/// use vae_core::{Precision, UnknownName};
/// let err = "bf16".parse::<Precision>().unwrap_err();
/// assert_eq!(err, UnknownName::Precision);
/// assert_eq!(err.to_string(), "unknown precision: expected f16, f32 or i8");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnknownName {
    /// Not the name of an [`Activation`](Activation).
    Activation,
    /// Not the name of a [`Precision`](Precision).
    Precision,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnknownName::Activation => {
                f.write_str("unknown activation: expected ")?;
                write_choices(f, &Activation::ALL.map(Activation::name))
            }
            UnknownName::Precision => {
                f.write_str("unknown precision: expected ")?;
                write_choices(f, &Precision::ALL.map(Precision::name))
            }
        }
    }
}

/// `a`, `a or b`, `a, b or c`, ...
fn write_choices(f: &mut fmt::Formatter<'_>, names: &[&str]) -> fmt::Result {
    let last = names.len().saturating_sub(1);
    for (k, name) in names.iter().enumerate() {
        match k {
            0 => {}
            k if k == last => f.write_str(" or ")?,
            _ => f.write_str(", ")?,
        }
        f.write_str(name)?;
    }
    Ok(())
}

impl core::error::Error for UnknownName {}
