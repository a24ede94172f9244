//! Drawing the train and test sets of a run from a loaded data set.
//!
//! # The rule
//!
//! 1. **Permutation.** The pool is put in a seeded random order: Fisher–Yates on the identity
//!    `0..n` with a SplitMix64 generator seeded with `seed`, for `i` from `n - 1` down to 1
//!    swapping positions `i` and `j = (next_u64() as u128 * (i + 1) as u128) >> 64`. A separate
//!    test file, if the data set has one, is permuted the same way with the seed
//!    `seed ^ 0x7e57_7e57_7e57_7e57`.
//! 2. **Per class** (`per_class = k`, `test_per_class = t`, default `t = max(1, k / 5)`; the
//!    paper uses 100 and 20): walk the pool permutation and put the first `k` samples of each
//!    class in the training set and, without a test file, the next `t` samples of each class
//!    in the test set; with a test file the test set is the first `t` of each class along the
//!    test-file permutation. Every class `0..n_classes` must have enough samples.
//! 3. **By size** (`train_size`, `test_size`):
//!    - with a test file: the training set is the first `train_size` samples of the pool
//!      permutation (default: the whole pool) and the test set the first `test_size` of the
//!      test-file permutation (default: the whole test file);
//!    - without one: the training set is the first `train_size` samples of the permutation and
//!      the test set the next `test_size`. Defaults: `test_size` is 20% of the pool (rounded
//!      down), or what `train_size` leaves if that is less; `train_size` is the rest of the
//!      pool after the test set (so 80/20 with neither given).
//!
//! Within each set the samples stay in permutation order. Asking for more samples than there
//! are, for an empty set, or for `per_class` on regression data is an error naming the
//! [`SplitSpec`] field. Everything is integer arithmetic: the same spec gives the same sets
//! on every platform.

use super::rng::permutation;
use super::{DataError, Dataset, Loaded};

/// The XOR that derives the test-file permutation seed from [`SplitSpec::seed`].
const TEST_SEED_SALT: u64 = 0x7e57_7e57_7e57_7e57;

/// How to split a loaded data set into a train and a test set (see the
/// [module documentation](self) for the rule). `per_class` excludes `train_size` and
/// `test_size`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SplitSpec {
    /// Training samples (size mode).
    pub train_size: Option<usize>,
    /// Test samples (size mode).
    pub test_size: Option<usize>,
    /// Training samples of each class (per-class mode).
    pub per_class: Option<usize>,
    /// Test samples of each class (per-class mode; default `max(1, per_class / 5)`).
    pub test_per_class: Option<usize>,
    /// Seed of the permutation.
    pub seed: u64,
}

/// Splits `loaded` into a train and a test set by the documented rule.
///
/// # Errors
/// [`DataError::Split`] for an invalid combination or a zero value in `spec`, more samples
/// (of a class) than available, an empty set, `per_class` on regression data, or a test file
/// whose shape differs from the pool's.
pub fn split(loaded: Loaded, spec: &SplitSpec) -> Result<(Dataset, Dataset), DataError> {
    check_spec(spec)?;
    let Loaded {
        train_pool: mut pool,
        test_pool: mut test_file,
    } = loaded;
    if let Some(test) = &mut test_file {
        if test.dim != pool.dim || test.target_dim() != pool.target_dim() {
            return Err(DataError::split(format!(
                "the test file of {} has {} features and {} targets per sample, the pool {} and {}",
                pool.name,
                test.dim,
                test.target_dim(),
                pool.dim,
                pool.target_dim()
            )));
        }
        let n_classes = pool.n_classes.max(test.n_classes);
        pool.n_classes = n_classes;
        test.n_classes = n_classes;
    }
    let perm = permutation(pool.n, spec.seed);
    let test_perm = test_file
        .as_ref()
        .map(|t| permutation(t.n, spec.seed ^ TEST_SEED_SALT));

    let (train_idx, test_idx) = match spec.per_class {
        Some(k) => {
            let t = spec.test_per_class.unwrap_or((k / 5).max(1));
            per_class(
                &pool,
                &perm,
                test_file.as_ref().zip(test_perm.as_deref()),
                k,
                t,
            )?
        }
        None => by_size(
            &pool,
            &perm,
            test_file.as_ref().zip(test_perm.as_deref()),
            spec,
        )?,
    };
    let train = pool.subset(&train_idx);
    let test = match &test_file {
        Some(t) => t.subset(&test_idx),
        None => pool.subset(&test_idx),
    };
    Ok((train, test))
}

