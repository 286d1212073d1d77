//! Adam (Kingma & Ba, 2015): its arithmetic, written once ([`crate::nn::adam::Hyper::step`]) for any
//! operand, one f32 on the host's buffers ([`crate::nn::host`]) or a whole tensor on a
//! dfdx device; and [`Adam`], its state over the run-time-shaped parameters of [`Vae`]
//! in dfdx tensors, for devices that train through the tape. An update there is a list
//! of independent per-layer updates, which the device runs
//! ([`crate::train::step::TrainDevice::update_layers`]).
//!
//! [`Adam`]: crate::nn::adam::Adam
//! [`Vae`]: crate::nn::model::Vae

use std::ops::{Add, Div, Mul};

use dfdx::prelude::*;

use crate::foundation::tensor::{Matrix, Vector};
use crate::nn::model::{Layer, Vae};
use crate::nn::tape::LayerGradient;

/// Adam's hyper-parameters and its two moment estimates per parameter.
pub struct Adam<D: Device<f32>> {
    /// The hyper-parameters and the steps taken.
    pub settings: AdamSettings,
    moments: Vec<Moments<D>>,
}

/// Adam's hyper-parameters and the number of steps taken: with the moments, all of its
/// state.
#[derive(Debug, Clone, Copy)]
pub struct AdamSettings {
    /// Learning rate.
    pub lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    steps: i32,
}

impl AdamSettings {
    /// PyTorch's defaults (betas 0.9 and 0.999, eps 1e-8) with learning rate `lr`, no
    /// step taken.
    pub fn new(lr: f32) -> Self {
        AdamSettings {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            steps: 0,
        }
    }

    /// Steps taken so far.
    pub fn steps(&self) -> i32 {
        self.steps
    }

    /// The same settings after `steps` steps (a resumed run's).
    pub fn restore(&mut self, steps: i32) {
        self.steps = steps;
    }

    /// Counts one more step and returns its constants.
    pub fn advance(&mut self) -> Hyper {
        self.steps += 1;
        let c1 = 1.0 - self.beta1.powi(self.steps);
        let c2 = 1.0 - self.beta2.powi(self.steps);
        // Adam's step lr/c1 * m / (sqrt(v/c2) + eps), with sqrt(c2) moved out of the
        // square root so that the denominator takes two passes, not three.
        Hyper {
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps * c2.sqrt(),
            step_size: self.lr / c1 * c2.sqrt(),
        }
    }
}

/// Adam's whole state, wherever it trains: its settings and steps taken, and every
/// layer's moments `[weight m, weight v, bias m, bias v]` in [`Vae::layers`] order.
#[derive(Debug, Clone)]
pub struct AdamState {
    /// The hyper-parameters and the steps taken.
    pub settings: AdamSettings,
    /// The moments of every layer.
    pub moments: Vec<[Vec<f32>; 4]>,
}

impl AdamState {
    /// [`AdamSettings::new`]`(lr)`, every moment of `model`'s layers zero.
    pub fn new<D: Device<f32>>(model: &Vae<D>, lr: f32) -> Self {
        let moments = model
            .layers()
            .into_iter()
            .map(|(_, l)| {
                let (w, b) = (l.inputs() * l.outputs(), l.outputs());
                [vec![0.0; w], vec![0.0; w], vec![0.0; b], vec![0.0; b]]
            })
            .collect();
        AdamState {
            settings: AdamSettings::new(lr),
            moments,
        }
    }

    /// Errors when the moments are not those of `model`'s layers.
    pub fn check<D: Device<f32>>(&self, model: &Vae<D>) -> anyhow::Result<()> {
        let layers = model.layers();
        if self.moments.len() != layers.len() {
            anyhow::bail!(
                "optimizer state has {} layers, the model {}",
                self.moments.len(),
                layers.len()
            );
        }
        for ((_, l), [wm, wv, bm, bv]) in layers.iter().zip(&self.moments) {
            let (w, b) = (l.inputs() * l.outputs(), l.outputs());
            if wm.len() != w || wv.len() != w || bm.len() != b || bv.len() != b {
                anyhow::bail!("optimizer state does not match the model's shapes");
            }
        }
        Ok(())
    }
}

struct Moments<D: Device<f32>> {
    weight: (Matrix<D>, Matrix<D>),
    bias: (Vector<D>, Vector<D>),
}

impl<D: Device<f32>> Adam<D> {
    /// Adam in `state`, its moments on `model`'s device. Errors when they are not
    /// `model`'s shapes.
    pub fn new(model: &Vae<D>, state: AdamState) -> anyhow::Result<Self> {
        state.check(model)?;
        let moments = model
            .layers()
            .into_iter()
            .zip(state.moments)
            .map(|((_, l), [wm, wv, bm, bv])| {
                let dev = l.weight.device();
                let (w, b) = (*l.weight.shape(), *l.bias.shape());
                Moments {
                    weight: (dev.tensor_from_vec(wm, w), dev.tensor_from_vec(wv, w)),
                    bias: (dev.tensor_from_vec(bm, b), dev.tensor_from_vec(bv, b)),
                }
            })
            .collect();
        Ok(Adam {
            settings: state.settings,
            moments,
        })
    }

