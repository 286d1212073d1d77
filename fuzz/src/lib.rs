//! What the fuzz targets share: hostile-but-checksummed model files built from fuzzer
//! input, the checks every parsed model must pass, and a plain reference decoder.

use arbitrary::Arbitrary;
use crc::{Crc, CRC_32_ISO_HDLC};
use vae_core::format::MAX_HEADER_LEN;
use vae_core::{demo, to_pixel, Activation, Architecture, Error, Header, Model, Precision};
use vae_core::{FORMAT_VERSION, MAGIC, PAYLOAD_ALIGN, PIXELS};

/// Largest payload a case builds (bigger shapes are declared but cut short), so that
/// every execution stays fast.
const PAYLOAD_LIMIT: usize = 8 << 10;

/// One fuzzer-chosen model file and the calls made on it.
#[derive(Debug, Arbitrary)]
pub struct Case {
    latent: u8,
    classes: u8,
    hidden: Vec<u8>,
    /// Multiplies latent, classes and widths by 4, past `MAX_WIDTH`.
    wide: bool,
    sigmoid: bool,
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

    let well_formed = version == FORMAT_VERSION
        && arch.validate().is_ok()
        && declared as usize == needed
        && needed <= PAYLOAD_LIMIT
        && case.payload_delta == 0;
    let parsed = Model::parse(&file);
    if version != FORMAT_VERSION {
        let expected = Error::UnsupportedVersion {
            found: version,
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
    let x = inputs(&arch, &case.input);
    if let Some(reference) = reference_decode(&arch, precision, &payload, &x) {
        let mut probs = [0.0; PIXELS];
        model
            .decode_into(&x, &mut probs)
            .expect("a parsed model decodes an input of the right length");
        for (o, (got, want)) in probs.iter().zip(&reference).enumerate() {
            let same = got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan());
            assert!(same, "pixel {o}: decoder {got:e}, reference {want:e}");
        }
    }
    exercise(&model, &case.input, case.seed, case.digit, case.demo);
    let (step, steps) = (case.morph_step, case.morph_steps);
    let mut pixels = [0u8; PIXELS];
    let morphed = model.morph(case.morph_from, case.morph_to, step, steps, &mut pixels);
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

/// A file of `header` (its CRC filled in) and `payload`, laid out as `vae_core::encode`
/// lays it out.
fn seal(mut header: Header, payload: &[u8]) -> Vec<u8> {
    let mut buf = [0u8; MAX_HEADER_LEN];
    let len = postcard::to_slice(&header, &mut buf)
        .expect("a header fits MAX_HEADER_LEN")
        .len();
    let padding = vec![0u8; len.next_multiple_of(PAYLOAD_ALIGN) - len];
    let crc = Crc::<u32>::new(&CRC_32_ISO_HDLC);
    let mut digest = crc.digest();
    digest.update(&buf[..len - 4]);
    digest.update(&padding);
    digest.update(payload);
    header.crc32 = digest.finalize().to_le_bytes();
    let mut file = postcard::to_slice(&header, &mut buf)
        .expect("same length")
        .to_vec();
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

    model
        .decode_into(&x, &mut probs)
        .expect("a parsed model decodes an input of the right length");
    assert!(
        probs.iter().all(|p| !(*p < 0.0 || *p > 1.0)),
        "a probability outside [0, 1]"
    );
    model
        .decode_pixels(&x, &mut pixels)
        .expect("as decode_into");
    assert!(pixels.iter().zip(&probs).all(|(&g, &p)| g == to_pixel(p)));
    assert!(matches!(
        model.decode_into(&x[1..], &mut probs),
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
    assert_eq!(model.decode_latent(z, digit, &mut probs), expect(digit));

    let drawn = model.generate(seed, digit, &mut pixels);
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
        assert_eq!(model.generate(seed, digit, &mut again), drawn);
        assert_eq!(again, pixels, "the same seed drew different pixels");
    }

    for drawing in demo::plan(model).filter(|_| demo) {
        let _ = drawing.to_string();
        drawing
            .draw(model, &mut pixels)
            .unwrap_or_else(|e| panic!("demo drawing {drawing} failed: {e}"));
    }
}

/// The decoder written plainly: each output `bias + w[0]*x[0] + w[1]*x[1] + ...`, left
/// to right in f32, as `Model::decode_into` documents. `None` for i8 weights.
fn reference_decode(
    arch: &Architecture,
    precision: Precision,
    payload: &[u8],
    input: &[f32],
) -> Option<Vec<f32>> {
    let width = match precision {
        Precision::F32 => 4,
        Precision::F16 => 2,
        Precision::I8 => return None,
    };
    let value = |at: usize| {
        let b = &payload[at * width..(at + 1) * width];
        match precision {
            Precision::F16 => half::f16::from_le_bytes([b[0], b[1]]).to_f32(),
            _ => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        }
    };
    let sigmoid = |v: f32| 1.0 / (1.0 + libm::expf(-v));
    let layers: Vec<_> = arch.layers().collect();
    let mut x = input.to_vec();
    let mut at = 0;
    for (k, &(n_in, n_out)) in layers.iter().enumerate() {
        let y = (0..n_out)
            .map(|o| {
                let sum = (0..n_in).fold(value(at + n_in * n_out + o), |acc, i| {
                    acc + x[i] * value(at + o * n_in + i)
                });
                match (k + 1 == layers.len(), arch.activation) {
                    (true, _) | (false, Activation::Sigmoid) => sigmoid(sum),
                    (false, Activation::Relu) => {
                        if sum > 0.0 {
                            sum
                        } else {
                            0.0
                        }
                    }
                }
            })
            .collect();
        at += n_in * n_out + n_out;
        x = y;
    }
    Some(x)
}
