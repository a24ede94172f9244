//! Synthetic regression data from a random teacher network (`synthetic:teacher`).
//!
//! # Spec
//!
//! `synthetic:teacher`, optionally followed by `?` and `key=value` pairs joined by `&`:
//!
//! | key | meaning | default |
//! | --- | --- | --- |
//! | `n` | samples | 1000 |
//! | `dim` | input features | 16 |
//! | `hidden` | teacher hidden units | 32 |
//! | `out` | outputs (target width) | 4 |
//! | `seed` | generator seed | the seed passed to [`load`](super::load) |
//!
//! e.g. `synthetic:teacher?n=500&dim=8&seed=3`. Sizes must be at least 1, and no array may
//! exceed 2^28 values.
//!
//! # Generation
//!
//! One SplitMix64 stream seeded with `seed` draws, in this order: the teacher's
//! first layer `W1` (`hidden × dim`, row-major, each `N(0, 1) / sqrt(dim)`), its second layer
//! `W2` (`out × hidden`, each `N(0, 1) / sqrt(hidden)`), then the inputs sample by sample
//! (`dim` values each, `N(0, 1)`). The targets are `y = W2 tanh(W1 x)` (no biases).
//!
//! Normals are the Irwin–Hall approximation (sum of 12 uniforms minus 6, in f32), dot products
//! are summed left to right in f32, `sqrt` is IEEE (correctly rounded) and `tanh` is `libm`'s
//! portable software `tanhf`: the data is bit-identical on every platform. Since the inputs
//! come last, a smaller `n` gives a prefix of a larger one with the same seed.
//!
//! The result is regression data: `targets` is `n × out`, `labels` are all zero and
//! `n_classes` is 0.

use std::fmt;

use super::rng::SplitMix64;
use super::{DataError, Dataset};

/// How `synthetic:teacher` inputs are scaled.
pub(crate) const SCALING: &str = "none: the inputs are drawn standard normal";

/// The largest number of values any one generated array may hold.
const MAX_VALUES: usize = 1 << 28;

/// Parameters of `synthetic:teacher`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TeacherSpec {
    /// Samples.
    pub n: usize,
    /// Input features.
    pub dim: usize,
    /// Teacher hidden units.
    pub hidden: usize,
    /// Outputs (target width).
    pub out: usize,
    /// Generator seed.
    pub seed: u64,
}

impl Default for TeacherSpec {
    /// `n = 1000`, `dim = 16`, `hidden = 32`, `out = 4`, `seed = 0`.
    fn default() -> Self {
        TeacherSpec {
            n: 1000,
            dim: 16,
            hidden: 32,
            out: 4,
            seed: 0,
        }
    }
}

impl TeacherSpec {
    /// Parses the part of the spec after `?` (e.g. `n=500&seed=3`, or empty for the
    /// defaults); `seed` is the default seed.
    ///
    /// # Errors
    /// A message for a malformed pair, an unknown or repeated key, a bad value, or sizes that
    /// [`validate`](Self::validate) rejects.
    pub fn parse(params: &str, seed: u64) -> Result<Self, String> {
        let mut spec = TeacherSpec {
            seed,
            ..TeacherSpec::default()
        };
        let mut seen: Vec<&str> = Vec::new();
        for pair in params.split('&').filter(|p| !p.is_empty()) {
            let Some((key, value)) = pair.split_once('=') else {
                return Err(format!("expected key=value, found `{pair}`"));
            };
            if seen.contains(&key) {
                return Err(format!("`{key}` given twice"));
            }
            seen.push(key);
            let size = || -> Result<usize, String> {
                value
                    .parse::<usize>()
                    .map_err(|_| format!("`{key}` must be a non-negative integer, found `{value}`"))
            };
            match key {
                "n" => spec.n = size()?,
                "dim" => spec.dim = size()?,
                "hidden" => spec.hidden = size()?,
                "out" => spec.out = size()?,
                "seed" => {
                    spec.seed = value.parse::<u64>().map_err(|_| {
                        format!("`seed` must be an integer in 0..2^64, found `{value}`")
                    })?
                }
                _ => {
                    return Err(format!(
                        "unknown parameter `{key}` (valid: n, dim, hidden, out, seed)"
                    ))
                }
            }
        }
        spec.validate()?;
        Ok(spec)
    }

