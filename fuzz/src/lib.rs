//! What the fuzz targets share: hostile-but-checksummed model files built from fuzzer
//! input, and the checks every parsed model must pass (the decoder held to
//! `vae_core::reference`, the plain one the crate's own tests use too).

use arbitrary::Arbitrary;
use crc::{Crc, CRC_32_ISO_HDLC};
use serde::Serialize;
use vae_core::format::MAX_HEADER_LEN;
use vae_core::{demo, to_pixel, Activation, Architecture, Error, Header, Model, Precision};
use vae_core::{reference, Sample, TransposedConv, TransposedConvs, STACK_SCRATCH};
use vae_core::{FORMAT_VERSION, MAGIC, OLDEST_VERSION, PAYLOAD_ALIGN, PIXELS};

/// Largest payload a case builds (bigger shapes are declared but cut short), so that
/// every execution stays fast.
const PAYLOAD_LIMIT: usize = 8 << 10;

/// A map's side and channels, and transposed convolutions `(channels, kernel, stride)`.
type FuzzedTransposedConvs = (u8, u8, Vec<(u8, u8, u8)>);

/// One fuzzer-chosen model file and the calls made on it.
#[derive(Debug, Arbitrary)]
pub struct Case {
    latent: u8,
    classes: u8,
    hidden: Vec<u8>,
    /// Multiplies latent, classes and widths by 4, past `MAX_WIDTH`.
    wide: bool,
    sigmoid: bool,
    /// A map's side and channels and transposed convolutions `(channels, kernel,
    /// stride)` after the dense layers (any values: most shapes are refused).
    transposed_convs: Option<FuzzedTransposedConvs>,
    precision: u8,
    /// `None`: 784.
    output: Option<u16>,
    /// `None`: the version this build reads.
    version: Option<u16>,
    /// `None`: the size the shape needs.
    payload_len: Option<u32>,
    /// Bytes added to (or cut from) the payload the shape needs.
    payload_delta: i8,
    /// Payload bytes, repeated to the length needed.
    weights: Vec<u8>,
    /// Decoder input, repeated to the length needed.
    input: Vec<f32>,
    seed: u64,
    digit: Option<u8>,
    /// Seed and digit of each end of a morph, then its step and number of steps.
    morph_from: (u64, Option<u8>),
    morph_to: (u64, Option<u8>),
    morph_step: u16,
    morph_steps: u16,
    /// One byte of the finished file XORed with a mask.
    poke: Option<(u32, u8)>,
    /// Also draw the firmware's whole demo (20 images; slow, so not every time).
    demo: bool,
}

