//! Convolutions: a layer's shape ([`Conv`]), where each of its window's taps reads
//! ([`Conv::taps`]), and the two ways the model computes them: on host buffers for the
//! CPU's training step ([`HostConv`]), and with dfdx tensor operations, tape included,
//! for everything else ([`Conv::forward`]).
//!
//! Maps are square and channels-last, one image a row: value `(y * side + x) * channels
//! + c`. A layer's weights are a dense layer's, `(kernel * kernel * in_channels,
//! out_channels)`, row `(ky * kernel + kx) * in_channels + ci`; that is the layout the
//! model file stores, row by row per output channel.
//!
//! - A convolution (the encoder's; no padding) reads `in[s*y + ky][s*x + kx]` for its
//!   output `(y, x)`: its input is the *large* map, its output the *small* one.
//! - A transposed convolution (the decoder's; TensorFlow's `Conv2DTranspose` with
//!   `padding='same'`) is that operation's adjoint with a padding `p = (k - s) / 2`:
//!   input `(y, x)` adds to output `(s*y + ky - p, s*x + kx - p)`, so its input is the
//!   small map and its output the large one, `stride` times the side.
//!
//! Both are described by one table: for each position of the small map and each tap
//! `(ky, kx)`, the position of the large map it meets, or [`OUTSIDE`].
//!
//! [`Conv`]: crate::nn::conv::Conv
//! [`Conv::taps`]: crate::nn::conv::Conv::taps
//! [`HostConv`]: crate::nn::conv::HostConv
//! [`Conv::forward`]: crate::nn::conv::Conv::forward
//! [`OUTSIDE`]: crate::nn::conv::OUTSIDE

use dfdx::prelude::*;
use vae_core::TransposedConvShape;

use crate::foundation::config::Convolutional;
use crate::foundation::matmul::matmul;
use crate::foundation::tensor::{gather_rows, relabel, Matrix};

/// A tap that falls in the padding, outside the large map.
pub const OUTSIDE: u32 = u32::MAX;

/// The shape of a convolution (the encoder's, without padding): a `kernel x kernel`
/// window read at every `stride`-th position of the input map, the large one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvShape {
    /// Side of the input map.
    pub input_side: usize,
    /// Channels of the input map.
    pub input_channels: usize,
    /// Channels of the output map.
    pub output_channels: usize,
    /// Side of the square window.
    pub kernel: usize,
    /// Step of the window.
    pub stride: usize,
}

impl ConvShape {
    /// Side of the output map: the windows that fit.
    pub fn output_side(&self) -> usize {
        self.input_side.saturating_sub(self.kernel) / self.stride.max(1) + 1
    }
}

/// A layer over maps: which operator, and its shape. The decoder's transposed
/// convolutions are described by `vae-core`, whose decoder runs them on the
/// microcontroller; the encoder's convolutions exist only here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conv {
    /// A convolution (the encoder's).
    Convolution(ConvShape),
    /// A transposed convolution (the decoder's).
    Transposed(TransposedConvShape),
}

impl Conv {
    /// The encoder's convolutions in `convolutional`, the first on the 28x28x1 image,
    /// each on the map the one before it writes.
    pub fn encoder(convolutional: &Convolutional) -> Vec<Conv> {
        let (mut input_side, mut input_channels) = (vae_core::IMAGE_SIDE, 1);
        let layers = convolutional.encoder.iter().map(|layer| {
            let conv = Conv::Convolution(ConvShape {
                input_side,
                input_channels,
                output_channels: layer.channels,
                kernel: layer.kernel,
                stride: layer.stride,
            });
            (input_side, input_channels) = conv.output();
            conv
        });
        layers.collect()
    }

    /// The decoder's transposed convolutions in `convolutional`, the first on its map,
    /// each on the map the one before it writes.
    pub fn decoder(convolutional: &Convolutional) -> Vec<Conv> {
        let (mut side, mut channels) = (convolutional.map_side, convolutional.map_channels);
        let layers = convolutional.decoder.iter().map(|layer| {
            let conv = Conv::Transposed(TransposedConvShape::new(
                side,
                channels,
                layer.channels,
                layer.kernel,
                layer.stride,
            ));
            (side, channels) = conv.output();
            conv
        });
        layers.collect()
    }

