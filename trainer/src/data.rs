//! MNIST from the four canonical IDX files, raw or gzipped.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::model::PIXELS;

/// What to tell a user whose data is missing or broken.
pub const FETCH_HINT: &str = "run `scripts/fetch-mnist.sh` to download and verify MNIST";

/// Largest file the reader accepts (the training images are 47 MB uncompressed).
const MAX_FILE_BYTES: u64 = 64 << 20;

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;

/// Which half of MNIST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// 60,000 training images.
    Train,
    /// 10,000 test images.
    Test,
}

impl Split {
    fn stem(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "t10k",
        }
    }
}

/// Images (28x28 grey levels, row-major) and their labels.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// `len * 784` grey levels, 0 = background.
    pub pixels: Vec<u8>,
    /// One label 0-9 per image.
    pub labels: Vec<u8>,
}

impl Dataset {
    /// Reads one split from `dir`, which holds `train-images-idx3-ubyte` and friends,
    /// each raw or with a `.gz` suffix.
    pub fn load(dir: &Path, split: Split) -> Result<Dataset> {
        if !dir.is_dir() {
            bail!(
                "MNIST data folder {} does not exist: {FETCH_HINT}",
                dir.display()
            );
        }
        let stem = split.stem();
        let images = read_idx(dir, &format!("{stem}-images-idx3-ubyte"), IMAGES_MAGIC)?;
        let labels = read_idx(dir, &format!("{stem}-labels-idx1-ubyte"), LABELS_MAGIC)?;
        let (image_path, image_dims, pixels) = images;
        let (label_path, label_dims, labels) = labels;
        if image_dims.get(1..) != Some(&[28, 28][..]) {
            bail!(
                "{}: images are {:?}, expected N x 28 x 28",
                image_path.display(),
                image_dims
            );
        }
        if image_dims.first() != label_dims.first() {
            bail!(
                "{} holds {} images but {} holds {} labels",
                image_path.display(),
                image_dims[0],
                label_path.display(),
                label_dims.first().copied().unwrap_or(0)
            );
        }
        if let Some(bad) = labels.iter().find(|&&l| l > 9) {
            bail!("{}: label {bad} is not a digit", label_path.display());
        }
        Ok(Dataset { pixels, labels })
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Grey levels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.pixels[i * PIXELS..(i + 1) * PIXELS]
    }

    /// The first `n` images (all if `n` is larger).
    pub fn truncated(mut self, n: usize) -> Dataset {
        let n = n.min(self.len());
        self.labels.truncate(n);
        self.pixels.truncate(n * PIXELS);
        self
    }
}

/// Finds `name` or `name.gz` in `dir`, checks its IDX header and returns its dimensions
/// and data.
fn read_idx(dir: &Path, name: &str, magic: u32) -> Result<(PathBuf, Vec<usize>, Vec<u8>)> {
    let raw = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    let (path, bytes) = if raw.exists() {
        let bytes = read_capped(File::open(&raw), &raw)?;
        (raw, bytes)
    } else if gz.exists() {
        let file = File::open(&gz).with_context(|| format!("cannot open {}", gz.display()))?;
        let bytes = read_capped(Ok(flate2::read::GzDecoder::new(file)), &gz)?;
        (gz, bytes)
    } else {
        bail!(
            "missing MNIST file {} (or {name}.gz): {FETCH_HINT}",
            raw.display()
        );
    };
    let dims = parse_idx_header(&bytes, magic)
        .with_context(|| format!("{} is not a valid IDX file: {FETCH_HINT}", path.display()))?;
    let header_len = 4 + 4 * dims.len();
    let expected: usize = dims.iter().product();
    let found = bytes.len() - header_len;
    if found != expected {
        bail!(
            "{} is {} (dimensions {:?} need {expected} data bytes, found {found}): {FETCH_HINT}",
            path.display(),
            if found < expected {
                "truncated"
            } else {
                "too long"
            },
            dims
        );
    }
    let data = bytes[header_len..].to_vec();
    Ok((path, dims, data))
}