/// Builds the file `case` describes, with a correct CRC-32, and checks what `parse` and
/// the decoder make of it.
pub fn check_case(case: &Case) {
    let scale = |v: u8| u16::from(v) * if case.wide { 4 } else { 1 };
    let hidden = case.hidden.iter().take(4).map(|&h| scale(h)).collect();
    let arch = Architecture {
        latent: scale(case.latent),
        classes: scale(case.classes),
        hidden,
        activation: if case.sigmoid {
            Activation::Sigmoid
        } else {
            Activation::Relu
        },
        transposed_convs: case
            .transposed_convs
            .as_ref()
            .filter(|_| case.version != Some(2))
            .map(|(side, channels, layers)| TransposedConvs {
                side: u16::from(*side),
                channels: u16::from(*channels),
                layers: layers
                    .iter()
                    .take(4)
                    .map(|&(channels, kernel, stride)| TransposedConv {
                        channels: u16::from(channels),
                        kernel,
                        stride,
                    })
                    .collect(),
            }),
        output: case.output.unwrap_or(PIXELS as u16),
    };
    let precision =
        [Precision::F32, Precision::F16, Precision::I8][usize::from(case.precision % 3)];
    let version = case.version.unwrap_or(FORMAT_VERSION);
    let needed = arch.payload_len(precision);
    let declared = case
        .payload_len
        .unwrap_or(u32::try_from(needed).unwrap_or(u32::MAX));
    let built = needed.min(PAYLOAD_LIMIT);
    let present = built.saturating_add_signed(isize::from(case.payload_delta));
    let payload: Vec<u8> = if case.weights.is_empty() {
        vec![0; present]
    } else {
        case.weights.iter().copied().cycle().take(present).collect()
    };
    let header = Header {
        magic: MAGIC,
        version,
        arch: arch.clone(),
        precision,
        payload_len: declared,
        crc32: [0; 4],
    };
    let mut file = seal(header, &payload);

    let readable = (OLDEST_VERSION..=FORMAT_VERSION).contains(&version);
    // Whole where the header's length and the bytes present are both the shape's: a shape
    // past `PAYLOAD_LIMIT` cut short and made up again by `payload_delta` is whole too.
    let well_formed =
        readable && arch.validate().is_ok() && declared as usize == needed && present == needed;
    let parsed = Model::parse(&file);
    if !readable {
        let expected = Error::UnsupportedVersion {
            found: version,
            oldest: vae_core::OLDEST_VERSION,
            supported: FORMAT_VERSION,
        };
        assert_eq!(parsed.unwrap_err(), expected);
        return;
    }
    if !well_formed {
        assert!(parsed.is_err(), "accepted a malformed file: {arch:?}");
        return;
    }
    let model = parsed.expect("a well-formed file parses");
    assert_eq!(model.architecture(), &arch);
    assert_eq!(model.precision(), precision);
    assert_eq!(model.header().version, version);
    let x = inputs(&arch, &case.input);
    // The reference's f32 order is the decoder's own for f32 and f16 weights: the same
    // bits (the i8 decoder's integer arithmetic is held to it by vae-core's tests).
    let floats = precision != Precision::I8;
    let reference = floats
        .then(|| reference::probabilities::<f32>(&payload, &arch, precision, &x))
        .flatten();
    if let Some(reference) = reference {
        let mut probs = [0.0; PIXELS];
        let mut scratch = vec![0u32; model.scratch_len()];
        model
            .decode(&x, &mut scratch, &mut probs)
            .expect("a parsed model decodes an input of the right length");
        for (o, (got, want)) in probs.iter().zip(&reference).enumerate() {
            let same = got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan());
            assert!(same, "pixel {o}: decoder {got:e}, reference {want:e}");
        }
    }
    exercise(&model, &case.input, case.seed, case.digit, case.demo);
    let (step, steps) = (case.morph_step, case.morph_steps);
    let mut pixels = [0u8; PIXELS];
    let mut scratch = vec![0u32; model.scratch_len()];
    let (from, to) = (case.morph_from, case.morph_to);
    let morphed = model.morph(
        Sample::new(from.0, from.1),
        Sample::new(to.0, to.1),
        step,
        steps,
        &mut scratch,
        &mut pixels,
    );
    if step >= steps {
        assert_eq!(morphed, Err(Error::StepOutOfRange { step, steps }));
    }

    if let Some((at, mask)) = case.poke.filter(|&(_, mask)| mask != 0) {
        let at = at as usize % file.len();
        file[at] ^= mask;
        // CRC-32 catches every error burst of up to 32 bits, so any change to one byte.
        assert!(
            Model::parse(&file).is_err(),
            "byte {at} ^ {mask:#04x} was not caught"
        );
    }
}

/// A version 2 header: a dense architecture, without the transposed convolutions.
#[derive(Serialize)]
struct HeaderV2 {
    magic: [u8; 4],
    version: u16,
    latent: u16,
    classes: u16,
    hidden: heapless::Vec<u16, 4>,
    activation: Activation,
    output: u16,
    precision: Precision,
    payload_len: u32,
    crc32: [u8; 4],
}

/// `header` serialized by postcard into `buf`: in version 2's layout for version 2.
fn serialize<'b>(header: &Header, buf: &'b mut [u8]) -> &'b mut [u8] {
    let fits = "a header fits MAX_HEADER_LEN";
    if header.version != 2 {
        return postcard::to_slice(header, buf).expect(fits);
    }
    let arch = &header.arch;
    let v2 = HeaderV2 {
        magic: header.magic,
        version: header.version,
        latent: arch.latent,
        classes: arch.classes,
        hidden: arch.hidden.clone(),
        activation: arch.activation,
        output: arch.output,
        precision: header.precision,
        payload_len: header.payload_len,
        crc32: header.crc32,
    };
    postcard::to_slice(&v2, buf).expect(fits)
}

