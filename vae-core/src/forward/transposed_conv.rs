//! The transposed convolutions of the decoder forward pass, streamed: the map and the transposed
//! convolutions computed a few rows at a time in caller-supplied scratch memory, so that
//! no whole map is ever held.
//!
//! Order of work. The last transposed convolution takes its input one pixel at a time,
//! in raster order, and adds each pixel's contributions into `kernel` rows of output
//! sums; an output row is turned into pixels as soon as no later input row reaches it.
//! Each input pixel it takes is computed then, by the layer before, from a ring of
//! `ceil(kernel / stride)` of that layer's input rows (the most one output row reads);
//! each of those rows is computed when first needed, from the ring below it, down to the
//! map, whose pixels are the last dense layer's outputs, computed from the dense layers'
//! result for one map pixel at a time. Scratch: the rings, one input pixel and the
//! output sums ([`scratch_len`]); for the tutorial's decoder (map 7x7x32, then 64, 32
//! and 1 channels) 2,399 values, 9.4 KiB, against 147 KiB for its two largest whole maps.
//!
//! Arithmetic. Every output of a transposed convolution is its bias, then one term per
//! input pixel that reaches it, in raster order of the input pixels (row, then column),
//! each term that pixel's channels times the kernel tap's weights, channel by channel:
//! - f32 and f16 weights: one f32 sum, `acc = bias`, then for each input pixel
//!   `acc = acc + x[0]*w[0] + x[1]*w[1] + ...` left to right, the same sum whether the
//!   output is gathered (the inner layers) or scattered (the last one), so every platform
//!   that follows IEEE 754 gets the same bits.
//! - i8 weights: each pixel's channels are quantized to i16 with their own power-of-two
//!   shift (as a dense layer's input, see `kernels::QuantizedInput`) when the pixel is
//!   finished; a term is the exact i32 sum over the pixel's channels, made Q16 by the
//!   output channel's scale and the pixel's shift (`fixed::term`); the output is the
//!   bias in Q16 plus the terms, saturating, in the order above. Integers throughout:
//!   the same bits everywhere.
//!
//! Each value takes one 32-bit word of scratch: f32, or i32 for the i8 decoder (Q16 sums,
//! then the quantized channels as the kernels read them). Each pixel of a ring has one
//! word more than its channels, where the i8 decoder keeps the pixel's shift.

use crate::format::{TransposedConvShape, TransposedConvs, KERNEL, MAX_CONV_LAYERS};
use crate::pixel::Logit;
use crate::{fixed, kernels, scratch, Activation, Error};

/// Most kernel taps that reach one output pixel: every tap of a 3x3 kernel.
pub(crate) const MAX_TAPS: usize = KERNEL as usize * KERNEL as usize;

/// Words one input pixel takes: its channels and the i8 decoder's shift.
fn slot_len(channels: usize) -> usize {
    channels.saturating_add(1)
}

/// Input rows one output row of `s` reads at most: `ceil(kernel / stride)`.
fn ring_rows(s: &TransposedConvShape) -> usize {
    s.kernel.div_ceil(s.stride.max(1))
}

/// Words of scratch the transposed convolutions of a validated `up` needs: a ring of input rows
/// for each transposed convolution but the last, one input pixel of the last, and
/// `kernel` rows of the last one's output sums.
pub(crate) fn scratch_len(up: &TransposedConvs) -> usize {
    let count = up.layers.len();
    up.shapes()
        .enumerate()
        .map(|(index, s)| {
            if index + 1 < count {
                ring_rows(&s)
                    .saturating_mul(s.input_side)
                    .saturating_mul(slot_len(s.input_channels))
            } else {
                let sums = s
                    .kernel
                    .saturating_mul(s.output_side)
                    .saturating_mul(s.output_channels);
                slot_len(s.input_channels).saturating_add(sums)
            }
        })
        .fold(0usize, usize::saturating_add)
}

/// The input rows `lo..=hi` that output row (or column) `y` of `s` reads: those `i` with
/// `stride * i + k - padding == y` for a `k` in `0..kernel`; empty when `lo > hi`.
fn window(s: &TransposedConvShape, y: usize) -> (usize, usize) {
    let top = y.saturating_add(s.padding);
    let stride = s.stride.max(1);
    let hi = (top / stride).min(s.input_side.saturating_sub(1));
    let lo = top
        .saturating_add(1)
        .saturating_sub(s.kernel)
        .div_ceil(stride);
    (lo, hi)
}

