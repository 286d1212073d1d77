//! A parsed model file and the decoder forward pass over its in-place weights.

use crate::format::{split_and_verify, Activation, Architecture, Header, Precision};
use crate::{fixed, kernels, scratch, Error, Rng, MAX_WIDTH, PIXELS};
#[cfg(feature = "upsampling")]
use crate::{upsampling, MAX_CONV_LAYERS};

/// A validated model file, borrowing its weights from the bytes it was parsed from
/// (flash on a microcontroller, a buffer on the host).
#[derive(Debug, Clone)]
pub struct Model<'a> {
    header: Header,
    payload: &'a [u8],
}

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
        #[cfg(not(feature = "upsampling"))]
        if header.arch.upsampling.is_some() {
            return Err(Error::UnsupportedArchitecture(
                "transposed convolutions, which this build leaves out (vae-core's feature `upsampling`)",
            ));
        }
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

    /// Words (32 bits each) of scratch memory every `*_with` method needs: the decoder
    /// input twice (`generate_with` draws it there, `morph_with` both ends), two buffers
    /// as wide as the widest dense layer input, and for a model with transposed
    /// convolutions the rows they stream through (see [`Upsampling`](crate::Upsampling)).
    /// The methods without scratch lend themselves [`STACK_SCRATCH`] words on the stack,
    /// enough for every dense model.
    ///
    /// ```
    /// # let mut buf = vec![0u8; 1 << 16];
    /// # let file = vae_core::example_model(vae_core::Precision::F32, &mut buf).unwrap();
    /// use vae_core::{Error, Model, PIXELS};
    /// let model = Model::parse(&file)?;
    /// assert_eq!(model.scratch_len(), 2 * 12 + 2 * 12); // inputs of 12, one hidden layer of 8
    /// let mut scratch = vec![0u32; model.scratch_len()];
    /// let mut pixels = [0u8; PIXELS];
    /// model.generate_with(7, Some(3), &mut scratch, &mut pixels)?;
    /// let refused = model.generate_with(7, Some(3), &mut scratch[1..], &mut pixels);
    /// assert_eq!(refused, Err(Error::ScratchTooSmall { needed: 48, available: 47 }));
    /// # Ok::<(), vae_core::Error>(())
    /// ```
    pub fn scratch_len(&self) -> usize {
        self.header
            .arch
            .input_len()
            .saturating_mul(2)
            .saturating_add(self.forward_len())
    }

    /// Words of scratch the forward pass needs: two dense buffers and the upsampling's.
    fn forward_len(&self) -> usize {
        #[cfg(feature = "upsampling")]
        let conv = self
            .header
            .arch
            .upsampling
            .as_ref()
            .map_or(0, crate::upsampling::scratch_len);
        #[cfg(not(feature = "upsampling"))]
        let conv = 0;
        self.dense_width().saturating_mul(2).saturating_add(conv)
    }

    /// The widest input of a dense layer: the decoder input or a hidden layer.
    fn dense_width(&self) -> usize {
        let arch = &self.header.arch;
        arch.hidden
            .iter()
            .map(|&h| usize::from(h))
            .fold(arch.input_len(), usize::max)
    }

    /// `scratch`, if it holds [`scratch_len`](Self::scratch_len) words.
    fn checked<'s>(&self, scratch: &'s mut [u32]) -> Result<&'s mut [u32], Error> {
        let (needed, available) = (self.scratch_len(), scratch.len());
        scratch
            .get_mut(..needed)
            .ok_or(Error::ScratchTooSmall { needed, available })
    }

    /// Runs the decoder on a full input vector (`[z, one-hot]`, length
    /// [`Architecture::input_len`]) and writes the 784 pixel probabilities.
    ///
    /// For f32 and f16 weights each output of a dense layer is `bias + w[0]*x[0] +
    /// w[1]*x[1] + ...`, summed in that order in f32, and each output of a transposed
    /// convolution its bias, then each input pixel that reaches it in raster order with
    /// its channels left to right (see [`Upsampling`](crate::Upsampling)): every platform
    /// that follows IEEE 754 gets the same bits. For i8 weights the decoder runs in
    /// integers (Q16 values between layers, exact i32 sums; see `forward_i8`), the same
    /// bits everywhere without help from the FPU, and only the output's sigmoid is f32.
    ///
    /// Decodes with [`STACK_SCRATCH`] words on the stack: a model that needs more
    /// ([`scratch_len`](Self::scratch_len)) is [`Error::ScratchTooSmall`]; give it
    /// scratch memory through [`decode_with`](Self::decode_with).
    ///
    /// ```
    /// # let mut buf = vec![0u8; 1 << 16];
    /// # let file = vae_core::example_model(vae_core::Precision::F32, &mut buf).unwrap();
    /// use vae_core::{Model, MAX_WIDTH, PIXELS};
    /// let model = Model::parse(&file)?;
    /// let mut input = [0.0; MAX_WIDTH];
    /// let len = model.build_input(&[0.3, -0.2], Some(4), &mut input)?; // [z, one-hot(4)]
    /// assert_eq!(&input[..len], &[0.3, -0.2, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
    /// let mut probs = [0.0; PIXELS];
    /// model.decode_into(&input[..len], &mut probs)?;
    /// # Ok::<(), vae_core::Error>(())
    /// ```
    pub fn decode_into(&self, input: &[f32], probs: &mut [f32; PIXELS]) -> Result<(), Error> {
        self.decode_with(input, &mut [0; STACK_SCRATCH], probs)
    }

    /// [`decode_into`](Self::decode_into) in the caller's `scratch`, of at least
    /// [`scratch_len`](Self::scratch_len) words ([`Error::ScratchTooSmall`] otherwise).
    ///
    /// ```
    /// # let mut buf = vec![0u8; 1 << 16];
    /// # let file = vae_core::example_model(vae_core::Precision::I8, &mut buf).unwrap();
    /// use vae_core::{Model, PIXELS};
    /// let model = Model::parse(&file)?;
    /// let mut scratch = vec![0u32; model.scratch_len()];
    /// let input = [0.5, -1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    /// let (mut probs, mut again) = ([0.0; PIXELS], [0.0; PIXELS]);
    /// model.decode_with(&input, &mut scratch, &mut probs)?;
    /// model.decode_into(&input, &mut again)?;
    /// assert_eq!(probs, again);
    /// # Ok::<(), vae_core::Error>(())
    /// ```
    pub fn decode_with(
        &self,
        input: &[f32],
        scratch: &mut [u32],
        probs: &mut [f32; PIXELS],
    ) -> Result<(), Error> {
        let scratch = self.checked(scratch)?;
        self.forward(input, scratch, |o, logit| {
            if let Some(slot) = probs.get_mut(o) {
                *slot = logit.probability();
            }
        })
    }

    /// The forward pass in `scratch` (at least [`forward_len`](Self::forward_len) words):
    /// hidden layers through two buffers, the output layer (or the upsampling part)
    /// straight into `emit(pixel index, logit)`, so no 784-value buffer is needed on the
    /// way to pixels. f32 and f16 weights run in f32; i8 weights in integers (see
    /// [`fixed`](crate::fixed)).
    fn forward(
        &self,
        input: &[f32],
        scratch: &mut [u32],
        mut emit: impl FnMut(usize, Logit),
    ) -> Result<(), Error> {
        let arch = &self.header.arch;
        let expected = arch.input_len();
        if input.len() != expected {
            return Err(Error::LengthMismatch {
                expected,
                found: input.len(),
            });
        }
        let (needed, available) = (self.forward_len(), scratch.len());
        let scratch = scratch
            .get_mut(..needed)
            .ok_or(Error::ScratchTooSmall { needed, available })?;
        match self.header.precision {
            Precision::F32 => self.forward_float(input, scratch, f32::from_le_bytes, &mut emit),
            Precision::F16 => self.forward_float(input, scratch, kernels::f16_to_f32, &mut emit),
            Precision::I8 => self.forward_i8(input, scratch, &mut emit),
        }
    }

    /// The f32 and f16 forward pass: each dense output is `bias + w[0]*x[0] + w[1]*x[1] +
    /// ...`, summed in that order in f32; the upsampling part as `upsampling` documents.
    #[inline(never)]
    fn forward_float<const B: usize>(
        &self,
        input: &[f32],
        scratch: &mut [u32],
        widen: impl Fn([u8; B]) -> f32 + Copy,
        mut emit: impl FnMut(usize, Logit),
    ) -> Result<(), Error> {
        let arch = &self.header.arch;
        let activation = match arch.activation {
            Activation::Relu => relu,
            Activation::Sigmoid => sigmoid,
        };
        let width = self.dense_width();
        let (first, rest) = scratch.split_at_mut_checked(width).ok_or(TOO_WIDE)?;
        let (second, conv) = rest.split_at_mut_checked(width).ok_or(TOO_WIDE)?;
        let (mut current, mut next) = (scratch::as_f32(first), scratch::as_f32(second));
        let mut payload = Payload::new(self.payload);
        let count = arch.hidden.len() + 1;
        for (index, (n_in, n_out)) in arch.dense_layers().enumerate() {
            let last = index + 1 == count;
            let n_in = with_inputs(n_in)?;
            let x = if index == 0 {
                input.get(..n_in).ok_or(TOO_WIDE)?
            } else {
                current.get(..n_in).ok_or(TOO_WIDE)?
            };
            let weights = payload.next(n_in.saturating_mul(n_out).saturating_mul(B))?;
            let biases = payload.next(n_out.saturating_mul(B))?;
            if let (true, Some(up)) = (last, &arch.upsampling) {
                // The map layer: its outputs are computed a map pixel at a time.
                #[cfg(not(feature = "upsampling"))]
                return Err(no_upsampling(up, conv));
                #[cfg(feature = "upsampling")]
                return upsampling::run(
                    &upsampling::Float {
                        input: x,
                        map: upsampling::LayerBytes {
                            weights,
                            scales: &[],
                            biases,
                        },
                        channels: usize::from(up.channels),
                        convs: self.convs(&mut payload, B, false)?,
                        activation,
                        widen,
                    },
                    up,
                    conv,
                    &mut emit,
                );
            }
            let mut y = if last {
                None
            } else {
                Some(next.get_mut(..n_out).ok_or(TOO_WIDE)?)
            };
            kernels::layer(x, weights, biases, widen, |o, v| match &mut y {
                None => emit(o, Logit::Float(v)),
                Some(y) => {
                    if let Some(slot) = y.get_mut(o) {
                        *slot = activation(v);
                    }
                }
            });
            core::mem::swap(&mut current, &mut next);
        }
        Ok(())
    }

    /// The payload's transposed convolutions, after the dense layers: `width` bytes per
    /// weight, and with `scales` an f32 scale per output channel (i8).
    #[cfg(feature = "upsampling")]
    fn convs<'p>(
        &self,
        payload: &mut Payload<'p>,
        width: usize,
        scales: bool,
    ) -> Result<heapless::Vec<upsampling::ConvBytes<'p>, MAX_CONV_LAYERS>, Error> {
        let mut convs = heapless::Vec::new();
        for shape in self
            .header
            .arch
            .upsampling
            .iter()
            .flat_map(|up| up.shapes())
        {
            let (row_len, outputs) = (shape.row_len(), shape.output_channels);
            let weights = payload.next(row_len.saturating_mul(outputs).saturating_mul(width))?;
            let scales = if scales {
                payload.next(outputs.saturating_mul(4))?
            } else {
                &[]
            };
            let biases =
                payload.next(outputs.saturating_mul(if scales.is_empty() { width } else { 4 }))?;
            let conv = upsampling::ConvBytes {
                bytes: upsampling::LayerBytes {
                    weights,
                    scales,
                    biases,
                },
                row_len,
                input_channels: shape.input_channels,
            };
            convs
                .push(conv)
                .map_err(|_| Error::UnsupportedArchitecture("too many transposed convolutions"))?;
        }
        Ok(convs)
    }

    /// The i8 forward pass, in integers: the input in Q16, then for each dense layer its
    /// input quantized to i16 with a power-of-two scale `2^shift` (15 bits for the
    /// largest), the exact sum `acc = sum_i q[i] * w[i]` in i32, and each output
    /// `round(acc * scale * 2^shift) + round(bias * 2^16)` in Q16, saturated, with `scale`
    /// and `bias` the row's f32 values read by their bits ([`fixed::scaled`]); the
    /// upsampling part as `upsampling` documents. A sigmoid hidden layer (no committed
    /// model has one) goes through f32.
    #[inline(never)]
    fn forward_i8(
        &self,
        input: &[f32],
        scratch: &mut [u32],
        mut emit: impl FnMut(usize, Logit),
    ) -> Result<(), Error> {
        let arch = &self.header.arch;
        let activation = arch.activation;
        let width = self.dense_width();
        let (first, rest) = scratch.split_at_mut_checked(width).ok_or(TOO_WIDE)?;
        let (second, conv) = rest.split_at_mut_checked(width).ok_or(TOO_WIDE)?;
        let (mut current, mut next) = (scratch::as_i32(first), scratch::as_i32(second));
        for (slot, v) in current.iter_mut().zip(input) {
            *slot = fixed::from_f32(*v);
        }
        let mut payload = Payload::new(self.payload);
        let count = arch.hidden.len() + 1;
        for (index, (n_in, n_out)) in arch.dense_layers().enumerate() {
            let last = index + 1 == count;
            let n_in = with_inputs(n_in)?;
            let weights = payload.next(n_in.saturating_mul(n_out))?;
            let scales = payload.next(n_out.saturating_mul(4))?;
            let biases = payload.next(n_out.saturating_mul(4))?;
            let q = kernels::QuantizedInput::new(current, n_in);
            if let (true, Some(up)) = (last, &arch.upsampling) {
                // The map layer: its outputs are computed a map pixel at a time.
                #[cfg(not(feature = "upsampling"))]
                return Err(no_upsampling(up, conv));
                #[cfg(feature = "upsampling")]
                return upsampling::run(
                    &upsampling::Fixed {
                        input: q,
                        map: upsampling::LayerBytes {
                            weights,
                            scales,
                            biases,
                        },
                        channels: usize::from(up.channels),
                        convs: self.convs(&mut payload, 1, true)?,
                        activation,
                    },
                    up,
                    conv,
                    &mut emit,
                );
            }
            let mut y = if last {
                None
            } else {
                Some(next.get_mut(..n_out).ok_or(TOO_WIDE)?)
            };
            let shift = q.shift;
            let mut rows = scales
                .as_chunks::<4>()
                .0
                .iter()
                .zip(biases.as_chunks::<4>().0);
            kernels::layer_i8(&q, weights, |o, acc| {
                let Some((scale, bias)) = rows.next() else {
                    return;
                };
                let v = fixed::output(acc, scale, bias, shift);
                match &mut y {
                    None => emit(o, Logit::Fixed(v)),
                    Some(y) => {
                        if let Some(slot) = y.get_mut(o) {
                            *slot = match activation {
                                Activation::Relu => v.max(0),
                                Activation::Sigmoid => fixed::from_f32(sigmoid(fixed::to_f32(v))),
                            };
                        }
                    }
                }
            });
            core::mem::swap(&mut current, &mut next);
        }
        Ok(())
    }

    /// Builds the decoder input `[z, one-hot(digit)]` in `input` and returns its length.
    ///
    /// A conditional model needs a digit; an unconditional one refuses it.
    pub fn build_input(
        &self,
        z: &[f32],
        digit: Option<u8>,
        input: &mut [f32; MAX_WIDTH],
    ) -> Result<usize, Error> {
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
        self.set_label(digit, input)
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

    /// Decodes a latent code `z`, conditioned on `digit` for a conditional model.
    ///
    /// ```
    /// # let mut buf = vec![0u8; 1 << 16];
    /// # let file = vae_core::example_model(vae_core::Precision::F16, &mut buf).unwrap();
    /// use vae_core::{Model, PIXELS};
    /// let model = Model::parse(&file).unwrap();
    /// let mut probs = [0.0; PIXELS];
    /// model.decode_latent(&[0.5, -1.0], Some(3), &mut probs).unwrap();
    /// assert!(probs.iter().all(|p| (0.0..=1.0).contains(p)));
    /// ```
    pub fn decode_latent(
        &self,
        z: &[f32],
        digit: Option<u8>,
        probs: &mut [f32; PIXELS],
    ) -> Result<(), Error> {
        let mut input = [0.0f32; MAX_WIDTH];
        let len = self.build_input(z, digit, &mut input)?;
        self.decode_into(filled(&input, len)?, probs)
    }

    /// Draws one image from seed `seed`: `z ~ N(0, I)` from [`Rng::new(seed)`](Rng), then
    /// the decoder. A conditional model draws `digit`, or a digit chosen by the same
    /// generator when `digit` is `None`; returns the digit drawn (`None` for an
    /// unconditional model). The same seed and digit give the same pixels everywhere.
    /// With [`STACK_SCRATCH`] words on the stack, as [`decode_into`](Self::decode_into).
    ///
    /// ```
    /// # let mut buf = vec![0u8; 1 << 16];
    /// # let file = vae_core::example_model(vae_core::Precision::F16, &mut buf).unwrap();
    /// use vae_core::{Model, PIXELS};
    /// let model = Model::parse(&file).unwrap();
    /// let (mut a, mut b) = ([0u8; PIXELS], [0u8; PIXELS]);
    /// assert_eq!(model.generate(42, Some(7), &mut a).unwrap(), Some(7));
    /// model.generate(42, Some(7), &mut b).unwrap();
    /// assert_eq!(a, b);
    /// ```
    pub fn generate(
        &self,
        seed: u64,
        digit: Option<u8>,
        pixels: &mut [u8; PIXELS],
    ) -> Result<Option<u8>, Error> {
        self.generate_with(seed, digit, &mut [0; STACK_SCRATCH], pixels)
    }

    /// [`generate`](Self::generate) in the caller's `scratch`, of at least
    /// [`scratch_len`](Self::scratch_len) words: the same pixels.
    ///
    /// ```
    /// # let mut buf = vec![0u8; 1 << 16];
    /// # let file = vae_core::example_model(vae_core::Precision::F16, &mut buf).unwrap();
    /// use vae_core::{Model, PIXELS};
    /// let model = Model::parse(&file)?;
    /// let mut scratch = vec![0u32; model.scratch_len()];
    /// let (mut a, mut b) = ([0u8; PIXELS], [0u8; PIXELS]);
    /// model.generate_with(42, Some(7), &mut scratch, &mut a)?;
    /// model.generate(42, Some(7), &mut b)?;
    /// assert_eq!(a, b);
    /// # Ok::<(), vae_core::Error>(())
    /// ```
    pub fn generate_with(
        &self,
        seed: u64,
        digit: Option<u8>,
        scratch: &mut [u32],
        pixels: &mut [u8; PIXELS],
    ) -> Result<Option<u8>, Error> {
        self.generate_at_temperature_with(seed, digit, 1.0, scratch, pixels)
    }

    /// [`generate`](Self::generate) at a temperature: `z ~ N(0, temperature^2 I)`, the
    /// same standard-normal draws as `generate` each multiplied by `temperature` in f32,
    /// so temperature 1 gives `generate`'s pixels, and below 1 the samples keep closer to
    /// the model's most typical digits. A negative, NaN or infinite temperature is
    /// [`Error::TemperatureOutOfRange`].
    ///
    /// ```
    /// # let mut buf = vec![0u8; 1 << 16];
    /// # let file = vae_core::example_model(vae_core::Precision::F16, &mut buf).unwrap();
    /// use vae_core::{Error, Model, PIXELS};
    /// let model = Model::parse(&file)?;
    /// let (mut warm, mut plain) = ([0u8; PIXELS], [0u8; PIXELS]);
    /// model.generate_at_temperature(42, Some(7), 1.0, &mut warm)?;
    /// model.generate(42, Some(7), &mut plain)?;
    /// assert_eq!(warm, plain);
    /// let refused = model.generate_at_temperature(42, Some(7), -0.5, &mut warm);
    /// assert_eq!(refused, Err(Error::TemperatureOutOfRange));
    /// # Ok::<(), vae_core::Error>(())
    /// ```
    pub fn generate_at_temperature(
        &self,
        seed: u64,
        digit: Option<u8>,
        temperature: f32,
        pixels: &mut [u8; PIXELS],
    ) -> Result<Option<u8>, Error> {
        let mut scratch = [0; STACK_SCRATCH];
        self.generate_at_temperature_with(seed, digit, temperature, &mut scratch, pixels)
    }

    /// [`generate_at_temperature`](Self::generate_at_temperature) in the caller's
    /// `scratch`, of at least [`scratch_len`](Self::scratch_len) words.
    ///
    /// ```
    /// # let mut buf = vec![0u8; 1 << 16];
    /// # let file = vae_core::example_model(vae_core::Precision::I8, &mut buf).unwrap();
    /// use vae_core::{Model, PIXELS};
    /// let model = Model::parse(&file)?;
    /// let mut scratch = vec![0u32; model.scratch_len()];
    /// let (mut a, mut b) = ([0u8; PIXELS], [0u8; PIXELS]);
    /// model.generate_at_temperature_with(5, None, 0.5, &mut scratch, &mut a)?;
    /// model.generate_at_temperature(5, None, 0.5, &mut b)?;
    /// assert_eq!(a, b);
    /// # Ok::<(), vae_core::Error>(())
    /// ```
    pub fn generate_at_temperature_with(
        &self,
        seed: u64,
        digit: Option<u8>,
        temperature: f32,
        scratch: &mut [u32],
        pixels: &mut [u8; PIXELS],
    ) -> Result<Option<u8>, Error> {
        if !(temperature.is_finite() && temperature >= 0.0) {
            return Err(Error::TemperatureOutOfRange);
        }
        let scratch = self.checked(scratch)?;
        let (input, _, rest) = self.inputs(scratch)?;
        let digit = self.sample_into(seed, digit, input)?;
        if temperature != 1.0 {
            for z in input.iter_mut().take(usize::from(self.header.arch.latent)) {
                *z *= temperature;
            }
        }
        self.pixels_in(input, rest, pixels)?;
        Ok(digit)
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

    /// The decoder input [`generate`](Self::generate) uses for `seed` and `digit`: writes
    /// `[z, one-hot]` into `input` and returns its length and the digit drawn.
    pub fn sample_input(
        &self,
        seed: u64,
        digit: Option<u8>,
        input: &mut [f32; MAX_WIDTH],
    ) -> Result<(usize, Option<u8>), Error> {
        let len = self.header.arch.input_len();
        let input = input.get_mut(..len).ok_or(Error::UnsupportedArchitecture(
            "decoder input wider than MAX_WIDTH",
        ))?;
        let digit = self.sample_into(seed, digit, input)?;
        Ok((len, digit))
    }

    /// [`sample_input`](Self::sample_input) into `input`, the decoder input's length.
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

    /// Step `step` of `steps` along the straight line between the decoder inputs of two
    /// drawings (seed and digit each, as for [`generate`](Self::generate)):
    /// `x = a + t * (b - a)` with `t = step / (steps - 1)`, so step 0 is `a` and the last
    /// step is `b`. For a conditional model the one-hot label moves too, so a 3 turns
    /// into an 8. A `step` outside `0..steps` is [`Error::StepOutOfRange`].
    ///
    /// ```
    /// # let mut buf = vec![0u8; 1 << 16];
    /// # let file = vae_core::example_model(vae_core::Precision::F16, &mut buf).unwrap();
    /// use vae_core::{Error, Model, PIXELS};
    /// let model = Model::parse(&file)?;
    /// let (mut first, mut start) = ([0u8; PIXELS], [0u8; PIXELS]);
    /// model.morph((1, Some(3)), (2, Some(8)), 0, 5, &mut first)?;
    /// model.generate(1, Some(3), &mut start)?;
    /// assert_eq!(first, start);
    /// let last = model.morph((1, Some(3)), (2, Some(8)), 5, 5, &mut first);
    /// assert_eq!(last, Err(Error::StepOutOfRange { step: 5, steps: 5 }));
    /// # Ok::<(), vae_core::Error>(())
    /// ```
    pub fn morph(
        &self,
        from: (u64, Option<u8>),
        to: (u64, Option<u8>),
        step: u16,
        steps: u16,
        pixels: &mut [u8; PIXELS],
    ) -> Result<(), Error> {
        self.morph_with(from, to, step, steps, &mut [0; STACK_SCRATCH], pixels)
    }

    /// [`morph`](Self::morph) in the caller's `scratch`, of at least
    /// [`scratch_len`](Self::scratch_len) words.
    ///
    /// ```
    /// # let mut buf = vec![0u8; 1 << 16];
    /// # let file = vae_core::example_model(vae_core::Precision::F16, &mut buf).unwrap();
    /// use vae_core::{Model, PIXELS};
    /// let model = Model::parse(&file)?;
    /// let mut scratch = vec![0u32; model.scratch_len()];
    /// let (mut a, mut b) = ([0u8; PIXELS], [0u8; PIXELS]);
    /// model.morph_with((1, Some(3)), (2, Some(8)), 2, 5, &mut scratch, &mut a)?;
    /// model.morph((1, Some(3)), (2, Some(8)), 2, 5, &mut b)?;
    /// assert_eq!(a, b);
    /// # Ok::<(), vae_core::Error>(())
    /// ```
    pub fn morph_with(
        &self,
        from: (u64, Option<u8>),
        to: (u64, Option<u8>),
        step: u16,
        steps: u16,
        scratch: &mut [u32],
        pixels: &mut [u8; PIXELS],
    ) -> Result<(), Error> {
        if step >= steps {
            return Err(Error::StepOutOfRange { step, steps });
        }
        let t = if steps > 1 {
            f32::from(step) / f32::from(steps - 1)
        } else {
            0.0
        };
        let scratch = self.checked(scratch)?;
        let (a, b, rest) = self.inputs(scratch)?;
        self.sample_into(from.0, from.1, a)?;
        self.sample_into(to.0, to.1, b)?;
        for (a, b) in a.iter_mut().zip(b.iter()) {
            *a += t * (b - *a);
        }
        self.pixels_in(a, rest, pixels)
    }

    /// [`decode_into`](Self::decode_into), then [`to_pixel`] on every output: the same
    /// bits, computed without the output's exponential where it cannot change the pixel
    /// (see [`logit_to_pixel`]).
    pub fn decode_pixels(&self, input: &[f32], pixels: &mut [u8; PIXELS]) -> Result<(), Error> {
        self.decode_pixels_with(input, &mut [0; STACK_SCRATCH], pixels)
    }

    /// [`decode_pixels`](Self::decode_pixels) in the caller's `scratch`, of at least
    /// [`scratch_len`](Self::scratch_len) words.
    ///
    /// ```
    /// # let mut buf = vec![0u8; 1 << 16];
    /// # let file = vae_core::example_model(vae_core::Precision::F32, &mut buf).unwrap();
    /// use vae_core::{Model, PIXELS};
    /// let model = Model::parse(&file)?;
    /// let mut scratch = vec![0u32; model.scratch_len()];
    /// let input = [0.5, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0];
    /// let (mut a, mut b) = ([0u8; PIXELS], [0u8; PIXELS]);
    /// model.decode_pixels_with(&input, &mut scratch, &mut a)?;
    /// model.decode_pixels(&input, &mut b)?;
    /// assert_eq!(a, b);
    /// # Ok::<(), vae_core::Error>(())
    /// ```
    pub fn decode_pixels_with(
        &self,
        input: &[f32],
        scratch: &mut [u32],
        pixels: &mut [u8; PIXELS],
    ) -> Result<(), Error> {
        let scratch = self.checked(scratch)?;
        self.pixels_in(input, scratch, pixels)
    }

    /// The pixels of `input`, decoded in `scratch` (at least the forward pass's words).
    fn pixels_in(
        &self,
        input: &[f32],
        scratch: &mut [u32],
        pixels: &mut [u8; PIXELS],
    ) -> Result<(), Error> {
        self.forward(input, scratch, |o, logit| {
            if let Some(pixel) = pixels.get_mut(o) {
                *pixel = logit.pixel();
            }
        })
    }
}

/// Two decoder inputs at the start of the scratch, and the rest of it.
type Inputs<'s> = (&'s mut [f32], &'s mut [f32], &'s mut [u32]);

