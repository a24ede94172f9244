//! Build the firmware (`firmware/`) for a bare-metal target, run it under QEMU, decode its defmt
//! output, and measure it.
//!
//! Toolchain choice ([`Toolchain::detect`]): a toolchain whose `rustc` (the one on PATH, i.e. the
//! rustup one) has the target installed is used as it is. Otherwise Debian's `/usr/bin/cargo` +
//! `/usr/bin/rustc` build `core` from the installed standard library source
//! (`RUSTC_BOOTSTRAP=1 -Z build-std=core`); `scripts/setup-toolchain.sh` installs that.
//! `EDGEWISE_FIRMWARE_TOOLCHAIN=installed|build-std` forces one.

use anyhow::{anyhow, bail, Context, Result};
use std::{
    env,
    ffi::OsString,
    fmt, fs,
    io::Read,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

/// The firmware's package (and binary) name.
pub const PACKAGE: &str = "edgewise-firmware";

/// Default QEMU timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The bare-metal targets the firmware supports, each with the QEMU machine that runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// Cortex-M4F, hardware single-precision FPU: `thumbv7em-none-eabihf` on `mps2-an386`.
    Thumbv7em,
    /// Cortex-M3, soft float: `thumbv7m-none-eabi` on `mps2-an385`.
    Thumbv7m,
    /// RISC-V 32 (IMAC), soft float: `riscv32imac-unknown-none-elf` on `virt`.
    Riscv32,
}

impl Target {
    /// Every target, in a fixed order.
    pub const ALL: [Target; 3] = [Target::Thumbv7em, Target::Thumbv7m, Target::Riscv32];

    /// Accepts the short name (`thumbv7em`, `thumbv7m`, `riscv32`), the triple, or the core
    /// (`cortex-m4`, `cortex-m3`, `rv32`).
    pub fn parse(s: &str) -> Result<Target> {
        Ok(match s {
            "thumbv7em" | "thumbv7em-none-eabihf" | "cortex-m4" | "cortex-m4f" | "m4" => {
                Target::Thumbv7em
            }
            "thumbv7m" | "thumbv7m-none-eabi" | "cortex-m3" | "m3" => Target::Thumbv7m,
            "riscv32" | "riscv32imac" | "riscv32imac-unknown-none-elf" | "rv32" => Target::Riscv32,
            _ => bail!("unknown firmware target `{s}` (expected thumbv7em, thumbv7m or riscv32)"),
        })
    }

    /// Short name as accepted by `--target`.
    pub fn name(self) -> &'static str {
        match self {
            Target::Thumbv7em => "thumbv7em",
            Target::Thumbv7m => "thumbv7m",
            Target::Riscv32 => "riscv32",
        }
    }

    /// Rust target triple.
    pub fn triple(self) -> &'static str {
        match self {
            Target::Thumbv7em => "thumbv7em-none-eabihf",
            Target::Thumbv7m => "thumbv7m-none-eabi",
            Target::Riscv32 => "riscv32imac-unknown-none-elf",
        }
    }

    /// QEMU program and its arguments, up to and including `-kernel` (the ELF follows). Same
    /// command lines as the cargo runners in `firmware/.cargo/config.toml`.
    pub fn qemu(self) -> (&'static str, &'static [&'static str]) {
        const SEMIHOSTING: [&str; 4] = [
            "-nographic",
            "-semihosting-config",
            "enable=on,target=native",
            "-kernel",
        ];
        match self {
            Target::Thumbv7em => (
                "qemu-system-arm",
                &[
                    "-cpu",
                    "cortex-m4",
                    "-machine",
                    "mps2-an386",
                    SEMIHOSTING[0],
                    SEMIHOSTING[1],
                    SEMIHOSTING[2],
                    SEMIHOSTING[3],
                ],
            ),
            Target::Thumbv7m => (
                "qemu-system-arm",
                &[
                    "-cpu",
                    "cortex-m3",
                    "-machine",
                    "mps2-an385",
                    SEMIHOSTING[0],
                    SEMIHOSTING[1],
                    SEMIHOSTING[2],
                    SEMIHOSTING[3],
                ],
            ),
            Target::Riscv32 => (
                "qemu-system-riscv32",
                &[
                    "-machine",
                    "virt",
                    "-bios",
                    "none",
                    SEMIHOSTING[0],
                    SEMIHOSTING[1],
                    SEMIHOSTING[2],
                    SEMIHOSTING[3],
                ],
            ),
        }
    }

    /// `CARGO_TARGET_<TRIPLE>_LINKER`
    fn linker_env(self) -> String {
        format!(
            "CARGO_TARGET_{}_LINKER",
            self.triple().to_uppercase().replace('-', "_")
        )
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.triple())
    }
}