fn check_spec(spec: &SplitSpec) -> Result<(), DataError> {
    if spec.per_class.is_some() && (spec.train_size.is_some() || spec.test_size.is_some()) {
        return Err(DataError::split(
            "per_class cannot be combined with train_size or test_size",
        ));
    }
    if spec.test_per_class.is_some() && spec.per_class.is_none() {
        return Err(DataError::split("test_per_class needs per_class"));
    }
    for (field, value) in [
        ("train_size", spec.train_size),
        ("test_size", spec.test_size),
        ("per_class", spec.per_class),
        ("test_per_class", spec.test_per_class),
    ] {
        if value == Some(0) {
            return Err(DataError::split(format!("{field} must be at least 1")));
        }
    }
    Ok(())
}

/// Per-class mode: indices into the pool (train) and into the test file or the pool (test).
fn per_class(
    pool: &Dataset,
    perm: &[usize],
    test_file: Option<(&Dataset, &[usize])>,
    k: usize,
    t: usize,
) -> Result<(Vec<usize>, Vec<usize>), DataError> {
    if pool.is_regression() || pool.n_classes == 0 {
        return Err(DataError::split(format!(
            "per_class needs class labels, but {} is regression data",
            pool.name
        )));
    }
    let classes = pool.n_classes;
    for data in std::iter::once(pool).chain(test_file.map(|(d, _)| d)) {
        if let Some(&l) = data.labels.iter().find(|&&l| usize::from(l) >= classes) {
            return Err(DataError::split(format!(
                "{} has label {l}, outside its {classes} classes",
                data.name
            )));
        }
    }
    let mut train = Vec::with_capacity(k.saturating_mul(classes).min(pool.n));
    let mut test = Vec::new();
    let mut taken_train = vec![0usize; classes];
    let mut taken_test = vec![0usize; classes];
    for &i in perm {
        let c = usize::from(pool.labels[i]);
        if taken_train[c] < k {
            taken_train[c] += 1;
            train.push(i);
        } else if test_file.is_none() && taken_test[c] < t {
            taken_test[c] += 1;
            test.push(i);
        }
    }
    if let Some((test_data, test_perm)) = test_file {
        for &i in test_perm {
            let c = usize::from(test_data.labels[i]);
            if taken_test[c] < t {
                taken_test[c] += 1;
                test.push(i);
            }
        }
        check_counts(pool, &taken_train, k, "per_class", "the pool")?;
        check_counts(test_data, &taken_test, t, "test_per_class", "the test file")?;
    } else {
        let need = k.saturating_add(t);
        for c in 0..classes {
            if taken_train[c] < k || taken_test[c] < t {
                let have = taken_train[c] + taken_test[c];
                return Err(DataError::split(format!(
                    "per_class = {k} plus test_per_class = {t} needs {need} samples of class {c}, \
                     but the pool ({}) has only {have}",
                    pool.name
                )));
            }
        }
    }
    Ok((train, test))
}

/// Checks that every class got `want` samples.
fn check_counts(
    data: &Dataset,
    taken: &[usize],
    want: usize,
    field: &str,
    what: &str,
) -> Result<(), DataError> {
    match taken.iter().position(|&got| got < want) {
        Some(c) => Err(DataError::split(format!(
            "{field} = {want}, but {what} ({}) has only {} samples of class {c}",
            data.name, taken[c]
        ))),
        None => Ok(()),
    }
}