/// Words of scratch the methods without a scratch argument lend themselves on the stack
/// (8 KiB): two decoder inputs and two dense buffers of [`MAX_WIDTH`], what the widest
/// dense model needs. A model with transposed convolutions needing more is
/// [`Error::ScratchTooSmall`] there; give it scratch through the `*_with` methods.
pub const STACK_SCRATCH: usize = 4 * MAX_WIDTH;

/// The first `len` values of a decoder input buffer, as `build_input` or `sample_input`
/// filled them.
fn filled(input: &[f32; MAX_WIDTH], len: usize) -> Result<&[f32], Error> {
    input.get(..len).ok_or(Error::UnsupportedArchitecture(
        "decoder input wider than MAX_WIDTH",
    ))
}

/// The error of a decoder with transposed convolutions in a build without them, which
/// `parse` refuses, so this is never returned for a parsed model.
#[cfg(not(feature = "upsampling"))]
fn no_upsampling(_: &crate::Upsampling, _: &mut [u32]) -> Error {
    Error::UnsupportedArchitecture("transposed convolutions, which this build leaves out")
}

/// "A hidden layer is wider than MAX_WIDTH": `validate` (in `parse`) has capped the
/// widths, so this is never returned for a parsed model.
const TOO_WIDE: Error = Error::UnsupportedArchitecture("a hidden layer is wider than MAX_WIDTH");

