//! The model file format, defined once for the trainer and the firmware.
//!
//! ```text
//! +--------------------------------------------------------------+
//! | header (postcard)                                            |
//! |   magic      [u8; 4]  b"VAED"                                |
//! |   version    u16      FORMAT_VERSION (varint)                |
//! |   arch       Architecture (version 3: with its transposed     |
//! |              convolutions, `Option<TransposedConvs>`, before  |
//! |              the output)                                     |
//! |   precision  Precision                                       |
//! |   payload    u32      payload length in bytes (varint)       |
//! |   crc32      [u8; 4]  CRC-32/ISO-HDLC, little-endian         |
//! +--------------------------------------------------------------+
//! | 0-3 zero bytes, so the payload starts at a multiple of 4     |
//! +--------------------------------------------------------------+
//! | payload, for each layer (input side first; a transposed      |
//! | convolution stored as a dense layer of k*k*Cin inputs and    |
//! | Cout outputs, row o = w[o][ky][kx][ci]):                     |
//! |   F32, F16: weights row by row ([out][in]), then biases [out]|
//! |   I8:  weights row by row as i8, then one f32 scale per row, |
//! |        then biases [out] as f32                              |
//! | all values little-endian                                     |
//! +--------------------------------------------------------------+
//! ```
//!
//! The CRC covers every byte of the file except its own four, so a flipped bit anywhere is
//! caught, not only in the weights. The payload is read in place. Values are decoded from
//! bytes, so no alignment is required for correctness; the padding lets a word-aligned
//! copy of the file (as the firmware embeds it) load weights a word at a time.
//!
//! An `I8` row stores `q[o][i] = round(w[o][i] / s[o])` with `s[o] = max_i |w[o][i]| / 127`,
//! so every row uses the full range -127..=127 whatever its magnitude.
//! [`Precision::round_layer`] gives the values a file stores, as f32, by the same
//! functions the writer uses.
//!
//! One concept a file, each importing only the ones listed before it: [`layout`] (the
//! constants, where the payload starts, the checksum), `names` (activations and
//! precisions by name), `transposed_conv` (the transposed convolutions of the decoder's shape),
//! `header` (the decoder's shape and the header), `rounding`
//! (the values each precision stores), `reader` and `writer`.

pub mod layout;
mod names;

mod transposed_conv;

mod header;

mod rounding;

mod reader;

mod writer;

#[cfg(test)]
mod tests;

pub use header::{Architecture, Header};
pub use layout::{
    FORMAT_VERSION, IMAGE_SIDE, MAGIC, MAX_CLASSES, MAX_CONV_LAYERS, MAX_HEADER_LEN,
    MAX_HIDDEN_LAYERS, MAX_WIDTH, OLDEST_VERSION, PAYLOAD_ALIGN, PIXELS,
};
pub use names::{Activation, Precision, UnknownName};
pub(crate) use reader::split_and_verify;
pub use transposed_conv::{
    same_padding, TransposedConv, TransposedConvShape, TransposedConvs, KERNEL,
};
pub use writer::{encode, encoded_len};