/// The arithmetic of one precision: the map's pixels and each transposed convolution's
/// sums, over the weights of one model ([`Float`] and [`Fixed`], below).
/// Values are scratch words, the bits of an f32 or an i32, so that the streaming order
/// above is one piece of code for every precision. The forward pass chooses the
/// precision, once, and hands that precision's arithmetic to [`run`] as a trait object:
/// one copy of the streaming code keeps the firmware's flash for the weights, and a
/// copy per precision, measured, was slower on the Cortex-M0 (its eight low registers)
/// than a call per term.
pub(crate) trait Arithmetic {
    /// Writes map pixel `pixel` (`y * side + x`) into `dst`: its channels, activated and
    /// ready as the first transposed convolution's input ([`finish`](Self::finish)).
    fn map_pixel(&self, pixel: usize, dst: &mut [u32]);

    /// Where output channel `o` of transposed convolution `layer` starts: its bias.
    fn bias(&self, layer: usize, o: usize) -> u32;

    /// `acc` plus the term of input pixel `pixel` (its slot: channels, then the shift)
    /// through kernel tap `tap` (`ky * kernel + kx`) of output channel `o` of `layer`.
    fn tap(&self, layer: usize, o: usize, tap: usize, pixel: &[u32], acc: u32) -> u32;

    /// Writes into `dst[..channels]` the sums of output channels `0..channels` of `layer`
    /// at one output pixel: each the bias, then through each `(tap, at)` of `taps`, in
    /// order, the term of the input pixel whose slot starts at `pixels[at]` ([`tap`]'s
    /// sums, without a call per term).
    ///
    /// [`tap`]: Self::tap
    fn gather(
        &self,
        layer: usize,
        taps: &[(usize, usize)],
        pixels: &[u32],
        dst: &mut [u32],
        channels: usize,
    );

    /// Turns the sums `slot[..channels]` into a finished pixel: activated, and ready as
    /// the next layer's input (the i8 decoder quantizes it and keeps its shift in
    /// `slot[channels]`).
    fn finish(&self, slot: &mut [u32], channels: usize);

    /// The logit of a finished sum of the last layer.
    fn logit(&self, v: u32) -> Logit;
}

/// Rows of one layer's input, the last `rows` of those computed so far.
struct Ring<'s, V> {
    values: &'s mut [V],
    rows: usize,
    /// Pixels per row (the input's side), also its number of rows.
    side: usize,
    /// Words per pixel.
    slot: usize,
    /// Rows computed so far.
    filled: usize,
}

impl<V> Ring<'_, V> {
    fn at(&self, row: usize, x: usize) -> usize {
        ((row % self.rows.max(1)) * self.side + x) * self.slot
    }

    fn pixel_mut(&mut self, row: usize, x: usize) -> &mut [V] {
        let at = self.at(row, x);
        self.values.get_mut(at..at + self.slot).unwrap_or(&mut [])
    }
}

/// The layers' shapes and rings during one decode.
struct Stream<'a, 's> {
    arithmetic: &'a dyn Arithmetic,
    map_side: usize,
    shapes: &'a [TransposedConvShape],
    /// Ring `l` holds input rows of transposed convolution `l`, for all but the last.
    rings: heapless::Vec<Ring<'s, u32>, MAX_CONV_LAYERS>,
}

impl Stream<'_, '_> {
    /// Computes input rows of layer `l` into its ring until it holds row `row`.
    fn ensure(&mut self, l: usize, row: usize) {
        loop {
            let Some(ring) = self.rings.get(l) else {
                return;
            };
            let r = ring.filled;
            if r > row || r >= ring.side {
                return;
            }
            let side = ring.side;
            if let Some(below) = l.checked_sub(1) {
                if let Some(shape) = self.shapes.get(below) {
                    self.ensure(below, window(shape, r).1);
                }
            }
            for x in 0..side {
                let Some((lower, upper)) = self.rings.split_at_mut_checked(l) else {
                    return;
                };
                let Some(ring) = upper.first_mut() else {
                    return;
                };
                let dst = ring.pixel_mut(r, x);
                let (a, map_side, shapes) = (self.arithmetic, self.map_side, self.shapes);
                input_pixel(a, map_side, shapes, lower.last(), l, r, x, dst);
            }
            if let Some(ring) = self.rings.get_mut(l) {
                ring.filled += 1;
            }
        }
    }
}