/// `n`, a layer's input width, if it is not 0 (which `validate` refuses).
fn with_inputs(n: usize) -> Result<usize, Error> {
    match n {
        0 => Err(Error::UnsupportedArchitecture("a layer has no inputs")),
        n => Ok(n),
    }
}

/// The weights of the layers, one part after the other.
struct Payload<'a> {
    bytes: &'a [u8],
    end: usize,
}

impl<'a> Payload<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Payload { bytes, end: 0 }
    }

    /// The next `len` bytes.
    fn next(&mut self, len: usize) -> Result<&'a [u8], Error> {
        let start = self.end;
        self.end = start.saturating_add(len);
        self.bytes.get(start..self.end).ok_or(Error::Truncated {
            expected: self.end,
            found: self.bytes.len(),
        })
    }
}

/// An output of the decoder before the sigmoid: f32 from f32 and f16 weights, Q16 from
/// i8 weights.
#[derive(Clone, Copy)]
pub(crate) enum Logit {
    Float(f32),
    Fixed(i32),
}

impl Logit {
    fn probability(self) -> f32 {
        match self {
            Logit::Float(v) => sigmoid(v),
            Logit::Fixed(v) => sigmoid(fixed::to_f32(v)),
        }
    }

    fn pixel(self) -> u8 {
        match self {
            Logit::Float(v) => logit_to_pixel(v),
            Logit::Fixed(v) => fixed::pixel(v),
        }
    }
}

