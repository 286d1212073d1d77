//! The transposed convolutions of a decoder, described once for every crate: a map
//! read from the last dense layer, then transposed convolutions up to the 28x28 image.
//! What a second crate (the trainer) needs to build the same layers:
//! - one layer: [`TransposedConv`], its padding ([`same_padding`]) and its limits
//!   ([`TransposedConv::validate`]: kernel [`KERNEL`], stride 1 or 2, 1 to
//!   [`MAX_WIDTH`](crate::MAX_WIDTH) channels);
//! - one layer with its input: [`TransposedConvShape`] ([`TransposedConvShape::new`]),
//!   where each input pixel's taps land ([`TransposedConvShape::output_position`]),
//!   its weight rows and its multiply-accumulates;
//! - the whole: [`TransposedConvs`], whose [`validate`](TransposedConvs::validate)
//!   checks that the layers chain from the map to the 28x28x1 image, and
//!   [`TransposedConvs::tutorial`], the shape of TensorFlow's tutorial.

use core::fmt;

use serde::{Deserialize, Serialize};

use super::layout::{IMAGE_SIDE, MAX_CONV_LAYERS, MAX_WIDTH};
use super::names::Activation;
use crate::Error;

/// The only kernel size the format knows (3x3).
pub const KERNEL: u8 = 3;

const _: () = assert!(MAX_CONV_LAYERS >= 3, "the tutorial's three layers fit");

/// One transposed convolution (TensorFlow's `Conv2DTranspose(padding='same')`, the
/// adjoint of a cross-correlation, no kernel flip): an input of side `H` and `Cin`
/// channels gives an output of side `stride * H` and `channels` channels,
///
/// `out[y][x][o] = b[o] + sum in[iy][ix][ci] * w[o][ky][kx][ci]` over the `iy, ix, ky, kx,
/// ci` with `stride * iy + ky - pad == y` and `stride * ix + kx - pad == x` inside the
/// input, `pad = max(kernel - stride, 0) / 2` ([`padding`](Self::padding)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransposedConv {
    /// Output channels.
    pub channels: u16,
    /// Kernel side; only [`KERNEL`] (3) is valid.
    pub kernel: u8,
    /// How many times the side grows; 1 or 2.
    pub stride: u8,
}

impl TransposedConv {
    /// The padding of `padding='same'`: `max(kernel - stride, 0) / 2`.
    ///
    /// ```
    /// use vae_core::TransposedConv;
    /// assert_eq!(TransposedConv { channels: 8, kernel: 3, stride: 1 }.padding(), 1);
    /// assert_eq!(TransposedConv { channels: 8, kernel: 3, stride: 2 }.padding(), 0);
    /// ```
    pub fn padding(&self) -> usize {
        same_padding(usize::from(self.kernel), usize::from(self.stride))
    }

    /// Checks that the format knows this layer: kernel [`KERNEL`] (3), stride 1 or 2,
    /// and 1 to [`MAX_WIDTH`](crate::MAX_WIDTH) output channels (so that the i8
    /// decoder's sums, one input pixel's channels at a time, cannot overflow).
    ///
    /// ```
    /// use vae_core::TransposedConv;
    /// assert!(TransposedConv { channels: 8, kernel: 3, stride: 2 }.validate().is_ok());
    /// assert!(TransposedConv { channels: 8, kernel: 3, stride: 3 }.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), Error> {
        if self.kernel != KERNEL {
            return Err(Error::UnsupportedArchitecture(
                "a transposed convolution's kernel is not 3x3",
            ));
        }
        if !(1..=2).contains(&self.stride) {
            return Err(Error::UnsupportedArchitecture(
                "a transposed convolution's stride is not 1 or 2",
            ));
        }
        if self.channels == 0 || usize::from(self.channels) > MAX_WIDTH {
            return Err(Error::UnsupportedArchitecture(
                "a transposed convolution has 0 channels or more than MAX_WIDTH",
            ));
        }
        Ok(())
    }
}

