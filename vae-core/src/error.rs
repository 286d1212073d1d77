//! The crate's error type. It names no other module of the crate, so every module may
//! return it.

use core::fmt;

/// Everything that can go wrong when reading, writing or running a model file.
///
/// Each kind of corruption has its own variant, so a caller (and a test) can tell a
/// truncated file from a flipped bit or a file written by another format version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The file does not start with [`MAGIC`](crate::MAGIC): it is not a model file.
    BadMagic,
    /// The file was written with a format version this build does not read.
    UnsupportedVersion {
        /// Version named in the file.
        found: u16,
        /// The oldest version this build reads,
        /// [`OLDEST_VERSION`](crate::OLDEST_VERSION).
        oldest: u16,
        /// The newest version this build reads, the one it writes
        /// ([`FORMAT_VERSION`](crate::FORMAT_VERSION)); it reads every version from
        /// `oldest` to this one.
        supported: u16,
    },
    /// The header could not be decoded (cut short or garbled).
    MalformedHeader,
    /// The architecture in the header is outside what this decoder supports.
    UnsupportedArchitecture(&'static str),
    /// The payload is shorter than the header says.
    Truncated {
        /// Payload bytes the header announces.
        expected: usize,
        /// Payload bytes actually present.
        found: usize,
    },
    /// The payload length does not match the architecture, or bytes follow the payload.
    SizeMismatch {
        /// Bytes the architecture and precision require.
        expected: usize,
        /// Bytes found.
        found: usize,
    },
    /// The CRC-32 stored in the header does not match the file's contents.
    ChecksumMismatch {
        /// Checksum stored in the header.
        stored: u32,
        /// Checksum computed over the header and payload.
        computed: u32,
    },
    /// A caller-provided slice has the wrong length.
    LengthMismatch {
        /// Length required.
        expected: usize,
        /// Length given.
        found: usize,
    },
    /// The requested digit is not one of the model's classes.
    DigitOutOfRange {
        /// Digit requested.
        digit: u8,
        /// Number of classes the model was trained on.
        classes: u16,
    },
    /// A digit was requested from a model trained without labels.
    NotConditional,
    /// A conditional model was asked to decode without a digit.
    DigitRequired,
    /// The output buffer given to the writer is too small.
    BufferTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes available.
        available: usize,
    },
    /// A morph step outside `0..steps` was asked for.
    StepOutOfRange {
        /// Step asked for.
        step: u16,
        /// Images on the morph's line; the steps are `0..steps`.
        steps: u16,
    },
    /// A sampling temperature that is negative, NaN or infinite was asked for.
    TemperatureOutOfRange,
    /// The scratch memory given to the decoder is smaller than
    /// [`Model::scratch_len`](crate::Model::scratch_len).
    ScratchTooSmall {
        /// 32-bit words the model needs.
        needed: usize,
        /// 32-bit words given.
        available: usize,
    },
    /// The writer was given fewer values than the architecture has parameters.
    TooFewValues {
        /// Values the architecture has ([`Architecture::parameter_count`](crate::Architecture::parameter_count)).
        expected: usize,
        /// Values given.
        found: usize,
    },
    /// The writer was given more values than the architecture has parameters. It stops
    /// reading at the first value too many, so the number given is not known.
    TooManyValues {
        /// Values the architecture has ([`Architecture::parameter_count`](crate::Architecture::parameter_count)).
        expected: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Error::BadMagic => f.write_str("not a VAE model file (bad magic bytes)"),
            Error::UnsupportedVersion {
                found,
                oldest,
                supported,
            } => write!(
                f,
                "model file format version {found} is not supported (this build reads version {oldest} to version {supported})"
            ),
            Error::MalformedHeader => f.write_str("model file header is malformed or cut short"),
            Error::UnsupportedArchitecture(why) => write!(f, "unsupported architecture: {why}"),
            Error::Truncated { expected, found } => write!(
                f,
                "model file is truncated: payload has {found} of {expected} bytes"
            ),
            Error::SizeMismatch { expected, found } => write!(
                f,
                "model payload size mismatch: expected {expected} bytes, found {found}"
            ),
            Error::ChecksumMismatch { stored, computed } => write!(
                f,
                "model file is corrupt: CRC-32 stored {stored:#010x}, computed {computed:#010x}"
            ),
            Error::LengthMismatch { expected, found } => {
                write!(f, "buffer length mismatch: expected {expected}, got {found}")
            }
            Error::DigitOutOfRange { digit, classes } => write!(
                f,
                "digit {digit} is out of range: the model knows {classes} classes"
            ),
            Error::NotConditional => {
                f.write_str("this model was trained without labels and cannot draw a chosen digit")
            }
            Error::DigitRequired => f.write_str("this model draws a chosen digit: give one"),
            Error::BufferTooSmall { needed, available } => write!(
                f,
                "output buffer too small: need {needed} bytes, have {available}"
            ),
            Error::StepOutOfRange { step, steps: 0 } => write!(
                f,
                "morph step {step} is out of range: a morph of 0 images has no steps"
            ),
            Error::StepOutOfRange { step, steps } => write!(
                f,
                "morph step {step} is out of range: a morph of {steps} images has steps 0 to {}",
                steps - 1
            ),
            Error::TemperatureOutOfRange => {
                f.write_str("the temperature must be a finite number, 0 or above")
            }
            Error::ScratchTooSmall { needed, available } => write!(
                f,
                "scratch memory too small: the decoder needs {needed} 32-bit words, {available} were given"
            ),
            Error::TooFewValues { expected, found } => write!(
                f,
                "too few values for the model: it has {expected} parameters, {found} were given"
            ),
            Error::TooManyValues { expected } => write!(
                f,
                "too many values for the model: it has {expected} parameters, more were given"
            ),
        }
    }
}