/// The grey level of a pixel of probability `p` (0 = black, 255 = white), rounded to
/// nearest; NaN maps to 0. The inverse of [`intensity`] on grey levels.
///
/// ```
/// assert_eq!(vae_core::to_pixel(0.5), 128);
/// assert_eq!(vae_core::to_pixel(1.2), 255);
/// ```
pub fn to_pixel(p: f32) -> u8 {
    // `as` saturates: below 0 and NaN give 0, above 255 gives 255.
    (p * 255.0 + 0.5) as u8
}

/// The intensity in `[0, 1]` of an 8-bit grey level (0 = black, 255 = white): how images
/// (MNIST's and the decoder's) become model inputs and targets. [`to_pixel`] turns it
/// back into the same grey level.
///
/// ```
/// use vae_core::{intensity, to_pixel};
/// assert_eq!(intensity(0), 0.0);
/// assert_eq!(intensity(255), 1.0);
/// assert!((0..=255).all(|level| to_pixel(intensity(level)) == level));
/// ```
pub fn intensity(pixel: u8) -> f32 {
    f32::from(pixel) / 255.0
}

fn relu(x: f32) -> f32 {
    if x > 0.0 {
        x
    } else {
        0.0
    }
}

/// Logistic function through `libm::expf` (within 1 ulp, pure software: the same bits on
/// every target).
pub(crate) fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + libm::expf(-x))
}

