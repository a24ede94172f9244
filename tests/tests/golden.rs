//! The host's traces against the committed goldens (`tests/golden/<scenario>.txt`).
//!
//! `EDGEWISE_BLESS=1 cargo test -p edgewise-tests --test golden` rewrites the goldens from the
//! current host traces (review the diff: any change of numerics shows there).

mod common;

use common::{first_difference, golden_path, golden_text, read_golden, reference};
use edgewise_tests::{Fnv64, Scenario};

fn blessing() -> bool {
    std::env::var("EDGEWISE_BLESS").is_ok_and(|v| !v.is_empty() && v != "0")
}

#[test]
fn host_traces_match_the_goldens() {
    let bless = blessing();
    let mut failures = Vec::new();
    for s in Scenario::ALL {
        let recs = reference(s);
        let path = golden_path(s);
        if bless {
            let text = golden_text(s, &recs);
            let old = std::fs::read_to_string(&path).unwrap_or_default();
            if old != text {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, text).unwrap();
                eprintln!("blessed {}", path.display());
            }
            continue;
        }
        match read_golden(s) {
            Err(e) => failures.push(format!(
                "scenario {}: no usable golden: {e}\n  (accept the current traces with \
                 `EDGEWISE_BLESS=1 cargo test -p edgewise-tests --test golden`)",
                s.name()
            )),
            Ok(golden) => {
                if let Some(d) = first_difference(s.name(), &golden, &recs, ("golden", "host")) {
                    failures.push(d);
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "host traces differ from the goldens in tests/golden/ ({} of {} scenarios):\n{}\n\
         If the change of numerics is intended, bless: \
         EDGEWISE_BLESS=1 cargo test -p edgewise-tests --test golden",
        failures.len(),
        Scenario::ALL.len(),
        failures.join("\n")
    );
}

#[test]
fn every_golden_file_belongs_to_a_scenario() {
    let dir = golden_path(Scenario::ALL[0])
        .parent()
        .unwrap()
        .to_path_buf();
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return; // reported by host_traces_match_the_goldens
    };
    let stray: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.strip_suffix(".txt")
                .and_then(Scenario::from_name)
                .is_none()
        })
        .collect();
    assert!(
        stray.is_empty(),
        "files in {} that are no scenario's golden: {stray:?}",
        dir.display()
    );
}

#[test]
fn scenario_names_are_unique_and_round_trip() {
    for (i, s) in Scenario::ALL.iter().enumerate() {
        assert_eq!(Scenario::from_name(s.name()), Some(*s));
        assert!(Scenario::ALL[..i].iter().all(|t| t.name() != s.name()));
        assert!(s
            .name()
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
    }
}

#[test]
fn fnv1a64_matches_the_reference_values() {
    // From the FNV reference (http://www.isthe.com/chongo/tech/comp/fnv/): "" and "a".
    assert_eq!(Fnv64::new().finish(), 0xcbf2_9ce4_8422_2325);
    assert_eq!(Fnv64::new().bytes(b"a").finish(), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(
        Fnv64::new().bytes(b"foobar").finish(),
        0x8594_4171_f739_67e8
    );
    // f32 values are fed as their little-endian bit patterns.
    let mut a = Fnv64::new();
    a.f32s(&[1.0, -0.5]);
    let mut b = Fnv64::new();
    b.bytes(&1.0f32.to_bits().to_le_bytes())
        .bytes(&(-0.5f32).to_bits().to_le_bytes());
    assert_eq!(a, b);
}
