//! Checkpoints: a network's parameters (and optional resume state) as a
//! [safetensors](https://huggingface.co/docs/safetensors) file that PyTorch, JAX and NumPy load
//! directly.
//!
//! # File contents
//!
//! - Model tensors `layers.{i}.weight` (F32, shape `[out, in]`) and `layers.{i}.bias` (F32,
//!   shape `[out]`) for weight layer `i = 0..L-1`: PyTorch's `nn.Linear` layout, the same as
//!   [`Arch`]'s flat parameter vector. Their data come first, in layer order, so the start of
//!   the data section *is* the flat parameter vector (little-endian `f32`).
//! - Extra tensors with any other name (not starting with `layers.`), 1-D F32: resume state
//!   such as `optimizer.state` or `tracker.top_vec`, after the model tensors, in name order.
//! - `__metadata__` (string to string): `format` = `edgewise-checkpoint`, `format_version` =
//!   `1`, `widths` (e.g. `64-32-10`), `activation` ([`Activation::name`]), `loss`
//!   ([`Loss::name`]), `math` (`libm` or `micromath`), plus the caller's own entries (step,
//!   epoch, seed, optimizer, config, ...), and `checksum`: FNV-1a (64-bit) over the caller's
//!   metadata, the architecture and every tensor's values ([`checksum`]). The seven names
//!   above are reserved.
//!
//! The header is written by this module rather than by `safetensors::serialize` so that the
//! bytes are deterministic: metadata keys in sorted order, tensors in the order above. Equal
//! checkpoints give byte-identical files. Writes are atomic ([`crate::fsio::atomic_write_with`]).
//!
//! # Loading
//!
//! [`load`] parses with the `safetensors` crate and then checks everything, each failure a
//! [`CheckpointError`] naming the file: not a safetensors file, truncated, garbled header,
//! missing `format` metadata ("not an edgewise checkpoint" — a plain safetensors file with
//! only `layers.*` tensors is refused, because activation and loss cannot be inferred), missing
//! or unexpected layer tensors, shapes inconsistent with `widths`, dtypes other than F32,
//! unknown activation, loss or math names, NaN or infinite parameters, and contents that do
//! not match the `checksum` entry (a damaged file, or one edited after it was written: a
//! checkpoint edited on purpose must leave the entry out; files without it, such as those of
//! earlier versions, are read unchecked). No file content
//! makes it panic, and it allocates no more than the file's size.
//!
//! Extra tensors of another shape (written by other tools) are read flattened; extra tensors
//! of another dtype are an error.
//!
//! # In PyTorch
//!
//! ```python
//! import torch.nn as nn
//! from safetensors.torch import load_file    # metadata: safetensors.safe_open(path, "pt").metadata()
//! sd = {k: v for k, v in load_file("ckpt.safetensors").items() if k.startswith("layers.")}
//! lin = [nn.Linear(*sd[f"layers.{i}.weight"].shape[::-1]) for i in range(len(sd) // 2)]
//! for i, l in enumerate(lin): l.load_state_dict({"weight": sd[f"layers.{i}.weight"], "bias": sd[f"layers.{i}.bias"]})
//! net = nn.Sequential(*[m for l in lin[:-1] for m in (l, nn.Tanh())], lin[-1])  # activation: metadata["activation"]
//! ```
//!
//! Activations map to `nn.Identity`, `nn.Tanh`, `nn.ReLU`, `nn.ELU`, `nn.Softplus` and
//! `nn.GELU(approximate="tanh")`. A module with `self.layers = nn.ModuleList([...])` of the
//! `nn.Linear`s has exactly these state-dict keys.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use edgewise_core::{Activation, Arch, Loss, MathBackend};
use safetensors::tensor::TensorInfo;
use safetensors::{Dtype, SafeTensorError, SafeTensors};

use crate::fsio::{self, IoError};

/// The `format` metadata value of every edgewise checkpoint.
pub const FORMAT: &str = "edgewise-checkpoint";
/// The `format_version` this build writes and reads.
pub const FORMAT_VERSION: &str = "1";
/// Metadata keys written from the [`Arch`]; callers cannot set them in [`Checkpoint::metadata`].
pub const RESERVED_KEYS: [&str; 7] = [
    "format",
    "format_version",
    "widths",
    "activation",
    "loss",
    "math",
    "checksum",
];

/// The `checksum` metadata of `ck`: FNV-1a (64-bit) over the bytes of its caller metadata
/// (each key and value followed by a zero byte, in key order), its architecture (the `widths`,
/// `activation`, `loss` and `math` metadata values, each followed by a zero byte), its parameters (little-endian `f32`) and each extra
/// tensor (name, zero byte, length as little-endian `u64`, values), as `fnv1a64:` and 16 hex
/// digits. Any change of a value, a name or an entry changes it (with overwhelming
/// probability); it guards against damage and accidental edits, not against deliberate ones.
pub fn checksum(ck: &Checkpoint) -> String {
    let mut h = crate::fnv::Fnv64::new();
    let mut eat = |bytes: &[u8]| h.bytes(bytes);
    for (k, v) in &ck.metadata {
        eat(k.as_bytes());
        eat(&[0]);
        eat(v.as_bytes());
        eat(&[0]);
    }
    let arch = &ck.arch;
    for part in [
        widths_string(arch.widths()).as_str(),
        arch.activation().name(),
        arch.loss().name(),
        math_name(arch.math()),
    ] {
        eat(part.as_bytes());
        eat(&[0]);
    }
    for x in &ck.params {
        eat(&x.to_le_bytes());
    }
    for (name, v) in &ck.extra {
        eat(name.as_bytes());
        eat(&[0]);
        eat(&(v.len() as u64).to_le_bytes());
        for x in v {
            eat(&x.to_le_bytes());
        }
    }
    format!("fnv1a64:{:016x}", h.finish())
}