/// Logits at least this far from 0 make a black (0) or white (255) pixel whatever the
/// exponential's last bits: `to_pixel(sigmoid(6.25))` is 255 with `sigmoid(6.25) =
/// 0.998073`, 3.4e-5 above the 254.5 / 255 that rounds to 255, and `sigmoid(-6.25) =
/// 0.001927` is as far below the 0.5 / 255 that still rounds to 0. The unit test
/// `saturated_logits_give_the_pixel_of_their_sigmoid` checks every f32 between 6.25
/// and 17 of either sign; beyond 17, `expf(-v)` is below half an ulp of 1, so the
/// sigmoid is exactly 1 (or below 5e-8), and the pixel 255 (or 0).
const SATURATED_LOGIT: f32 = 6.25;

/// The grey level of an output whose logit is `v`: exactly `to_pixel(sigmoid(v))`, with
/// the exponential (in software on chips without an FPU, tens of instructions per pixel)
/// left out where the pixel is black or white anyway, as most of a digit's background
/// is. NaN takes the long way and gives 0, as `to_pixel` does.
pub(crate) fn logit_to_pixel(v: f32) -> u8 {
    if v >= SATURATED_LOGIT {
        255
    } else if v <= -SATURATED_LOGIT {
        0
    } else {
        to_pixel(sigmoid(v))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
pub(crate) mod tests {
    use super::*;

    /// The shortcut of [`logit_to_pixel`] changes no pixel: every f32 logit from
    /// [`SATURATED_LOGIT`] to 17, of either sign (25 million of them), gives the pixel its
    /// sigmoid gives; beyond 17 the sigmoid is exactly 1 or below 5e-8, checked at a few
    /// points out to infinity. With a threshold of 6.0 this fails (6.0 makes 254).
    #[test]
    fn saturated_logits_give_the_pixel_of_their_sigmoid() {
        let (from, to) = (SATURATED_LOGIT.to_bits(), 17.0f32.to_bits());
        let beyond = [17.5f32, 20.0, 88.0, 89.0, 1e30, f32::MAX, f32::INFINITY];
        let logits = (from..=to).map(f32::from_bits).chain(beyond);
        for v in logits {
            for v in [v, -v] {
                assert_eq!(logit_to_pixel(v), to_pixel(sigmoid(v)), "logit {v}");
            }
        }
        assert_eq!(logit_to_pixel(f32::NAN), to_pixel(sigmoid(f32::NAN)));
        // Just inside the threshold the pixels are not yet black or white everywhere:
        // the threshold is where the shortcut starts to pay, not an arbitrary margin.
        assert_eq!(to_pixel(sigmoid(6.0)), 254);
        assert_eq!(to_pixel(sigmoid(-6.0)), 1);
    }

    /// The values the file stores, layer by layer as `(weights, biases)` in f64, read by
    /// the layout in `format`'s documentation: `w` as f32 or f16, or `q * scale` for i8.
    pub(crate) fn stored(
        file: &[u8],
        arch: &Architecture,
        precision: Precision,
    ) -> std::vec::Vec<(std::vec::Vec<f64>, std::vec::Vec<f64>)> {
        let mut payload = &file[file.len() - arch.payload_len(precision)..];
        let mut take = |n: usize| {
            let (head, tail) = payload.split_at(n);
            payload = tail;
            head
        };
        let f32s = |b: &[u8]| -> std::vec::Vec<f64> {
            b.chunks_exact(4)
                .map(|w| f64::from(f32::from_le_bytes(w.try_into().unwrap())))
                .collect()
        };
        let f16s = |b: &[u8]| -> std::vec::Vec<f64> {
            b.chunks_exact(2)
                .map(|h| f64::from(half::f16::from_le_bytes([h[0], h[1]]).to_f32()))
                .collect()
        };
        arch.layers()
            .map(|(n_in, n_out)| match precision {
                Precision::F32 => (f32s(take(4 * n_in * n_out)), f32s(take(4 * n_out))),
                Precision::F16 => (f16s(take(2 * n_in * n_out)), f16s(take(2 * n_out))),
                Precision::I8 => {
                    let q = take(n_in * n_out).to_vec();
                    let scales = f32s(take(4 * n_out));
                    let w = q
                        .iter()
                        .enumerate()
                        .map(|(k, &q)| f64::from(q as i8) * scales[k / n_in])
                        .collect();
                    (w, f32s(take(4 * n_out)))
                }
            })
            .collect()
    }

    /// The decoder's outputs computed in f64 from the weights the file stores ([`stored`]:
    /// read by the layout in `format`'s documentation, not through the crate);
    /// `activation` between layers, a sigmoid at the end.
    fn reference(file: &[u8], model: &Model<'_>, input: &[f32]) -> std::vec::Vec<f64> {
        let arch = model.architecture();
        let stored = stored(file, arch, model.precision());
        let mut x: std::vec::Vec<f64> = input.iter().map(|&v| f64::from(v)).collect();
        let layers: std::vec::Vec<_> = arch.layers().collect();
        for (index, (&(n_in, n_out), (weights, biases))) in layers.iter().zip(&stored).enumerate() {
            x = (0..n_out)
                .map(|o| {
                    let row = &weights[o * n_in..(o + 1) * n_in];
                    let y = biases[o] + row.iter().zip(&x).map(|(w, v)| w * v).sum::<f64>();
                    let sigmoid = 1.0 / (1.0 + (-y).exp());
                    match arch.activation {
                        _ if index + 1 == layers.len() => sigmoid,
                        Activation::Relu => y.max(0.0),
                        Activation::Sigmoid => sigmoid,
                    }
                })
                .collect();
        }
        x
    }

    /// Every precision, with relu and with sigmoid hidden layers, with and without a
    /// label, decodes what its file says: `decode_into` within 1e-5 of the f64 reference
    /// for f32 and f16 weights (f32 sums of at most 13 terms), within 1e-3 for i8 (its
    /// integer arithmetic: inputs to 15 bits, Q16 between layers, scales to 15 bits; see
    /// `forward_i8`); and `decode_pixels` gives `to_pixel` of those probabilities, the
    /// same bits for f32 and f16, within one grey level for i8 (whose pixels come from
    /// the Q16 logit, not from the f32 probability).
    #[test]
    fn every_precision_decodes_what_its_file_says() {
        let sigmoid_arch = Architecture {
            latent: 3,
            classes: 0,
            hidden: heapless::Vec::from_slice(&[6, 5]).unwrap(),
            activation: Activation::Sigmoid,
            upsampling: None,
            output: PIXELS as u16,
        };
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
            for file in [&relu_file, &sigmoid_file] {
                let model = Model::parse(file).unwrap();
                let tolerance = if precision == Precision::I8 {
                    1e-3
                } else {
                    1e-5
                };
                for seed in 0..10 {
                    let mut input = [0.0f32; MAX_WIDTH];
                    let digit = model.is_conditional().then_some(seed as u8);
                    let (len, _) = model.sample_input(seed, digit, &mut input).unwrap();
                    let want = reference(file, &model, &input[..len]);
                    let mut probs = [0.0f32; PIXELS];
                    model.decode_into(&input[..len], &mut probs).unwrap();
                    let mut pixels = [0u8; PIXELS];
                    model.decode_pixels(&input[..len], &mut pixels).unwrap();
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
        for precision in Precision::ALL {
            let file = crate::example_model(precision, &mut buf).unwrap();
            let model = Model::parse(file).unwrap();
            let (from, to) = ((1, Some(3)), (2, Some(8)));
            let (mut a, mut b) = ([0.0f32; MAX_WIDTH], [0.0f32; MAX_WIDTH]);
            let (len, _) = model.sample_input(from.0, from.1, &mut a).unwrap();
            model.sample_input(to.0, to.1, &mut b).unwrap();
            let mid: std::vec::Vec<f32> = a[..len]
                .iter()
                .zip(&b[..len])
                .map(|(a, b)| a + 0.5 * (b - a))
                .collect();
            let (mut got, mut want) = ([0u8; PIXELS], [0u8; PIXELS]);
            model.morph(from, to, 1, 3, &mut got).unwrap();
            model.decode_pixels(&mid, &mut want).unwrap();
            assert_eq!(got, want, "{precision}: middle step");
            model.morph(from, to, 2, 3, &mut got).unwrap();
            model.generate(to.0, to.1, &mut want).unwrap();
            assert_eq!(got, want, "{precision}: last step");
            model.morph(from, to, 0, 1, &mut got).unwrap();
            model.generate(from.0, from.1, &mut want).unwrap();
            assert_eq!(got, want, "{precision}: a morph of one image");
            assert_eq!(
                model.morph(from, to, 0, 0, &mut got),
                Err(Error::StepOutOfRange { step: 0, steps: 0 })
            );
        }
    }

    /// `generate_at_temperature` scales the latent part of `generate`'s input by the
    /// temperature and nothing else: at 0.5 it decodes `0.5 z` with the same one-hot,
    /// at 0 every seed gives the one image of `z = 0`, and a free sample's digit is the
    /// one `generate` picks. Negative, NaN and infinite temperatures are refused.
    #[test]
    fn temperature_scales_the_latent_code_only() {
        let mut buf = std::vec![0u8; 1 << 16];
        for precision in Precision::ALL {
            let file = crate::example_model(precision, &mut buf).unwrap();
            let model = Model::parse(file).unwrap();
            let mut input = [0.0f32; MAX_WIDTH];
            let (len, _) = model.sample_input(9, Some(4), &mut input).unwrap();
            input[..2].iter_mut().for_each(|z| *z *= 0.5);
            let (mut got, mut want) = ([0u8; PIXELS], [0u8; PIXELS]);
            model
                .generate_at_temperature(9, Some(4), 0.5, &mut got)
                .unwrap();
            model.decode_pixels(&input[..len], &mut want).unwrap();
            assert_eq!(got, want, "{precision}: temperature 0.5");
            let mut plain = [0u8; PIXELS];
            model.generate(9, Some(4), &mut plain).unwrap();
            assert_ne!(got, plain, "{precision}: 0.5 differs from 1");
            model
                .generate_at_temperature(1, Some(4), 0.0, &mut got)
                .unwrap();
            model
                .generate_at_temperature(2, Some(4), 0.0, &mut want)
                .unwrap();
            assert_eq!(got, want, "{precision}: temperature 0");
            let chosen = model.generate(3, None, &mut want).unwrap();
            let at_one = model.generate_at_temperature(3, None, 1.0, &mut got);
            assert_eq!((at_one, got), (Ok(chosen), want), "{precision}");
            for bad in [-0.1, f32::NAN, f32::INFINITY] {
                assert_eq!(
                    model.generate_at_temperature(3, Some(1), bad, &mut got),
                    Err(Error::TemperatureOutOfRange)
                );
            }
        }
    }
}