    /// Side and channels of the input map, then of the output map.
    fn maps(&self) -> ((usize, usize), (usize, usize)) {
        match self {
            Conv::Convolution(c) => (
                (c.input_side, c.input_channels),
                (c.output_side(), c.output_channels),
            ),
            Conv::Transposed(t) => (
                (t.input_side, t.input_channels),
                (t.output_side, t.output_channels),
            ),
        }
    }

    /// Side of the square window.
    pub fn kernel(&self) -> usize {
        match self {
            Conv::Convolution(c) => c.kernel,
            Conv::Transposed(t) => t.kernel,
        }
    }

    /// Channels of the input map.
    pub fn in_channels(&self) -> usize {
        self.maps().0 .1
    }

    /// Side and channels of the output map.
    pub fn output(&self) -> (usize, usize) {
        self.maps().1
    }

    /// Values of one image's input map.
    pub fn inputs(&self) -> usize {
        let (side, channels) = self.maps().0;
        side * side * channels
    }

    /// Values of one image's output map.
    pub fn outputs(&self) -> usize {
        let (side, channels) = self.maps().1;
        side * side * channels
    }

    /// Rows of the weight matrix: the values of one window.
    pub fn window(&self) -> usize {
        self.kernel() * self.kernel() * self.in_channels()
    }

    /// Sides of the small and the large map.
    fn sides(&self) -> (usize, usize) {
        let ((input, _), (output, _)) = self.maps();
        match self {
            Conv::Convolution(_) => (output, input),
            Conv::Transposed(_) => (input, output),
        }
    }

    /// For each small-map position (row major) and each tap `(ky, kx)` (row major), the
    /// large-map position it meets, or [`OUTSIDE`].
    pub fn taps(&self) -> Vec<u32> {
        let (small, large) = self.sides();
        let k = self.kernel();
        let mut taps = Vec::with_capacity(small * small * k * k);
        // Where small-map row (or column) `i` meets the large map through tap `t`.
        let at = |i: usize, t: usize| match self {
            Conv::Convolution(c) => Some(c.stride * i + t).filter(|&v| v < large),
            Conv::Transposed(shape) => shape.output_position(i, t),
        };
        for y in 0..small {
            for x in 0..small {
                for ky in 0..k {
                    for kx in 0..k {
                        taps.push(match (at(y, ky), at(x, kx)) {
                            (Some(ly), Some(lx)) => (ly * large + lx) as u32,
                            _ => OUTSIDE,
                        });
                    }
                }
            }
        }
        taps
    }

