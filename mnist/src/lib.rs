//! MNIST from the four canonical IDX files, raw or gzipped.
//!
//! A crate of its own, apart from the trainer's dfdx code, so that the fuzz target of
//! the reader and any other tool can read MNIST without building a tensor library.
//! Every check a missing, damaged or mismatched file needs is here: each failure is an
//! error that names the file and says how to fetch MNIST again.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use vae_core::PIXELS;

/// What to tell a user whose data is missing or broken.
pub const FETCH_HINT: &str = "run `scripts/fetch-mnist.sh` to download and verify MNIST";

/// Largest file the reader accepts (the training images are 47 MB uncompressed).
const MAX_FILE_BYTES: u64 = 64 << 20;

/// Magic number of an IDX file of u8 values in 3 dimensions (MNIST images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of u8 values in 1 dimension (MNIST labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;

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
            let what = if dir.exists() {
                "is not a folder"
            } else {
                "does not exist"
            };
            bail!("MNIST data folder {} {what}: {FETCH_HINT}", dir.display());
        }
        let stem = split.stem();
        let (image_path, image_bytes) = read_file(dir, &format!("{stem}-images-idx3-ubyte"))?;
        let (label_path, label_bytes) = read_file(dir, &format!("{stem}-labels-idx1-ubyte"))?;
        let parse = |path: &Path, bytes, magic| {
            parse_idx(bytes, magic).with_context(|| {
                format!(
                    "{} is not a valid MNIST IDX file ({FETCH_HINT})",
                    path.display()
                )
            })
        };
        let images = parse(&image_path, &image_bytes, IMAGES_MAGIC)?;
        let labels = parse(&label_path, &label_bytes, LABELS_MAGIC)?;
        Dataset::from_parsed(images, labels).with_context(|| {
            format!(
                "{} and {} do not make an MNIST split ({FETCH_HINT})",
                image_path.display(),
                label_path.display()
            )
        })
    }

    /// Builds a dataset from the bytes of an images file (`idx3`, N x 28 x 28) and a
    /// labels file (`idx1`, N digits), with every check [`load`](Self::load) makes.
    pub fn from_idx_bytes(images: &[u8], labels: &[u8]) -> Result<Dataset> {
        let images = parse_idx(images, IMAGES_MAGIC).context("images file")?;
        let labels = parse_idx(labels, LABELS_MAGIC).context("labels file")?;
        Dataset::from_parsed(images, labels)
    }

    /// Checks that parsed images and labels belong together.
    fn from_parsed(images: Idx<'_>, labels: Idx<'_>) -> Result<Dataset> {
        let (image_dims, pixels) = images;
        let (label_dims, labels) = labels;
        let [count, 28, 28] = image_dims[..] else {
            bail!("images are {image_dims:?}, expected N x 28 x 28");
        };
        let [label_count] = label_dims[..] else {
            bail!("labels are {label_dims:?}, expected N");
        };
        if count != label_count {
            bail!("{count} images but {label_count} labels");
        }
        if let Some(bad) = labels.iter().find(|&&l| l > 9) {
            bail!("label {bad} is not a digit");
        }
        Ok(Dataset {
            pixels: pixels.to_vec(),
            labels: labels.to_vec(),
        })
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

    /// Images `indices` as intensities in [0, 1] ([`vae_core::intensity`]), one row of
    /// 784 after another: what a network reads.
    pub fn intensities(&self, indices: impl IntoIterator<Item = usize>) -> Vec<f32> {
        let indices = indices.into_iter();
        let mut out = Vec::with_capacity(indices.size_hint().0 * PIXELS);
        for i in indices {
            // Image by image (not one flattened iterator), so that the conversion runs
            // in vector instructions.
            out.extend(self.image(i).iter().map(|&p| vae_core::intensity(p)));
        }
        out
    }

    /// The first `n` images (all if `n` is larger).
    pub fn truncated(mut self, n: usize) -> Dataset {
        let n = n.min(self.len());
        self.labels.truncate(n);
        self.pixels.truncate(n * PIXELS);
        self
    }
}

/// What an IDX magic number says a file holds.
fn idx_kind(magic: u32) -> &'static str {
    match magic {
        IMAGES_MAGIC => "an MNIST images file",
        LABELS_MAGIC => "an MNIST labels file",
        _ => "not an MNIST IDX file",
    }
}