/// What to build and how to run it.
#[derive(Clone, Debug)]
pub struct Options {
    pub target: Target,
    /// Cargo features of the firmware, e.g. `conformance`.
    pub features: Vec<String>,
    /// Release profile (else dev).
    pub release: bool,
    /// QEMU is killed after this long and the run fails.
    pub timeout: Duration,
    /// Pass `--quiet` to cargo (no progress output on stderr).
    pub quiet: bool,
}

impl Options {
    pub fn new(target: Target) -> Options {
        Options {
            target,
            features: Vec::new(),
            release: false,
            timeout: DEFAULT_TIMEOUT,
            quiet: false,
        }
    }

    fn profile_dir(&self) -> &'static str {
        if self.release {
            "release"
        } else {
            "debug"
        }
    }
}

/// `<repo>/firmware`
pub fn firmware_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask has a parent")
        .join("firmware")
}

/// Where cargo puts the firmware's build output (always `firmware/target`, whatever
/// `CARGO_TARGET_DIR` says).
pub fn firmware_target_dir() -> PathBuf {
    firmware_dir().join("target")
}

/// How the firmware gets built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Toolchain {
    /// `cargo`/`rustc` from PATH, whose sysroot has the target's `core`.
    Installed,
    /// A toolchain without the target: `core` is built from source with `-Z build-std=core`,
    /// allowed on a stable toolchain by `RUSTC_BOOTSTRAP=1` (Debian's `rustc-web` + `rust-web-src`).
    BuildStd { cargo: PathBuf, rustc: PathBuf },
}

impl Toolchain {
    /// Picks the toolchain for `target`; see the module docs.
    pub fn detect(target: Target) -> Result<Toolchain> {
        let forced = env::var("EDGEWISE_FIRMWARE_TOOLCHAIN").unwrap_or_default();
        let debian = || Toolchain::BuildStd {
            cargo: PathBuf::from("/usr/bin/cargo"),
            rustc: PathBuf::from("/usr/bin/rustc"),
        };
        match forced.as_str() {
            "installed" => return Ok(Toolchain::Installed),
            "build-std" | "debian" => return debian().check(),
            "" => {}
            other => {
                bail!("EDGEWISE_FIRMWARE_TOOLCHAIN={other}: expected `installed` or `build-std`")
            }
        }
        if target_installed(Path::new("rustc"), target) {
            return Ok(Toolchain::Installed);
        }
        debian().check().with_context(|| {
            format!(
                "the Rust toolchain on PATH has no `{t}` target, and there is no fallback toolchain \
                 to build `core` from source. Either `rustup target add {t}`, or install Debian's \
                 Rust with its std source: `sudo scripts/setup-toolchain.sh`",
                t = target.triple()
            )
        })
    }

    fn check(self) -> Result<Toolchain> {
        if let Toolchain::BuildStd { cargo, rustc } = &self {
            for tool in [cargo, rustc] {
                if !tool.exists() {
                    bail!("{} not found", tool.display());
                }
            }
            let sysroot = rustc_print(rustc, &["--print", "sysroot"])?;
            let core_src = Path::new(sysroot.trim()).join("lib/rustlib/src/rust/library/core");
            if !core_src.exists() {
                bail!(
                    "{} has no standard library source ({} is missing)",
                    rustc.display(),
                    core_src.display()
                );
            }
        }
        Ok(self)
    }

    fn rustc(&self) -> PathBuf {
        match self {
            Toolchain::Installed => PathBuf::from("rustc"),
            Toolchain::BuildStd { rustc, .. } => rustc.clone(),
        }
    }

    /// PATH for the build (Debian's /usr/bin first for build-std).
    fn path(&self) -> OsString {
        let path = env::var_os("PATH").unwrap_or_default();
        match self {
            Toolchain::Installed => path,
            Toolchain::BuildStd { rustc, .. } => {
                let mut dirs = vec![rustc
                    .parent()
                    .unwrap_or(Path::new("/usr/bin"))
                    .to_path_buf()];
                dirs.extend(env::split_paths(&path));
                env::join_paths(dirs).unwrap_or(path)
            }
        }
    }
}

impl fmt::Display for Toolchain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Toolchain::Installed => f.write_str("installed target"),
            Toolchain::BuildStd { rustc, .. } => write!(f, "{} + build-std", rustc.display()),
        }
    }
}

