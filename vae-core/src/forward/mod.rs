//! The decoder's forward pass over a model's weights in place: dense layers through two
//! buffers, then the output layer, or the transposed convolutions, straight into the
//! caller's image, so that no 784-value buffer is needed on the way to pixels.

use crate::format::{Activation, Architecture, Precision};
use crate::pixel::{sigmoid, Canvas, Logit};
#[cfg(feature = "transposed-conv")]
use crate::MAX_CONV_LAYERS;
use crate::{fixed, kernels, scratch, Error};

#[cfg(feature = "transposed-conv")]
mod transposed_conv;

/// A model's weights, as the forward pass reads them.
pub(crate) struct Forward<'a> {
    pub(crate) arch: &'a Architecture,
    pub(crate) precision: Precision,
    pub(crate) payload: &'a [u8],
}

impl Forward<'_> {
    /// Words of scratch the forward pass needs: two buffers as wide as the widest dense
    /// layer input, and the transposed convolutions' rows.
    pub(crate) fn scratch_len(&self) -> usize {
        #[cfg(feature = "transposed-conv")]
        let conv = self
            .arch
            .transposed_convs
            .as_ref()
            .map_or(0, transposed_conv::scratch_len);
        #[cfg(not(feature = "transposed-conv"))]
        let conv = 0;
        kernels::dense::scratch_words(self.dense_width()).saturating_add(conv)
    }

    /// The widest input of a dense layer: the decoder input or a hidden layer.
    fn dense_width(&self) -> usize {
        let arch = self.arch;
        arch.hidden
            .iter()
            .map(|&h| usize::from(h))
            .fold(arch.input_len(), usize::max)
    }

    /// The forward pass in `scratch` (at least [`scratch_len`](Self::scratch_len) words,
    /// which the caller has checked):
    /// hidden layers through two buffers, the output layer (or the transposed convolutions)
    /// straight into `canvas`, so no 784-value buffer is needed on the
    /// way to pixels. f32 and f16 weights run in f32; i8 weights in integers (see
    /// [`fixed`](crate::fixed)).
    ///
    /// The precision is chosen here, once: each arm runs one pass of its own to the
    /// last pixel, the transposed convolutions' streaming instantiated for its
    /// arithmetic.
    pub(crate) fn run(
        &self,
        input: &[f32],
        scratch: &mut [u32],
        canvas: &mut impl Canvas,
    ) -> Result<(), Error> {
        let mut emit = move |o: usize, logit: Logit| canvas.put(o, logit);
        let arch = &self.arch;
        let expected = arch.input_len();
        if input.len() != expected {
            return Err(Error::LengthMismatch {
                expected,
                found: input.len(),
            });
        }
        // `scratch` is not measured against `scratch_len` again here: every caller
        // (`Model`'s decoding methods) has checked it, and each image would pay for the
        // sum once more (a loop over the layers' shapes). With less, the dense buffers'
        // split or the transposed convolutions' own check refuses it.
        match self.precision {
            Precision::F32 => self.forward_float(input, scratch, f32::from_le_bytes, &mut emit),
            Precision::F16 => self.forward_float(input, scratch, kernels::f16_to_f32, &mut emit),
            Precision::I8 => self.forward_i8(input, scratch, &mut emit),
        }
    }

    /// The f32 and f16 forward pass: each dense output is `bias + w[0]*x[0] + w[1]*x[1] +
    /// ...`, summed in that order in f32; the transposed convolutions as `transposed_conv` documents.
    #[inline(never)]
    fn forward_float<const B: usize>(
        &self,
        input: &[f32],
        scratch: &mut [u32],
        widen: impl Fn([u8; B]) -> f32 + Copy,
        mut emit: impl FnMut(usize, Logit),
    ) -> Result<(), Error> {
        let arch = &self.arch;
        let activation = match arch.activation {
            Activation::Relu => relu,
            Activation::Sigmoid => sigmoid,
        };
        let width = self.dense_width();
        let (first, rest) = scratch.split_at_mut_checked(width).ok_or(TOO_WIDE)?;
        let (second, conv) = rest.split_at_mut_checked(width).ok_or(TOO_WIDE)?;
        let (mut current, mut next) = (scratch::as_f32(first), scratch::as_f32(second));
        let mut payload = Payload::new(self.payload);
        let count = arch.hidden.len() + 1;
        for (index, (n_in, n_out)) in arch.dense_layers().enumerate() {
            let last = index + 1 == count;
            let n_in = with_inputs(n_in)?;
            let x = if index == 0 {
                input.get(..n_in).ok_or(TOO_WIDE)?
            } else {
                current.get(..n_in).ok_or(TOO_WIDE)?
            };
            let weights = payload.next(n_in.saturating_mul(n_out).saturating_mul(B))?;
            let biases = payload.next(n_out.saturating_mul(B))?;
            if let (true, Some(up)) = (last, &arch.transposed_convs) {
                // The map layer: its outputs are computed a map pixel at a time.
                #[cfg(not(feature = "transposed-conv"))]
                return Err(no_transposed_conv(up, conv));
                #[cfg(feature = "transposed-conv")]
                return transposed_conv::run(
                    &transposed_conv::Float {
                        input: x,
                        map: transposed_conv::LayerBytes {
                            weights,
                            scales: &[],
                            biases,
                        },
                        channels: usize::from(up.channels),
                        convs: self.convs(&mut payload, B, false)?,
                        activation,
                        widen,
                    },
                    up,
                    conv,
                    &mut emit,
                );
            }
            let mut y = if last {
                None
            } else {
                Some(next.get_mut(..n_out).ok_or(TOO_WIDE)?)
            };
            kernels::dense::layer(x, weights, biases, widen, |o, v| match &mut y {
                None => emit(o, Logit::Float(v)),
                Some(y) => {
                    if let Some(slot) = y.get_mut(o) {
                        *slot = activation(v);
                    }
                }
            });
            core::mem::swap(&mut current, &mut next);
        }
        Ok(())
    }

    /// The payload's transposed convolutions, after the dense layers: `width` bytes per
    /// weight, and with `scales` an f32 scale per output channel (i8).
    #[cfg(feature = "transposed-conv")]
    fn convs<'p>(
        &self,
        payload: &mut Payload<'p>,
        width: usize,
        scales: bool,
    ) -> Result<heapless::Vec<transposed_conv::ConvBytes<'p>, MAX_CONV_LAYERS>, Error> {
        let mut convs = heapless::Vec::new();
        for shape in self.arch.transposed_convs.iter().flat_map(|up| up.shapes()) {
            let (row_len, outputs) = (shape.row_len(), shape.output_channels);
            let weights = payload.next(row_len.saturating_mul(outputs).saturating_mul(width))?;
            let scales = if scales {
                payload.next(outputs.saturating_mul(4))?
            } else {
                &[]
            };
            let biases =
                payload.next(outputs.saturating_mul(if scales.is_empty() { width } else { 4 }))?;
            let conv = transposed_conv::ConvBytes {
                bytes: transposed_conv::LayerBytes {
                    weights,
                    scales,
                    biases,
                },
                row_len,
                input_channels: shape.input_channels,
            };
            convs
                .push(conv)
                .map_err(|_| Error::UnsupportedArchitecture("too many transposed convolutions"))?;
        }
        Ok(convs)
    }

    /// The i8 forward pass, in integers: the input in Q16, then for each dense layer its
    /// input quantized to i16 with a power-of-two scale `2^shift` (15 bits for the
    /// largest), the exact sum `acc = sum_i q[i] * w[i]` in i32, and each output
    /// `round(acc * scale * 2^shift) + round(bias * 2^16)` in Q16, saturated, with `scale`
    /// and `bias` the row's f32 values read by their bits ([`fixed::scaled`]); the
    /// transposed convolutions as `transposed_conv` documents. A sigmoid hidden layer (no committed
    /// model has one) goes through f32.
    #[inline(never)]
    fn forward_i8(
        &self,
        input: &[f32],
        scratch: &mut [u32],
        mut emit: impl FnMut(usize, Logit),
    ) -> Result<(), Error> {
        let arch = &self.arch;
        let activation = arch.activation;
        let width = self.dense_width();
        let (first, rest) = scratch.split_at_mut_checked(width).ok_or(TOO_WIDE)?;
        let (second, conv) = rest.split_at_mut_checked(width).ok_or(TOO_WIDE)?;
        let (mut current, mut next) = (scratch::as_i32(first), scratch::as_i32(second));
        for (slot, v) in current.iter_mut().zip(input) {
            *slot = fixed::from_f32(*v);
        }
        let mut payload = Payload::new(self.payload);
        let count = arch.hidden.len() + 1;
        for (index, (n_in, n_out)) in arch.dense_layers().enumerate() {
            let last = index + 1 == count;
            let n_in = with_inputs(n_in)?;
            let weights = payload.next(n_in.saturating_mul(n_out))?;
            let scales = payload.next(n_out.saturating_mul(4))?;
            let biases = payload.next(n_out.saturating_mul(4))?;
            let q = kernels::QuantizedInput::new(current, n_in);
            if let (true, Some(up)) = (last, &arch.transposed_convs) {
                // The map layer: its outputs are computed a map pixel at a time.
                #[cfg(not(feature = "transposed-conv"))]
                return Err(no_transposed_conv(up, conv));
                #[cfg(feature = "transposed-conv")]
                return transposed_conv::run(
                    &transposed_conv::Fixed {
                        input: q,
                        map: transposed_conv::LayerBytes {
                            weights,
                            scales,
                            biases,
                        },
                        channels: usize::from(up.channels),
                        convs: self.convs(&mut payload, 1, true)?,
                        activation,
                    },
                    up,
                    conv,
                    &mut emit,
                );
            }
            let mut y = if last {
                None
            } else {
                Some(next.get_mut(..n_out).ok_or(TOO_WIDE)?)
            };
            let shift = q.shift;
            let mut rows = scales
                .as_chunks::<4>()
                .0
                .iter()
                .zip(biases.as_chunks::<4>().0);
            kernels::dense::layer_i8(&q, weights, |o, acc| {
                let Some((scale, bias)) = rows.next() else {
                    return;
                };
                let v = fixed::output(acc, scale, bias, shift);
                match &mut y {
                    None => emit(o, Logit::Fixed(v)),
                    Some(y) => {
                        if let Some(slot) = y.get_mut(o) {
                            *slot = match activation {
                                Activation::Relu => v.max(0),
                                Activation::Sigmoid => fixed::from_f32(sigmoid(fixed::to_f32(v))),
                            };
                        }
                    }
                }
            });
            core::mem::swap(&mut current, &mut next);
        }
        Ok(())
    }
}

