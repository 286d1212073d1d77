//! A parsed model file and the three things its decoder does, each one method: draw a
//! sample ([`Model::generate`]), decode a given input ([`Model::decode`], with
//! [`Model::input`] for a latent code and a digit) and morph from one sample to another
//! ([`Model::morph`]). Each takes the caller's scratch memory and draws into a
//! [`Canvas`]: grey levels or probabilities.

use crate::format::{split_and_verify, Architecture, Header, Precision};
use crate::forward::{self, Forward};
use crate::pixel::Canvas;
use crate::{scratch, Error, Rng, MAX_WIDTH};

/// A validated model file, borrowing its weights from the bytes it was parsed from
/// (flash on a microcontroller, a buffer on the host).
#[derive(Debug, Clone)]
pub struct Model<'a> {
    header: Header,
    payload: &'a [u8],
}

/// One sample from the model: the seed of its latent code `z ~ N(0, temperature^2 I)`
/// (drawn by [`Rng::new(seed)`](Rng)), and for a conditional model the digit to draw, or
/// `None` for a digit chosen by the same generator. The same sample gives the same
/// pixels on every platform.
///
/// ```
/// use vae_core::Sample;
/// let seven = Sample::new(42, Some(7));
/// assert_eq!(seven.temperature, 1.0);
/// assert_eq!(seven.at_temperature(0.6).temperature, 0.6);
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Seed of the latent code (and of the digit, when none is asked for).
    pub seed: u64,
    /// Digit asked for; `None` for an unconditional model or a digit chosen at random.
    pub digit: Option<u8>,
    /// Scale of the latent code: the standard-normal draws are each multiplied by it in
    /// f32, so 1 is the model's prior and lower values keep closer to its most typical
    /// digits. It must be finite and 0 or above ([`Error::TemperatureOutOfRange`]).
    pub temperature: f32,
}

impl Sample {
    /// The sample of `seed` and `digit` at temperature 1.
    pub const fn new(seed: u64, digit: Option<u8>) -> Self {
        Sample {
            seed,
            digit,
            temperature: 1.0,
        }
    }

    /// The same sample at `temperature`.
    pub const fn at_temperature(self, temperature: f32) -> Self {
        Sample {
            temperature,
            ..self
        }
    }
}

/// Words of scratch that every dense model fits in (8 KiB): two decoder inputs and two
/// dense buffers of [`MAX_WIDTH`]. `&mut [0; STACK_SCRATCH]` on the stack serves any
/// dense model; a model with transposed convolutions may need more
/// ([`Model::scratch_len`]).
pub const STACK_SCRATCH: usize = 4 * MAX_WIDTH;

impl<'a> Model<'a> {
    /// Parses and fully checks a model file: magic, version, architecture limits, payload
    /// size and CRC-32. Nothing is copied; the weights stay in `bytes`.
    ///
    /// ```
    /// # let mut buf = vec![0u8; 1 << 16];
    /// # let file = vae_core::example_model(vae_core::Precision::F32, &mut buf).unwrap();
    /// use vae_core::{Error, Model};
    /// assert!(Model::parse(&file).is_ok());
    /// assert_eq!(Model::parse(&file[..10]).unwrap_err(), Error::MalformedHeader);
    /// ```
    pub fn parse(bytes: &'a [u8]) -> Result<Self, Error> {
        let (header, payload) = split_and_verify(bytes)?;
        forward::check_built(&header.arch)?;
        Ok(Model { header, payload })
    }

    /// The file's header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The decoder's shape.
    pub fn architecture(&self) -> &Architecture {
        &self.header.arch
    }

    /// How the weights are stored.
    pub fn precision(&self) -> Precision {
        self.header.precision
    }

    /// Whether the model draws a chosen digit (it was trained with labels).
    pub fn is_conditional(&self) -> bool {
        self.header.arch.classes > 0
    }