/// The largest header the safetensors format allows (the reference implementation's limit).
const MAX_HEADER: u64 = 100_000_000;

/// A network's parameters plus resume state and free-form metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct Checkpoint {
    /// The architecture (widths, activation, loss, math backend).
    pub arch: Arch,
    /// The flat parameter vector ([`Arch`] layout), `arch.n_params()` long, all finite.
    pub params: Vec<f32>,
    /// Non-model tensors by name (none may start with `layers.`).
    pub extra: BTreeMap<String, Vec<f32>>,
    /// Caller metadata (step, epoch, seed, optimizer, config, ...), without the
    /// [`RESERVED_KEYS`]: [`load`] removes those, so a save/load round trip is exact.
    pub metadata: BTreeMap<String, String>,
}

impl Checkpoint {
    /// A checkpoint of `params` with no extra tensors and no metadata.
    pub fn new(arch: Arch, params: Vec<f32>) -> Self {
        Checkpoint {
            arch,
            params,
            extra: BTreeMap::new(),
            metadata: BTreeMap::new(),
        }
    }
}

/// Why a checkpoint could not be saved or loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The file could not be read or written.
    Io(IoError),
    /// The file is not a well-formed edgewise checkpoint (corrupt, truncated, inconsistent).
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// The file is a safetensors file (or looks like one) without edgewise metadata.
    NotEdgewise {
        /// The file.
        path: PathBuf,
        /// Why it is not recognised.
        why: String,
    },
    /// The checkpoint's architecture differs from the one expected ([`load_expecting`]).
    Mismatch {
        /// The file.
        path: PathBuf,
        /// The checkpoint's architecture.
        found: Box<Arch>,
        /// The architecture the caller expected.
        expected: Box<Arch>,
    },
    /// The [`Checkpoint`] given to [`save`] is unusable (wrong length, non-finite, bad names).
    Unsavable {
        /// The file it was to be saved to.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
}

impl CheckpointError {
    fn invalid(path: &Path, msg: impl Into<String>) -> Self {
        CheckpointError::Invalid {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }

    fn unsavable(path: &Path, msg: impl Into<String>) -> Self {
        CheckpointError::Unsavable {
            path: path.to_path_buf(),
            msg: msg.into(),
        }
    }

    fn not_edgewise(path: &Path, why: impl Into<String>) -> Self {
        CheckpointError::NotEdgewise {
            path: path.to_path_buf(),
            why: why.into(),
        }
    }
}

impl fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointError::Io(e) => e.fmt(f),
            CheckpointError::Invalid { path, msg } => {
                write!(f, "invalid checkpoint {}: {msg}", path.display())
            }
            CheckpointError::NotEdgewise { path, why } => {
                write!(f, "{} is not an edgewise checkpoint: {why}", path.display())
            }
            CheckpointError::Mismatch {
                path,
                found,
                expected,
            } => {
                let with_math = found.math() != expected.math();
                write!(
                    f,
                    "checkpoint {} has architecture {}, but the run uses {}",
                    path.display(),
                    describe(found, with_math),
                    describe(expected, with_math)
                )
            }
            CheckpointError::Unsavable { path, msg } => {
                write!(f, "cannot save checkpoint {}: {msg}", path.display())
            }
        }
    }
}

impl std::error::Error for CheckpointError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CheckpointError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<IoError> for CheckpointError {
    fn from(e: IoError) -> Self {
        CheckpointError::Io(e)
    }
}

/// `64-32-10`.
pub fn widths_string(widths: &[usize]) -> String {
    let parts: Vec<String> = widths.iter().map(usize::to_string).collect();
    parts.join("-")
}

/// `64-32-10 tanh mse`, plus ` (math libm)` if `with_math`.
fn describe(arch: &Arch, with_math: bool) -> String {
    let mut s = format!(
        "{} {} {}",
        widths_string(arch.widths()),
        arch.activation().name(),
        arch.loss().name()
    );
    if with_math {
        s.push_str(" (math ");
        s.push_str(math_name(arch.math()));
        s.push(')');
    }
    s
}

/// The `math` metadata value of a backend.
pub fn math_name(m: MathBackend) -> &'static str {
    match m {
        MathBackend::Libm => "libm",
        MathBackend::Micromath => "micromath",
    }
}

fn math_from_name(s: &str) -> Option<MathBackend> {
    match s {
        "libm" => Some(MathBackend::Libm),
        "micromath" => Some(MathBackend::Micromath),
        _ => None,
    }
}

fn weight_name(l: usize) -> String {
    format!("layers.{l}.weight")
}

fn bias_name(l: usize) -> String {
    format!("layers.{l}.bias")
}

/// Where the first non-finite parameter is, as `layers.1.weight[3, 4] = NaN`.
fn first_non_finite(arch: &Arch, params: &[f32]) -> Option<String> {
    let i = params.iter().position(|x| !x.is_finite())?;
    for (l, s) in arch.layers().enumerate() {
        if i < s.bias {
            let k = i - s.weight;
            let (r, c) = (k / s.fan_in, k % s.fan_in);
            return Some(format!("{}[{r}, {c}] = {}", weight_name(l), params[i]));
        }
        if i < s.bias + s.fan_out {
            return Some(format!("{}[{}] = {}", bias_name(l), i - s.bias, params[i]));
        }
    }
    Some(format!("parameter {i} = {}", params[i]))
}

/// Writes `ck` to `path` atomically (see the [module documentation](self) for the format).
///
/// Refused (nothing written): `params` not `arch.n_params()` long or not all finite, an extra
/// tensor named `""`, `__metadata__` or `layers.*`, a metadata key in [`RESERVED_KEYS`].
pub fn save(path: &Path, ck: &Checkpoint) -> Result<(), CheckpointError> {
    let header = header(path, ck)?;
    fsio::atomic_write_with(path, |w| write_body(w, &header, ck))?;
    Ok(())
}