/// `n`, a layer's input width, if it is not 0 (which `validate` refuses).
fn with_inputs(n: usize) -> Result<usize, Error> {
    match n {
        0 => Err(Error::UnsupportedArchitecture("a layer has no inputs")),
        n => Ok(n),
    }
}

/// The weights of the layers, one part after the other.
struct Payload<'a> {
    bytes: &'a [u8],
    end: usize,
}

impl<'a> Payload<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Payload { bytes, end: 0 }
    }

    /// The next `len` bytes.
    fn next(&mut self, len: usize) -> Result<&'a [u8], Error> {
        let start = self.end;
        self.end = start.saturating_add(len);
        self.bytes.get(start..self.end).ok_or(Error::Truncated {
            expected: self.end,
            found: self.bytes.len(),
        })
    }
}

fn relu(x: f32) -> f32 {
    if x > 0.0 {
        x
    } else {
        0.0
    }
}

/// Refuses a decoder whose layers this build leaves out (`Model::parse` calls it, so that
/// a file is refused when read, not when first decoded).
pub(crate) fn check_built(arch: &Architecture) -> Result<(), Error> {
    if cfg!(not(feature = "transposed-conv")) && arch.transposed_convs.is_some() {
        return Err(LEFT_OUT);
    }
    Ok(())
}

/// The error of a decoder with transposed convolutions in a build without them.
const LEFT_OUT: Error = Error::UnsupportedArchitecture(
    "transposed convolutions, which this build leaves out (vae-core's feature `transposed-conv`)",
);

/// [`LEFT_OUT`] where the forward pass meets transposed convolutions in a build without
/// them, which `check_built` refuses, so this is never returned for a parsed model.
#[cfg(not(feature = "transposed-conv"))]
fn no_transposed_conv(_: &crate::TransposedConvs, _: &mut [u32]) -> Error {
    LEFT_OUT
}

/// "A hidden layer is wider than MAX_WIDTH": `validate` (in `parse`) has capped the
/// widths, so this is never returned for a parsed model.
const TOO_WIDE: Error = Error::UnsupportedArchitecture("a hidden layer is wider than MAX_WIDTH");
