//! The values each precision stores, as f32: what a decoder reading a file computes with.
//! The writer stores them through the same functions.

use super::header::Architecture;
use super::names::Precision;
use crate::Error;

impl Precision {
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
    /// The writer ([`encode`](crate::encode)) quantizes through the same functions, so the two cannot
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
    /// whose parameters `values` holds in the order [`encode`](crate::encode) takes them; the error is
    /// [`Error::LengthMismatch`] unless it holds exactly `arch.parameter_count()`.
    ///
    /// ```
    /// use vae_core::{Activation, Architecture, Precision};
    /// let arch = Architecture::dense(2, 0, heapless::Vec::new(), Activation::Relu);
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

/// The f16 a file stores for `v`: nearest, ties to even.
pub(super) fn to_f16(v: f32) -> half::f16 {
    half::f16::from_f32(v)
}

/// The scale of an i8 row: `max |w| / 127`, NaN ignored; 0 for a row of zeros, infinite
/// if a weight is.
pub(super) fn i8_scale(row: &[f32]) -> f32 {
    let max = row
        .iter()
        .fold(0.0f32, |m, w| if w.abs() > m { w.abs() } else { m });
    max / 127.0
}

/// The `q` the file stores for weight `w`: `round(w / scale)` clamped to -127..=127,
/// halves away from zero, as an f32 (exactly an `i8`'s value); 0 where the quotient is
/// NaN (a NaN weight, or a 0 weight over a 0 scale).
pub(super) fn quantize_i8(w: f32, scale: f32) -> f32 {
    let q = libm::roundf(w / scale).clamp(-127.0, 127.0);
    if q.is_nan() {
        0.0
    } else {
        q
    }
}