/// The padding of TensorFlow's `padding='same'` for a transposed convolution of kernel
/// side `kernel` and stride `stride`: `max(kernel - stride, 0) / 2`, so that the output
/// side is `stride` times the input's. Input pixel `i` reaches output `stride * i + k -
/// padding` through kernel tap `k` ([`TransposedConvShape::output_position`]).
///
/// ```
/// assert_eq!(vae_core::same_padding(3, 1), 1);
/// assert_eq!(vae_core::same_padding(3, 2), 0);
/// assert_eq!(vae_core::same_padding(4, 2), 1);
/// assert_eq!(vae_core::same_padding(4, 1), 1);
/// ```
pub const fn same_padding(kernel: usize, stride: usize) -> usize {
    // A branch, not `kernel.saturating_sub(stride) / 2`: from the layer's `u8` fields the
    // compiler then knows the padding is below 128, which keeps the streaming decoder's
    // loops over kernel taps in registers (without it, a copy of a register around each
    // call of the Cortex-M4F's innermost loop: 13,000 instructions per image of the
    // tutorial's f16 decoder).
    if kernel > stride {
        (kernel - stride) / 2
    } else {
        0
    }
}

/// The convolutional part of a decoder: the last dense layer's `side * side * channels`
/// outputs read as a map, channels last (output `(y * side + x) * channels + c`), then
/// `layers` in order, each followed by the activation but the last, whose one channel
/// at side 28 is the image's logits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransposedConvs {
    /// Side of the map the dense layers make.
    pub side: u16,
    /// Channels of that map.
    pub channels: u16,
    /// The transposed convolutions, input side first.
    pub layers: heapless::Vec<TransposedConv, MAX_CONV_LAYERS>,
}

/// One transposed convolution with the shape of its input, as the decoder runs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransposedConvShape {
    /// Side of the input map.
    pub input_side: usize,
    /// Channels of the input map.
    pub input_channels: usize,
    /// Side of the output map (`stride * input_side`).
    pub output_side: usize,
    /// Channels of the output map.
    pub output_channels: usize,
    /// Kernel side.
    pub kernel: usize,
    /// Stride.
    pub stride: usize,
    /// Padding ([`TransposedConv::padding`]).
    pub padding: usize,
}

impl TransposedConvShape {
    /// The shape of a transposed convolution of kernel side `kernel` and stride `stride`
    /// from a map of side `input_side` and `input_channels` channels to one of
    /// `output_channels`: output side `stride * input_side`, padding [`same_padding`].
    ///
    /// ```
    /// use vae_core::TransposedConvShape;
    /// let s = TransposedConvShape::new(7, 32, 64, 3, 2);
    /// assert_eq!((s.output_side, s.padding, s.row_len()), (14, 0, 288));
    /// ```
    pub const fn new(
        input_side: usize,
        input_channels: usize,
        output_channels: usize,
        kernel: usize,
        stride: usize,
    ) -> Self {
        TransposedConvShape {
            input_side,
            input_channels,
            output_side: input_side.saturating_mul(stride),
            output_channels,
            kernel,
            stride,
            padding: same_padding(kernel, stride),
        }
    }

    /// Where input row (or column) `input` reaches the output through kernel row (or
    /// column) `tap`: `stride * input + tap - padding`, or `None` where that falls
    /// outside `0..output_side` (in the padding). Output `(y, x)` of output channel `o`
    /// sums, over the input pixels and taps that reach it, `in[iy][ix][ci] *
    /// w[o][ky][kx][ci]`.
    ///
    /// ```
    /// use vae_core::TransposedConvShape;
    /// let s = TransposedConvShape::new(28, 32, 1, 3, 1); // padding 1
    /// assert_eq!(s.output_position(0, 0), None);
    /// assert_eq!(s.output_position(0, 1), Some(0));
    /// assert_eq!(s.output_position(27, 2), None);
    /// ```
    pub fn output_position(&self, input: usize, tap: usize) -> Option<usize> {
        self.stride
            .saturating_mul(input)
            .saturating_add(tap)
            .checked_sub(self.padding)
            .filter(|&at| at < self.output_side)
    }