    /// Words (32 bits each) of scratch memory that [`generate`](Self::generate),
    /// [`decode`](Self::decode) and [`morph`](Self::morph) need: the decoder input
    /// twice (`generate` draws it there, `morph` both ends), two buffers as wide as the
    /// widest dense layer input, and for a model with transposed convolutions the rows
    /// they stream through (see [`TransposedConvs`](crate::TransposedConvs)). At most
    /// [`STACK_SCRATCH`] for every dense model.
    ///
    /// ```
    /// # let mut buf = vec![0u8; 1 << 16];
    /// # let file = vae_core::example_model(vae_core::Precision::F32, &mut buf).unwrap();
    /// use vae_core::{Error, Model, Sample, PIXELS};
    /// let model = Model::parse(&file)?;
    /// assert_eq!(model.scratch_len(), 2 * 12 + 2 * 12); // inputs of 12, one hidden layer of 8
    /// let mut scratch = vec![0u32; model.scratch_len()];
    /// let mut pixels = [0u8; PIXELS];
    /// model.generate(Sample::new(7, Some(3)), &mut scratch, &mut pixels)?;
    /// let refused = model.generate(Sample::new(7, Some(3)), &mut scratch[1..], &mut pixels);
    /// assert_eq!(refused, Err(Error::ScratchTooSmall { needed: 48, available: 47 }));
    /// # Ok::<(), vae_core::Error>(())
    /// ```
    pub fn scratch_len(&self) -> usize {
        self.header
            .arch
            .input_len()
            .saturating_mul(2)
            .saturating_add(self.forward().scratch_len())
    }