fn rustc_print(rustc: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(rustc)
        .args(args)
        .stderr(Stdio::null())
        .output()
        .with_context(|| format!("running {}", rustc.display()))?;
    if !out.status.success() {
        bail!("{} {} failed", rustc.display(), args.join(" "));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Whether `rustc --print target-libdir --target T` exists and holds `core`.
pub fn target_installed(rustc: &Path, target: Target) -> bool {
    let Ok(dir) = rustc_print(
        rustc,
        &["--print", "target-libdir", "--target", target.triple()],
    ) else {
        return false;
    };
    let Ok(entries) = fs::read_dir(dir.trim()) else {
        return false;
    };
    entries.flatten().any(|e| {
        let name = e.file_name();
        let name = name.to_string_lossy();
        name.starts_with("libcore-") && name.ends_with(".rlib")
    })
}

/// Finds `name` in the directories of `path` (following symlinks: a dangling one doesn't count).
fn which(name: &str, path: &OsString) -> Option<PathBuf> {
    env::split_paths(path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The bare-metal targets link with `rust-lld` by default. rustc finds it in
/// `<sysroot>/lib/rustlib/<host>/bin` or on PATH (Debian: /usr/bin/rust-lld -> lld-NN). Where it
/// is missing, use `ld.lld` if there is one.
fn linker_override(tc: &Toolchain, target: Target) -> Result<Option<&'static str>> {
    if env::var_os(target.linker_env()).is_some() {
        return Ok(None); // the user chose
    }
    let rustc = tc.rustc();
    let sysroot = rustc_print(&rustc, &["--print", "sysroot"])?;
    let host = rustc_print(&rustc, &["--print", "host-tuple"]).or_else(|_| {
        rustc_print(&rustc, &["-vV"]).map(|v| {
            v.lines()
                .find_map(|l| l.strip_prefix("host: "))
                .unwrap_or_default()
                .to_string()
        })
    })?;
    let bundled = Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(host.trim())
        .join("bin/rust-lld");
    let path = tc.path();
    if bundled.is_file() || which("rust-lld", &path).is_some() {
        return Ok(None);
    }
    if which("ld.lld", &path).is_some() {
        return Ok(Some("ld.lld"));
    }
    bail!(
        "no linker for {target}: neither rust-lld nor ld.lld found (run `sudo scripts/setup-toolchain.sh`, \
         or set {}=<an lld>)",
        target.linker_env()
    )
}

/// The result of a firmware build.
#[derive(Clone, Debug)]
pub struct Built {
    pub target: Target,
    pub toolchain: Toolchain,
    /// The firmware ELF.
    pub elf: PathBuf,
    /// Wall time of the cargo invocation.
    pub build_time: Duration,
}

/// Builds the firmware; cargo's progress goes to stderr (unless `opts.quiet`).
pub fn build(opts: &Options) -> Result<Built> {
    build_in(opts, &firmware_target_dir())
}

/// [`build`] into another cargo target directory (e.g. for a board profile, so that its ELF
/// does not replace the QEMU one at the same path).
pub fn build_in(opts: &Options, target_dir: &Path) -> Result<Built> {
    let target = opts.target;
    let tc = Toolchain::detect(target)?;
    let dir = firmware_dir();
    let mut cmd = match &tc {
        Toolchain::Installed => {
            Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        }
        Toolchain::BuildStd { cargo, .. } => Command::new(cargo),
    };
    // cwd = firmware/ so that firmware/.cargo/config.toml applies.
    cmd.current_dir(&dir)
        .args(["build", "--bin", PACKAGE, "--target", target.triple()]);
    if opts.release {
        cmd.arg("--release");
    }
    if !opts.features.is_empty() {
        cmd.arg("--features").arg(opts.features.join(","));
    }
    if opts.quiet {
        cmd.arg("--quiet");
    }
    cmd.env("CARGO_TARGET_DIR", target_dir);
    // Left over from the `cargo run` that started xtask.
    for var in [
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_BIN_NAME",
        "CARGO_CRATE_NAME",
    ] {
        cmd.env_remove(var);
    }
    match &tc {
        Toolchain::Installed => {
            // A nightly toolchain would otherwise honour the config's [unstable] build-std.
            cmd.env_remove("RUSTC_BOOTSTRAP");
        }
        Toolchain::BuildStd { rustc, .. } => {
            cmd.env("PATH", tc.path())
                .env("RUSTC", rustc)
                .env("RUSTC_BOOTSTRAP", "1")
                .env_remove("CARGO")
                .env_remove("RUSTUP_TOOLCHAIN")
                .env_remove("RUSTUP_TOOLCHAIN_SOURCE")
                .env_remove("RUST_RECURSION_COUNT")
                .arg("-Zbuild-std=core");
        }
    }
    if let Some(linker) = linker_override(&tc, target)? {
        cmd.env(target.linker_env(), linker);
    }
    let start = Instant::now();
    let status = cmd
        .status()
        .with_context(|| format!("running cargo for {target} ({tc})"))?;
    let build_time = start.elapsed();
    if !status.success() {
        bail!("firmware build for {target} ({tc}) failed: {status}");
    }
    let elf = target_dir
        .join(target.triple())
        .join(opts.profile_dir())
        .join(PACKAGE);
    if !elf.is_file() {
        bail!("build succeeded but {} is missing", elf.display());
    }
    Ok(Built {
        target,
        toolchain: tc,
        elf,
        build_time,
    })
}

/// What QEMU did.
#[derive(Clone, Debug)]
pub struct QemuRun {
    /// Raw stdout: the defmt frames (semihosting writes to QEMU's stdout).
    pub raw: Vec<u8>,
    /// QEMU's stderr.
    pub stderr: String,
    /// QEMU's exit code (the firmware's semihosting exit status); `None` if killed.
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub elapsed: Duration,
}

/// Runs `elf` under the target's QEMU, killing it after `timeout`.
pub fn run_qemu(target: Target, elf: &Path, timeout: Duration) -> Result<QemuRun> {
    let (program, args) = target.qemu();
    let mut child = Command::new(program)
        .args(args)
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!("starting {program} (install it: `sudo scripts/setup-toolchain.sh`)")
        })?;
    let start = Instant::now();
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stdout.read_to_end(&mut buf);
        buf
    });
    let err_reader = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr.read_to_end(&mut buf);
        buf
    });
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() >= timeout {
            timed_out = true;
            let _ = child.kill();
            break child.wait()?;
        }
        thread::sleep(Duration::from_millis(10));
    };
    let elapsed = start.elapsed();
    let raw = out_reader
        .join()
        .map_err(|_| anyhow!("stdout reader panicked"))?;
    let stderr = err_reader
        .join()
        .map_err(|_| anyhow!("stderr reader panicked"))?;
    Ok(QemuRun {
        raw,
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        exit_code: if timed_out { None } else { status.code() },
        timed_out,
        elapsed,
    })
}

