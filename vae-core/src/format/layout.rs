//! The file's layout in numbers: its magic and version, the sizes it allows, where the
//! payload starts and the checksum that covers the rest.

use crc::{Crc, CRC_32_ISO_HDLC};

/// First four bytes of every model file.
pub const MAGIC: [u8; 4] = *b"VAED";

/// The format version this build writes, and the newest it reads. Bump on any layout
/// change and record the change in CHANGELOG.md.
pub const FORMAT_VERSION: u16 = 3;

/// The oldest format version this build reads: version 2 files are dense decoders, read
/// as version 3 ones without an transposed convolutions.
pub const OLDEST_VERSION: u16 = 2;

/// The payload starts at a multiple of this many bytes from the start of the file.
pub const PAYLOAD_ALIGN: usize = 4;

/// Pixels in one generated image (28 x 28).
pub const PIXELS: usize = 28 * 28;

/// Side length of a generated image.
pub const IMAGE_SIDE: usize = 28;

/// Most hidden layers a decoder may have.
pub const MAX_HIDDEN_LAYERS: usize = 4;

/// Most transposed convolutions a decoder may have.
pub const MAX_CONV_LAYERS: usize = 4;

/// Widest decoder input or hidden layer the fixed-size scratch buffers hold.
pub const MAX_WIDTH: usize = 512;

/// Most classes a conditional model may have: digits are asked for as a `u8`.
pub const MAX_CLASSES: u16 = 256;

/// Longest header the writer produces (a dense one is about 20 bytes, one with four
/// transposed convolutions about 40).
pub const MAX_HEADER_LEN: usize = 64;

pub(super) const CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);
pub(super) const CRC_LEN: usize = 4;

/// Where the payload starts after a header of `header_len` bytes.
pub(super) const fn payload_offset(header_len: usize) -> usize {
    header_len.next_multiple_of(PAYLOAD_ALIGN)
}

/// CRC-32 of `parts`, one after the other.
pub(super) fn checksum(parts: &[&[u8]]) -> u32 {
    let mut digest = CRC32.digest();
    for part in parts {
        digest.update(part);
    }
    digest.finalize()
}