/// The header (length prefix excluded), padded with spaces to a multiple of 8 bytes.
fn header(path: &Path, ck: &Checkpoint) -> Result<Vec<u8>, CheckpointError> {
    let arch = &ck.arch;
    if ck.params.len() != arch.n_params() {
        return Err(CheckpointError::unsavable(
            path,
            format!(
                "{} parameters, but the architecture {} has {}",
                ck.params.len(),
                widths_string(arch.widths()),
                arch.n_params()
            ),
        ));
    }
    if let Some(at) = first_non_finite(arch, &ck.params) {
        return Err(CheckpointError::unsavable(
            path,
            format!("refusing to save non-finite parameters: {at}"),
        ));
    }
    for name in ck.extra.keys() {
        if name.is_empty() || name == "__metadata__" || name.starts_with("layers.") {
            return Err(CheckpointError::unsavable(
                path,
                format!(
                    "extra tensor name `{name}` is reserved (empty, `__metadata__` or `layers.*`)"
                ),
            ));
        }
    }
    if let Some(k) = ck
        .metadata
        .keys()
        .find(|k| RESERVED_KEYS.contains(&k.as_str()))
    {
        return Err(CheckpointError::unsavable(
            path,
            format!("metadata key `{k}` is reserved (it is written from the architecture)"),
        ));
    }

    let widths = widths_string(arch.widths());
    let mut meta: BTreeMap<&str, &str> = ck
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    meta.insert("format", FORMAT);
    meta.insert("format_version", FORMAT_VERSION);
    meta.insert("widths", &widths);
    meta.insert("activation", arch.activation().name());
    meta.insert("loss", arch.loss().name());
    meta.insert("math", math_name(arch.math()));
    let sum = checksum(ck);
    meta.insert("checksum", &sum);

    let json = |s: &str| serde_json::to_string(s).expect("a string always serialises");
    let mut h = String::from("{\"__metadata__\":");
    h.push_str(&serde_json::to_string(&meta).expect("a string map always serialises"));
    let mut offset = 0usize;
    let mut tensor = |h: &mut String, name: &str, shape: &[usize]| {
        let n: usize = shape.iter().product();
        let end = offset + 4 * n;
        let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
        h.push_str(&format!(
            ",{}:{{\"dtype\":\"F32\",\"shape\":[{}],\"data_offsets\":[{offset},{end}]}}",
            json(name),
            dims.join(",")
        ));
        offset = end;
    };
    for (l, s) in arch.layers().enumerate() {
        tensor(&mut h, &weight_name(l), &[s.fan_out, s.fan_in]);
        tensor(&mut h, &bias_name(l), &[s.fan_out]);
    }
    for (name, v) in &ck.extra {
        tensor(&mut h, name, &[v.len()]);
    }
    h.push('}');
    let mut h = h.into_bytes();
    h.resize(h.len().next_multiple_of(8), b' ');
    if h.len() as u64 > MAX_HEADER {
        return Err(CheckpointError::unsavable(
            path,
            format!(
                "the header would be {} bytes, more than safetensors allows ({MAX_HEADER}); \
                 is the metadata too large?",
                h.len()
            ),
        ));
    }
    Ok(h)
}

fn write_body(w: &mut dyn Write, header: &[u8], ck: &Checkpoint) -> io::Result<()> {
    w.write_all(&(header.len() as u64).to_le_bytes())?;
    w.write_all(header)?;
    let mut buf = Vec::with_capacity(4 * 1024);
    let mut floats = |w: &mut dyn Write, xs: &[f32]| -> io::Result<()> {
        for chunk in xs.chunks(1024) {
            buf.clear();
            for x in chunk {
                buf.extend_from_slice(&x.to_le_bytes());
            }
            w.write_all(&buf)?;
        }
        Ok(())
    };
    // The layers in order are exactly the flat parameter vector.
    floats(w, &ck.params)?;
    for v in ck.extra.values() {
        floats(w, v)?;
    }
    Ok(())
}

/// The file as bytes, as [`save`] would write it.
#[cfg(test)]
fn to_bytes(ck: &Checkpoint) -> Result<Vec<u8>, CheckpointError> {
    let h = header(Path::new("<memory>"), ck)?;
    let mut out = Vec::new();
    write_body(&mut out, &h, ck).expect("writing to memory cannot fail");
    Ok(out)
}

/// Reads and validates a checkpoint (see the [module documentation](self)).
pub fn load(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let bytes = fsio::read(path)?;
    parse(path, &bytes)
}

/// [`load`], then checks that the checkpoint's architecture (widths, activation, loss and math
/// backend) is `expected`: otherwise a [`CheckpointError::Mismatch`] such as "checkpoint /x has
/// architecture 64-32-10 tanh mse, but the run uses 64-16-10 tanh mse".
pub fn load_expecting(path: &Path, expected: &Arch) -> Result<Checkpoint, CheckpointError> {
    let ck = load(path)?;
    if ck.arch != *expected {
        return Err(CheckpointError::Mismatch {
            path: path.to_path_buf(),
            found: Box::new(ck.arch),
            expected: Box::new(*expected),
        });
    }
    Ok(ck)
}

