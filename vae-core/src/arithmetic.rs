//! The arithmetic of each precision: f32 and f16 weights summed in f32 ([`Float`]), i8
//! weights in integers ([`Fixed`]), for the transposed convolutions' streaming
//! ([`transposed_conv::Arithmetic`]): the map's pixels, and each transposed
//! convolution's sums, over the weights of one model.

use crate::format::MAX_CONV_LAYERS;
use crate::pixel::Logit;
use crate::transposed_conv::{Arithmetic, MAX_TAPS};
use crate::{fixed, kernels, scratch, Activation};

/// Output channels whose sums of one tap the i8 decoder takes from one kernel call: as
/// many as the ARMv6-M row loop sums per call.
const GROUP: usize = 32;

/// One layer's bytes in the payload: the weight rows, the i8 scales (empty for f32 and
/// f16) and the biases.
pub(crate) struct LayerBytes<'a> {
    pub(crate) weights: &'a [u8],
    pub(crate) scales: &'a [u8],
    pub(crate) biases: &'a [u8],
}

/// A transposed convolution's bytes with the lengths that index them.
pub(crate) struct ConvBytes<'a> {
    pub(crate) bytes: LayerBytes<'a>,
    /// Values per weight row: `kernel * kernel * input_channels`.
    pub(crate) row_len: usize,
    pub(crate) input_channels: usize,
}

/// The f32 arithmetic of f32 and f16 weights (`B` bytes each, widened by `widen`).
pub(crate) struct Float<'a, W, const B: usize> {
    /// The dense layers' result, the map layer's input.
    pub(crate) input: &'a [f32],
    /// The map layer, whose outputs are the map.
    pub(crate) map: LayerBytes<'a>,
    /// The map's channels.
    pub(crate) channels: usize,
    pub(crate) convs: heapless::Vec<ConvBytes<'a>, MAX_CONV_LAYERS>,
    pub(crate) activation: fn(f32) -> f32,
    pub(crate) widen: W,
}

impl<W: Fn([u8; B]) -> f32, const B: usize> Arithmetic for Float<'_, W, B> {
    fn map_pixel(&self, pixel: usize, dst: &mut [u32]) {
        let (n, c) = (self.input.len(), self.channels);
        if n == 0 {
            return; // no map layer without inputs: `validate` refuses a latent of 0
        }
        let first = pixel * c;
        let weights = self.map.weights.get(first * n * B..(first + c) * n * B);
        let biases = self.map.biases.get(first * B..(first + c) * B);
        if let (Some(weights), Some(biases)) = (weights, biases) {
            kernels::dense::layer(self.input, weights, biases, &self.widen, |o, v| {
                if let Some(slot) = dst.get_mut(o) {
                    *slot = v.to_bits();
                }
            });
        }
        self.finish(dst, c);
    }

    fn bias(&self, layer: usize, o: usize) -> u32 {
        let bias = self
            .convs
            .get(layer)
            .and_then(|c| c.bytes.biases.as_chunks::<B>().0.get(o));
        bias.map_or(0.0, |b| (self.widen)(*b)).to_bits()
    }

    fn tap(&self, layer: usize, o: usize, tap: usize, pixel: &[u32], acc: u32) -> u32 {
        let Some(conv) = self.convs.get(layer) else {
            return acc;
        };
        let n = conv.input_channels;
        let start = (o * conv.row_len + tap * n) * B;
        let weights = conv.bytes.weights.get(start..start + n * B).unwrap_or(&[]);
        let x = scratch::as_f32_ref(pixel.get(..n).unwrap_or(&[]));
        kernels::transposed_conv::dot_float(f32::from_bits(acc), x, weights, &self.widen).to_bits()
    }

    fn gather(
        &self,
        layer: usize,
        taps: &[(usize, usize)],
        pixels: &[u32],
        dst: &mut [u32],
        channels: usize,
    ) {
        let Some(conv) = self.convs.get(layer) else {
            return;
        };
        let n = conv.input_channels;
        // Each tap's input pixel and where its weights start in a row, found once for
        // all output channels.
        let mut inputs: [(&[f32], usize); MAX_TAPS] = [(&[], 0); MAX_TAPS];
        for (input, &(tap, at)) in inputs.iter_mut().zip(taps) {
            let x = scratch::as_f32_ref(pixels.get(at..at + n).unwrap_or(&[]));
            *input = (x, tap * n * B);
        }
        let inputs = inputs.get(..taps.len()).unwrap_or(&[]);
        let biases = conv.bytes.biases.as_chunks::<B>().0;
        let out = dst.get_mut(..channels).unwrap_or(&mut []);
        let (weights, row_bytes) = (conv.bytes.weights, conv.row_len * B);
        kernels::transposed_conv::gather_float(
            inputs,
            weights,
            row_bytes,
            biases,
            out,
            &self.widen,
        );
    }

    fn finish(&self, slot: &mut [u32], channels: usize) {
        for v in slot.iter_mut().take(channels) {
            *v = (self.activation)(f32::from_bits(*v)).to_bits();
        }
    }

    fn logit(&self, v: u32) -> Logit {
        Logit::Float(f32::from_bits(v))
    }
}

