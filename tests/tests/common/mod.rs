//! Host-side helpers shared by the conformance tests: collecting traces, the golden file format,
//! comparison with a readable first difference, and an evaluator backed by the host's
//! multi-threaded `ParObjective`.
#![allow(dead_code)]

use std::fmt;
use std::path::PathBuf;

use edgewise::engine::{ParObjective, Workspace};
use edgewise_core::{Arch, Data, Error, Objective};
use edgewise_tests::{CoreEvaluator, Evaluator, Scenario, Sink, NOT_MEASURED};

/// One record of a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub step: u32,
    pub loss: u32,
    pub sharpness: u32,
    pub hash: u64,
}

impl Record {
    /// `step loss_bits sharpness_bits param_hash` (step in decimal, the rest in hex).
    pub fn line(&self) -> String {
        format!(
            "{} {:08x} {:08x} {:016x}",
            self.step, self.loss, self.sharpness, self.hash
        )
    }

    /// Parses [`Record::line`]'s format.
    pub fn parse(line: &str) -> Result<Record, String> {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() != 4 {
            return Err(format!("expected 4 fields, got {}: `{line}`", f.len()));
        }
        let hex32 = |s: &str| u32::from_str_radix(s, 16).map_err(|e| format!("`{s}`: {e}"));
        Ok(Record {
            step: f[0].parse().map_err(|e| format!("step `{}`: {e}", f[0]))?,
            loss: hex32(f[1])?,
            sharpness: hex32(f[2])?,
            hash: u64::from_str_radix(f[3], 16).map_err(|e| format!("`{}`: {e}", f[3]))?,
        })
    }
}

/// The records of every scenario, in the order they came.
#[derive(Default, Debug, Clone)]
pub struct TraceSink {
    pub traces: Vec<(String, Vec<Record>)>,
}

impl Sink for TraceSink {
    fn record(&mut self, scenario: &str, step: u32, loss: u32, sharpness: u32, hash: u64) {
        let rec = Record {
            step,
            loss,
            sharpness,
            hash,
        };
        match self.traces.last_mut() {
            Some((name, recs)) if name == scenario => recs.push(rec),
            _ => self.traces.push((scenario.to_string(), vec![rec])),
        }
    }
}

impl TraceSink {
    pub fn get(&self, scenario: &str) -> Option<&[Record]> {
        self.traces
            .iter()
            .find(|(n, _)| n == scenario)
            .map(|(_, r)| r.as_slice())
    }
}

/// Runs one scenario and returns its records (panics with the scenario's name on error).
pub fn run<E: Evaluator>(s: Scenario, eval: &mut E) -> Vec<Record> {
    let mut sink = TraceSink::default();
    let n = s
        .run(eval, &mut sink)
        .unwrap_or_else(|e| panic!("scenario {} failed: {e}", s.name()));
    let recs = sink
        .get(s.name())
        .map(<[Record]>::to_vec)
        .unwrap_or_default();
    assert_eq!(
        recs.len(),
        n as usize,
        "scenario {}: record count",
        s.name()
    );
    assert_eq!(
        sink.traces.len(),
        1,
        "scenario {} recorded under another name",
        s.name()
    );
    recs
}

/// Runs one scenario with core's objective in tiles of `tile` samples.
pub fn run_core(s: Scenario, tile: usize) -> Vec<Record> {
    let mut ws = vec![0.0f32; edgewise_tests::workspace_len(tile)];
    let mut eval = CoreEvaluator::new(&mut ws, tile).expect("workspace");
    run(s, &mut eval)
}

/// The reference host trace (the one the goldens hold): core, tiles of 32 samples.
pub fn reference(s: Scenario) -> Vec<Record> {
    run_core(s, REFERENCE_TILE)
}

/// Tile size of the reference host trace.
pub const REFERENCE_TILE: usize = 32;

/// The host's multi-threaded objective (`edgewise::engine::ParObjective`).
pub struct ParEvaluator {
    pub threads: usize,
    pub tile: usize,
    /// Samples are processed in chunks of this many tiles (None: as many as fit).
    pub chunk_tiles: Option<usize>,
    ws: Workspace,
}