/// Parses a checkpoint from its bytes; `path` only names the file in errors.
fn parse(path: &Path, bytes: &[u8]) -> Result<Checkpoint, CheckpointError> {
    let bad = |msg: String| CheckpointError::invalid(path, msg);
    // Check the framing first, for messages clearer than the parser's.
    let Some(prefix) = bytes.get(..8) else {
        return Err(bad(format!(
            "the file is {} bytes long, too short for a safetensors file (truncated?)",
            bytes.len()
        )));
    };
    let n = u64::from_le_bytes(prefix.try_into().expect("8 bytes"));
    if n > MAX_HEADER {
        return Err(bad(format!(
            "header length {n} is absurd: not a safetensors file"
        )));
    }
    if n > (bytes.len() - 8) as u64 {
        return Err(bad(format!(
            "header length {n} runs past the end of the {}-byte file: truncated, or not a \
             safetensors file",
            bytes.len()
        )));
    }
    let head = &bytes[8..8 + n as usize];
    if head.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(bad(
            "the header is not a JSON object: not a safetensors file".into(),
        ));
    }
    let (_, st) = SafeTensors::read_metadata(bytes).map_err(|e| {
        bad(match e {
            SafeTensorError::InvalidHeader(e) => format!("the header is not UTF-8 text: {e}"),
            SafeTensorError::InvalidHeaderDeserialization(e) | SafeTensorError::JsonError(e) => {
                format!("the header JSON is garbled: {e}")
            }
            SafeTensorError::MetadataIncompleteBuffer => {
                "the tensor data does not fill the file exactly: truncated or corrupt".into()
            }
            SafeTensorError::InvalidOffset(name) => {
                format!("tensor `{name}` has invalid data offsets")
            }
            SafeTensorError::TensorInvalidInfo => {
                "a tensor's shape and dtype do not match its data size".into()
            }
            SafeTensorError::ValidationOverflow => "a tensor's shape is absurdly large".into(),
            e => format!("not a valid safetensors file: {e}"),
        })
    })?;

    let data = &bytes[8 + n as usize..];
    // Tensor names in file order, so that messages do not depend on hash order.
    let names = st.offset_keys();
    let tensor_data = |name: &str, info: &TensorInfo| {
        data.get(info.data_offsets.0..info.data_offsets.1)
            .ok_or_else(|| bad(format!("tensor `{name}` has invalid data offsets")))
    };

    // Metadata.
    let Some(meta) = st.metadata() else {
        return Err(CheckpointError::not_edgewise(
            path,
            "the safetensors file has no metadata",
        ));
    };
    match meta.get("format") {
        None => {
            return Err(CheckpointError::not_edgewise(
                path,
                "no `format` entry in the safetensors metadata",
            ))
        }
        Some(f) if f != FORMAT => {
            return Err(CheckpointError::not_edgewise(
                path,
                format!("its `format` metadata is `{f}`, not `{FORMAT}`"),
            ))
        }
        Some(_) => {}
    }
    let get = |key: &str| {
        meta.get(key)
            .map(String::as_str)
            .ok_or_else(|| bad(format!("the `{key}` metadata entry is missing")))
    };
    let version = get("format_version")?;
    if version != FORMAT_VERSION {
        return Err(bad(format!(
            "format version `{version}` is not supported (this build reads version \
             {FORMAT_VERSION})"
        )));
    }
    let widths_s = get("widths")?;
    let widths: Vec<usize> = widths_s
        .split('-')
        .map(|w| w.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| {
            bad(format!(
                "metadata widths `{widths_s}` is not a dash-separated list of widths like 64-32-10"
            ))
        })?;
    let act_s = get("activation")?;
    let act = Activation::from_name(act_s).ok_or_else(|| {
        let names: Vec<&str> = Activation::ALL.iter().map(|a| a.name()).collect();
        bad(format!(
            "unknown activation `{act_s}` (known: {})",
            names.join(", ")
        ))
    })?;
    let loss_s = get("loss")?;
    let loss = Loss::from_name(loss_s)
        .ok_or_else(|| bad(format!("unknown loss `{loss_s}` (known: mse, ce)")))?;
    let math_s = get("math")?;
    let math = math_from_name(math_s).ok_or_else(|| {
        bad(format!(
            "unknown math backend `{math_s}` (known: libm, micromath)"
        ))
    })?;
    // Guard the parameter count against overflow before `Arch::new` computes it.
    let mut count = Some(0usize);
    for w in widths.windows(2) {
        count = count.and_then(|c| c.checked_add(w[1].checked_mul(w[0].checked_add(1)?)?));
    }
    if count.is_none() {
        return Err(bad(format!(
            "metadata widths `{widths_s}` are absurdly large"
        )));
    }
    let arch = Arch::new(&widths, act, loss)
        .map_err(|e| bad(format!("metadata widths `{widths_s}`: {e}")))?
        .with_math(math);

    // Model tensors: check names, dtypes and shapes before allocating anything, so the sizes
    // are bounded by the file's.
    let n_layers = arch.n_layers();
    for name in &names {
        if let Some(rest) = name.strip_prefix("layers.") {
            let known =
                (0..n_layers).any(|l| rest == format!("{l}.weight") || rest == format!("{l}.bias"));
            if !known {
                return Err(bad(format!(
                    "unexpected tensor `{name}`: widths {widths_s} have tensors {} only",
                    layer_range(n_layers)
                )));
            }
        }
    }
    let mut views = Vec::with_capacity(2 * n_layers);
    for (l, s) in arch.layers().enumerate() {
        for (name, shape) in [
            (weight_name(l), vec![s.fan_out, s.fan_in]),
            (bias_name(l), vec![s.fan_out]),
        ] {
            let view = st.info(&name).ok_or_else(|| {
                bad(format!(
                    "tensor `{name}` is missing (widths {widths_s} need {})",
                    layer_range(n_layers)
                ))
            })?;
            if view.dtype != Dtype::F32 {
                return Err(bad(format!(
                    "tensor `{name}` has dtype {:?}; edgewise checkpoints store F32",
                    view.dtype
                )));
            }
            if view.shape != shape {
                return Err(bad(format!(
                    "tensor `{name}` has shape {:?}, but widths {widths_s} require {:?}",
                    view.shape, shape
                )));
            }
            views.push(tensor_data(&name, view)?);
        }
    }
    let mut params = Vec::with_capacity(arch.n_params());
    for v in views {
        push_f32(&mut params, v);
    }
    if let Some(at) = first_non_finite(&arch, &params) {
        return Err(bad(format!(
            "checkpoint contains non-finite parameters: {at}"
        )));
    }

    // Extra tensors.
    let mut extra = BTreeMap::new();
    for name in &names {
        if name.starts_with("layers.") {
            continue;
        }
        let Some(info) = st.info(name) else { continue };
        if info.dtype != Dtype::F32 {
            return Err(bad(format!(
                "extra tensor `{name}` has dtype {:?}; edgewise checkpoints store F32",
                info.dtype
            )));
        }
        let bytes = tensor_data(name, info)?;
        let mut v = Vec::with_capacity(bytes.len() / 4);
        push_f32(&mut v, bytes);
        extra.insert(name.clone(), v);
    }

    let metadata = meta
        .iter()
        .filter(|(k, _)| !RESERVED_KEYS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let ck = Checkpoint {
        arch,
        params,
        extra,
        metadata,
    };
    if let Some(sum) = meta.get("checksum") {
        if *sum != checksum(&ck) {
            return Err(bad(format!(
                "its contents do not match its checksum metadata ({sum}): the file was damaged, \
                 or edited after edgewise wrote it (a checkpoint edited on purpose must leave out \
                 the `checksum` entry)"
            )));
        }
    }
    Ok(ck)
}