    /// Takes one step and returns the update of every parameter from the sum of
    /// `shards`, each a gradient of every layer in [`Vae::layers`] order (as
    /// [`crate::nn::tape::tape_gradients`] returns them), one independent update per
    /// layer for the device to run ([`LayerUpdate::apply`]): on the CPU side by side,
    /// since dfdx runs each elementwise operation on one thread and the two large layers
    /// of an MLP VAE balance two cores.
    pub fn layer_updates<'a>(
        &'a mut self,
        model: &'a mut Vae<D>,
        shards: Vec<Vec<LayerGradient<D>>>,
    ) -> Vec<LayerUpdate<'a, D>> {
        let hp = self.settings.advance();
        let mut per_layer: Vec<Vec<LayerGradient<D>>> =
            (0..self.moments.len()).map(|_| Vec::new()).collect();
        for shard in shards {
            for (layer, g) in per_layer.iter_mut().zip(shard) {
                layer.push(g);
            }
        }
        model
            .layers_mut()
            .into_iter()
            .zip(&mut self.moments)
            .zip(per_layer)
            .map(|((layer, moments), grads)| LayerUpdate {
                layer,
                moments,
                grads,
                hp,
            })
            .collect()
    }
}

impl<D: Device<f32>> Adam<D> {
    /// The whole state, copied to the host.
    pub fn state(&self) -> AdamState {
        let moments = self
            .moments
            .iter()
            .map(|m| {
                [
                    m.weight.0.as_vec(),
                    m.weight.1.as_vec(),
                    m.bias.0.as_vec(),
                    m.bias.1.as_vec(),
                ]
            })
            .collect();
        AdamState {
            settings: self.settings,
            moments,
        }
    }
}

/// Adam's update of one layer from the gradients of every shard; see
/// [`Adam::layer_updates`].
pub struct LayerUpdate<'a, D: Device<f32>> {
    layer: &'a mut Layer<D>,
    moments: &'a mut Moments<D>,
    grads: Vec<LayerGradient<D>>,
    hp: Hyper,
}

impl<D: Device<f32>> LayerUpdate<'_, D> {
    /// Sums the shards' gradients and updates the layer.
    pub fn apply(self) {
        let mut grads = self.grads.into_iter();
        if let Some(first) = grads.next() {
            let g = grads.fold(first, |a, b| LayerGradient {
                weight: a.weight + b.weight,
                bias: a.bias + b.bias,
            });
            let m = self.moments;
            self.hp
                .apply(&mut self.layer.weight, g.weight, &mut m.weight);
            self.hp.apply(&mut self.layer.bias, g.bias, &mut m.bias);
        }
    }
}

/// The constants of one Adam step.
#[derive(Clone, Copy)]
pub struct Hyper {
    beta1: f32,
    beta2: f32,
    eps: f32,
    step_size: f32,
}

/// What Adam's arithmetic needs of its operands: one f32, or a whole dfdx tensor.
pub trait Operand:
    Clone
    + Add<Output = Self>
    + Add<f32, Output = Self>
    + Mul<Output = Self>
    + Mul<f32, Output = Self>
    + Div<Output = Self>
{
    /// The square root of every value.
    fn sqrt(self) -> Self;
}

impl Operand for f32 {
    #[inline(always)]
    fn sqrt(self) -> f32 {
        f32::sqrt(self)
    }
}

impl<S: Shape, D: Device<f32>> Operand for Tensor<S, f32, D> {
    fn sqrt(self) -> Self {
        dfdx::tensor_ops::sqrt(self)
    }
}

impl Hyper {
    /// Adam's update of the parameter `p` with gradient `g` and moments `m`, `v`: the
    /// new `[p, m, v]`. The one definition of the arithmetic, for every device.
    #[inline(always)]
    pub fn step<T: Operand>(&self, p: T, g: T, m: T, v: T) -> [T; 3] {
        let m = m * self.beta1 + g.clone() * (1.0 - self.beta1);
        let v = v * self.beta2 + g.clone() * g * (1.0 - self.beta2);
        let denom = v.clone().sqrt() + self.eps;
        let p = p + m.clone() / denom * -self.step_size;
        [p, m, v]
    }

    /// [`Self::step`] of one parameter on the host, in place.
    #[inline(always)]
    pub fn update(&self, p: &mut f32, g: f32, m: &mut f32, v: &mut f32) {
        [*p, *m, *v] = self.step(*p, g, *m, *v);
    }

    /// [`Self::step`] of one tensor of parameters on a device, in place.
    fn apply<S: Shape, D: Device<f32>>(
        &self,
        param: &mut Tensor<S, f32, D>,
        grad: Tensor<S, f32, D>,
        (m, v): &mut (Tensor<S, f32, D>, Tensor<S, f32, D>),
    ) {
        [*param, *m, *v] = self.step(param.clone(), grad, m.clone(), v.clone());
    }
}