    /// The forward pass over this model's weights.
    fn forward(&self) -> Forward<'_> {
        Forward {
            arch: &self.header.arch,
            precision: self.header.precision,
            payload: self.payload,
        }
    }

    /// `scratch`, if it holds [`scratch_len`](Self::scratch_len) words.
    fn checked<'s>(&self, scratch: &'s mut [u32]) -> Result<&'s mut [u32], Error> {
        let (needed, available) = (self.scratch_len(), scratch.len());
        scratch
            .get_mut(..needed)
            .ok_or(Error::ScratchTooSmall { needed, available })
    }

    /// Draws `sample` into `image`, in `scratch` (at least
    /// [`scratch_len`](Self::scratch_len) words, [`Error::ScratchTooSmall`] otherwise):
    /// the decoder input [`sample_input`](Self::sample_input) gives, decoded. Returns the
    /// digit drawn (`None` for an unconditional model).
    ///
    /// ```
    /// # let mut buf = vec![0u8; 1 << 16];
    /// # let file = vae_core::example_model(vae_core::Precision::F16, &mut buf).unwrap();
    /// use vae_core::{Error, Model, Sample, PIXELS, STACK_SCRATCH};
    /// let model = Model::parse(&file)?;
    /// let mut scratch = [0u32; STACK_SCRATCH];
    /// let (mut a, mut b) = ([0u8; PIXELS], [0u8; PIXELS]);
    /// assert_eq!(model.generate(Sample::new(42, Some(7)), &mut scratch, &mut a)?, Some(7));
    /// model.generate(Sample::new(42, Some(7)).at_temperature(1.0), &mut scratch, &mut b)?;
    /// assert_eq!(a, b);
    /// let refused = model.generate(Sample::new(42, None).at_temperature(-0.5), &mut scratch, &mut a);
    /// assert_eq!(refused, Err(Error::TemperatureOutOfRange));
    /// # Ok::<(), vae_core::Error>(())
    /// ```
    // Inlined, so that a sample of constant temperature 1 (the firmware's) checks and
    // scales nothing: without an FPU each float comparison is a library call.
    #[inline(always)]
    pub fn generate(
        &self,
        sample: Sample,
        scratch: &mut [u32],
        image: &mut impl Canvas,
    ) -> Result<Option<u8>, Error> {
        check_temperature(sample.temperature)?;
        let scratch = self.checked(scratch)?;
        let (input, _, rest) = self.inputs(scratch)?;
        let digit = self.sample_into(sample.seed, sample.digit, input)?;
        self.scale(sample.temperature, input);
        self.forward().run(input, rest, image)?;
        Ok(digit)
    }

    /// Decodes a full decoder input `[z, label]` (length [`Architecture::input_len`];
    /// [`input`](Self::input) builds it from a latent code and a digit) into `image`, in
    /// `scratch` (at least [`scratch_len`](Self::scratch_len) words).
    ///
    /// For f32 and f16 weights each output of a dense layer is `bias + w[0]*x[0] +
    /// w[1]*x[1] + ...`, summed in that order in f32, and each output of a transposed
    /// convolution its bias, then each input pixel that reaches it in raster order with
    /// its channels left to right (see [`TransposedConvs`](crate::TransposedConvs)):
    /// every platform that follows IEEE 754 gets the same bits. For i8 weights the
    /// decoder runs in integers (Q16 values between layers, exact i32 sums), the same
    /// bits everywhere without help from the FPU, and only the output's sigmoid is f32.
    ///
    /// ```
    /// # let mut buf = vec![0u8; 1 << 16];
    /// # let file = vae_core::example_model(vae_core::Precision::F32, &mut buf).unwrap();
    /// use vae_core::{Model, MAX_WIDTH, PIXELS, STACK_SCRATCH};
    /// let model = Model::parse(&file)?;
    /// let mut input = [0.0; MAX_WIDTH];
    /// let input = model.input(&[0.3, -0.2], Some(4), &mut input)?; // [z, one-hot(4)]
    /// assert_eq!(input, &[0.3, -0.2, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    /// let mut probabilities = [0.0f32; PIXELS];
    /// model.decode(input, &mut [0; STACK_SCRATCH], &mut probabilities)?;
    /// assert!(probabilities.iter().all(|p| (0.0..=1.0).contains(p)));
    /// # Ok::<(), vae_core::Error>(())
    /// ```
    pub fn decode(
        &self,
        input: &[f32],
        scratch: &mut [u32],
        image: &mut impl Canvas,
    ) -> Result<(), Error> {
        let scratch = self.checked(scratch)?;
        self.forward().run(input, scratch, image)
    }

    /// Step `step` of `steps` along the straight line between the decoder inputs of two
    /// samples (as [`generate`](Self::generate) draws them): `x = a + t * (b - a)` with
    /// `t = step / (steps - 1)`, so step 0 is `a` and the last step is `b`. For a
    /// conditional model the one-hot label moves too, so a 3 turns into an 8. A `step`
    /// outside `0..steps` is [`Error::StepOutOfRange`]. In `scratch`, of at least
    /// [`scratch_len`](Self::scratch_len) words.
    ///
    /// ```
    /// # let mut buf = vec![0u8; 1 << 16];
    /// # let file = vae_core::example_model(vae_core::Precision::F16, &mut buf).unwrap();
    /// use vae_core::{Error, Model, Sample, PIXELS, STACK_SCRATCH};
    /// let model = Model::parse(&file)?;
    /// let mut scratch = [0u32; STACK_SCRATCH];
    /// let (three, eight) = (Sample::new(1, Some(3)), Sample::new(2, Some(8)));
    /// let (mut first, mut start) = ([0u8; PIXELS], [0u8; PIXELS]);
    /// model.morph(three, eight, 0, 5, &mut scratch, &mut first)?;
    /// model.generate(three, &mut scratch, &mut start)?;
    /// assert_eq!(first, start);
    /// let last = model.morph(three, eight, 5, 5, &mut scratch, &mut first);
    /// assert_eq!(last, Err(Error::StepOutOfRange { step: 5, steps: 5 }));
    /// # Ok::<(), vae_core::Error>(())
    /// ```
    pub fn morph(
        &self,
        from: Sample,
        to: Sample,
        step: u16,
        steps: u16,
        scratch: &mut [u32],
        image: &mut impl Canvas,
    ) -> Result<(), Error> {
        if step >= steps {
            return Err(Error::StepOutOfRange { step, steps });
        }
        let t = if steps > 1 {
            f32::from(step) / f32::from(steps - 1)
        } else {
            0.0
        };
        check_temperature(from.temperature)?;
        check_temperature(to.temperature)?;
        let scratch = self.checked(scratch)?;
        let (a, b, rest) = self.inputs(scratch)?;
        self.sample_into(from.seed, from.digit, a)?;
        self.scale(from.temperature, a);
        self.sample_into(to.seed, to.digit, b)?;
        self.scale(to.temperature, b);
        for (a, b) in a.iter_mut().zip(b.iter()) {
            *a += t * (b - *a);
        }
        self.forward().run(a, rest, image)
    }

    /// Builds the decoder input `[z, one-hot(digit)]` for the latent code `z` in
    /// `input` and returns it, for [`decode`](Self::decode). A conditional model needs a
    /// digit; an unconditional one refuses it.
    pub fn input<'i>(
        &self,
        z: &[f32],
        digit: Option<u8>,
        input: &'i mut [f32; MAX_WIDTH],
    ) -> Result<&'i [f32], Error> {
        let latent = usize::from(self.header.arch.latent);
        if z.len() != latent {
            return Err(Error::LengthMismatch {
                expected: latent,
                found: z.len(),
            });
        }
        input
            .get_mut(..latent)
            .ok_or(Error::UnsupportedArchitecture(
                "latent wider than MAX_WIDTH",
            ))?
            .copy_from_slice(z);
        let len = self.set_label(digit, input)?;
        Ok(input.get(..len).unwrap_or(&[]))
    }

    /// The decoder input [`generate`](Self::generate) decodes for `sample`, written into
    /// `input`, and the digit drawn.
    pub fn sample_input<'i>(
        &self,
        sample: Sample,
        input: &'i mut [f32; MAX_WIDTH],
    ) -> Result<(&'i [f32], Option<u8>), Error> {
        check_temperature(sample.temperature)?;
        let len = self.header.arch.input_len();
        let input = input.get_mut(..len).ok_or(Error::UnsupportedArchitecture(
            "decoder input wider than MAX_WIDTH",
        ))?;
        let digit = self.sample_into(sample.seed, sample.digit, input)?;
        self.scale(sample.temperature, input);
        Ok((input, digit))
    }

    /// Writes the one-hot label after the latent part of `input`; returns the input length.
    fn set_label(&self, digit: Option<u8>, input: &mut [f32]) -> Result<usize, Error> {
        let arch = &self.header.arch;
        let len = arch.input_len();
        let onehot =
            input
                .get_mut(usize::from(arch.latent)..len)
                .ok_or(Error::UnsupportedArchitecture(
                    "decoder input wider than MAX_WIDTH",
                ))?;
        onehot.fill(0.0);
        match (digit, arch.classes) {
            (None, 0) => {}
            (Some(_), 0) => return Err(Error::NotConditional),
            (None, _) => return Err(Error::DigitRequired),
            (Some(d), classes) => {
                let slot = onehot
                    .get_mut(usize::from(d))
                    .ok_or(Error::DigitOutOfRange { digit: d, classes })?;
                *slot = 1.0;
            }
        }
        Ok(len)
    }

    /// The two decoder inputs at the start of `scratch` (as f32), and the rest of it.
    fn inputs<'s>(&self, scratch: &'s mut [u32]) -> Result<Inputs<'s>, Error> {
        let len = self.header.arch.input_len();
        let (needed, available) = (self.scratch_len(), scratch.len());
        let too_small = Error::ScratchTooSmall { needed, available };
        let (a, rest) = scratch.split_at_mut_checked(len).ok_or(too_small)?;
        let (b, rest) = rest.split_at_mut_checked(len).ok_or(too_small)?;
        Ok((scratch::as_f32(a), scratch::as_f32(b), rest))
    }

    /// Multiplies the latent part of the decoder input `input` by `temperature`; nothing
    /// at temperature 1 (which, a constant, costs no comparison).
    #[inline(always)]
    fn scale(&self, temperature: f32, input: &mut [f32]) {
        if temperature != 1.0 {
            let latent = usize::from(self.header.arch.latent);
            for z in input.iter_mut().take(latent) {
                *z *= temperature;
            }
        }
    }

    /// [`sample_input`](Self::sample_input) into `input`, the decoder input's length, at
    /// temperature 1 ([`scale`](Self::scale) does the rest).
    fn sample_into(
        &self,
        seed: u64,
        digit: Option<u8>,
        input: &mut [f32],
    ) -> Result<Option<u8>, Error> {
        let arch = &self.header.arch;
        let mut rng = Rng::new(seed);
        let z = input
            .get_mut(..usize::from(arch.latent))
            .ok_or(Error::UnsupportedArchitecture(
                "latent wider than MAX_WIDTH",
            ))?;
        rng.fill_standard_normal(z);
        let digit = match (digit, arch.classes) {
            (None, 0) => None,
            (Some(d), _) => Some(d),
            (None, classes) => u8::try_from(rng.below(u32::from(classes))).ok(),
        };
        self.set_label(digit, input)?;
        Ok(digit)
    }
}