/// A file of `header` (its CRC filled in) and `payload`, laid out as `vae_core::encode`
/// lays it out (version 2: as the writer of version 2 did).
fn seal(mut header: Header, payload: &[u8]) -> Vec<u8> {
    let mut buf = [0u8; MAX_HEADER_LEN];
    let len = serialize(&header, &mut buf).len();
    let padding = vec![0u8; len.next_multiple_of(PAYLOAD_ALIGN) - len];
    let crc = Crc::<u32>::new(&CRC_32_ISO_HDLC);
    let mut digest = crc.digest();
    digest.update(&buf[..len - 4]);
    digest.update(&padding);
    digest.update(payload);
    header.crc32 = digest.finalize().to_le_bytes();
    let mut file = serialize(&header, &mut buf).to_vec();
    file.extend_from_slice(&padding);
    file.extend_from_slice(payload);
    file
}

/// `values` repeated to the model's input length (zeros if there are none).
fn inputs(arch: &Architecture, values: &[f32]) -> Vec<f32> {
    let n = arch.input_len();
    if values.is_empty() {
        vec![0.0; n]
    } else {
        values.iter().copied().cycle().take(n).collect()
    }
}

/// Every decoder entry point on `model`, with the results the API promises; with `demo`,
/// the firmware's demo drawings too.
pub fn exercise(model: &Model<'_>, values: &[f32], seed: u64, digit: Option<u8>, demo: bool) {
    let arch = model.architecture();
    let classes = arch.classes;
    let x = inputs(arch, values);
    let mut probs = [0.0; PIXELS];
    let mut pixels = [0u8; PIXELS];
    let mut scratch = vec![0u32; model.scratch_len()];

    // A stack scratch of STACK_SCRATCH words decodes what fits it, and refuses the rest
    // by name.
    let needed = model.scratch_len();
    let on_stack = model.decode(&x, &mut [0; STACK_SCRATCH], &mut probs);
    if needed > STACK_SCRATCH {
        let available = STACK_SCRATCH;
        assert_eq!(on_stack, Err(Error::ScratchTooSmall { needed, available }));
        let short = model.decode(&x, &mut scratch[1..], &mut probs);
        let available = needed - 1;
        assert_eq!(short, Err(Error::ScratchTooSmall { needed, available }));
    } else {
        on_stack.expect("a parsed model decodes an input of the right length");
    }
    model
        .decode(&x, &mut scratch, &mut probs)
        .expect("a parsed model decodes an input of the right length");
    assert!(
        probs.iter().all(|p| !(*p < 0.0 || *p > 1.0)),
        "a probability outside [0, 1]"
    );
    model
        .decode(&x, &mut scratch, &mut pixels)
        .expect("as into probabilities");
    assert!(pixels.iter().zip(&probs).all(|(&g, &p)| g == to_pixel(p)));
    assert!(matches!(
        model.decode(&x[1..], &mut scratch, &mut probs),
        Err(Error::LengthMismatch { .. })
    ));

    // What a digit request must give: the digit, or the error the API names.
    let expect = |digit: Option<u8>| -> Result<(), Error> {
        match (digit, classes) {
            (None, 0) => Ok(()),
            (Some(_), 0) => Err(Error::NotConditional),
            (None, _) => Err(Error::DigitRequired),
            (Some(d), c) if u16::from(d) < c => Ok(()),
            (Some(d), c) => Err(Error::DigitOutOfRange {
                digit: d,
                classes: c,
            }),
        }
    };
    let z = &x[..usize::from(arch.latent)];
    let mut input = [0.0; vae_core::MAX_WIDTH];
    let decoded = model
        .input(z, digit, &mut input)
        .and_then(|input| model.decode(input, &mut scratch, &mut probs));
    assert_eq!(decoded, expect(digit));

    let drawn = model.generate(Sample::new(seed, digit), &mut scratch, &mut pixels);
    match (digit, classes) {
        (None, 0) => assert_eq!(drawn, Ok(None)),
        (None, c) => assert!(
            matches!(drawn, Ok(Some(d)) if u16::from(d) < c),
            "{drawn:?}"
        ),
        (Some(d), _) => assert_eq!(drawn, expect(Some(d)).map(|()| Some(d))),
    }
    if drawn.is_ok() {
        let mut again = [0u8; PIXELS];
        assert_eq!(
            model.generate(Sample::new(seed, digit), &mut scratch, &mut again),
            drawn
        );
        assert_eq!(again, pixels, "the same seed drew different pixels");
    }

    for drawing in demo::plan(model).filter(|_| demo) {
        let _ = drawing.to_string();
        drawing
            .draw(model, &mut scratch, &mut pixels)
            .unwrap_or_else(|e| panic!("demo drawing {drawing} failed: {e}"));
    }
}