    /// The layer on a batch `x` `(images, inputs)`, with `weight` `(window,
    /// out_channels)` and `bias`, through dfdx's operations, so that a tape follows:
    /// the windows gathered from the map and multiplied by the weights (convolution), or
    /// each position multiplied by the weights and the products gathered tap by tap
    /// into the map (transposed convolution). Only operations whose CUDA kernels dfdx
    /// ships compiled: gathers, products, sums, and [`relabel`]s of contiguous tensors.
    pub fn forward<D: Device<f32>, T: Tape<f32, D> + Merge<NoneTape>>(
        &self,
        x: Matrix<D, T>,
        weight: &Matrix<D>,
        bias: &Tensor<(usize,), f32, D>,
    ) -> Matrix<D, T> {
        let n = x.shape().0;
        let dev = x.device().clone();
        if !T::OWNS_TAPE {
            // Without a tape (evaluation, pictures) the host's arithmetic, far faster
            // than dfdx's gathers on the CPU.
            let (x, tape) = x.split_tape();
            let mut y = Vec::new();
            let (w, b) = (weight.as_vec(), bias.as_vec());
            let mut scratch = ConvScratch::default();
            HostConv::new(*self).forward((&w, &b), &x.as_vec(), n, &mut scratch, &mut y);
            return dev.tensor_from_vec(y, (n, self.outputs())).put_tape(tape);
        }
        let taps = self.taps();
        let (small, large) = self.sides();
        let positions = small * small;
        let kk = self.kernel() * self.kernel();
        let (cin, cout) = (self.in_channels(), self.output().1);
        if let Conv::Convolution(_) = self {
            // Windows: (images, positions * window), then one row per position.
            let idx: Vec<usize> = taps
                .iter()
                .flat_map(|&t| (0..cin).map(move |c| t as usize * cin + c))
                .collect();
            let windows = relabel(gather_rows(x, &idx), (n * positions, kk * cin));
            let y = windows.matmul(weight.clone());
            let shape = *y.shape();
            let y = y + bias.clone().broadcast_like::<_, Axis<0>>(&shape);
            return relabel(y, (n, positions * cout));
        }
        // Each position times the weights, (images * positions, taps * cout), with the
        // weights rearranged from (tap, ci, co) to (ci, tap, co) by a gather. The tape
        // goes through the rearrangement and the biases' gathers, so their gradients
        // reach `weight` and `bias`.
        let (x, tape) = x.split_tape();
        let order: Vec<usize> = (0..cin)
            .flat_map(|ci| (0..kk * cout).map(move |v| ((v / cout) * cin + ci) * cout + v % cout))
            .collect();
        let flat = relabel(weight.clone().put_tape(tape), (kk * cin * cout,));
        let w = relabel(
            flat.gather(dev.tensor_from_vec(order, (kk * cin * cout,))),
            (cin, kk * cout),
        );
        let (w, tape) = w.split_tape();
        let products = relabel(
            relabel(x.put_tape(tape), (n * positions, cin)).matmul(w),
            (n, positions * kk * cout),
        );
        // Output value (p, o) sums, over the taps t, the product of the small position
        // whose tap t meets p: gathered for each t, zeroed where none does.
        let width = large * large * cout;
        let mut sources = vec![vec![(0usize, 0.0f32); width]; kk];
        for (i, row) in taps.chunks_exact(kk).enumerate() {
            for (t, &p) in row.iter().enumerate() {
                if p != OUTSIDE {
                    for o in 0..cout {
                        sources[t][p as usize * cout + o] = ((i * kk + t) * cout + o, 1.0);
                    }
                }
            }
        }
        let (products, tape) = products.split_tape();
        let bias_idx: Vec<usize> = (0..width).map(|v| v % cout).collect();
        let mut y = bias
            .clone()
            .put_tape(tape)
            .gather(dev.tensor_from_vec(bias_idx, (width,)))
            .broadcast_like::<_, Axis<0>>(&(n, width));
        for source in sources {
            let (idx, mask): (Vec<usize>, Vec<f32>) = source.into_iter().unzip();
            let mask = dev
                .tensor_from_vec(mask, (width,))
                .broadcast_like::<_, Axis<0>>(&(n, width));
            let (acc, tape) = y.split_tape();
            let part = gather_rows(products.clone().put_tape(tape), &idx) * mask;
            y = part + acc;
        }
        y
    }
}

/// A convolution on host buffers: its shape and its taps, and the forward and backward
/// passes of the CPU's training step.
#[derive(Debug, Clone)]
pub struct HostConv {
    /// The shape.
    pub conv: Conv,
    taps: Vec<u32>,
}

/// What a convolution layer keeps between its forward and backward passes, and scratch.
#[derive(Default)]
pub struct ConvScratch {
    /// Convolution: the windows of the input, `(images * positions, window)`.
    windows: Vec<f32>,
    /// Transposed convolution: the weights as `(in_channels, taps * out_channels)`.
    rearranged: Vec<f32>,
    /// Transposed convolution: products or gradients per position and tap.
    products: Vec<f32>,
}

impl HostConv {
    /// The layer `conv`, its taps computed once.
    pub fn new(conv: Conv) -> Self {
        HostConv {
            taps: conv.taps(),
            conv,
        }
    }

    fn kk(&self) -> usize {
        self.conv.kernel() * self.conv.kernel()
    }

    /// `weight` `(taps * ci, co)` as `(ci, taps * co)`, into `out`.
    fn rearrange(&self, weight: &[f32], out: &mut Vec<f32>) {
        let (kk, cin, cout) = (self.kk(), self.conv.in_channels(), self.conv.output().1);
        out.resize(weight.len(), 0.0);
        for t in 0..kk {
            for ci in 0..cin {
                let from = &weight[(t * cin + ci) * cout..][..cout];
                out[(ci * kk + t) * cout..][..cout].copy_from_slice(from);
            }
        }
    }