/// Writes pixel `(y, x)` of layer `l`'s input into `dst`: a map pixel (of a map of side
/// `map_side`) for the first layer, else layer `l - 1`'s output gathered from `below`,
/// its ring.
#[allow(clippy::too_many_arguments)]
fn input_pixel(
    a: &dyn Arithmetic,
    map_side: usize,
    shapes: &[TransposedConvShape],
    below: Option<&Ring<'_, u32>>,
    l: usize,
    y: usize,
    x: usize,
    dst: &mut [u32],
) {
    let (Some(layer), Some(src)) = (l.checked_sub(1), below) else {
        a.map_pixel(y * map_side + x, dst);
        return;
    };
    let Some(s) = shapes.get(layer) else {
        return;
    };
    let (rows_lo, rows_hi) = window(s, y);
    let (cols_lo, cols_hi) = window(s, x);
    let (top_y, top_x) = (y + s.padding, x + s.padding);
    // The taps that reach (y, x), in raster order of their input pixels: kernel index and
    // where the pixel starts in the ring, found once for all output channels.
    let mut taps = [(0usize, 0usize); MAX_TAPS];
    let mut count = 0;
    for iy in rows_lo..=rows_hi {
        let ky = top_y - s.stride * iy;
        let row = src.at(iy, 0);
        for ix in cols_lo..=cols_hi {
            let kx = top_x - s.stride * ix;
            if let Some(tap) = taps.get_mut(count) {
                *tap = (ky * s.kernel + kx, row + ix * src.slot);
                count += 1;
            }
        }
    }
    let taps = taps.get(..count).unwrap_or(&[]);
    a.gather(layer, taps, src.values, dst, s.output_channels);
    a.finish(dst, s.output_channels);
}

/// Runs the transposed convolutions `up` of a validated model, streamed, through `arithmetic`,
/// handing each output's logit to `emit` with its pixel index. `scratch` must hold
/// [`scratch_len`] values ([`Error::ScratchTooSmall`] otherwise).
#[inline(never)]
pub(crate) fn run(
    arithmetic: &dyn Arithmetic,
    up: &TransposedConvs,
    scratch: &mut [u32],
    emit: &mut dyn FnMut(usize, Logit),
) -> Result<(), Error> {
    let needed = scratch_len(up);
    let available = scratch.len();
    let too_small = Error::ScratchTooSmall { needed, available };
    let scratch = scratch.get_mut(..needed).ok_or(too_small)?;
    let mut shapes = heapless::Vec::<TransposedConvShape, MAX_CONV_LAYERS>::new();
    for shape in up.shapes() {
        shapes.push(shape).map_err(|_| too_small)?;
    }
    let Some((last, inner)) = shapes.split_last() else {
        return Err(Error::UnsupportedArchitecture(
            "no transposed convolutions after the map",
        ));
    };
    let mut rest = scratch;
    let mut rings = heapless::Vec::new();
    for s in inner {
        let slot = slot_len(s.input_channels);
        let rows = ring_rows(s);
        let len = rows * s.input_side * slot;
        let (values, tail) = rest.split_at_mut_checked(len).ok_or(too_small)?;
        rest = tail;
        let ring = Ring {
            values,
            rows,
            side: s.input_side,
            slot,
            filled: 0,
        };
        rings.push(ring).map_err(|_| too_small)?;
    }
    let (pixel, sums) = rest
        .split_at_mut_checked(slot_len(last.input_channels))
        .ok_or(too_small)?;
    let mut stream = Stream {
        arithmetic,
        map_side: usize::from(up.side),
        shapes: &shapes,
        rings,
    };
    let a = arithmetic;
    let layer = inner.len();
    // At least 1 (as validated), so that no remainder below can divide by 0.
    let (k, channels) = (last.kernel.max(1), last.output_channels.max(1));
    let side = last.output_side;
    let row_len = side * channels;
    // Output row `y`'s sums are `sums[(y % k) * row_len..]`: at most k rows are open at
    // once, from the first no later input row can reach to the last this one reaches.
    let open = |sums: &mut [u32], y: usize| {
        let row = sums
            .get_mut((y % k) * row_len..(y % k + 1) * row_len)
            .unwrap_or(&mut []);
        for (i, v) in row.iter_mut().enumerate() {
            *v = a.bias(layer, i % channels);
        }
    };
    let mut close = |sums: &[u32], y: usize| {
        let row = sums
            .get((y % k) * row_len..(y % k + 1) * row_len)
            .unwrap_or(&[]);
        for (i, &v) in row.iter().enumerate() {
            emit(y * row_len + i, a.logit(v));
        }
    };
    let (mut opened, mut closed) = (0, 0);
    for iy in 0..last.input_side {
        // Rows below `stride * iy - padding` get nothing more from this row on.
        let done = (last.stride * iy).saturating_sub(last.padding).min(side);
        while closed < done {
            while opened <= closed {
                open(sums, opened);
                opened += 1;
            }
            close(sums, closed);
            closed += 1;
        }
        let reach = (last.stride * iy + k)
            .saturating_sub(last.padding)
            .min(side);
        while opened < reach {
            open(sums, opened);
            opened += 1;
        }
        if let Some(below) = layer.checked_sub(1) {
            if let Some(shape) = shapes.get(below) {
                stream.ensure(below, window(shape, iy).1);
            }
        }
        for ix in 0..last.input_side {
            let below = stream.rings.last();
            input_pixel(a, stream.map_side, &shapes, below, layer, iy, ix, pixel);
            for ky in 0..k {
                let Some(y) = (last.stride * iy + ky).checked_sub(last.padding) else {
                    continue;
                };
                if y >= side {
                    continue;
                }
                let row = (y % k) * row_len;
                for kx in 0..k {
                    let Some(x) = (last.stride * ix + kx).checked_sub(last.padding) else {
                        continue;
                    };
                    if x >= side {
                        continue;
                    }
                    let at = row + x * channels;
                    let cells = sums.get_mut(at..at + channels).unwrap_or(&mut []);
                    for (o, cell) in cells.iter_mut().enumerate() {
                        *cell = a.tap(layer, o, ky * k + kx, pixel, *cell);
                    }
                }
            }
        }
    }
    while closed < side {
        while opened <= closed {
            open(sums, opened);
            opened += 1;
        }
        close(sums, closed);
        closed += 1;
    }
    Ok(())
}

