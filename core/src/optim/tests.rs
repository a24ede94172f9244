//! First steps of every optimizer against values derived by hand (in f64 with the formulas of
//! the module documentation, printed to 16 digits, then written here as literals).

use super::*;

fn run(opt: Optimizer, lr: f32, theta0: f32, grads: &[f32]) -> [f32; 2] {
    let mut p = [theta0];
    let mut buf = [0.0f32; 2];
    let n = opt.state_len(1);
    let mut st = OptState {
        t: 0,
        buf: &mut buf[..n],
    };
    let mut out = [0.0; 2];
    for (k, &g) in grads.iter().enumerate() {
        opt.step(lr, &mut p, &[g], &mut st).unwrap();
        out[k] = p[0];
    }
    out
}

fn close(got: [f32; 2], want: [f64; 2]) {
    for k in 0..2 {
        assert!(
            (got[k] as f64 - want[k]).abs() < 2e-6,
            "step {}: {} vs {}",
            k + 1,
            got[k],
            want[k]
        );
    }
}

const G: [f32; 2] = [0.5, 0.25];

#[test]
fn gd_with_and_without_weight_decay() {
    close(
        run(Optimizer::Gd { weight_decay: 0.0 }, 0.1, 1.0, &G),
        [0.95, 0.925],
    );
    // g' = g + 0.1 theta: 0.6 -> 0.94; then 0.25 + 0.094 = 0.344 -> 0.9056.
    close(
        run(Optimizer::Gd { weight_decay: 0.1 }, 0.1, 1.0, &G),
        [0.94, 0.9056],
    );
}

#[test]
fn heavy_ball_and_nesterov() {
    let hb = Optimizer::Momentum(MomentumConfig::default());
    // b = 0.5 -> 0.95; b = 0.45 + 0.25 = 0.7 -> 0.88.
    close(run(hb, 0.1, 1.0, &G), [0.95, 0.88]);
    let nag = Optimizer::Momentum(MomentumConfig {
        nesterov: true,
        ..Default::default()
    });
    // b = 0.5, d = 0.5 + 0.45 = 0.95 -> 0.905; b = 0.7, d = 0.25 + 0.63 = 0.88 -> 0.817.
    close(run(nag, 0.1, 1.0, &G), [0.905, 0.817]);
}

#[test]
fn adam_adamw_rmsprop() {
    let adam = Optimizer::Adam(AdamConfig::default());
    close(run(adam, 0.1, 1.0, &G), [0.900000002, 0.8067820404774624]);
    // AdamW: theta -= 0.1 * 0.1 * theta first: 0.99, then the Adam step -0.1.
    let adamw = Optimizer::Adam(AdamConfig {
        weight_decay: 0.1,
        decoupled: true,
        ..Default::default()
    });
    assert!((run(adamw, 0.1, 1.0, &G)[0] - 0.89).abs() < 2e-6);
    let rms = Optimizer::RmsProp(RmsPropConfig::default());
    close(run(rms, 0.1, 1.0, &G), [0.900000002, 0.836658889198842]);
}

#[test]
fn clipped_adam_upper_and_lower_bounds() {
    let up = Optimizer::Adam(AdamConfig {
        beta2: 0.99,
        clip: Clip::Upper(0.1),
        ..Default::default()
    });
    close(
        run(up, 0.1, 1.0, &G),
        [0.500000049999995, 0.1315790342105177],
    );
    let lo = Optimizer::Adam(AdamConfig {
        beta2: 0.99,
        clip: Clip::Lower(1.0),
        ..Default::default()
    });
    close(run(lo, 0.1, 1.0, &G), [0.9500000005, 0.9131578956052632]);
}

#[test]
fn step_sizes_are_the_preconditioner() {
    let up = Optimizer::Adam(AdamConfig {
        beta2: 0.99,
        clip: Clip::Upper(0.1),
        ..Default::default()
    });
    let mut p = [1.0f32];
    let mut buf = [0.0f32; 2];
    let mut st = OptState {
        t: 0,
        buf: &mut buf,
    };
    up.step(0.1, &mut p, &[0.5], &mut st).unwrap();
    let mut d = [0.0f32];
    up.step_sizes(0.1, &st, &mut d).unwrap();
    // sqrt(v_hat) = 0.5 is clipped to 0.1: step size 0.1 / (0.1 + 1e-8).
    assert!((d[0] - 1.0).abs() < 1e-6);
}