/// Two decoder inputs at the start of the scratch, and the rest of it.
type Inputs<'s> = (&'s mut [f32], &'s mut [f32], &'s mut [u32]);

/// `Ok` for a temperature that is finite and 0 or above.
#[inline(always)]
fn check_temperature(temperature: f32) -> Result<(), Error> {
    if temperature.is_finite() && temperature >= 0.0 {
        Ok(())
    } else {
        Err(Error::TemperatureOutOfRange)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;
    use crate::{reference, to_pixel, Activation, PIXELS};

    /// [`STACK_SCRATCH`] holds the scratch of the widest dense decoder: two hidden layers
    /// of [`MAX_WIDTH`] (in i8, to keep the file small).
    #[test]
    fn the_widest_dense_model_decodes_in_stack_scratch() {
        let hidden = heapless::Vec::from_slice(&[MAX_WIDTH as u16; 2]).unwrap();
        let arch = Architecture::dense(16, 10, hidden, Activation::Relu);
        let mut file = std::vec![0u8; crate::encoded_len(&arch, Precision::I8).unwrap()];
        let values = (0..arch.parameter_count()).map(|i| ((i % 7) as f32 - 3.0) / 64.0);
        crate::encode(&arch, Precision::I8, values, &mut file).unwrap();
        let model = Model::parse(&file).unwrap();
        let mut pixels = [0u8; PIXELS];
        let scratch = &mut [0u32; STACK_SCRATCH];
        model
            .generate(Sample::new(1, Some(2)), scratch, &mut pixels)
            .unwrap();
    }

    /// Every precision, with relu and with sigmoid hidden layers, with and without a
    /// label, decodes what its file says: `decode` within 1e-5 of the f64 reference
    /// for f32 and f16 weights (f32 sums of at most 13 terms), within 1e-3 for i8 (its
    /// integer arithmetic: inputs to 15 bits, Q16 between layers, scales to 15 bits; see
    /// `forward_i8`); and its grey levels are `to_pixel` of those probabilities, the
    /// same bits for f32 and f16, within one grey level for i8 (whose pixels come from
    /// the Q16 logit, not from the f32 probability).
    #[test]
    fn every_precision_decodes_what_its_file_says() {
        let hidden = heapless::Vec::from_slice(&[6, 5]).unwrap();
        let sigmoid_arch = Architecture::dense(3, 0, hidden, Activation::Sigmoid);
        for precision in Precision::ALL {
            let mut relu_file = std::vec![0u8; 1 << 16];
            let len = crate::example_model(precision, &mut relu_file)
                .unwrap()
                .len();
            relu_file.truncate(len);
            let mut sigmoid_file =
                std::vec![0u8; crate::encoded_len(&sigmoid_arch, precision).unwrap()];
            let values =
                (0..sigmoid_arch.parameter_count()).map(|i| ((i * 37) % 101) as f32 / 25.0 - 2.0);
            crate::encode(&sigmoid_arch, precision, values, &mut sigmoid_file).unwrap();
            // `example_model` draws chosen digits (10 classes); the sigmoid file does not.
            for (file, conditional) in [(&relu_file, true), (&sigmoid_file, false)] {
                let model = Model::parse(file).unwrap();
                assert_eq!(model.is_conditional(), conditional);
                let tolerance = if precision == Precision::I8 {
                    1e-3
                } else {
                    1e-5
                };
                let arch = model.architecture();
                let payload = &file[file.len() - arch.payload_len(precision)..];
                let scratch = &mut [0u32; STACK_SCRATCH];
                for seed in 0..10 {
                    let mut input = [0.0f32; MAX_WIDTH];
                    let digit = model.is_conditional().then_some(seed as u8);
                    let (input, _) = model
                        .sample_input(Sample::new(seed, digit), &mut input)
                        .unwrap();
                    let want =
                        reference::probabilities::<f64>(payload, arch, precision, input).unwrap();
                    assert_eq!(want.len(), PIXELS);
                    let mut probs = [0.0f32; PIXELS];
                    model.decode(input, scratch, &mut probs).unwrap();
                    let mut pixels = [0u8; PIXELS];
                    model.decode(input, scratch, &mut pixels).unwrap();
                    for (o, (&p, &want)) in probs.iter().zip(&want).enumerate() {
                        let what = (precision, model.architecture().activation, seed, o);
                        assert!(
                            (f64::from(p) - want).abs() < tolerance,
                            "{what:?}: {p} {want}"
                        );
                        let level = to_pixel(p);
                        if precision == Precision::I8 {
                            assert!(pixels[o].abs_diff(level) <= 1, "{what:?}");
                        } else {
                            assert_eq!(pixels[o], level, "{what:?}");
                        }
                    }
                }
            }
        }
    }

    /// `morph`'s documented line: step `k` of `steps` decodes `a + t (b - a)` with
    /// `t = k / (steps - 1)` between the inputs `sample_input` gives for the two ends,
    /// the middle step of three is their midpoint (t = 1/2, exact in f32) and the last
    /// is the second drawing; a morph of one image is its first drawing.
    #[test]
    fn morph_steps_along_the_line_between_two_drawings() {
        let mut buf = std::vec![0u8; 1 << 16];
        let s = &mut [0u32; STACK_SCRATCH];
        for precision in Precision::ALL {
            let file = crate::example_model(precision, &mut buf).unwrap();
            let model = Model::parse(file).unwrap();
            let (from, to) = (Sample::new(1, Some(3)), Sample::new(2, Some(8)));
            let (mut a, mut b) = ([0.0f32; MAX_WIDTH], [0.0f32; MAX_WIDTH]);
            let (a, _) = model.sample_input(from, &mut a).unwrap();
            let (b, _) = model.sample_input(to, &mut b).unwrap();
            let mid: std::vec::Vec<f32> = a.iter().zip(b).map(|(a, b)| a + 0.5 * (b - a)).collect();
            let (mut got, mut want) = ([0u8; PIXELS], [0u8; PIXELS]);
            model.morph(from, to, 1, 3, s, &mut got).unwrap();
            model.decode(&mid, s, &mut want).unwrap();
            assert_eq!(got, want, "{precision}: middle step");
            model.morph(from, to, 2, 3, s, &mut got).unwrap();
            model.generate(to, s, &mut want).unwrap();
            assert_eq!(got, want, "{precision}: last step");
            model.morph(from, to, 0, 1, s, &mut got).unwrap();
            model.generate(from, s, &mut want).unwrap();
            assert_eq!(got, want, "{precision}: a morph of one image");
            assert_eq!(
                model.morph(from, to, 0, 0, s, &mut got),
                Err(Error::StepOutOfRange { step: 0, steps: 0 })
            );
        }
    }

    /// A sample's temperature scales the latent part of the decoder input and nothing
    /// else: at 0.5 it decodes `0.5 z` with the same one-hot, at 0 every seed gives the
    /// one image of `z = 0`, and a free sample's digit is the one temperature 1 picks.
    /// Negative, NaN and infinite temperatures are refused, by `generate`, `morph` and
    /// `sample_input` alike.
    #[test]
    fn temperature_scales_the_latent_code_only() {
        let mut buf = std::vec![0u8; 1 << 16];
        let s = &mut [0u32; STACK_SCRATCH];
        for precision in Precision::ALL {
            let file = crate::example_model(precision, &mut buf).unwrap();
            let model = Model::parse(file).unwrap();
            let mut input = [0.0f32; MAX_WIDTH];
            let (input, _) = model
                .sample_input(Sample::new(9, Some(4)), &mut input)
                .unwrap();
            let mut half: std::vec::Vec<f32> = input.to_vec();
            half[..2].iter_mut().for_each(|z| *z *= 0.5);
            let (mut got, mut want) = ([0u8; PIXELS], [0u8; PIXELS]);
            let warm = Sample::new(9, Some(4)).at_temperature(0.5);
            model.generate(warm, s, &mut got).unwrap();
            model.decode(&half, s, &mut want).unwrap();
            assert_eq!(got, want, "{precision}: temperature 0.5");
            let mut scaled = [0.0f32; MAX_WIDTH];
            assert_eq!(model.sample_input(warm, &mut scaled).unwrap().0, &half[..]);
            let mut plain = [0u8; PIXELS];
            model
                .generate(Sample::new(9, Some(4)), s, &mut plain)
                .unwrap();
            assert_ne!(got, plain, "{precision}: 0.5 differs from 1");
            let cold = |seed| Sample::new(seed, Some(4)).at_temperature(0.0);
            model.generate(cold(1), s, &mut got).unwrap();
            model.generate(cold(2), s, &mut want).unwrap();
            assert_eq!(got, want, "{precision}: temperature 0");
            let chosen = model.generate(Sample::new(3, None), s, &mut want).unwrap();
            let at_one = model.generate(Sample::new(3, None).at_temperature(1.0), s, &mut got);
            assert_eq!((at_one, got), (Ok(chosen), want), "{precision}");
            for bad in [-0.1, f32::NAN, f32::INFINITY] {
                let sample = Sample::new(3, Some(1)).at_temperature(bad);
                let refused = Err(Error::TemperatureOutOfRange);
                let good = Sample::new(3, Some(1));
                let generated = model.generate(sample, s, &mut got).map(|_| ());
                assert_eq!(generated, refused);
                assert_eq!(model.morph(good, sample, 0, 2, s, &mut got), refused);
                assert_eq!(model.sample_input(sample, &mut scaled).map(|_| ()), refused);
            }
        }
    }
}