    /// Values of one weight row (one output channel): `kernel * kernel * input_channels`.
    pub fn row_len(&self) -> usize {
        self.kernel
            .saturating_mul(self.kernel)
            .saturating_mul(self.input_channels)
    }

    /// Taps `(input index, kernel index)` that land inside the output, along one side:
    /// `stride * i + k - padding` in `0..output_side`.
    pub fn taps_per_side(&self) -> usize {
        (0..self.input_side)
            .flat_map(|i| (0..self.kernel).map(move |k| (i, k)))
            .filter(|&(i, k)| self.output_position(i, k).is_some())
            .count()
    }

    /// Multiply-accumulates of this layer: each input pixel times each kernel tap that
    /// lands inside the output, times input and output channels.
    pub fn multiply_accumulates(&self) -> usize {
        let taps = self.taps_per_side();
        taps.saturating_mul(taps)
            .saturating_mul(self.input_channels)
            .saturating_mul(self.output_channels)
    }
}

impl TransposedConvs {
    /// The transposed convolutions of TensorFlow's convolutional VAE tutorial: a 7x7x32
    /// map, then 3x3 transposed convolutions to 14x14x64 and 28x28x32 (stride 2) and
    /// 28x28x1 (stride 1). With the tutorial's latent 2, no labels and no hidden layer,
    /// the decoder has 41,953 parameters and takes 4,480,192 multiply-accumulates.
    ///
    /// ```
    /// use vae_core::{Activation, Architecture, TransposedConvs};
    /// let tutorial = TransposedConvs::tutorial();
    /// assert_eq!(tutorial.validate(), Ok(()));
    /// let sides: Vec<_> = tutorial.shapes().map(|s| (s.output_side, s.output_channels)).collect();
    /// assert_eq!(sides, [(14, 64), (28, 32), (28, 1)]);
    /// // The largest layer's two whole maps: 14x14x64 in, 28x28x32 out.
    /// assert_eq!(tutorial.whole_maps_len(), 14 * 14 * 64 + 28 * 28 * 32);
    /// let arch = Architecture {
    ///     transposed_convs: Some(tutorial),
    ///     ..Architecture::dense(2, 0, heapless::Vec::new(), Activation::Relu)
    /// };
    /// assert_eq!(arch.parameter_count(), 41_953);
    /// assert_eq!(arch.multiply_accumulates(), 4_480_192);
    /// ```
    pub fn tutorial() -> Self {
        let conv = |channels, stride| TransposedConv {
            channels,
            kernel: KERNEL,
            stride,
        };
        let mut layers = heapless::Vec::new();
        for layer in [conv(64, 2), conv(32, 2), conv(1, 1)] {
            // MAX_CONV_LAYERS is at least 3 (checked below at compile time).
            let _ = layers.push(layer);
        }
        TransposedConvs {
            side: 7,
            channels: 32,
            layers,
        }
    }

    /// Values of the map the dense layers make: `side * side * channels`.
    pub fn map_len(&self) -> usize {
        usize::from(self.side)
            .saturating_mul(usize::from(self.side))
            .saturating_mul(usize::from(self.channels))
    }