fn read_capped(reader: std::io::Result<impl Read>, path: &Path) -> Result<Vec<u8>> {
    let reader = reader.with_context(|| format!("cannot open {}", path.display()))?;
    let mut bytes = Vec::new();
    reader
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}: {FETCH_HINT}", path.display()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        bail!(
            "{} is larger than {} MiB: not an MNIST file",
            path.display(),
            MAX_FILE_BYTES >> 20
        );
    }
    Ok(bytes)
}

/// IDX header: magic (0, 0, type 0x08 = u8, number of dimensions), then each dimension
/// as a big-endian u32.
pub fn parse_idx_header(bytes: &[u8], magic: u32) -> Result<Vec<usize>> {
    let Some(head) = bytes.get(..4) else {
        bail!("file is {} bytes, too short for an IDX header", bytes.len());
    };
    let found = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    if found != magic {
        bail!("magic number {found:#010x}, expected {magic:#010x}");
    }
    let ndims = (magic & 0xff) as usize;
    (0..ndims)
        .map(|d| {
            let at = 4 + 4 * d;
            let b = bytes
                .get(at..at + 4)
                .context("header cut short before its dimensions")?;
            Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = magic.to_be_bytes().to_vec();
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    fn write_split(dir: &Path, images: &[u8], labels: &[u8]) {
        std::fs::write(dir.join("t10k-images-idx3-ubyte"), images).unwrap();
        std::fs::write(dir.join("t10k-labels-idx1-ubyte"), labels).unwrap();
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vae-data-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn reads_a_small_valid_split_raw_and_gzipped() {
        let dir = temp_dir("valid");
        let pixels: Vec<u8> = (0..2 * PIXELS).map(|i| (i % 256) as u8).collect();
        let images = idx(IMAGES_MAGIC, &[2, 28, 28], &pixels);
        write_split(&dir, &images, &idx(LABELS_MAGIC, &[2], &[3, 9]));
        let ds = Dataset::load(&dir, Split::Test).unwrap();
        assert_eq!(ds.labels, vec![3, 9]);
        assert_eq!(ds.image(1), &pixels[PIXELS..]);

        // The same images gzipped, with the raw file gone.
        std::fs::remove_file(dir.join("t10k-images-idx3-ubyte")).unwrap();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut enc, &images).unwrap();
        std::fs::write(dir.join("t10k-images-idx3-ubyte.gz"), enc.finish().unwrap()).unwrap();
        assert_eq!(Dataset::load(&dir, Split::Test).unwrap().pixels, pixels);
    }

    #[test]
    fn bad_files_give_errors_naming_the_file() {
        let dir = temp_dir("bad");
        let labels = idx(LABELS_MAGIC, &[1], &[3]);
        let cases: [(&str, Vec<u8>, &str); 4] = [
            (
                "truncated",
                idx(IMAGES_MAGIC, &[1, 28, 28], &[0; 100]),
                "truncated",
            ),
            (
                "wrong magic",
                idx(LABELS_MAGIC, &[1, 28, 28], &[0; PIXELS]),
                "magic",
            ),
            ("empty", Vec::new(), "too short"),
            (
                "wrong size",
                idx(IMAGES_MAGIC, &[1, 14, 56], &[0; PIXELS]),
                "28 x 28",
            ),
        ];
        for (what, images, needle) in cases {
            write_split(&dir, &images, &labels);
            let err = format!("{:#}", Dataset::load(&dir, Split::Test).unwrap_err());
            assert!(err.contains("t10k-images-idx3-ubyte"), "{what}: {err}");
            assert!(err.contains(needle), "{what}: {err}");
        }
        let missing = format!("{:#}", Dataset::load(&dir, Split::Train).unwrap_err());
        assert!(missing.contains("missing MNIST file") && missing.contains("fetch-mnist"));
    }
}