#[test]
fn eps_zero_leaves_a_coordinate_without_gradient_where_it_is() {
    // Two coordinates, the second with gradient 0 at every step: with eps = 0 its denominator
    // is 0 (0 / 0 before); the first takes Adam's step, sign(g) * lr at step 1.
    for opt in [
        Optimizer::Adam(AdamConfig {
            eps: 0.0,
            ..Default::default()
        }),
        Optimizer::Adam(AdamConfig {
            eps: 0.0,
            clip: Clip::Upper(0.1),
            ..Default::default()
        }),
        Optimizer::RmsProp(RmsPropConfig {
            eps: 0.0,
            ..Default::default()
        }),
    ] {
        let mut p = [1.0f32, 2.0];
        let mut buf = [0.0f32; 4];
        let n = opt.state_len(2);
        let mut st = OptState {
            t: 0,
            buf: &mut buf[..n],
        };
        for _ in 0..3 {
            opt.step(0.1, &mut p, &[0.5, 0.0], &mut st).unwrap();
        }
        assert_eq!(p[1], 2.0, "{opt:?}");
        assert!(p[0] < 1.0 && p[0].is_finite(), "{opt:?}: {}", p[0]);
        let mut d = [f32::NAN; 2];
        opt.step_sizes(0.1, &st, &mut d).unwrap();
        assert_eq!(d[1], 0.0, "{opt:?}");
        assert!(d[0] > 0.0 && d[0].is_finite(), "{opt:?}: {}", d[0]);
        // A NaN gradient still makes the parameter NaN: divergence is not hidden.
        opt.step(0.1, &mut p, &[f32::NAN, 0.0], &mut st).unwrap();
        assert!(p[0].is_nan(), "{opt:?}");
    }
}

#[test]
fn bad_settings_are_errors() {
    let mut p = [1.0f32];
    let mut st = OptState { t: 0, buf: &mut [] };
    let gd = Optimizer::default();
    assert!(gd.step(0.0, &mut p, &[1.0], &mut st).is_err());
    assert!(gd.step(f32::NAN, &mut p, &[1.0], &mut st).is_err());
    let bad = Optimizer::Adam(AdamConfig {
        clip: Clip::Upper(-1.0),
        ..Default::default()
    });
    assert!(bad.validate().is_err());
}

#[test]
fn schedules() {
    let s = Schedule {
        warmup: 4,
        decay_every: 10,
        decay_factor: 0.5,
    };
    assert_eq!(s.lr(1.0, 0), 0.25);
    assert_eq!(s.lr(1.0, 3), 1.0);
    assert_eq!(s.lr(1.0, 9), 1.0);
    assert_eq!(s.lr(1.0, 10), 0.5);
    assert_eq!(s.lr(1.0, 25), 0.25);
    assert_eq!(Schedule::constant().lr(0.3, 1000), 0.3);
}

#[test]
fn thresholds() {
    assert_eq!(Optimizer::default().stability_threshold(), 2.0);
    let adam = Optimizer::Adam(AdamConfig::default());
    assert!((adam.stability_threshold() - 38.0).abs() < 1e-4);
    let momentum = |nesterov| {
        Optimizer::Momentum(MomentumConfig {
            momentum: 0.9,
            nesterov,
            ..MomentumConfig::default()
        })
        .stability_threshold()
    };
    assert!((momentum(false) - 3.8).abs() < 1e-6);
    assert!((momentum(true) - 3.8 / 2.8).abs() < 1e-6);
}

/// The thresholds against the dynamics: on the quadratic `lambda theta^2 / 2` (gradient
/// `lambda theta`) each optimizer converges at a learning rate 2% below `threshold / lambda`
/// and diverges 2% above it.
#[test]
fn thresholds_separate_convergence_from_divergence_on_a_quadratic() {
    let lambda = 3.0f32;
    let opts = [
        Optimizer::default(),
        Optimizer::Momentum(MomentumConfig::default()),
        Optimizer::Momentum(MomentumConfig {
            momentum: 0.5,
            ..MomentumConfig::default()
        }),
        Optimizer::Momentum(MomentumConfig {
            nesterov: true,
            ..MomentumConfig::default()
        }),
        Optimizer::Momentum(MomentumConfig {
            momentum: 0.5,
            nesterov: true,
            ..MomentumConfig::default()
        }),
    ];
    for opt in opts {
        let final_theta = |lr: f32| {
            let mut theta = [1.0f32];
            let mut buf = [0.0f32; 1];
            let n = opt.state_len(1);
            let mut st = OptState {
                t: 0,
                buf: &mut buf[..n],
            };
            for _ in 0..4000 {
                let g = [lambda * theta[0]];
                opt.step(lr, &mut theta, &g, &mut st).unwrap();
                if !theta[0].is_finite() {
                    break;
                }
            }
            theta[0].abs()
        };
        let edge = opt.stability_threshold() / lambda;
        let (below, above) = (final_theta(0.98 * edge), final_theta(1.02 * edge));
        assert!(
            below < 1e-6,
            "{opt:?}: |theta| = {below} at 0.98 x threshold"
        );
        assert!(
            above > 1e6 || !above.is_finite(),
            "{opt:?}: |theta| = {above} at 1.02 x threshold"
        );
    }
}