    /// Each layer's shape, input side first.
    ///
    /// ```
    /// use vae_core::{TransposedConv, TransposedConvs};
    /// let up = TransposedConvs {
    ///     side: 14, channels: 8,
    ///     layers: heapless::Vec::from_slice(&[
    ///         TransposedConv { channels: 4, kernel: 3, stride: 2 },
    ///         TransposedConv { channels: 1, kernel: 3, stride: 1 },
    ///     ]).unwrap(),
    /// };
    /// let shapes: Vec<_> = up.shapes().map(|s| (s.input_side, s.input_channels, s.output_side)).collect();
    /// assert_eq!(shapes, [(14, 8, 28), (28, 4, 28)]);
    /// ```
    pub fn shapes(&self) -> impl Iterator<Item = TransposedConvShape> + '_ {
        let mut side = usize::from(self.side);
        let mut channels = usize::from(self.channels);
        self.layers.iter().map(move |layer| {
            let shape = TransposedConvShape::new(
                side,
                channels,
                usize::from(layer.channels),
                usize::from(layer.kernel),
                usize::from(layer.stride),
            );
            side = shape.output_side;
            channels = shape.output_channels;
            shape
        })
    }

    /// Multiply-accumulates of the transposed convolutions
    /// ([`TransposedConvShape::multiply_accumulates`]).
    pub fn multiply_accumulates(&self) -> usize {
        self.shapes()
            .map(|s| s.multiply_accumulates())
            .fold(0usize, usize::saturating_add)
    }

    /// Values a decoder that holds whole maps needs at once: the largest input map plus
    /// output map of one layer (what the streaming decoder avoids; see
    /// [`Model::scratch_len`](crate::Model::scratch_len)).
    pub fn whole_maps_len(&self) -> usize {
        self.shapes()
            .map(|s| {
                let map = |side: usize, channels: usize| {
                    side.saturating_mul(side).saturating_mul(channels)
                };
                map(s.input_side, s.input_channels)
                    .saturating_add(map(s.output_side, s.output_channels))
            })
            .max()
            .unwrap_or(0)
    }

    /// Checks that the layers are ones the format knows and that their shapes chain to
    /// the 28x28x1 image: side and channels at least 1, channels at most
    /// [`MAX_WIDTH`](crate::MAX_WIDTH) (so that the i8 decoder's sums, one input pixel's
    /// channels at a time, cannot overflow), kernel 3, stride 1 or 2, at least one
    /// layer, the last with 1 channel at side 28.
    pub fn validate(&self) -> Result<(), Error> {
        if self.side == 0 || self.channels == 0 {
            return Err(Error::UnsupportedArchitecture(
                "the map has side or channels 0",
            ));
        }
        if usize::from(self.channels) > MAX_WIDTH {
            return Err(Error::UnsupportedArchitecture(
                "the map has more channels than MAX_WIDTH",
            ));
        }
        let Some(last) = self.layers.last() else {
            return Err(Error::UnsupportedArchitecture(
                "no transposed convolutions after the map",
            ));
        };
        let mut side = usize::from(self.side);
        for layer in &self.layers {
            layer.validate()?;
            side = side.saturating_mul(usize::from(layer.stride));
            if side > IMAGE_SIDE {
                break;
            }
        }
        if side != IMAGE_SIDE {
            return Err(Error::UnsupportedArchitecture(
                "the transposed convolutions do not end at side 28",
            ));
        }
        if last.channels != 1 {
            return Err(Error::UnsupportedArchitecture(
                "the last transposed convolution must have 1 channel",
            ));
        }
        Ok(())
    }

    /// Writes ` -> SxSxC act -> tconv 3x3/s SxSxC act ... -> tconv 3x3/s 28x28x1`,
    /// `activation` after the map and each layer but the last.
    pub(super) fn describe(
        &self,
        f: &mut fmt::Formatter<'_>,
        activation: Activation,
    ) -> fmt::Result {
        write!(f, " -> {0}x{0}x{1} {activation}", self.side, self.channels)?;
        let count = self.layers.len();
        for (k, shape) in self.shapes().enumerate() {
            write!(
                f,
                " -> tconv {0}x{0}/{1} {2}x{2}x{3}",
                shape.kernel, shape.stride, shape.output_side, shape.output_channels
            )?;
            if k + 1 < count {
                write!(f, " {activation}")?;
            }
        }
        Ok(())
    }
}
