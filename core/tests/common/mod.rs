//! An independent f64 reference for the network loss, sharing no code with the crate: the
//! forward pass written out again over a generic number type, evaluated with plain `f64` (for
//! finite differences) and with hyper-dual numbers (Fike and Alonso 2011), which give exact first
//! and second derivatives: `f(x + e1 b + e2 c)` has `e1 e2` part `b^T H c`.
#![allow(dead_code)]

use std::ops::{Add, Mul, Sub};

#[derive(Clone, Copy, Debug)]
pub struct HyperDual {
    pub a: f64,
    pub b: f64,
    pub c: f64,
    pub d: f64,
}

impl HyperDual {
    pub fn cst(a: f64) -> Self {
        Self {
            a,
            b: 0.0,
            c: 0.0,
            d: 0.0,
        }
    }
    /// `f` applied with its derivatives `f1 = f'(a)`, `f2 = f''(a)`.
    fn chain(self, f: f64, f1: f64, f2: f64) -> Self {
        Self {
            a: f,
            b: f1 * self.b,
            c: f1 * self.c,
            d: f1 * self.d + f2 * self.b * self.c,
        }
    }
}

impl Add for HyperDual {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self {
            a: self.a + o.a,
            b: self.b + o.b,
            c: self.c + o.c,
            d: self.d + o.d,
        }
    }
}
impl Sub for HyperDual {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Self {
            a: self.a - o.a,
            b: self.b - o.b,
            c: self.c - o.c,
            d: self.d - o.d,
        }
    }
}
impl Mul for HyperDual {
    type Output = Self;
    fn mul(self, o: Self) -> Self {
        Self {
            a: self.a * o.a,
            b: self.a * o.b + self.b * o.a,
            c: self.a * o.c + self.c * o.a,
            d: self.a * o.d + self.b * o.c + self.c * o.b + self.d * o.a,
        }
    }
}

pub trait Num: Copy + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> {
    fn cst(x: f64) -> Self;
    fn val(self) -> f64;
    /// Applies a scalar function given its value and two derivatives at `val()`.
    fn chain(self, f: f64, f1: f64, f2: f64) -> Self;
}

impl Num for f64 {
    fn cst(x: f64) -> Self {
        x
    }
    fn val(self) -> f64 {
        self
    }
    fn chain(self, f: f64, _: f64, _: f64) -> Self {
        f
    }
}

impl Num for HyperDual {
    fn cst(x: f64) -> Self {
        HyperDual::cst(x)
    }
    fn val(self) -> f64 {
        self.a
    }
    fn chain(self, f: f64, f1: f64, f2: f64) -> Self {
        HyperDual::chain(self, f, f1, f2)
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RefAct {
    Identity,
    Tanh,
    Relu,
    Elu,
    Softplus,
    Gelu,
}

fn act<T: Num>(a: RefAct, z: T) -> T {
    let x = z.val();
    match a {
        RefAct::Identity => z,
        RefAct::Tanh => {
            let t = x.tanh();
            z.chain(t, 1.0 - t * t, -2.0 * t * (1.0 - t * t))
        }
        RefAct::Relu => {
            if x > 0.0 {
                z
            } else {
                z.chain(0.0, 0.0, 0.0)
            }
        }
        RefAct::Elu => {
            if x > 0.0 {
                z
            } else {
                z.chain(x.exp() - 1.0, x.exp(), x.exp())
            }
        }
        RefAct::Softplus => {
            let s = 1.0 / (1.0 + (-x).exp());
            z.chain((1.0 + x.exp()).ln(), s, s * (1.0 - s))
        }
        RefAct::Gelu => {
            // GELU (tanh form) composed from primitive operations, so the derivatives come from
            // the number type, not from a hand-written formula.
            let k = (2.0 / std::f64::consts::PI).sqrt();
            let u = T::cst(k) * (z + T::cst(0.044715) * z * z * z);
            let t = u.val().tanh();
            let th = u.chain(t, 1.0 - t * t, -2.0 * t * (1.0 - t * t));
            T::cst(0.5) * z * (T::cst(1.0) + th)
        }
    }
}

fn exp<T: Num>(z: T) -> T {
    let e = z.val().exp();
    z.chain(e, e, e)
}

fn ln<T: Num>(z: T) -> T {
    let x = z.val();
    z.chain(x.ln(), 1.0 / x, -1.0 / (x * x))
}

/// Mean loss of an MLP (PyTorch layout, last layer linear) over `n` samples.
pub fn ref_loss<T: Num>(
    widths: &[usize],
    a: RefAct,
    ce: bool,
    params: &[T],
    x: &[f64],
    labels: &[usize],
) -> T {
    let n = labels.len();
    let mut total = T::cst(0.0);
    for s in 0..n {
        let mut h: Vec<T> = x[s * widths[0]..(s + 1) * widths[0]]
            .iter()
            .map(|&v| T::cst(v))
            .collect();
        let mut off = 0;
        for l in 1..widths.len() {
            let (fi, fo) = (widths[l - 1], widths[l]);
            let mut out = Vec::with_capacity(fo);
            for o in 0..fo {
                let mut acc = params[off + fi * fo + o];
                for j in 0..fi {
                    acc = acc + params[off + o * fi + j] * h[j];
                }
                out.push(if l + 1 == widths.len() {
                    acc
                } else {
                    act(a, acc)
                });
            }
            off += fi * fo + fo;
            h = out;
        }
        let y = labels[s];
        let ls = if ce {
            let mut sum = T::cst(0.0);
            for &f in &h {
                sum = sum + exp(f);
            }
            ln(sum) - h[y]
        } else {
            let mut sq = T::cst(0.0);
            for (k, &f) in h.iter().enumerate() {
                let r = f - T::cst(if k == y { 1.0 } else { 0.0 });
                sq = sq + r * r;
            }
            T::cst(0.5) * sq
        };
        total = total + ls;
    }
    total * T::cst(1.0 / n as f64)
}

/// Exact gradient and Hessian of the reference loss, by hyper-dual numbers (row-major P x P).
pub fn ref_grad_hessian(
    widths: &[usize],
    a: RefAct,
    ce: bool,
    params: &[f32],
    x: &[f64],
    labels: &[usize],
) -> (Vec<f64>, Vec<f64>) {
    let p = params.len();
    let mut g = vec![0.0; p];
    let mut h = vec![0.0; p * p];
    for i in 0..p {
        for j in i..p {
            let hp: Vec<HyperDual> = params
                .iter()
                .enumerate()
                .map(|(k, &v)| HyperDual {
                    a: v as f64,
                    b: if k == i { 1.0 } else { 0.0 },
                    c: if k == j { 1.0 } else { 0.0 },
                    d: 0.0,
                })
                .collect();
            let r = ref_loss(widths, a, ce, &hp, x, labels);
            h[i * p + j] = r.d;
            h[j * p + i] = r.d;
            if i == j {
                g[i] = r.b;
            }
        }
    }
    (g, h)
}

pub fn rel_err(a: &[f32], b: &[f64]) -> f64 {
    let num: f64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| (x as f64 - y).powi(2))
        .sum::<f64>()
        .sqrt();
    let den: f64 = b.iter().map(|y| y * y).sum::<f64>().sqrt().max(1e-12);
    num / den
}

pub fn bits(a: &[f32]) -> Vec<u32> {
    a.iter().map(|x| x.to_bits()).collect()
}