/// One decoded defmt frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// `trace` .. `error`; `None` for `defmt::println!`.
    pub level: Option<&'static str>,
    /// The formatted message.
    pub message: String,
    /// `file:line` of the log statement, where the ELF's debug info has it.
    pub location: Option<String>,
}

impl fmt::Display for Line {
    /// `INFO  message` for log frames, just `message` for println frames.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.level {
            Some(level) => write!(f, "{:<5} {}", level.to_uppercase(), self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Decoded output of a run.
#[derive(Clone, Debug, Default)]
pub struct Decoded {
    pub lines: Vec<Line>,
    /// Frames that could not be decoded (skipped).
    pub malformed: usize,
}

/// Decodes a raw defmt stream with the firmware ELF's table.
pub fn decode(elf: &[u8], raw: &[u8]) -> Result<Decoded> {
    use defmt_decoder::{DecodeError, Table};
    let table = Table::parse(elf)
        .context("reading the defmt table from the ELF")?
        .ok_or_else(|| anyhow!("the ELF has no .defmt section (not a defmt firmware?)"))?;
    let locations = table.get_locations(elf).ok().filter(|l| !l.is_empty());
    let can_recover = table.encoding().can_recover();
    let mut stream = table.new_stream_decoder();
    stream.received(raw);
    let mut out = Decoded::default();
    loop {
        match stream.decode() {
            Ok(frame) => {
                let location = locations
                    .as_ref()
                    .and_then(|l| l.get(&frame.index()))
                    .map(|l| format!("{}:{}", l.file.display(), l.line));
                out.lines.push(Line {
                    level: frame.level().map(|l| l.as_str()),
                    message: frame.display_message().to_string(),
                    location,
                });
            }
            Err(DecodeError::UnexpectedEof) => break,
            Err(DecodeError::Malformed) if can_recover => out.malformed += 1,
            Err(DecodeError::Malformed) => {
                out.malformed += 1;
                break;
            }
        }
    }
    Ok(out)
}

/// A built, run and decoded firmware.
#[derive(Clone, Debug)]
pub struct FirmwareRun {
    pub built: Built,
    pub qemu: QemuRun,
    /// Where the raw defmt stream was saved (next to the ELF, `.defmt`).
    pub raw_path: PathBuf,
    pub lines: Vec<Line>,
    pub malformed: usize,
}

impl FirmwareRun {
    /// QEMU exited 0 in time and every frame decoded.
    pub fn success(&self) -> bool {
        self.qemu.exit_code == Some(0) && !self.qemu.timed_out && self.malformed == 0
    }

    /// One line saying how the run ended.
    pub fn describe(&self) -> String {
        let t = self.built.target;
        let how = if self.qemu.timed_out {
            format!(
                "QEMU timed out after {:.1} s (killed)",
                self.qemu.elapsed.as_secs_f64()
            )
        } else {
            match self.qemu.exit_code {
                Some(c) => format!(
                    "QEMU exited {c} after {:.2} s",
                    self.qemu.elapsed.as_secs_f64()
                ),
                None => "QEMU was killed by a signal".to_string(),
            }
        };
        let mut s = format!("{t}: {how}; {} lines decoded", self.lines.len());
        if self.malformed > 0 {
            s += &format!(", {} MALFORMED frames", self.malformed);
        }
        s += &format!("; raw frames in {}", self.raw_path.display());
        s
    }
}

/// Builds the firmware, runs it under QEMU and decodes its output.
pub fn build_and_run(opts: &Options) -> Result<FirmwareRun> {
    let built = build(opts)?;
    run_built(built, opts.timeout)
}

/// Runs and decodes an already built firmware.
pub fn run_built(built: Built, timeout: Duration) -> Result<FirmwareRun> {
    let qemu = run_qemu(built.target, &built.elf, timeout)?;
    let raw_path = built.elf.with_extension("defmt");
    fs::write(&raw_path, &qemu.raw).with_context(|| format!("writing {}", raw_path.display()))?;
    let elf = fs::read(&built.elf).with_context(|| format!("reading {}", built.elf.display()))?;
    let decoded = decode(&elf, &qemu.raw)?;
    Ok(FirmwareRun {
        built,
        qemu,
        raw_path,
        lines: decoded.lines,
        malformed: decoded.malformed,
    })
}

/// Sizes of the loadable sections of a firmware ELF, Berkeley `size` style.
#[derive(Clone, Debug, Default)]
pub struct SizeReport {
    /// (name, address, size, kind) of every allocated section, in address order.
    pub sections: Vec<(String, u64, u64, SectionClass)>,
    /// Code and read-only data (in flash).
    pub text: u64,
    /// Initialized data (in flash, copied to RAM).
    pub data: u64,
    /// Zero-initialized / uninitialized statics (RAM).
    pub bss: u64,
    /// Stack and heap reservations (riscv-rt's `.stack`/`.heap`): not counted in `bss`.
    pub reserved: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SectionClass {
    Text,
    Data,
    Bss,
    Reserved,
}

impl SizeReport {
    /// What goes to flash: text + data.
    pub fn flash(&self) -> u64 {
        self.text + self.data
    }
    /// Static RAM: data + bss (stack not included).
    pub fn ram(&self) -> u64 {
        self.data + self.bss
    }
}

/// Classifies the allocated sections of an ELF.
pub fn size_report(elf: &[u8]) -> Result<SizeReport> {
    use object::{elf, Object, ObjectSection, SectionFlags, SectionKind};
    let file = object::File::parse(elf).context("parsing the ELF")?;
    let mut report = SizeReport::default();
    for section in file.sections() {
        let SectionFlags::Elf { sh_flags } = section.flags() else {
            continue;
        };
        if sh_flags & u64::from(elf::SHF_ALLOC) == 0 || section.size() == 0 {
            continue;
        }
        let name = section.name().unwrap_or("?").to_string();
        let class = if name == ".stack" || name == ".heap" {
            SectionClass::Reserved
        } else {
            match section.kind() {
                SectionKind::UninitializedData | SectionKind::UninitializedTls => SectionClass::Bss,
                _ if sh_flags & u64::from(elf::SHF_WRITE) != 0 => SectionClass::Data,
                _ => SectionClass::Text,
            }
        };
        let size = section.size();
        match class {
            SectionClass::Text => report.text += size,
            SectionClass::Data => report.data += size,
            SectionClass::Bss => report.bss += size,
            SectionClass::Reserved => report.reserved += size,
        }
        report.sections.push((name, section.address(), size, class));
    }
    report.sections.sort_by_key(|s| s.1);
    Ok(report)
}