/// `layers.0.*` or `layers.0.* to layers.{n-1}.*`.
fn layer_range(n_layers: usize) -> String {
    match n_layers {
        1 => "layers.0.*".into(),
        n => format!("layers.0.* to layers.{}.*", n - 1),
    }
}

/// Appends little-endian `f32`s (the safetensors parser has checked the length).
fn push_f32(out: &mut Vec<f32>, bytes: &[u8]) {
    out.extend(
        bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgewise_core::{Init, SplitMix64};
    use serde_json::Value;

    fn arch(widths: &[usize]) -> Arch {
        Arch::new(widths, Activation::Tanh, Loss::Mse).unwrap()
    }

    fn sample() -> Checkpoint {
        let a = Arch::new(&[5, 4, 3], Activation::Gelu, Loss::CrossEntropy)
            .unwrap()
            .with_math(MathBackend::Micromath);
        let mut params = vec![0.0f32; a.n_params()];
        a.init(&mut params, Init::default(), 42).unwrap();
        // Bit patterns that must survive exactly.
        params[0] = -0.0;
        params[1] = f32::MIN_POSITIVE / 4.0; // subnormal
        params[2] = f32::MAX;
        let mut ck = Checkpoint::new(a, params);
        ck.extra
            .insert("optimizer.state".into(), vec![1.5, f32::NAN, -2.0]);
        ck.extra.insert("tracker.top_vec".into(), vec![0.25; 7]);
        ck.extra.insert("empty".into(), vec![]);
        ck.metadata.insert("step".into(), "1200".into());
        ck.metadata.insert("seed".into(), "7".into());
        ck.metadata
            .insert("config".into(), "lr = 0.1\nname = \"a \\\"b\\\" ü\"".into());
        ck
    }

    fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }

    fn assert_bit_equal(a: &Checkpoint, b: &Checkpoint) {
        assert_eq!(a.arch, b.arch);
        assert_eq!(bits(&a.params), bits(&b.params));
        assert_eq!(a.metadata, b.metadata);
        assert_eq!(
            a.extra.keys().collect::<Vec<_>>(),
            b.extra.keys().collect::<Vec<_>>()
        );
        for (k, v) in &a.extra {
            assert_eq!(bits(v), bits(&b.extra[k]), "{k}");
        }
    }

    #[test]
    fn round_trip_is_bit_exact() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ck.safetensors");
        let ck = sample();
        save(&p, &ck).unwrap();
        let back = load(&p).unwrap();
        assert_bit_equal(&ck, &back);
        let again = load_expecting(&p, &ck.arch).unwrap();
        assert_bit_equal(&ck, &again);
        // Deterministic bytes: saving again gives the same file.
        let first = std::fs::read(&p).unwrap();
        save(&p, &back).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), first);
        assert_eq!(to_bytes(&ck).unwrap(), first);
        // Only the checkpoint in the directory (no temporary files).
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    /// A byte changed anywhere the checksum covers (a tensor value, a metadata value) is
    /// refused; the same file without its `checksum` entry (an edited checkpoint) loads.
    #[test]
    fn checksums_catch_damage_and_edits() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ck.safetensors");
        let ck = sample();
        let good = to_bytes(&ck).unwrap();
        let n = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
        let load_bytes = |b: &[u8]| {
            std::fs::write(&p, b).unwrap();
            load(&p)
        };
        assert_bit_equal(&load_bytes(&good).unwrap(), &ck);
        // One bit of the last extra tensor's last value (still finite).
        let mut flipped = good.clone();
        let last = flipped.len() - 4;
        flipped[last] ^= 1;
        let e = load_bytes(&flipped).unwrap_err().to_string();
        assert!(
            e.contains("do not match its checksum metadata (fnv1a64:"),
            "{e}"
        );
        // The step metadata changed, same length.
        let header = String::from_utf8(good[8..8 + n].to_vec()).unwrap();
        assert!(header.contains("\"step\":\"1200\""));
        let edited = header.replace("\"step\":\"1200\"", "\"step\":\"1100\"");
        let mut b = good[..8].to_vec();
        b.extend_from_slice(edited.as_bytes());
        b.extend_from_slice(&good[8 + n..]);
        let e = load_bytes(&b).unwrap_err().to_string();
        assert!(e.contains("edited after edgewise wrote it"), "{e}");
        // Without the entry (blanked to keep the header's length), the edit loads.
        let sum = checksum(&ck);
        let entry = format!("\"checksum\":\"{sum}\",");
        assert!(edited.contains(&entry), "{edited}");
        let blank = edited.replace(&entry, &" ".repeat(entry.len()));
        let mut b = good[..8].to_vec();
        b.extend_from_slice(blank.as_bytes());
        b.extend_from_slice(&good[8 + n..]);
        let back = load_bytes(&b).unwrap();
        assert_eq!(back.metadata["step"], "1100");
        assert_eq!(back.params, ck.params);
    }

    #[test]
    fn layout_names_shapes_and_offsets() {
        let ck = sample();
        let bytes = to_bytes(&ck).unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        assert_eq!(n % 8, 0);
        let header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
        let obj = header.as_object().unwrap();
        let data = &bytes[8 + n..];

        let meta = obj["__metadata__"].as_object().unwrap();
        let m = |k: &str| meta[k].as_str().unwrap().to_string();
        assert_eq!(m("format"), "edgewise-checkpoint");
        assert_eq!(m("format_version"), "1");
        assert_eq!(m("widths"), "5-4-3");
        assert_eq!(m("activation"), "gelu");
        assert_eq!(m("loss"), "ce");
        assert_eq!(m("math"), "micromath");
        assert_eq!(m("step"), "1200");
        assert_eq!(m("config"), ck.metadata["config"]);
        assert_eq!(m("checksum"), checksum(&ck));
        assert!(m("checksum").starts_with("fnv1a64:") && m("checksum").len() == 24);
        assert_eq!(meta.len(), 10);

        let expect = [
            ("layers.0.weight", vec![4, 5]),
            ("layers.0.bias", vec![4]),
            ("layers.1.weight", vec![3, 4]),
            ("layers.1.bias", vec![3]),
            ("empty", vec![0]),
            ("optimizer.state", vec![3]),
            ("tracker.top_vec", vec![7]),
        ];
        assert_eq!(obj.len(), expect.len() + 1);
        let mut offset = 0;
        let mut floats = Vec::new();
        for (name, shape) in expect {
            let t = &obj[name];
            assert_eq!(t["dtype"], "F32", "{name}");
            let got: Vec<usize> = t["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(got, shape, "{name}");
            let off = t["data_offsets"].as_array().unwrap();
            let (s, e) = (
                off[0].as_u64().unwrap() as usize,
                off[1].as_u64().unwrap() as usize,
            );
            assert_eq!(
                s, offset,
                "{name}: data in layer order, then extras by name"
            );
            assert_eq!(e - s, 4 * shape.iter().product::<usize>());
            offset = e;
            floats.push(
                data[s..e]
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect::<Vec<f32>>(),
            );
        }
        assert_eq!(offset, data.len());
        // The model tensors' data are the flat parameter vector, PyTorch layout.
        let a = ck.arch;
        for (l, s) in a.layers().enumerate() {
            assert_eq!(bits(&floats[2 * l]), bits(&ck.params[s.weight..s.bias]));
            assert_eq!(
                bits(&floats[2 * l + 1]),
                bits(&ck.params[s.bias..s.bias + s.fan_out])
            );
        }
        assert_eq!(bits(&floats[5]), bits(&ck.extra["optimizer.state"]));
        // And the reference parser agrees.
        let st = SafeTensors::deserialize(&bytes).unwrap();
        assert_eq!(st.tensor("layers.1.weight").unwrap().shape(), &[3, 4]);
    }

    #[test]
    fn architecture_mismatch_message() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ck.safetensors");
        let a = arch(&[64, 32, 10]);
        save(&p, &Checkpoint::new(a, vec![0.5; a.n_params()])).unwrap();
        let e = load_expecting(&p, &arch(&[64, 16, 10])).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "checkpoint {} has architecture 64-32-10 tanh mse, but the run uses 64-16-10 \
                 tanh mse",
                p.display()
            )
        );
        let relu = Arch::new(&[64, 32, 10], Activation::Relu, Loss::CrossEntropy).unwrap();
        let e = load_expecting(&p, &relu).unwrap_err();
        assert!(e
            .to_string()
            .ends_with("64-32-10 tanh mse, but the run uses 64-32-10 relu ce"));
        let e = load_expecting(&p, &a.with_math(MathBackend::Micromath)).unwrap_err();
        assert!(
            e.to_string().ends_with(
                "64-32-10 tanh mse (math libm), but the run uses 64-32-10 tanh mse (math micromath)"
            ),
            "{e}"
        );
    }

    #[test]
    fn save_refuses_bad_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ck.safetensors");
        let a = arch(&[3, 2]);
        let msg = |ck: &Checkpoint| save(&p, ck).unwrap_err().to_string();
        assert!(msg(&Checkpoint::new(a, vec![0.0; 7])).contains("7 parameters, but"));
        let mut ck = Checkpoint::new(a, vec![0.0; 8]);
        ck.params[4] = f32::INFINITY;
        assert!(msg(&ck).contains("non-finite parameters: layers.0.weight[1, 1] = inf"));
        ck.params[4] = 0.0;
        ck.params[7] = f32::NAN;
        assert!(msg(&ck).contains("layers.0.bias[1] = NaN"));
        ck.params[7] = 0.0;
        ck.extra.insert("layers.9.weight".into(), vec![]);
        assert!(msg(&ck).contains("reserved"));
        ck.extra.clear();
        ck.metadata.insert("widths".into(), "3-2".into());
        assert!(msg(&ck).contains("metadata key `widths` is reserved"));
        assert!(!p.exists());
        ck.metadata.clear();
        save(&p, &ck).unwrap();
        // An unwritable location is an I/O error naming the file.
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        let e = save(&blocker.join("ck.safetensors"), &ck).unwrap_err();
        assert!(matches!(e, CheckpointError::Io(_)));
        assert!(e.to_string().starts_with("cannot write "), "{e}");
    }

    /// Builds a safetensors file with a hand-written header.
    fn raw(header: &str, data: &[u8]) -> Vec<u8> {
        let mut h = header.as_bytes().to_vec();
        h.resize(h.len().next_multiple_of(8), b' ');
        let mut out = (h.len() as u64).to_le_bytes().to_vec();
        out.extend(h);
        out.extend_from_slice(data);
        out
    }

    const META: &str = r#""__metadata__":{"format":"edgewise-checkpoint","format_version":"1","widths":"2-1","activation":"tanh","loss":"mse","math":"libm"}"#;

    fn f32s(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    fn err(bytes: &[u8]) -> String {
        parse(Path::new("/x/ck.safetensors"), bytes)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn hand_written_file_loads() {
        let b = raw(
            &format!(
                r#"{{{META},"layers.0.weight":{{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}},"layers.0.bias":{{"dtype":"F32","shape":[1],"data_offsets":[8,12]}},"m":{{"dtype":"F32","shape":[2,2],"data_offsets":[12,28]}}}}"#
            ),
            &f32s(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]),
        );
        let ck = parse(Path::new("x"), &b).unwrap();
        assert_eq!(ck.arch, arch(&[2, 1]));
        assert_eq!(ck.params, [1.0, 2.0, 3.0]);
        assert_eq!(ck.extra["m"], [4.0, 5.0, 6.0, 7.0]);
        assert!(ck.metadata.is_empty());
    }

    #[test]
    fn corrupt_files_give_clear_errors() {
        let prefix = "invalid checkpoint /x/ck.safetensors: ";
        let w = r#""layers.0.weight":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]}"#;
        let b = r#""layers.0.bias":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}"#;
        let ok_data = f32s(&[1.0, 2.0, 3.0]);
        // Sanity: the good file.
        parse(
            Path::new("x"),
            &raw(&format!("{{{META},{w},{b}}}"), &ok_data),
        )
        .unwrap();

        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"abc".to_vec(), "3 bytes long, too short"),
            (b"PK\x03\x04 this is a zip file".to_vec(), "header length"),
            (
                [&u64::MAX.to_le_bytes()[..], b"{}"].concat(),
                "header length 18446744073709551615 is absurd",
            ),
            (
                [&40u64.to_le_bytes()[..], b"{\"a\":1}"].concat(),
                "runs past the end of the 15-byte file",
            ),
            (
                [&4u64.to_le_bytes()[..], b"\x89PNG"].concat(),
                "not a JSON object",
            ),
            (
                raw("{\"__metadata__\":{\"format\":", &[]),
                "header JSON is garbled",
            ),
            (
                raw("{\"__metadata__\":{\"format\":3}}", &[]),
                "header JSON is garbled",
            ),
            (
                raw(&format!("{{{META},{w},{b}}}"), &ok_data[..11]),
                "does not fill the file exactly",
            ),
            (
                raw(
                    &format!("{{{META},{w},{b}}}"),
                    &[ok_data.clone(), vec![0; 4]].concat(),
                ),
                "does not fill the file exactly",
            ),
            (
                raw(
                    &format!(
                        r#"{{{META},"layers.0.weight":{{"dtype":"F32","shape":[1,3],"data_offsets":[0,8]}},{b}}}"#
                    ),
                    &ok_data,
                ),
                "shape and dtype do not match its data size",
            ),
            (
                raw(
                    &format!(
                        r#"{{{META},"layers.0.weight":{{"dtype":"F32","shape":[2,1],"data_offsets":[0,8]}},{b}}}"#
                    ),
                    &ok_data,
                ),
                "tensor `layers.0.weight` has shape [2, 1], but widths 2-1 require [1, 2]",
            ),
            (
                raw(
                    &format!(
                        r#"{{{META},"layers.0.weight":{{"dtype":"F64","shape":[1],"data_offsets":[0,8]}},{b}}}"#
                    ),
                    &ok_data,
                ),
                "tensor `layers.0.weight` has dtype F64; edgewise checkpoints store F32",
            ),
            (
                raw(&format!("{{{META},{w}}}"), &ok_data[..8]),
                "tensor `layers.0.bias` is missing",
            ),
            (
                raw(
                    &format!(
                        r#"{{{META},{w},{b},"layers.1.weight":{{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}}}"#
                    ),
                    &f32s(&[1.0, 2.0, 3.0, 4.0]),
                ),
                "unexpected tensor `layers.1.weight`",
            ),
            (
                raw(
                    &format!(
                        r#"{{{META},{w},{b},"step":{{"dtype":"I64","shape":[1],"data_offsets":[12,20]}}}}"#
                    ),
                    &[ok_data.clone(), vec![0; 8]].concat(),
                ),
                "extra tensor `step` has dtype I64",
            ),
            (
                raw(&format!("{{{META},{w},{b}}}"), &f32s(&[1.0, f32::NAN, 3.0])),
                "checkpoint contains non-finite parameters: layers.0.weight[0, 1] = NaN",
            ),
            (
                raw(
                    &format!("{{{META},{w},{b}}}"),
                    &f32s(&[1.0, 2.0, f32::NEG_INFINITY]),
                ),
                "checkpoint contains non-finite parameters: layers.0.bias[0] = -inf",
            ),
        ];
        for (bytes, want) in &cases {
            let msg = err(bytes);
            assert!(msg.starts_with(prefix), "{msg}");
            assert!(msg.contains(want), "expected `{want}` in `{msg}`");
        }

        // Metadata problems.
        let with_meta = |meta: &str| raw(&format!("{{{meta},{w},{b}}}"), &ok_data);
        let swap = |from: &str, to: &str| with_meta(&META.replace(from, to));
        let not_ours = "/x/ck.safetensors is not an edgewise checkpoint: ";
        assert_eq!(
            err(&raw(&format!("{{{w},{b}}}"), &ok_data)),
            format!("{not_ours}the safetensors file has no metadata")
        );
        assert_eq!(
            err(&swap("\"format\":\"edgewise-checkpoint\",", "")),
            format!("{not_ours}no `format` entry in the safetensors metadata")
        );
        assert!(err(&swap("edgewise-checkpoint", "pt")).starts_with(not_ours));
        let cases = [
            (
                swap("\"1\"", "\"2\""),
                "format version `2` is not supported",
            ),
            (
                swap(",\"math\":\"libm\"", ""),
                "the `math` metadata entry is missing",
            ),
            (
                swap("\"tanh\"", "\"swish\""),
                "unknown activation `swish` (known: identity, tanh",
            ),
            (swap("\"mse\"", "\"hinge\""), "unknown loss `hinge`"),
            (swap("\"libm\"", "\"fast\""), "unknown math backend `fast`"),
            (
                swap("\"2-1\"", "\"2-x\""),
                "metadata widths `2-x` is not a dash-separated",
            ),
            (
                swap("\"2-1\"", "\"2\""),
                "metadata widths `2`: invalid architecture",
            ),
            (
                swap("\"2-1\"", "\"2-0-1\""),
                "metadata widths `2-0-1`: invalid architecture",
            ),
            (
                swap("\"2-1\"", "\"2-18446744073709551615-1\""),
                "metadata widths `2-18446744073709551615-1` are absurdly large",
            ),
            (
                swap("\"2-1\"", "\"2-3\""),
                "tensor `layers.0.weight` has shape [1, 2], but widths 2-3 require [3, 2]",
            ),
        ];
        for (bytes, want) in &cases {
            let msg = err(bytes);
            assert!(msg.starts_with(prefix), "{msg}");
            assert!(msg.contains(want), "expected `{want}` in `{msg}`");
        }

        // A missing file.
        let e = load(Path::new("/nonexistent/dir/ck.safetensors")).unwrap_err();
        assert!(matches!(e, CheckpointError::Io(_)));
        assert!(e
            .to_string()
            .starts_with("cannot read /nonexistent/dir/ck.safetensors: "));
    }

    #[test]
    fn no_panic_on_any_content() {
        let good = to_bytes(&sample()).unwrap();
        let p = Path::new("fuzz");
        // Every truncation (the sample file is a few hundred bytes).
        assert!(good.len() > 200);
        for len in 0..good.len() {
            assert!(parse(p, &good[..len]).is_err(), "truncated to {len}");
        }
        // Every single-byte corruption: may load (a changed value) but never panics.
        for i in 0..good.len() {
            for x in [0x01u8, 0x80, 0xff] {
                let mut b = good.clone();
                b[i] ^= x;
                if let Ok(ck) = parse(p, &b) {
                    assert!(ck.params.iter().all(|x| x.is_finite()));
                }
            }
        }
        // Random bytes, raw and behind a plausible header length.
        let mut rng = SplitMix64::new(1);
        for round in 0..3000 {
            let len = (rng.next_u64() % 300) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            if round % 2 == 1 && len > 9 {
                let n = rng.next_u64() % (len as u64 - 8);
                b[..8].copy_from_slice(&n.to_le_bytes());
                b[8] = b'{';
            }
            assert!(parse(p, &b).is_err());
        }
        // Valid JSON headers with hostile values.
        for h in [
            r#"{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}}"#,
            r#"{"a":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}"#,
            r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#,
            r#"{"__metadata__":null}"#,
            r#"{"__metadata__":{}}"#,
            "{}",
            "{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[}",
        ] {
            assert!(parse(p, &raw(h, &[0; 4])).is_err(), "{h}");
        }
    }

    /// Loads a checkpoint written elsewhere (e.g. by Python's `safetensors.numpy.save_file`):
    /// `EDGEWISE_CKPT_IN=/tmp/x.safetensors cargo test -p edgewise --lib -- --ignored --nocapture
    /// read_from_env`.
    #[test]
    #[ignore]
    fn read_from_env() {
        let path = std::env::var("EDGEWISE_CKPT_IN").expect("set EDGEWISE_CKPT_IN");
        let ck = load(Path::new(&path)).unwrap_or_else(|e| panic!("{e}"));
        println!(
            "{}: {} params, first {:?}, extra {:?}, metadata {:?}",
            describe(&ck.arch, true),
            ck.params.len(),
            &ck.params[..ck.params.len().min(4)],
            ck.extra,
            ck.metadata
        );
    }

    /// Writes a checkpoint for checking with Python:
    /// `EDGEWISE_CKPT_OUT=/tmp/ck.safetensors cargo test -p edgewise --lib -- --ignored write_for_python`.
    /// Parameters are `param[i] = (i as f32 - 100.0) / 64.0` (exact in f32).
    #[test]
    #[ignore]
    fn write_for_python() {
        let out = std::env::var("EDGEWISE_CKPT_OUT").expect("set EDGEWISE_CKPT_OUT");
        let a = arch(&[64, 32, 10]);
        let params: Vec<f32> = (0..a.n_params())
            .map(|i| (i as f32 - 100.0) / 64.0)
            .collect();
        let mut ck = Checkpoint::new(a, params);
        ck.extra
            .insert("optimizer.state".into(), vec![1.0, 2.0, 3.0]);
        ck.metadata.insert("step".into(), "1000".into());
        save(Path::new(&out), &ck).unwrap();
    }
}