/// Size mode: indices into the pool (train) and into the test file or the pool (test).
fn by_size(
    pool: &Dataset,
    perm: &[usize],
    test_file: Option<(&Dataset, &[usize])>,
    spec: &SplitSpec,
) -> Result<(Vec<usize>, Vec<usize>), DataError> {
    let n = pool.n;
    let too_many = |field: &str, value: usize, avail: usize, what: &str| {
        DataError::split(format!(
            "{field} = {value} exceeds the {avail} samples of {what} ({})",
            pool.name
        ))
    };
    if let Some((test_data, test_perm)) = test_file {
        let train = spec.train_size.unwrap_or(n);
        let test = spec.test_size.unwrap_or(test_data.n);
        if train > n {
            return Err(too_many("train_size", train, n, "the pool"));
        }
        if test > test_data.n {
            return Err(too_many("test_size", test, test_data.n, "the test file"));
        }
        if train == 0 || test == 0 {
            return Err(DataError::split(format!(
                "{} has an empty pool or test file",
                pool.name
            )));
        }
        return Ok((perm[..train].to_vec(), test_perm[..test].to_vec()));
    }
    let (train, test) = match spec.train_size {
        Some(train) => {
            if train > n {
                return Err(too_many("train_size", train, n, "the pool"));
            }
            let test = spec.test_size.unwrap_or((n / 5).min(n - train));
            if test > n - train {
                return Err(DataError::split(format!(
                    "train_size = {train} plus test_size = {test} exceeds the {n} samples of \
                     the pool ({})",
                    pool.name
                )));
            }
            (train, test)
        }
        None => {
            let test = spec.test_size.unwrap_or(n / 5);
            if test > n {
                return Err(too_many("test_size", test, n, "the pool"));
            }
            (n - test, test)
        }
    };
    if train == 0 || test == 0 {
        return Err(DataError::split(format!(
            "the {} set would be empty: the pool ({}) has {n} samples{}",
            if train == 0 { "training" } else { "test" },
            pool.name,
            if spec.train_size.is_some() {
                " and train_size takes them all"
            } else {
                ""
            }
        )));
    }
    Ok((perm[..train].to_vec(), perm[train..train + test].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::super::bundled;
    use super::*;

    /// `n` samples with `x = [i]` (so the original index can be read back) and label `i % c`.
    fn indexed(n: usize, c: usize) -> Dataset {
        Dataset {
            x: (0..n).map(|i| i as f32).collect(),
            labels: (0..n).map(|i| (i % c) as u16).collect(),
            targets: None,
            n,
            dim: 1,
            n_classes: c,
            name: "indexed".into(),
        }
    }

    fn pool_only(d: Dataset) -> Loaded {
        Loaded {
            train_pool: d,
            test_pool: None,
        }
    }

    fn ids(d: &Dataset) -> Vec<usize> {
        d.x.iter().map(|&v| v as usize).collect()
    }

    #[test]
    fn permutation_rule_is_stable() {
        // The documented Fisher–Yates with SplitMix64(seed); fixed values guard the rule.
        assert_eq!(permutation(10, 42), GOLDEN_PERM_10_42);
    }
    const GOLDEN_PERM_10_42: [usize; 10] = [8, 3, 6, 5, 4, 0, 9, 2, 1, 7];

    #[test]
    fn default_is_80_20_disjoint_in_permutation_order() {
        let (train, test) = split(pool_only(indexed(103, 3)), &SplitSpec::default()).unwrap();
        assert_eq!((train.n, test.n), (83, 20));
        let perm = permutation(103, 0);
        assert_eq!(ids(&train), perm[..83]);
        assert_eq!(ids(&test), perm[83..]);
        assert_eq!(
            train.labels,
            perm[..83]
                .iter()
                .map(|&i| (i % 3) as u16)
                .collect::<Vec<_>>()
        );
        assert_eq!(train.n_classes, 3);
    }

    #[test]
    fn sizes_and_defaults() {
        let spec = |train, test| SplitSpec {
            train_size: train,
            test_size: test,
            seed: 5,
            ..SplitSpec::default()
        };
        let sizes = |s: SplitSpec| split(pool_only(indexed(100, 2)), &s).map(|(a, b)| (a.n, b.n));
        assert_eq!(sizes(spec(Some(30), None)).unwrap(), (30, 20));
        assert_eq!(sizes(spec(Some(90), None)).unwrap(), (90, 10));
        assert_eq!(sizes(spec(None, Some(10))).unwrap(), (90, 10));
        assert_eq!(sizes(spec(Some(30), Some(70))).unwrap(), (30, 70));
        let e = sizes(spec(Some(101), None)).unwrap_err().to_string();
        assert!(
            e.contains("train_size = 101 exceeds the 100 samples"),
            "{e}"
        );
        let e = sizes(spec(Some(30), Some(71))).unwrap_err().to_string();
        assert!(
            e.contains("train_size = 30 plus test_size = 71 exceeds"),
            "{e}"
        );
        let e = sizes(spec(None, Some(101))).unwrap_err().to_string();
        assert!(e.contains("test_size = 101 exceeds"), "{e}");
        let e = sizes(spec(Some(100), None)).unwrap_err().to_string();
        assert!(e.contains("test set would be empty"), "{e}");
        let e = sizes(spec(None, Some(100))).unwrap_err().to_string();
        assert!(e.contains("training set would be empty"), "{e}");
        let e = sizes(spec(Some(0), None)).unwrap_err().to_string();
        assert!(e.contains("train_size must be at least 1"), "{e}");
        let e = sizes(SplitSpec {
            per_class: Some(3),
            train_size: Some(3),
            ..SplitSpec::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("per_class cannot be combined"), "{e}");
        let e = sizes(SplitSpec {
            test_per_class: Some(3),
            ..SplitSpec::default()
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("test_per_class needs per_class"), "{e}");
    }

    #[test]
    fn deterministic_and_seeded() {
        let spec = SplitSpec {
            train_size: Some(50),
            test_size: Some(20),
            seed: 1,
            ..SplitSpec::default()
        };
        let a = split(pool_only(indexed(100, 4)), &spec).unwrap();
        let b = split(pool_only(indexed(100, 4)), &spec).unwrap();
        assert_eq!(a, b);
        let c = split(pool_only(indexed(100, 4)), &SplitSpec { seed: 2, ..spec }).unwrap();
        assert_ne!(ids(&a.0), ids(&c.0));
    }

    #[test]
    fn per_class_without_test_file() {
        let (d, _) = bundled("digits").unwrap();
        let spec = SplitSpec {
            per_class: Some(100),
            seed: 7,
            ..SplitSpec::default()
        };
        let (train, test) = split(pool_only(d.clone()), &spec).unwrap();
        assert_eq!(train.class_counts(), vec![100; 10]);
        assert_eq!(test.class_counts(), vec![20; 10]);
        assert_eq!((train.n, test.n, train.dim), (1000, 200, 64));
        let again = split(pool_only(d.clone()), &spec).unwrap();
        assert_eq!((&train, &test), (&again.0, &again.1));
        let other = split(pool_only(d.clone()), &SplitSpec { seed: 8, ..spec }).unwrap();
        assert_ne!(train.x, other.0.x);

        // Walk order on indexed data: train is the first 2 of each class along the
        // permutation, test the next 1 of each, both in permutation order, disjoint.
        let spec = SplitSpec {
            per_class: Some(2),
            test_per_class: Some(1),
            seed: 3,
            ..SplitSpec::default()
        };
        let (train, test) = split(pool_only(indexed(30, 3)), &spec).unwrap();
        let perm = permutation(30, 3);
        let mut taken = [0; 3];
        let (mut want_train, mut want_test) = (Vec::new(), Vec::new());
        for &i in &perm {
            taken[i % 3] += 1;
            match taken[i % 3] {
                1 | 2 => want_train.push(i),
                3 => want_test.push(i),
                _ => {}
            }
        }
        assert_eq!(ids(&train), want_train);
        assert_eq!(ids(&test), want_test);

        let e = split(
            pool_only(d),
            &SplitSpec {
                per_class: Some(160),
                ..SplitSpec::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("needs 192 samples of class 0, but the pool (digits) has only 178"),
            "{e}"
        );
    }

    #[test]
    fn a_test_file_is_taken_in_its_own_salted_permutation() {
        // The test file's order comes from `seed ^ TEST_SEED_SALT`, not from the pool's seed
        // (which would give the two files correlated orders).
        let loaded = Loaded {
            train_pool: indexed(100, 3),
            test_pool: Some(indexed(40, 3)),
        };
        let spec = SplitSpec {
            seed: 5,
            ..SplitSpec::default()
        };
        let (train, test) = split(loaded, &spec).unwrap();
        assert_eq!((train.n, test.n), (100, 40));
        assert_eq!(ids(&train), permutation(100, 5));
        assert_eq!(ids(&test), permutation(40, 5 ^ 0x7e57_7e57_7e57_7e57));
        assert_ne!(ids(&test), permutation(40, 5));
    }

    #[test]
    fn with_test_file() {
        let loaded = || {
            let (train, test) = bundled("mnist1d").unwrap();
            Loaded {
                train_pool: train,
                test_pool: test,
            }
        };
        let (train, test) = split(loaded(), &SplitSpec::default()).unwrap();
        assert_eq!((train.n, test.n), (4000, 1000));
        let spec = SplitSpec {
            per_class: Some(100),
            seed: 4,
            ..SplitSpec::default()
        };
        let (train, test) = split(loaded(), &spec).unwrap();
        assert_eq!(train.class_counts(), vec![100; 10]);
        assert_eq!(test.class_counts(), vec![20; 10]);
        let e = split(
            loaded(),
            &SplitSpec {
                per_class: Some(10),
                test_per_class: Some(90),
                ..SplitSpec::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("test_per_class = 90, but the test file"), "{e}");
        assert!(e.contains("has only 89 samples of class 2"), "{e}");
        let (train, test) = split(
            loaded(),
            &SplitSpec {
                train_size: Some(500),
                test_size: Some(100),
                ..SplitSpec::default()
            },
        )
        .unwrap();
        assert_eq!((train.n, test.n), (500, 100));
        let e = split(
            loaded(),
            &SplitSpec {
                test_size: Some(1001),
                ..SplitSpec::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("test_size = 1001 exceeds the 1000 samples of the test file"),
            "{e}"
        );
    }

    #[test]
    fn regression_data() {
        let mut d = indexed(10, 1);
        d.n_classes = 0;
        d.labels = vec![0; 10];
        d.targets = Some((0..20).map(|v| v as f32).collect());
        let (train, test) = split(pool_only(d.clone()), &SplitSpec::default()).unwrap();
        assert_eq!((train.n, test.n, train.target_dim()), (8, 2, 2));
        for (k, i) in ids(&train).into_iter().enumerate() {
            assert_eq!(
                train.target_row(k),
                Some(&[2.0 * i as f32, 2.0 * i as f32 + 1.0][..])
            );
        }
        let e = split(
            pool_only(d),
            &SplitSpec {
                per_class: Some(2),
                ..SplitSpec::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("per_class needs class labels"), "{e}");
    }
}
