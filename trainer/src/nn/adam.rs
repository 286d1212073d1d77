//! Adam (Kingma & Ba, 2015) over the run-time-shaped parameters of [`Vae`], written
//! with dfdx tensor operations so it runs on whichever device the model lives on. An
//! update is a list of independent per-layer updates, which the device runs
//! ([`crate::train::step::TrainDevice::update_layers`]).

use dfdx::prelude::*;

use crate::foundation::tensor::{Matrix, Vector};
use crate::nn::grad::DenseGrad;
use crate::nn::model::{Dense, Vae};

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

struct Moments<D: Device<f32>> {
    weight: (Matrix<D>, Matrix<D>),
    bias: (Vector<D>, Vector<D>),
}

impl<D: Device<f32>> Adam<D> {
    /// [`AdamSettings::new`]`(lr)`, every moment zero.
    pub fn new(model: &Vae<D>, lr: f32) -> Self {
        let moments = model
            .dense_layers()
            .into_iter()
            .map(|(_, l)| {
                let dev = l.weight.device();
                let (w, b) = (*l.weight.shape(), *l.bias.shape());
                Moments {
                    weight: (dev.zeros_like(&w), dev.zeros_like(&w)),
                    bias: (dev.zeros_like(&b), dev.zeros_like(&b)),
                }
            })
            .collect();
        Adam {
            settings: AdamSettings::new(lr),
            moments,
        }
    }

    /// Takes one step and returns the update of every parameter from the sum of
    /// `shards`, each a gradient of every layer in [`Vae::dense_layers`] order (as
    /// [`crate::nn::grad::loss_and_gradients`] returns them), one independent update per
    /// layer for the device to run ([`LayerUpdate::apply`]): on the CPU side by side,
    /// since dfdx runs each elementwise operation on one thread and the two large layers
    /// of an MLP VAE balance two cores.
    pub fn layer_updates<'a>(
        &'a mut self,
        model: &'a mut Vae<D>,
        shards: Vec<Vec<DenseGrad<D>>>,
    ) -> Vec<LayerUpdate<'a, D>> {
        let hp = self.settings.advance();
        let mut per_layer: Vec<Vec<DenseGrad<D>>> =
            (0..self.moments.len()).map(|_| Vec::new()).collect();
        for shard in shards {
            for (layer, g) in per_layer.iter_mut().zip(shard) {
                layer.push(g);
            }
        }
        model
            .dense_layers_mut()
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
    /// Steps taken so far.
    pub fn step(&self) -> i32 {
        self.settings.steps
    }

    /// First and second moments of every layer, in [`Vae::dense_layers`] order:
    /// `[weight m, weight v, bias m, bias v]`.
    pub fn moments(&self) -> Vec<[Vec<f32>; 4]> {
        self.moments
            .iter()
            .map(|m| {
                [
                    m.weight.0.as_vec(),
                    m.weight.1.as_vec(),
                    m.bias.0.as_vec(),
                    m.bias.1.as_vec(),
                ]
            })
            .collect()
    }

    /// Restores a state saved from [`Self::step`] and [`Self::moments`].
    pub fn restore(&mut self, step: i32, moments: Vec<[Vec<f32>; 4]>) -> anyhow::Result<()> {
        if moments.len() != self.moments.len() {
            anyhow::bail!(
                "optimizer state has {} layers, the model {}",
                moments.len(),
                self.moments.len()
            );
        }
        for (m, [wm, wv, bm, bv]) in self.moments.iter_mut().zip(moments) {
            let dev = m.weight.0.device().clone();
            let (w, b) = (*m.weight.0.shape(), *m.bias.0.shape());
            if wm.len() != w.0 * w.1 || wv.len() != wm.len() || bm.len() != b.0 || bv.len() != b.0 {
                anyhow::bail!("optimizer state does not match the model's shapes");
            }
            m.weight = (dev.tensor_from_vec(wm, w), dev.tensor_from_vec(wv, w));
            m.bias = (dev.tensor_from_vec(bm, b), dev.tensor_from_vec(bv, b));
        }
        self.settings.steps = step;
        Ok(())
    }
}

/// Adam's update of one layer from the gradients of every shard; see
/// [`Adam::layer_updates`].
pub struct LayerUpdate<'a, D: Device<f32>> {
    layer: &'a mut Dense<D>,
    moments: &'a mut Moments<D>,
    grads: Vec<DenseGrad<D>>,
    hp: Hyper,
}

impl<D: Device<f32>> LayerUpdate<'_, D> {
    /// Sums the shards' gradients and updates the layer.
    pub fn apply(self) {
        let mut grads = self.grads.into_iter();
        if let Some(first) = grads.next() {
            let g = grads.fold(first, |a, b| DenseGrad {
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

impl Hyper {
    /// Adam's update of one parameter `p` with gradient `g` and moments `m`, `v`: the
    /// arithmetic of [`Hyper::apply`] (dfdx's `axpy`, `sqrt` and division), for buffers
    /// on the host.
    #[inline]
    pub fn update(&self, p: &mut f32, g: f32, m: &mut f32, v: &mut f32) {
        *m = *m * self.beta1 + g * (1.0 - self.beta1);
        *v = *v * self.beta2 + g * g * (1.0 - self.beta2);
        let denom = v.sqrt() + self.eps;
        *p += *m / denom * -self.step_size;
    }

    /// Adam's update of one parameter, in place: `axpy` overwrites its left operand when
    /// nothing else holds it, so the moments and the parameter are rewritten where they
    /// lie and only the denominator is a new buffer.
    fn apply<S: Shape, D: Device<f32>>(
        &self,
        param: &mut Tensor<S, f32, D>,
        grad: Tensor<S, f32, D>,
        (m, v): &mut (Tensor<S, f32, D>, Tensor<S, f32, D>),
    ) {
        m.axpy(self.beta1, &grad, 1.0 - self.beta1);
        v.axpy(self.beta2, &grad.square(), 1.0 - self.beta2);
        let denom = v.clone().sqrt() + self.eps;
        param.axpy(1.0, &(m.clone() / denom), -self.step_size);
    }
}