// Each precision's arithmetic: f32 and f16 weights summed in f32 ([`Float`]), i8 weights
// in integers ([`Fixed`]), over the weights of one model.

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

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use std::vec;
    use std::vec::Vec;

    use super::*;
    use crate::{encode, encoded_len, reference, Activation, Architecture, Model, Precision};
    use crate::{Sample, TransposedConv, PIXELS, STACK_SCRATCH};

    /// A decoder with transposed convolutions `(channels, stride)` after a map of side
    /// `side` and `channels` channels.
    fn conv_arch(
        latent: u16,
        classes: u16,
        hidden: &[u16],
        activation: Activation,
        (side, channels): (u16, u16),
        convs: &[(u16, u8)],
    ) -> Architecture {
        let layers = convs
            .iter()
            .map(|&(channels, stride)| TransposedConv {
                channels,
                kernel: 3,
                stride,
            })
            .collect();
        Architecture {
            latent,
            classes,
            hidden: heapless::Vec::from_slice(hidden).unwrap(),
            activation,
            transposed_convs: Some(TransposedConvs {
                side,
                channels,
                layers,
            }),
            output: PIXELS as u16,
        }
    }

    /// The file of `arch` at `precision` with pseudo-random weights in (-0.5, 0.5] (so
    /// that the sums stay small enough for the sigmoid to show them).
    fn file(arch: &Architecture, precision: Precision, seed: u64) -> Vec<u8> {
        let mut out = vec![0u8; encoded_len(arch, precision).unwrap()];
        let mut rng = crate::Rng::new(seed);
        let scale = 1.0;
        let values = (0..arch.parameter_count()).map(|_| (rng.uniform() - 0.5) * scale);
        encode(arch, precision, values, &mut out).unwrap();
        out
    }

    /// The values `file` stores, layer by layer, for the reference decoder.
    fn stored(file: &[u8], arch: &Architecture, precision: Precision) -> Vec<reference::Layer> {
        let payload = &file[file.len() - arch.payload_len(precision)..];
        reference::stored(payload, arch, precision).unwrap()
    }

    fn sigmoid(v: f64) -> f64 {
        1.0 / (1.0 + (-v).exp())
    }

    /// The shapes the streaming decoder is tested on: the tutorial's (narrower), one
    /// layer of stride 2 straight from the map, one of stride 1, four layers of both
    /// strides, with hidden layers, labels and sigmoids, and channel counts that leave
    /// every tail of the kernels' groups of four and eight, and of the i8 decoder's groups
    /// of 32.
    fn shapes() -> Vec<Architecture> {
        vec![
            conv_arch(
                2,
                0,
                &[],
                Activation::Relu,
                (7, 8),
                &[(12, 2), (8, 2), (1, 1)],
            ),
            conv_arch(3, 10, &[9], Activation::Relu, (14, 5), &[(1, 2)]),
            conv_arch(2, 0, &[], Activation::Sigmoid, (28, 3), &[(1, 1)]),
            conv_arch(
                4,
                3,
                &[6, 7],
                Activation::Relu,
                (7, 2),
                &[(3, 1), (5, 2), (7, 2), (1, 1)],
            ),
            conv_arch(2, 2, &[], Activation::Sigmoid, (7, 9), &[(4, 2), (1, 2)]),
            // More output channels than the i8 decoder's group of 32.
            conv_arch(2, 0, &[], Activation::Relu, (7, 2), &[(36, 2), (1, 2)]),
        ]
    }

    /// Decodes `input` with `model` through the streaming decoder in exactly
    /// `scratch_len` words: the logits' probabilities.
    fn decode(model: &Model<'_>, input: &[f32]) -> [f32; PIXELS] {
        let mut scratch = vec![0xdead_beef_u32; model.scratch_len()];
        let mut probs = [0.0f32; PIXELS];
        model.decode(input, &mut scratch, &mut probs).unwrap();
        probs
    }

    /// f32 and f16 files decode to the bits of the whole-map reference computed in f32 in
    /// the documented order, for every shape, from several inputs. Breaking the order
    /// (taps by kernel index instead of input pixel, or the bias last) fails this.
    #[test]
    fn float_streaming_equals_the_whole_map_reference_bit_for_bit() {
        for (n, arch) in shapes().iter().enumerate() {
            for precision in [Precision::F32, Precision::F16] {
                let file = file(arch, precision, n as u64);
                let model = Model::parse(&file).unwrap();
                let layers = stored(&file, arch, precision);
                for seed in 0..3 {
                    let mut input = vec![0.0f32; arch.input_len()];
                    crate::Rng::new(seed).fill_standard_normal(&mut input);
                    let want: Vec<f32> = reference::logits::<f32>(&layers, arch, &input);
                    let got = decode(&model, &input);
                    assert_eq!(want.len(), PIXELS);
                    for (o, (&g, &w)) in got.iter().zip(&want).enumerate() {
                        let w = crate::pixel::sigmoid(w);
                        assert_eq!(
                            g.to_bits(),
                            w.to_bits(),
                            "{arch} {precision} seed {seed} pixel {o}"
                        );
                    }
                }
            }
        }
    }

    /// The i8 decoder against the f64 reference over the same file's dequantized weights:
    /// its own arithmetic (activations quantized to 15 bits per pixel, scales to 15-bit
    /// mantissas, each term and bias rounded to 2^-16) moves no probability by more than
    /// 2e-3 on these shapes (measured: at most 4e-4); and against the f32 file of the same
    /// weights (what quantizing the weights to 8 bits costs, about 2^-8 of each weight,
    /// summed over up to 9 taps of up to 12 channels): within 0.08 (measured: up to 0.03).
    #[test]
    fn i8_streaming_is_close_to_the_reference_and_to_f32() {
        for (n, arch) in shapes().iter().enumerate() {
            let i8_file = file(arch, Precision::I8, n as u64);
            let f32_file = file(arch, Precision::F32, n as u64);
            let i8_model = Model::parse(&i8_file).unwrap();
            let f32_model = Model::parse(&f32_file).unwrap();
            let layers = stored(&i8_file, arch, Precision::I8);
            let (mut own, mut weights) = (0.0f64, 0.0f64);
            for seed in 0..3 {
                let mut input = vec![0.0f32; arch.input_len()];
                crate::Rng::new(seed).fill_standard_normal(&mut input);
                let want = reference::logits::<f64>(&layers, arch, &input);
                let got = decode(&i8_model, &input);
                let full = decode(&f32_model, &input);
                assert_eq!(want.len(), PIXELS);
                for ((&g, &w), &f) in got.iter().zip(&want).zip(&full) {
                    own = own.max((f64::from(g) - sigmoid(w)).abs());
                    weights = weights.max((g - f).abs().into());
                }
            }
            assert!(own < 2e-3, "{arch}: i8 arithmetic off by {own}");
            assert!(weights < 0.08, "{arch}: i8 against f32 off by {weights}");
            std::println!("{arch}: i8 vs reference {own:.2e}, vs f32 {weights:.2e}");
        }
    }

    /// The pixels come from the same logits as the probabilities: `decode` into grey
    /// levels gives `to_pixel` of its probabilities for f32 and f16, within one grey
    /// level for i8; and `generate` and `morph`, in scratch of the model's length and in
    /// [`STACK_SCRATCH`], agree with it.
    #[test]
    fn every_entry_point_decodes_the_same_conv_model() {
        let arch = &shapes()[3];
        for precision in Precision::ALL {
            let file = file(arch, precision, 9);
            let model = Model::parse(&file).unwrap();
            assert!(
                model.scratch_len() <= STACK_SCRATCH,
                "{}",
                model.scratch_len()
            );
            let mut scratch = vec![0u32; model.scratch_len()];
            let mut input = [0.0f32; crate::MAX_WIDTH];
            let (four, five) = (Sample::new(4, Some(1)), Sample::new(5, Some(2)));
            let (input, _) = model.sample_input(four, &mut input).unwrap();
            let probs = decode(&model, input);
            let (mut a, mut b) = ([0u8; PIXELS], [0u8; PIXELS]);
            model.decode(input, &mut scratch, &mut a).unwrap();
            for (&p, &q) in a.iter().zip(&probs) {
                let level = crate::to_pixel(q);
                assert!(p.abs_diff(level) <= u8::from(precision == Precision::I8));
            }
            let stack = &mut [0u32; STACK_SCRATCH];
            model.generate(four, &mut scratch, &mut b).unwrap();
            assert_eq!(a, b);
            model.generate(four, stack, &mut b).unwrap();
            assert_eq!(a, b);
            model.morph(four, five, 0, 3, &mut scratch, &mut b).unwrap();
            assert_eq!(a, b);
            model.morph(four, five, 0, 3, stack, &mut b).unwrap();
            assert_eq!(a, b);
        }
    }

    /// The tutorial's decoder (latent 2, map 7x7x32, transposed convolutions to 64, 32
    /// and 1 channels) and a conditional one (latent 10, 10 classes, map 7x7x64, then 64,
    /// 32 and 1 channels) decode in the scratch they ask for, `scratch_len`. The tutorial's
    /// needs 2,407
    /// words, so [`STACK_SCRATCH`]'s 2,048 are refused by name.
    #[test]
    fn the_tutorial_and_a_conditional_decoder_run_in_their_scratch() {
        let tutorial = conv_arch(
            2,
            0,
            &[],
            Activation::Relu,
            (7, 32),
            &[(64, 2), (32, 2), (1, 1)],
        );
        let conditional = conv_arch(
            10,
            10,
            &[],
            Activation::Relu,
            (7, 64),
            &[(64, 2), (32, 2), (1, 1)],
        );
        assert_eq!(tutorial.parameter_count(), 41_953);
        assert_eq!(
            conditional.parameter_count(),
            20 * 3136 + 3136 + 36_928 + 18_464 + 289
        );
        for (arch, words) in [(&tutorial, 2407), (&conditional, 2927)] {
            for precision in Precision::ALL {
                let file = file(arch, precision, 1);
                let model = Model::parse(&file).unwrap();
                assert_eq!(model.scratch_len(), words);
                let mut scratch = vec![0u32; words];
                let mut pixels = [0u8; PIXELS];
                let sample = Sample::new(3, (arch.classes > 0).then_some(7));
                model.generate(sample, &mut scratch, &mut pixels).unwrap();
                assert!(
                    pixels.iter().any(|&p| p != pixels[0]),
                    "{arch} {precision}: a flat image"
                );
                let short = model.generate(sample, &mut scratch[..words - 1], &mut pixels);
                let needed = words;
                assert_eq!(
                    short,
                    Err(Error::ScratchTooSmall {
                        needed,
                        available: words - 1
                    })
                );
                let stack = model.generate(sample, &mut [0; STACK_SCRATCH], &mut pixels);
                let available = STACK_SCRATCH;
                assert_eq!(stack, Err(Error::ScratchTooSmall { needed, available }));
            }
        }
    }

    /// Every malformed set of transposed convolutions is refused when the file is parsed, with a typed
    /// error; a truncated conv file is `Truncated`.
    #[test]
    fn hostile_conv_files_are_refused() {
        let good = conv_arch(2, 0, &[], Activation::Relu, (7, 4), &[(3, 2), (1, 2)]);
        assert_eq!(good.validate(), Ok(()));
        let with = |f: &dyn Fn(&mut TransposedConvs)| {
            let mut arch = good.clone();
            f(arch.transposed_convs.as_mut().unwrap());
            arch
        };
        let bad = [
            with(&|u| u.side = 6), // 6 * 4 = 24
            with(&|u| u.side = 0),
            with(&|u| u.channels = 0),
            with(&|u| u.channels = crate::MAX_WIDTH as u16 + 1), // too wide a map
            with(&|u| u.layers[0].kernel = 5),
            with(&|u| u.layers[0].kernel = 0),
            with(&|u| u.layers[1].stride = 4), // 7 * 2 * 4 = 56
            with(&|u| u.layers[0].stride = 0),
            with(&|u| u.layers[0].stride = 3),
            with(&|u| u.layers[0].channels = 0),
            with(&|u| u.layers[0].channels = crate::MAX_WIDTH as u16 + 1),
            with(&|u| u.layers[1].channels = 2), // not one channel at the end
            with(&|u| u.layers.clear()),
            with(&|u| {
                u.side = 28;
                u.layers = heapless::Vec::from_slice(
                    &[TransposedConv {
                        channels: 1,
                        kernel: 3,
                        stride: 1,
                    }; 4],
                )
                .unwrap();
                u.layers[3].stride = 2; // 56
            }),
        ];
        for arch in bad {
            assert!(
                matches!(arch.validate(), Err(Error::UnsupportedArchitecture(_))),
                "{arch:?}"
            );
            // The writer refuses it too, and a file written with it anyway is refused
            // by the parser (the header is checked before anything else).
            assert!(encoded_len(&arch, Precision::F32).is_err());
        }
        for precision in Precision::ALL {
            let file = file(&good, precision, 2);
            let expected = good.payload_len(precision);
            let cut = &file[..file.len() - 3];
            let found = expected - 3;
            assert_eq!(
                Model::parse(cut).unwrap_err(),
                Error::Truncated { expected, found }
            );
        }
    }

    /// Committed version 2 files parse, as version 2, and draw the demo's pixels that a
    /// decoder reading version 2 only drew: the hashes of the 20 images of each file
    /// were taken with such a decoder, so reading version 3 cannot have changed them.
    #[test]
    fn version_2_files_decode_to_the_same_pixels_as_before() {
        let files: [(&[u8], u64); 3] = [
            (
                include_bytes!("../../../models/default/decoder-f32.vae"),
                0xd9f7_16b4_b393_d5db,
            ),
            (
                include_bytes!("../../../models/default/decoder-f16.vae"),
                0x5268_9c56_a01b_65b2,
            ),
            (
                include_bytes!("../../../models/default/decoder-i8.vae"),
                0x3e1e_b14e_d5ad_f87b,
            ),
        ];
        for (bytes, want) in files {
            let model = Model::parse(bytes).unwrap();
            assert_eq!(model.header().version, 2);
            assert_eq!(model.architecture().transposed_convs, None);
            let mut scratch = vec![0u32; model.scratch_len()];
            let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
            for drawing in crate::demo::plan(&model) {
                let mut pixels = [0u8; PIXELS];
                drawing.draw(&model, &mut scratch, &mut pixels).unwrap();
                for p in pixels {
                    hash ^= u64::from(p);
                    hash = hash.wrapping_mul(0x0100_0000_01b3);
                }
            }
            assert_eq!(hash, want, "{}", model.precision());
        }
    }
}