    /// Checks the sizes: each at least 1, no array over 2^28 values.
    ///
    /// # Errors
    /// A message naming the offending size.
    pub fn validate(&self) -> Result<(), String> {
        for (key, v) in [
            ("n", self.n),
            ("dim", self.dim),
            ("hidden", self.hidden),
            ("out", self.out),
        ] {
            if v == 0 {
                return Err(format!("`{key}` must be at least 1"));
            }
        }
        for (what, a, b) in [
            ("n x dim", self.n, self.dim),
            ("n x out", self.n, self.out),
            ("hidden x dim", self.hidden, self.dim),
            ("out x hidden", self.out, self.hidden),
        ] {
            if a.checked_mul(b).is_none_or(|v| v > MAX_VALUES) {
                return Err(format!(
                    "{what} = {a} x {b} is too large (at most 2^28 values)"
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Display for TeacherSpec {
    /// The canonical spec, e.g. `synthetic:teacher?n=1000&dim=16&hidden=32&out=4&seed=0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "synthetic:teacher?n={}&dim={}&hidden={}&out={}&seed={}",
            self.n, self.dim, self.hidden, self.out, self.seed
        )
    }
}

/// Generates the teacher data set (see the [module documentation](self)). The data set is
/// named by its canonical spec (the [`Display`](fmt::Display) of `spec`).
///
/// # Errors
/// [`DataError::BadSpec`] if [`TeacherSpec::validate`] rejects `spec`.
pub fn teacher(spec: &TeacherSpec) -> Result<Dataset, DataError> {
    spec.validate()
        .map_err(|msg| DataError::bad_spec(&spec.to_string(), msg))?;
    let TeacherSpec {
        n,
        dim,
        hidden,
        out,
        seed,
    } = *spec;
    let mut rng = SplitMix64::new(seed);
    let s1 = 1.0 / (dim as f32).sqrt();
    let s2 = 1.0 / (hidden as f32).sqrt();
    let w1: Vec<f32> = (0..hidden * dim).map(|_| rng.normal() * s1).collect();
    let w2: Vec<f32> = (0..out * hidden).map(|_| rng.normal() * s2).collect();
    let x: Vec<f32> = (0..n * dim).map(|_| rng.normal()).collect();

    let mut targets = Vec::with_capacity(n * out);
    let mut h = vec![0.0f32; hidden];
    for xi in x.chunks_exact(dim) {
        for (hj, w) in h.iter_mut().zip(w1.chunks_exact(dim)) {
            *hj = libm::tanhf(dot(w, xi));
        }
        targets.extend(w2.chunks_exact(hidden).map(|w| dot(w, &h)));
    }
    Ok(Dataset {
        x,
        labels: vec![0; n],
        targets: Some(targets),
        n,
        dim,
        n_classes: 0,
        name: spec.to_string(),
    })
}

/// `sum_k a[k] b[k]`, left to right, separate multiply and add (no fused multiply-add).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0.0, |acc, (&p, &q)| acc + p * q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_seeded() {
        let spec = TeacherSpec {
            n: 200,
            seed: 11,
            ..TeacherSpec::default()
        };
        let a = teacher(&spec).unwrap();
        let b = teacher(&spec).unwrap();
        assert_eq!(a, b);
        assert_eq!((a.n, a.dim, a.n_classes, a.target_dim()), (200, 16, 0, 4));
        assert_eq!(a.x.len(), 200 * 16);
        assert_eq!(a.targets.as_ref().map(Vec::len), Some(200 * 4));
        assert!(a.labels.iter().all(|&l| l == 0));
        assert!(a.class_counts().is_empty());
        assert_eq!(
            a.name,
            "synthetic:teacher?n=200&dim=16&hidden=32&out=4&seed=11"
        );

        let c = teacher(&TeacherSpec { seed: 12, ..spec }).unwrap();
        assert_ne!(a.x, c.x);
        assert_ne!(a.targets, c.targets);

        // A smaller n is a prefix.
        let d = teacher(&TeacherSpec { n: 50, ..spec }).unwrap();
        assert_eq!(d.x[..], a.x[..50 * 16]);
        assert_eq!(
            d.targets.unwrap()[..],
            a.targets.as_ref().unwrap()[..50 * 4]
        );

        // Targets are a non-trivial function of the inputs, of order 1.
        let t = a.targets.unwrap();
        let var = t.iter().map(|v| v * v).sum::<f32>() / t.len() as f32;
        assert!(var > 0.05 && var < 2.0, "target variance {var}");
    }

    #[test]
    fn golden_bits() {
        // Guards the documented generation rule against accidental change.
        let d = teacher(&TeacherSpec {
            n: 3,
            seed: 1,
            ..TeacherSpec::default()
        })
        .unwrap();
        let fingerprint = |v: &[f32]| {
            v.iter().fold(0u64, |h, x| {
                (h ^ u64::from(x.to_bits())).wrapping_mul(0x0000_0100_0000_01b3)
            })
        };
        assert_eq!(fingerprint(&d.x), GOLDEN_X, "x {:?}", &d.x[..4]);
        assert_eq!(
            fingerprint(d.targets.as_ref().unwrap()),
            GOLDEN_Y,
            "y {:?}",
            d.targets
        );
    }
    const GOLDEN_X: u64 = 6_478_502_925_217_540_980;
    const GOLDEN_Y: u64 = 15_890_314_818_811_107_759;

    #[test]
    fn parse_params() {
        assert_eq!(
            TeacherSpec::parse("", 9).unwrap(),
            TeacherSpec {
                seed: 9,
                ..TeacherSpec::default()
            }
        );
        let s = TeacherSpec::parse("n=500&dim=8&out=2&hidden=5&seed=3", 9).unwrap();
        assert_eq!(
            s,
            TeacherSpec {
                n: 500,
                dim: 8,
                hidden: 5,
                out: 2,
                seed: 3
            }
        );
        for (bad, msg) in [
            ("n=0", "`n` must be at least 1"),
            ("n=-1", "`n` must be a non-negative integer"),
            ("dim=x", "`dim` must be a non-negative integer"),
            ("width=3", "unknown parameter `width`"),
            ("n", "expected key=value"),
            ("n=2&n=3", "`n` given twice"),
            ("seed=1.5", "`seed` must be an integer"),
            ("n=100000000&dim=100", "too large"),
        ] {
            let e = TeacherSpec::parse(bad, 0).unwrap_err();
            assert!(e.contains(msg), "{bad}: {e}");
        }
    }
}