impl core::error::Error for Error {}

#[cfg(test)]
mod tests {
    use std::string::ToString;

    use super::*;

    /// Every error says what went wrong with its numbers: each variant's message holds
    /// the values it carries, and a morph's steps are counted `0 to steps - 1` (none
    /// for a morph of 0 images).
    #[test]
    fn every_error_names_its_numbers() {
        let cases: [(Error, &[&str]); 17] = [
            (Error::BadMagic, &["magic"]),
            (
                Error::UnsupportedVersion {
                    found: 7,
                    oldest: 2,
                    supported: 3,
                },
                &["version 7", "version 2 to version 3"],
            ),
            (Error::MalformedHeader, &["header"]),
            (
                Error::UnsupportedArchitecture("why"),
                &["architecture: why"],
            ),
            (
                Error::Truncated {
                    expected: 90,
                    found: 12,
                },
                &["12 of 90"],
            ),
            (
                Error::SizeMismatch {
                    expected: 90,
                    found: 91,
                },
                &["90", "91"],
            ),
            (
                Error::ChecksumMismatch {
                    stored: 0xabc,
                    computed: 0x1234_5678,
                },
                &["0x00000abc", "0x12345678"],
            ),
            (
                Error::LengthMismatch {
                    expected: 3,
                    found: 4,
                },
                &["expected 3", "got 4"],
            ),
            (
                Error::DigitOutOfRange {
                    digit: 12,
                    classes: 10,
                },
                &["digit 12", "10 classes"],
            ),
            (Error::NotConditional, &["without labels"]),
            (Error::DigitRequired, &["give one"]),
            (
                Error::BufferTooSmall {
                    needed: 100,
                    available: 99,
                },
                &["need 100", "have 99"],
            ),
            (
                Error::StepOutOfRange { step: 7, steps: 5 },
                &["step 7", "5 images", "steps 0 to 4"],
            ),
            (
                Error::TooFewValues {
                    expected: 30,
                    found: 29,
                },
                &["30 parameters", "29 were given"],
            ),
            (Error::TooManyValues { expected: 30 }, &["30 parameters"]),
            (Error::TemperatureOutOfRange, &["finite", "0 or above"]),
            (
                Error::ScratchTooSmall {
                    needed: 2407,
                    available: 2048,
                },
                &["needs 2407", "2048 were given"],
            ),
        ];
        for (error, needles) in cases {
            let message = error.to_string();
            for needle in needles {
                assert!(message.contains(needle), "{error:?}: {message}");
            }
        }
        let none = Error::StepOutOfRange { step: 0, steps: 0 }.to_string();
        assert!(none.contains("0 images has no steps"), "{none}");
    }
}