/// An IDX file's dimensions and data bytes.
type Idx<'a> = (Vec<usize>, &'a [u8]);

/// Finds `name` or `name.gz` in `dir` and returns its path and (decompressed) bytes.
fn read_file(dir: &Path, name: &str) -> Result<(PathBuf, Vec<u8>)> {
    let raw = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    if raw.exists() {
        let bytes = read_capped(File::open(&raw), &raw)?;
        Ok((raw, bytes))
    } else if gz.exists() {
        let file = File::open(&gz).with_context(|| format!("cannot open {}", gz.display()))?;
        let bytes = read_capped(Ok(flate2::read::GzDecoder::new(file)), &gz)?;
        Ok((gz, bytes))
    } else {
        bail!(
            "missing MNIST file {} (or {name}.gz): {FETCH_HINT}",
            raw.display()
        );
    }
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

/// Checks an IDX file's header and size; returns its dimensions and data bytes.
fn parse_idx(bytes: &[u8], magic: u32) -> Result<Idx<'_>> {
    let dims = parse_idx_header(bytes, magic)?;
    let header_len = 4 + 4 * dims.len();
    let expected = dims
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .with_context(|| format!("dimensions {dims:?} describe more bytes than fit in memory"))?;
    let data = bytes.get(header_len..).unwrap_or_default();
    let found = data.len();
    if found != expected {
        bail!(
            "{} (dimensions {dims:?} need {expected} data bytes, found {found})",
            if found < expected {
                "truncated"
            } else {
                "too long"
            },
        );
    }
    Ok((dims, data))
}