/// The integer arithmetic of i8 weights.
pub(crate) struct Fixed<'a> {
    /// The dense layers' result, quantized: the map layer's input.
    pub(crate) input: kernels::QuantizedInput<'a>,
    /// The map layer, whose outputs are the map.
    pub(crate) map: LayerBytes<'a>,
    /// The map's channels.
    pub(crate) channels: usize,
    pub(crate) convs: heapless::Vec<ConvBytes<'a>, MAX_CONV_LAYERS>,
    pub(crate) activation: Activation,
}

impl Arithmetic for Fixed<'_> {
    fn map_pixel(&self, pixel: usize, dst: &mut [u32]) {
        let (n, c) = (self.input.values.len(), self.channels);
        let first = pixel * c;
        let weights = self.map.weights.get(first * n..(first + c) * n);
        let scales = self.map.scales.as_chunks::<4>().0.get(first..first + c);
        let biases = self.map.biases.as_chunks::<4>().0.get(first..first + c);
        if let (Some(weights), Some(scales), Some(biases)) = (weights, scales, biases) {
            let shift = self.input.shift;
            kernels::dense::layer_i8(&self.input, weights, |o, acc| {
                if let (Some(slot), Some(scale), Some(bias)) =
                    (dst.get_mut(o), scales.get(o), biases.get(o))
                {
                    *slot = fixed::output(acc, scale, bias, shift) as u32;
                }
            });
        }
        self.finish(dst, c);
    }

    fn bias(&self, layer: usize, o: usize) -> u32 {
        let bias = self
            .convs
            .get(layer)
            .and_then(|c| c.bytes.biases.as_chunks::<4>().0.get(o));
        bias.map_or(0, fixed::bias) as u32
    }

    fn tap(&self, layer: usize, o: usize, tap: usize, pixel: &[u32], acc: u32) -> u32 {
        let Some(conv) = self.convs.get(layer) else {
            return acc;
        };
        let n = conv.input_channels;
        let start = o * conv.row_len + tap * n;
        let weights = conv.bytes.weights.get(start..start + n).unwrap_or(&[]);
        let Some(scale) = conv.bytes.scales.as_chunks::<4>().0.get(o) else {
            return acc;
        };
        let x = kernels::QuantizedInput {
            values: scratch::as_i32_ref(pixel.get(..n).unwrap_or(&[])),
            shift: pixel.get(n).copied().unwrap_or(0),
        };
        let sum = kernels::transposed_conv::dot_i8(&x, weights);
        (acc as i32).saturating_add(fixed::term(sum, scale, x.shift)) as u32
    }

    fn gather(
        &self,
        layer: usize,
        taps: &[(usize, usize)],
        pixels: &[u32],
        dst: &mut [u32],
        channels: usize,
    ) {
        let Some(conv) = self.convs.get(layer) else {
            return;
        };
        let n = conv.input_channels;
        let scales = conv.bytes.scales.as_chunks::<4>().0;
        let biases = conv.bytes.biases.as_chunks::<4>().0;
        let out = scratch::as_i32(dst.get_mut(..channels).unwrap_or(&mut []));
        for (acc, bias) in out.iter_mut().zip(biases) {
            *acc = fixed::bias(bias);
        }
        // A group of output channels at a time, tap by tap: the tap's sums for every
        // channel of the group in one kernel call, then each channel's term added to its
        // sum. Each output still gets the bias, then its terms in the taps' order (the
        // same saturating sums as one output at a time); each tap's input and weights are
        // found once per group.
        let mut sums = [0i32; GROUP];
        let groups = out.chunks_mut(GROUP).zip(scales.chunks(GROUP));
        for (g, (out, scales)) in groups.enumerate() {
            let first = g * GROUP * conv.row_len;
            let sums = sums.get_mut(..out.len()).unwrap_or(&mut []);
            for &(tap, at) in taps {
                let x = kernels::QuantizedInput {
                    values: scratch::as_i32_ref(pixels.get(at..at + n).unwrap_or(&[])),
                    shift: pixels.get(at + n).copied().unwrap_or(0),
                };
                let weights = conv.bytes.weights.get(first + tap * n..).unwrap_or(&[]);
                kernels::transposed_conv::strided_i8(&x, weights, conv.row_len, sums);
                for ((acc, scale), &sum) in out.iter_mut().zip(scales).zip(sums.iter()) {
                    *acc = acc.saturating_add(fixed::term(sum, scale, x.shift));
                }
            }
        }
    }

    fn finish(&self, slot: &mut [u32], channels: usize) {
        let slot = scratch::as_i32(slot);
        let Some((values, rest)) = slot.split_at_mut_checked(channels) else {
            return;
        };
        for v in values.iter_mut() {
            *v = match self.activation {
                Activation::Relu => (*v).max(0),
                Activation::Sigmoid => fixed::from_f32(crate::pixel::sigmoid(fixed::to_f32(*v))),
            };
        }
        let shift = kernels::quantize_in_place(values);
        if let Some(s) = rest.first_mut() {
            *s = shift as i32;
        }
    }

    fn logit(&self, v: u32) -> Logit {
        Logit::Fixed(v as i32)
    }
}
