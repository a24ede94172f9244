//! Every scenario gives the same bits whatever the tile size of core's objective and whatever
//! the number of threads (and tiling, and chunking) of the host's `ParObjective`.

mod common;

use common::{first_difference, run, run_core, ParEvaluator};
use edgewise_tests::Scenario;

#[test]
fn core_tile_sizes_give_the_same_trace() {
    let mut failures = Vec::new();
    for s in Scenario::ALL {
        let base = run_core(s, 1);
        for tile in [3, 32] {
            let t = run_core(s, tile);
            if let Some(d) =
                first_difference(s.name(), &base, &t, ("tile 1", &format!("tile {tile}")))
            {
                failures.push(d);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "core tilings disagree:\n{}",
        failures.join("\n")
    );
}

#[test]
fn host_threads_give_the_same_trace_as_core() {
    let configs = [
        ParEvaluator::new(1, 32, None),
        ParEvaluator::new(2, 32, None),
        ParEvaluator::new(1, 3, None),
        ParEvaluator::new(2, 3, None),
        ParEvaluator::new(2, 1, None),
        // Several chunks per pass.
        ParEvaluator::new(2, 3, Some(2)),
    ];
    let mut failures = Vec::new();
    for s in Scenario::ALL {
        let base = run_core(s, 1);
        for cfg in &configs {
            let mut eval = ParEvaluator::new(cfg.threads, cfg.tile, cfg.chunk_tiles);
            let t = run(s, &mut eval);
            if let Some(d) =
                first_difference(s.name(), &base, &t, ("core tile 1", &eval.to_string()))
            {
                failures.push(d);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "host ParObjective disagrees with core:\n{}",
        failures.join("\n")
    );
}