/// IDX header: magic (0, 0, type 0x08 = u8, number of dimensions), then each dimension
/// as a big-endian u32.
fn parse_idx_header(bytes: &[u8], magic: u32) -> Result<Vec<usize>> {
    let Some(head) = bytes.get(..4) else {
        bail!("file is {} bytes, too short for an IDX header", bytes.len());
    };
    let found = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    if found != magic {
        bail!(
            "magic number {found:#010x} ({}), expected {magic:#010x} ({})",
            idx_kind(found),
            idx_kind(magic)
        );
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

/// The bytes of an IDX file: `magic` and `dims` big-endian, then `data` (for tests and
/// tools that write small MNIST-like files).
pub fn idx_bytes(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = magic.to_be_bytes().to_vec();
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::idx_bytes as idx;

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
    fn from_idx_bytes_checks_as_load_does() {
        let images = idx(IMAGES_MAGIC, &[1, 28, 28], &[0; PIXELS]);
        let labels = idx(LABELS_MAGIC, &[1], &[7]);
        assert_eq!(
            Dataset::from_idx_bytes(&images, &labels).unwrap().labels,
            [7]
        );
        let swapped = format!(
            "{:#}",
            Dataset::from_idx_bytes(&labels, &images).unwrap_err()
        );
        assert!(swapped.contains("images file: magic number"), "{swapped}");
        let overflow = idx(IMAGES_MAGIC, &[u32::MAX, u32::MAX, u32::MAX], &[]);
        let err = format!(
            "{:#}",
            Dataset::from_idx_bytes(&overflow, &labels).unwrap_err()
        );
        assert!(err.contains("more bytes than fit in memory"), "{err}");
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

    /// Three images whose every pixel is its image's index times 100 (0, 100, 200), so
    /// each image, and each place an image can come from, is told apart by its values.
    fn three_images() -> Dataset {
        let pixels: Vec<u8> = (0..3u8).flat_map(|i| [i * 100; PIXELS]).collect();
        let images = idx(IMAGES_MAGIC, &[3, 28, 28], &pixels);
        Dataset::from_idx_bytes(&images, &idx(LABELS_MAGIC, &[3], &[4, 0, 9])).unwrap()
    }

    /// `len`, `is_empty` and `truncated` count images (one label each), so a dataset of
    /// three has length 3, and truncating keeps the first `n` images and labels whole.
    #[test]
    fn length_and_truncation_count_images() {
        let ds = three_images();
        assert_eq!((ds.len(), ds.is_empty()), (3, false));
        let two = ds.clone().truncated(2);
        assert_eq!((two.len(), two.labels.as_slice()), (2, &[4, 0][..]));
        assert_eq!(two.pixels, ds.pixels[..2 * PIXELS]);
        assert_eq!(ds.clone().truncated(10).len(), 3);
        let none = ds.truncated(0);
        assert_eq!(
            (none.len(), none.is_empty(), none.pixels.len()),
            (0, true, 0)
        );
    }

    /// `intensities` is the images asked for, in the order asked, each pixel through
    /// `vae_core::intensity` (grey level / 255): image 2 is 200 / 255 everywhere, image 0
    /// is 0.
    #[test]
    fn intensities_are_the_images_asked_for_in_order() {
        let ds = three_images();
        let values = ds.intensities([2, 0]);
        assert_eq!(values.len(), 2 * PIXELS);
        assert!(values[..PIXELS].iter().all(|&v| v == 200.0 / 255.0));
        assert!(values[PIXELS..].iter().all(|&v| v == 0.0));
        assert!(ds.intensities([]).is_empty());
    }

    /// Each check of `from_parsed` and `parse_idx` names what is wrong: counts that do
    /// not match, a label that is not a digit, data longer than the dimensions say, a
    /// header cut short, and which kind of file a wrong magic number belongs to.
    #[test]
    fn each_mismatch_is_named() {
        let err = |images: &[u8], labels: &[u8]| {
            format!("{:#}", Dataset::from_idx_bytes(images, labels).unwrap_err())
        };
        let one = idx(IMAGES_MAGIC, &[1, 28, 28], &[0; PIXELS]);
        let two_labels = idx(LABELS_MAGIC, &[2], &[1, 2]);
        assert!(err(&one, &two_labels).contains("1 images but 2 labels"));
        let ten = idx(LABELS_MAGIC, &[1], &[10]);
        assert!(err(&one, &ten).contains("label 10 is not a digit"));
        let long = idx(IMAGES_MAGIC, &[1, 28, 28], &[0; PIXELS + 1]);
        let message = err(&long, &ten);
        assert!(message.contains("too long"), "{message}");
        assert!(
            message.contains("need 784 data bytes, found 785"),
            "{message}"
        );
        let cut = IMAGES_MAGIC.to_be_bytes();
        let message = err(&cut, &ten);
        assert!(message.contains("header cut short"), "{message}");
        let short = err(&cut[..3], &ten);
        assert!(short.contains("file is 3 bytes"), "{short}");
        let swapped = err(&two_labels, &one);
        assert!(
            swapped.contains(
                "0x00000801 (an MNIST labels file), expected 0x00000803 (an MNIST images file)"
            ),
            "{swapped}"
        );
        let other = err(&idx(0x0000_0c03, &[1, 28, 28], &[]), &one);
        assert!(other.contains("(not an MNIST IDX file)"), "{other}");
    }

    /// A folder that is not there, or is a file, is named as such.
    #[test]
    fn a_missing_or_wrong_folder_is_named() {
        let dir = temp_dir("folder");
        let gone = dir.join("gone");
        let err = format!("{:#}", Dataset::load(&gone, Split::Test).unwrap_err());
        assert!(
            err.contains("does not exist") && err.contains("fetch-mnist"),
            "{err}"
        );
        let file = dir.join("file");
        std::fs::write(&file, b"").unwrap();
        let err = format!("{:#}", Dataset::load(&file, Split::Test).unwrap_err());
        assert!(err.contains("is not a folder"), "{err}");
    }

    /// Files up to `MAX_FILE_BYTES` (64 MiB) are read whole; one byte more is refused
    /// before parsing. Sparse files of zeros, so nothing is written to disk: at the
    /// limit the reader gets as far as the magic number (0), one byte beyond it does not.
    #[test]
    fn files_over_64_mib_are_refused() {
        let dir = temp_dir("large");
        let labels = idx(LABELS_MAGIC, &[1], &[3]);
        let images = dir.join("t10k-images-idx3-ubyte");
        write_split(&dir, &[], &labels);
        let file = File::options().write(true).open(&images).unwrap();
        file.set_len(MAX_FILE_BYTES).unwrap();
        let err = format!("{:#}", Dataset::load(&dir, Split::Test).unwrap_err());
        assert!(err.contains("magic number 0x00000000"), "{err}");
        file.set_len(MAX_FILE_BYTES + 1).unwrap();
        let err = format!("{:#}", Dataset::load(&dir, Split::Test).unwrap_err());
        assert!(err.contains("is larger than 64 MiB"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