    /// The layer's output `y` `(rows, outputs)` for the input `x` `(rows, inputs)`.
    pub fn forward(
        &self,
        (weight, bias): (&[f32], &[f32]),
        x: &[f32],
        rows: usize,
        s: &mut ConvScratch,
        y: &mut Vec<f32>,
    ) {
        let c = &self.conv;
        let (kk, cin, cout) = (self.kk(), c.in_channels(), c.output().1);
        let positions = self.taps.len() / kk;
        y.resize(rows * c.outputs(), 0.0);
        if let Conv::Convolution(_) = c {
            s.windows.resize(rows * positions * kk * cin, 0.0);
            for (image, windows) in x
                .chunks_exact(c.inputs())
                .zip(s.windows.chunks_exact_mut(positions * kk * cin))
            {
                for (&t, out) in self.taps.iter().zip(windows.chunks_exact_mut(cin)) {
                    match image.get(t as usize * cin..(t as usize + 1) * cin) {
                        Some(from) => out.copy_from_slice(from),
                        None => out.fill(0.0),
                    }
                }
            }
            for row in y.chunks_exact_mut(cout) {
                row.copy_from_slice(bias);
            }
            let shape = (rows * positions, kk * cin, cout);
            matmul(shape, (&s.windows, false), (weight, false), y, true);
            return;
        }
        self.rearrange(weight, &mut s.rearranged);
        s.products.resize(rows * positions * kk * cout, 0.0);
        let shape = (rows * positions, cin, kk * cout);
        matmul(
            shape,
            (x, false),
            (&s.rearranged, false),
            &mut s.products,
            false,
        );
        for (image, products) in y
            .chunks_exact_mut(c.outputs())
            .zip(s.products.chunks_exact(positions * kk * cout))
        {
            for row in image.chunks_exact_mut(cout) {
                row.copy_from_slice(bias);
            }
            for (&t, from) in self.taps.iter().zip(products.chunks_exact(cout)) {
                if let Some(out) = image.get_mut(t as usize * cout..(t as usize + 1) * cout) {
                    for (o, v) in out.iter_mut().zip(from) {
                        *o += v;
                    }
                }
            }
        }
    }

