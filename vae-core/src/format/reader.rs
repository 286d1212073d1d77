//! Reading a file: its header, then the sizes and checksum of the whole.

use serde::Deserialize;

use super::header::{Architecture, Header};
use super::layout::{
    checksum, payload_offset, CRC_LEN, FORMAT_VERSION, MAGIC, MAX_HIDDEN_LAYERS, OLDEST_VERSION,
};
use super::names::{Activation, Precision};
use crate::Error;

/// The two fields every version starts with, read before the rest so that a file of
/// another version is named as such instead of failing as a garbled header.
#[derive(Deserialize)]
struct Preamble {
    _magic: [u8; 4],
    version: u16,
}

impl Header {
    /// Decodes and checks the header at the start of `bytes`, returning it and the bytes
    /// after it. A version 2 header (a dense decoder) is read as a version 3 one without
    /// transposed convolutions; `version` keeps the file's version. Checks magic and version, not
    /// sizes or checksum: use
    /// [`Model::parse`](crate::Model::parse) for a full check.
    ///
    /// ```
    /// use vae_core::{Error, Header, Precision};
    /// # let mut buf = vec![0u8; 1 << 16];
    /// let file = vae_core::example_model(Precision::F16, &mut buf)?;
    /// let (header, payload) = Header::read(file)?;
    /// assert_eq!(header.precision, Precision::F16);
    /// assert_eq!(payload.len(), header.payload_len as usize);
    /// assert_eq!(Header::read(b"PNG!").unwrap_err(), Error::BadMagic);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn read(bytes: &[u8]) -> Result<(Header, &[u8]), Error> {
        let (header, header_len) = read_header(bytes)?;
        let payload = bytes
            .get(payload_offset(header_len)..)
            .ok_or(Error::MalformedHeader)?;
        Ok((header, payload))
    }
}

/// Decodes the header at the start of `bytes` and returns it with its length in bytes.
fn read_header(bytes: &[u8]) -> Result<(Header, usize), Error> {
    if bytes.get(..MAGIC.len()) != Some(&MAGIC[..]) {
        return Err(Error::BadMagic);
    }
    let (preamble, _) =
        postcard::take_from_bytes::<Preamble>(bytes).map_err(|_| Error::MalformedHeader)?;
    let (header, rest) = match preamble.version {
        FORMAT_VERSION => postcard::take_from_bytes::<Header>(bytes),
        2 => postcard::take_from_bytes::<HeaderV2>(bytes).map(|(h, rest)| (h.into(), rest)),
        found => {
            return Err(Error::UnsupportedVersion {
                found,
                oldest: OLDEST_VERSION,
                supported: FORMAT_VERSION,
            })
        }
    }
    .map_err(|_| Error::MalformedHeader)?;
    Ok((header, bytes.len() - rest.len()))
}

const _: () = assert!(OLDEST_VERSION == 2, "read_header reads versions 2 and 3");

/// A version 2 header: the version 3 one without the architecture's transposed convolutions.
#[derive(Deserialize)]
struct HeaderV2 {
    magic: [u8; 4],
    version: u16,
    arch: ArchitectureV2,
    precision: Precision,
    payload_len: u32,
    crc32: [u8; 4],
}

/// A version 2 architecture: a dense decoder.
#[derive(Deserialize)]
struct ArchitectureV2 {
    latent: u16,
    classes: u16,
    hidden: heapless::Vec<u16, MAX_HIDDEN_LAYERS>,
    activation: Activation,
    output: u16,
}

impl From<HeaderV2> for Header {
    fn from(v2: HeaderV2) -> Header {
        let ArchitectureV2 {
            latent,
            classes,
            hidden,
            activation,
            output,
        } = v2.arch;
        Header {
            magic: v2.magic,
            version: v2.version,
            arch: Architecture {
                output,
                ..Architecture::dense(latent, classes, hidden, activation)
            },
            precision: v2.precision,
            payload_len: v2.payload_len,
            crc32: v2.crc32,
        }
    }
}

/// Splits a whole file into its header and payload, checking sizes and the checksum.
pub(crate) fn split_and_verify(bytes: &[u8]) -> Result<(Header, &[u8]), Error> {
    let (header, header_len) = read_header(bytes)?;
    header.arch.validate()?;
    let expected = header.arch.payload_len(header.precision);
    let announced = header.payload_len as usize;
    if announced != expected {
        return Err(Error::SizeMismatch {
            expected,
            found: announced,
        });
    }
    let offset = payload_offset(header_len);
    let found = bytes.len().saturating_sub(offset);
    if found < expected {
        return Err(Error::Truncated { expected, found });
    }
    if found > expected {
        return Err(Error::SizeMismatch { expected, found });
    }
    // Everything but the CRC field itself: the header before it, the padding, the payload.
    let crc_at = header_len.saturating_sub(CRC_LEN);
    let (Some(before), Some(after)) = (bytes.get(..crc_at), bytes.get(header_len..)) else {
        return Err(Error::MalformedHeader);
    };
    let computed = checksum(&[before, after]);
    if computed != header.stored_crc() {
        return Err(Error::ChecksumMismatch {
            stored: header.stored_crc(),
            computed,
        });
    }
    let (padding, payload) = after
        .split_at_checked(offset - header_len)
        .ok_or(Error::MalformedHeader)?;
    if padding.iter().any(|&b| b != 0) {
        return Err(Error::MalformedHeader);
    }
    Ok((header, payload))
}
