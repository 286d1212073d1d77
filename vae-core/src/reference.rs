//! The decoder written plainly, for tests only (this crate's, the workspace's and the
//! fuzz targets'): whole maps at a time, from the values the file stores read by the
//! layout in [`format`](crate::format)'s documentation (not through the crate's reader),
//! with every formula as the documentation states it. In `f32` it is the decoder's own
//! order of operations, so f32 and f16 files must decode to its bits; in `f64` it is the
//! exact values, to measure the i8 decoder's own arithmetic against.
//!
//! Built for this crate's tests and with the feature `reference`, which needs an
//! allocator; no part of the decoder uses it.

extern crate alloc;

use alloc::vec;
use alloc::vec::Vec;

use crate::{Activation, Architecture, Precision};

/// A layer's values as the file stores them, in f64: `(weights, biases)`, the weights
/// row by row (`[out][in]`; a transposed convolution's row `o` is `w[o][ky][kx][ci]`),
/// for i8 each weight `q * scale` of its row.
pub type Layer = (Vec<f64>, Vec<f64>);

/// The values `payload` (a model file's bytes after its header and padding, exactly
/// [`Architecture::payload_len`] of them) stores, layer by layer, input side first.
/// `None` if `payload` is shorter than `arch` needs.
pub fn stored(payload: &[u8], arch: &Architecture, precision: Precision) -> Option<Vec<Layer>> {
    let mut rest = payload;
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, tail) = rest.split_at_checked(n)?;
        rest = tail;
        Some(head)
    };
    let f32s = |b: &[u8]| -> Vec<f64> {
        b.as_chunks::<4>()
            .0
            .iter()
            .map(|w| f64::from(f32::from_le_bytes(*w)))
            .collect()
    };
    let f16s = |b: &[u8]| -> Vec<f64> {
        b.as_chunks::<2>()
            .0
            .iter()
            .map(|h| f64::from(half::f16::from_le_bytes(*h).to_f32()))
            .collect()
    };
    let mut layers = Vec::new();
    for (n_in, n_out) in arch.layers() {
        let layer = match precision {
            Precision::F32 => (f32s(take(4 * n_in * n_out)?), f32s(take(4 * n_out)?)),
            Precision::F16 => (f16s(take(2 * n_in * n_out)?), f16s(take(2 * n_out)?)),
            Precision::I8 => {
                let q = take(n_in * n_out)?;
                let scales = f32s(take(4 * n_out)?);
                let w = q
                    .iter()
                    .enumerate()
                    .map(|(k, &q)| {
                        f64::from(q as i8) * scales.get(k / n_in.max(1)).copied().unwrap_or(0.0)
                    })
                    .collect();
                (w, f32s(take(4 * n_out)?))
            }
        };
        layers.push(layer);
    }
    Some(layers)
}

/// The arithmetic the reference runs in: f32 (the decoder's own, to the bit) or f64.
pub trait Real:
    Copy + Default + PartialOrd + From<f32> + Into<f64> + core::ops::Add<Output = Self>
{
    /// `v` rounded to this type.
    fn from_f64(v: f64) -> Self;
    /// The product, rounded once.
    fn times(self, other: Self) -> Self;
    /// The logistic function: for f32 the decoder's own (`libm::expf`).
    fn sigmoid(self) -> Self;
}

impl Real for f32 {
    fn from_f64(v: f64) -> f32 {
        v as f32
    }
    fn times(self, other: f32) -> f32 {
        self * other
    }
    fn sigmoid(self) -> f32 {
        crate::pixel::sigmoid(self)
    }
}

impl Real for f64 {
    fn from_f64(v: f64) -> f64 {
        v
    }
    fn times(self, other: f64) -> f64 {
        self * other
    }
    fn sigmoid(self) -> f64 {
        1.0 / (1.0 + libm::exp(-self))
    }
}

/// The decoder's 784 output logits for the decoder input `input`, over `layers`
/// ([`stored`]): each dense output `b[o] + x[0]*w[o][0] + x[1]*w[o][1] + ...` left to
/// right, then for a model with transposed convolutions the map (channels last) and each
/// transposed convolution as `out[y][x][o] = b[o] + sum in[iy][ix][ci] * w[o][ky][kx][ci]`
/// over every input pixel, in raster order, whose tap lands on `(y, x)`, its channels
/// left to right; the activation after every layer but the last.
pub fn logits<T: Real>(layers: &[Layer], arch: &Architecture, input: &[f32]) -> Vec<T> {
    let activate = |v: T| -> T {
        match arch.activation {
            Activation::Relu => {
                if v > T::default() {
                    v
                } else {
                    T::default()
                }
            }
            Activation::Sigmoid => v.sigmoid(),
        }
    };
    let convs = arch.transposed_convs.as_ref();
    let dense = arch.dense_layers().count();
    let mut x: Vec<T> = input.iter().map(|&v| T::from(v)).collect();
    for (index, ((n_in, n_out), (w, b))) in arch.dense_layers().zip(layers).enumerate() {
        let last = index + 1 == dense && convs.is_none();
        x = (0..n_out)
            .map(|o| {
                let row = w.get(o * n_in..(o + 1) * n_in).unwrap_or(&[]);
                let bias = T::from_f64(b.get(o).copied().unwrap_or(0.0));
                let sum = row
                    .iter()
                    .zip(&x)
                    .fold(bias, |acc, (&w, &v)| acc + v.times(T::from_f64(w)));
                if last {
                    sum
                } else {
                    activate(sum)
                }
            })
            .collect();
    }
    let Some(up) = convs else {
        return x;
    };
    let count = up.layers.len();
    for (index, (s, (w, b))) in up
        .shapes()
        .zip(layers.get(dense..).unwrap_or(&[]))
        .enumerate()
    {
        let (h, cin, ho, cout) = (
            s.input_side,
            s.input_channels,
            s.output_side,
            s.output_channels,
        );
        let (k, st, p) = (s.kernel, s.stride, s.padding);
        let mut out = vec![T::default(); ho * ho * cout];
        for y in 0..ho {
            for xx in 0..ho {
                for o in 0..cout {
                    let mut acc = T::from_f64(b.get(o).copied().unwrap_or(0.0));
                    for iy in 0..h {
                        let Some(ky) = (y + p).checked_sub(st * iy).filter(|&ky| ky < k) else {
                            continue;
                        };
                        for ix in 0..h {
                            let Some(kx) = (xx + p).checked_sub(st * ix).filter(|&kx| kx < k)
                            else {
                                continue;
                            };
                            for ci in 0..cin {
                                let at = o * s.row_len() + (ky * k + kx) * cin + ci;
                                let w = T::from_f64(w.get(at).copied().unwrap_or(0.0));
                                let v =
                                    x.get((iy * h + ix) * cin + ci).copied().unwrap_or_default();
                                acc = acc + v.times(w);
                            }
                        }
                    }
                    if let Some(slot) = out.get_mut((y * ho + xx) * cout + o) {
                        *slot = if index + 1 == count {
                            acc
                        } else {
                            activate(acc)
                        };
                    }
                }
            }
        }
        x = out;
    }
    x
}

/// The 784 pixel probabilities, `sigmoid` of [`logits`], from a model file's payload;
/// `None` if the payload is too short.
pub fn probabilities<T: Real>(
    payload: &[u8],
    arch: &Architecture,
    precision: Precision,
    input: &[f32],
) -> Option<Vec<T>> {
    let layers = stored(payload, arch, precision)?;
    Some(
        logits::<T>(&layers, arch, input)
            .into_iter()
            .map(T::sigmoid)
            .collect(),
    )
}