    /// From the gradient `g` at the output `(rows, outputs)`: the weights' and biases'
    /// gradients into `grad`, and, with `g_input`, the gradient at the input `x`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        weight: &[f32],
        x: &[f32],
        g: &[f32],
        rows: usize,
        s: &mut ConvScratch,
        (g_weight, g_bias): (&mut Vec<f32>, &mut Vec<f32>),
        g_input: Option<&mut Vec<f32>>,
    ) {
        let c = &self.conv;
        let (kk, cin, cout) = (self.kk(), c.in_channels(), c.output().1);
        let positions = self.taps.len() / kk;
        g_weight.resize(kk * cin * cout, 0.0);
        g_bias.clear();
        g_bias.resize(cout, 0.0);
        for row in g.chunks_exact(cout) {
            for (b, v) in g_bias.iter_mut().zip(row) {
                *b += v;
            }
        }
        if let Conv::Convolution(_) = c {
            let m = rows * positions;
            matmul(
                (kk * cin, m, cout),
                (&s.windows, true),
                (g, false),
                g_weight,
                false,
            );
            let Some(g_input) = g_input else { return };
            // The windows' gradients (reusing their buffer), added back into the map.
            let mut g_windows = std::mem::take(&mut s.windows);
            matmul(
                (m, cout, kk * cin),
                (g, false),
                (weight, true),
                &mut g_windows,
                false,
            );
            g_input.clear();
            g_input.resize(rows * c.inputs(), 0.0);
            for (image, windows) in g_input
                .chunks_exact_mut(c.inputs())
                .zip(g_windows.chunks_exact(positions * kk * cin))
            {
                for (&t, from) in self.taps.iter().zip(windows.chunks_exact(cin)) {
                    if let Some(out) = image.get_mut(t as usize * cin..(t as usize + 1) * cin) {
                        for (o, v) in out.iter_mut().zip(from) {
                            *o += v;
                        }
                    }
                }
            }
            s.windows = g_windows;
            return;
        }
        // The products' gradients: each position's and tap's output value.
        s.products.resize(rows * positions * kk * cout, 0.0);
        for (image, products) in g
            .chunks_exact(c.outputs())
            .zip(s.products.chunks_exact_mut(positions * kk * cout))
        {
            for (&t, out) in self.taps.iter().zip(products.chunks_exact_mut(cout)) {
                match image.get(t as usize * cout..(t as usize + 1) * cout) {
                    Some(from) => out.copy_from_slice(from),
                    None => out.fill(0.0),
                }
            }
        }
        let m = rows * positions;
        // d rearranged = x^T products', then back to (taps * ci, co).
        let mut g_rearranged = std::mem::take(&mut s.rearranged);
        g_rearranged.resize(cin * kk * cout, 0.0);
        matmul(
            (cin, m, kk * cout),
            (x, true),
            (&s.products, false),
            &mut g_rearranged,
            false,
        );
        for t in 0..kk {
            for ci in 0..cin {
                let from = &g_rearranged[(ci * kk + t) * cout..][..cout];
                g_weight[(t * cin + ci) * cout..][..cout].copy_from_slice(from);
            }
        }
        if let Some(g_input) = g_input {
            self.rearrange(weight, &mut g_rearranged);
            g_input.resize(rows * c.inputs(), 0.0);
            let shape = (m, kk * cout, cin);
            matmul(
                shape,
                (&s.products, false),
                (&g_rearranged, true),
                g_input,
                false,
            );
        }
        s.rearranged = g_rearranged;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::foundation::testing::relative_error;
    use rand::{Rng, SeedableRng};

    /// The small shapes the tests run: each kind, stride and padding, odd sides.
    fn shapes() -> Vec<Conv> {
        let down = |input_side, input_channels, output_channels, stride| {
            Conv::Convolution(ConvShape {
                input_side,
                input_channels,
                output_channels,
                kernel: 3,
                stride,
            })
        };
        let up = |side, input_channels, output_channels, stride| {
            Conv::Transposed(TransposedConvShape::new(
                side,
                input_channels,
                output_channels,
                3,
                stride,
            ))
        };
        vec![
            down(9, 1, 3, 2),
            down(7, 2, 3, 1),
            up(4, 3, 2, 2),
            up(5, 2, 1, 1),
        ]
    }

    fn random(rng: &mut impl Rng, len: usize) -> Vec<f32> {
        (0..len).map(|_| rng.gen_range(-1.0..1.0)).collect()
    }

    /// The definition, summed plainly in f64: a convolution reads `in[s*y+ky][s*x+kx]`;
    /// a transposed convolution's input `(y, x)` adds to output `(s*y+ky-p, s*x+kx-p)`.
    fn reference(c: &Conv, w: &[f32], b: &[f32], x: &[f32]) -> Vec<f64> {
        let (transposed, s) = match c {
            Conv::Convolution(c) => (false, c.stride),
            Conv::Transposed(t) => (true, t.stride),
        };
        let (k, cin, (out, cout)) = (c.kernel(), c.in_channels(), c.output());
        let side = ((c.inputs() / cin) as f64).sqrt() as usize;
        let mut y: Vec<f64> = (0..out * out * cout)
            .map(|v| f64::from(b[v % cout]))
            .collect();
        let pad = if transposed { (k - s) / 2 } else { 0 };
        for sy in 0..if transposed { side } else { out } {
            for sx in 0..if transposed { side } else { out } {
                for ky in 0..k {
                    for kx in 0..k {
                        let (ly, lx) = (s * sy + ky, s * sx + kx);
                        let (Some(ly), Some(lx)) = (ly.checked_sub(pad), lx.checked_sub(pad))
                        else {
                            continue;
                        };
                        let large = if transposed { out } else { side };
                        if ly >= large || lx >= large {
                            continue;
                        }
                        let (ip, op) = if transposed {
                            (sy * side + sx, ly * out + lx)
                        } else {
                            (ly * side + lx, sy * out + sx)
                        };
                        for ci in 0..cin {
                            for co in 0..cout {
                                let wv = w[((ky * k + kx) * cin + ci) * cout + co];
                                y[op * cout + co] += f64::from(x[ip * cin + ci] * wv);
                            }
                        }
                    }
                }
            }
        }
        y
    }

    /// The tutorial's shapes: 28 -> 13 -> 6 down, 7 -> 14 -> 28 -> 28 up.
    #[test]
    fn sides_follow_the_tutorial() {
        let down = |input_side| ConvShape {
            input_side,
            input_channels: 1,
            output_channels: 1,
            kernel: 3,
            stride: 2,
        };
        assert_eq!((down(28).output_side(), down(13).output_side()), (13, 6));
        let up = |side, stride| TransposedConvShape::new(side, 1, 1, 3, stride);
        assert_eq!((up(7, 2).output_side, up(14, 2).output_side), (14, 28));
        assert_eq!(up(28, 1).output_side, 28);
        // Stride 2 adds each input position to a 3x3 block starting at (2y, 2x): the
        // last row and column of a block past the edge fall outside.
        let taps = Conv::Transposed(up(2, 2)).taps();
        assert_eq!(&taps[..9], &[0, 1, 2, 4, 5, 6, 8, 9, 10]);
        assert_eq!(
            &taps[27..],
            &[10, 11, OUTSIDE, 14, 15, OUTSIDE, OUTSIDE, OUTSIDE, OUTSIDE]
        );
    }

    /// The host forward pass against the definition, for every kind of shape.
    #[test]
    fn host_forward_is_the_definition() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for c in shapes() {
            let rows = 3;
            let (w, b) = (
                random(&mut rng, c.window() * c.output().1),
                random(&mut rng, c.output().1),
            );
            let x = random(&mut rng, rows * c.inputs());
            let layer = HostConv::new(c);
            let mut y = Vec::new();
            layer.forward((&w, &b), &x, rows, &mut ConvScratch::default(), &mut y);
            for (image, out) in x.chunks_exact(c.inputs()).zip(y.chunks_exact(c.outputs())) {
                let want = reference(&c, &w, &b, image);
                for (a, e) in out.iter().zip(&want) {
                    assert!((f64::from(*a) - e).abs() < 1e-5, "{c:?}: {a} against {e}");
                }
            }
        }
    }

    /// The dfdx forward pass (the one with a tape) against the host's; without a tape
    /// it is the host's.
    #[test]
    fn dfdx_forward_is_the_host_forward() {
        let dev = Cpu::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        for c in shapes() {
            let rows = 2;
            let w = random(&mut rng, c.window() * c.output().1);
            let b = random(&mut rng, c.output().1);
            let x = random(&mut rng, rows * c.inputs());
            let mut host = Vec::new();
            HostConv::new(c).forward((&w, &b), &x, rows, &mut ConvScratch::default(), &mut host);
            let weight = dev.tensor_from_vec(w.clone(), (c.window(), c.output().1));
            let bias = dev.tensor_from_vec(b.clone(), (c.output().1,));
            let x = dev.tensor_from_vec(x, (rows, c.inputs()));
            let taped = c.forward(x.clone().put_tape(OwnedTape::default()), &weight, &bias);
            assert_eq!(taped.shape(), &(rows, c.outputs()));
            assert!(
                relative_error(&taped.split_tape().0.as_vec(), &host) < 1e-6,
                "{c:?}"
            );
            assert_eq!(c.forward(x, &weight, &bias).as_vec(), host);
        }
    }

    /// The host backward pass against dfdx's tape through [`Conv::forward`], for the
    /// loss `sum(y * r)` with a random `r`: the input's, weights' and biases' gradients.
    #[test]
    fn host_gradients_are_the_tape_gradients() {
        let dev = Cpu::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for c in shapes() {
            let rows = 2;
            let w = random(&mut rng, c.window() * c.output().1);
            let b = random(&mut rng, c.output().1);
            let x = random(&mut rng, rows * c.inputs());
            let r = random(&mut rng, rows * c.outputs());

            let weight = dev.tensor_from_vec(w.clone(), (c.window(), c.output().1));
            let bias = dev.tensor_from_vec(b.clone(), (c.output().1,));
            let x_t = dev.tensor_from_vec(x.clone(), (rows, c.inputs()));
            let y = c.forward(x_t.clone().put_tape(OwnedTape::default()), &weight, &bias);
            let r_t = dev.tensor_from_vec(r.clone(), (rows, c.outputs()));
            let tape = (y * r_t).sum().backward();

            let mut s = ConvScratch::default();
            let layer = HostConv::new(c);
            let mut y = Vec::new();
            layer.forward((&w, &b), &x, rows, &mut s, &mut y);
            let (mut g_w, mut g_b, mut g_x) = (Vec::new(), Vec::new(), Vec::new());
            layer.backward(
                &w,
                &x,
                &r,
                rows,
                &mut s,
                (&mut g_w, &mut g_b),
                Some(&mut g_x),
            );
            // Sums of a few dozen products in another order: a few ulps.
            for (name, ours, theirs) in [
                ("input", g_x, tape.get(&x_t).as_vec()),
                ("weight", g_w, tape.get(&weight).as_vec()),
                ("bias", g_b, tape.get(&bias).as_vec()),
            ] {
                let e = relative_error(&ours, &theirs);
                assert!(e < 1e-5, "{c:?} {name}: {e:e}");
            }
        }
    }
}