impl ParEvaluator {
    pub fn new(threads: usize, tile: usize, chunk_tiles: Option<usize>) -> Self {
        Self {
            threads,
            tile,
            chunk_tiles,
            ws: Workspace::default(),
        }
    }
}

impl fmt::Display for ParEvaluator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ParObjective threads={} tile={}",
            self.threads, self.tile
        )?;
        if let Some(c) = self.chunk_tiles {
            write!(f, " chunk_tiles={c}")?;
        }
        Ok(())
    }
}

impl Evaluator for ParEvaluator {
    fn objective<'a>(
        &'a mut self,
        arch: &'a Arch,
        data: Data<'a>,
    ) -> Result<impl Objective + 'a, Error> {
        let obj = ParObjective::new(arch, data, self.threads, self.tile, &mut self.ws)?;
        Ok(match self.chunk_tiles {
            Some(c) => obj.with_chunk_tiles(c),
            None => obj,
        })
    }
}

/// `tests/golden/<scenario>.txt`
pub fn golden_path(s: Scenario) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join(format!("{}.txt", s.name()))
}

/// The golden file's text for a trace: a comment header, then one line per record.
pub fn golden_text(s: Scenario, recs: &[Record]) -> String {
    let mut out = format!(
        "# edgewise conformance golden trace: {}\n# {}\n\
         # columns: step loss_bits sharpness_bits param_hash (hex; sharpness {NOT_MEASURED:08x} = not measured)\n\
         # bless: EDGEWISE_BLESS=1 cargo test -p edgewise-tests --test golden\n",
        s.name(),
        s.describe()
    );
    for r in recs {
        out += &r.line();
        out.push('\n');
    }
    out
}

/// Parses a golden file (lines starting with `#` and blank lines are skipped).
pub fn parse_golden(text: &str) -> Result<Vec<Record>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|(i, l)| Record::parse(l).map_err(|e| format!("line {}: {e}", i + 1)))
        .collect()
}

/// Reads the golden trace of `s`.
pub fn read_golden(s: Scenario) -> Result<Vec<Record>, String> {
    let path = golden_path(s);
    let text =
        std::fs::read_to_string(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    parse_golden(&text).map_err(|e| format!("{}: {e}", path.display()))
}

fn show32(bits: u32) -> String {
    if bits == NOT_MEASURED {
        format!("{bits:08x} (not measured)")
    } else {
        format!("{bits:08x} ({:e})", f32::from_bits(bits))
    }
}

/// `None` if the traces are identical; else a message naming the scenario, the first differing
/// step, the field(s) and both values. `what` names the two sides, e.g. `("golden", "thumbv7m")`.
pub fn first_difference(
    scenario: &str,
    expected: &[Record],
    actual: &[Record],
    what: (&str, &str),
) -> Option<String> {
    let (a, b) = what;
    for (i, (e, g)) in expected.iter().zip(actual).enumerate() {
        if e == g {
            continue;
        }
        let mut fields = Vec::new();
        if e.step != g.step {
            fields.push(format!("step number: {a} {} vs {b} {}", e.step, g.step));
        }
        if e.loss != g.loss {
            fields.push(format!(
                "loss_bits: {a} {} vs {b} {}",
                show32(e.loss),
                show32(g.loss)
            ));
        }
        if e.sharpness != g.sharpness {
            fields.push(format!(
                "sharpness_bits: {a} {} vs {b} {}",
                show32(e.sharpness),
                show32(g.sharpness)
            ));
        }
        if e.hash != g.hash {
            fields.push(format!(
                "param_hash: {a} {:016x} vs {b} {:016x}",
                e.hash, g.hash
            ));
        }
        return Some(format!(
            "scenario {scenario}: first difference at step {} (record {i}): {}",
            e.step,
            fields.join("; ")
        ));
    }
    if expected.len() != actual.len() {
        return Some(format!(
            "scenario {scenario}: {a} has {} records, {b} has {} (identical up to step {})",
            expected.len(),
            actual.len(),
            expected.len().min(actual.len()) as i64 - 1
        ));
    }
    None
}
