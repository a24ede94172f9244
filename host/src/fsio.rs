//! Crash-safe file output: atomic replacement of whole files and append-only logs.
//!
//! - [`atomic_write`] / [`atomic_write_with`] write a whole file (a checkpoint, a summary, a
//!   config) so that an interrupted run never leaves a half-written file where a good one was:
//!   the bytes go to a temporary file in the same directory (`.{name}.tmp-{pid}-{counter}`),
//!   which is fsynced, renamed over the target and followed by an fsync of the directory (on
//!   Unix). Readers see either the old file or the new one, never a mix. A symbolic link is
//!   followed (its target is replaced, the link kept), and a device or FIFO is written in place
//!   (a rename would replace it with a regular file).
//! - [`AppendFile`] is an append-only log (`metrics.csv`): one `write` per line, so a crash can
//!   at worst leave an incomplete last line, which [`truncate_to_lines`] removes on resume
//!   together with the rows written after the last checkpoint.
//!
//! Every failure is an [`IoError`] naming the file and what was being done to it.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A failed file operation: which file, what was being done, and the operating system's error.
///
/// Displays as `cannot {action} {path}: {source}`, e.g.
/// `cannot write /x/y: Permission denied (os error 13)`.
#[derive(Debug)]
pub struct IoError {
    /// The file (for atomic writes: the target, not the temporary file).
    pub path: PathBuf,
    /// What was being done: `"write"`, `"read"`, `"open"`, `"append to"`, `"truncate"`, ...
    pub action: &'static str,
    /// The underlying error.
    pub source: io::Error,
}

impl IoError {
    /// An error about `path`.
    pub fn new(path: &Path, action: &'static str, source: io::Error) -> Self {
        IoError {
            path: path.to_path_buf(),
            action,
            source,
        }
    }
}

impl IoError {
    /// Whether the path itself is at fault (missing directory, no permission, a directory or
    /// a read-only file system where a file should be): bad input, exit code 2. Otherwise
    /// (a full disk, an I/O error) writing failed: exit code 1.
    pub fn is_bad_path(&self) -> bool {
        use io::ErrorKind as K;
        matches!(
            self.source.kind(),
            K::NotFound
                | K::PermissionDenied
                | K::IsADirectory
                | K::NotADirectory
                | K::ReadOnlyFilesystem
                | K::InvalidInput
                | K::AlreadyExists
        )
    }
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot {} {}: {}",
            self.action,
            self.path.display(),
            self.source
        )
    }
}

impl std::error::Error for IoError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// Reads a whole file.
pub fn read(path: &Path) -> Result<Vec<u8>, IoError> {
    fs::read(path).map_err(|e| IoError::new(path, "read", e))
}

/// Atomically replaces (or creates) `path` with `bytes`.
///
/// Writes a temporary file `.{name}.tmp-{pid}-{counter}` next to `path`, fsyncs it, renames it
/// over `path` and fsyncs the directory (Unix only; filesystems that cannot sync a directory
/// are tolerated). On failure the temporary file is removed and `path` is untouched.
///
/// A symbolic link at `path` is followed: the file it points to is replaced atomically (next to
/// it, in its own directory; a dangling link's target is created), and the link stays a link.
/// An existing file that is not a regular file (a character or block device such as
/// `/dev/null`, a FIFO, a socket) cannot be replaced by a rename without destroying it, so it is
/// written in place instead, like a shell redirection would, without the atomicity. The new
/// regular file gets default permissions (it does not inherit the old file's).
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    atomic_write_with(path, |w| w.write_all(bytes))
}

/// The name of [`atomic_write`]'s temporary file number `n` of this process for `name`.
fn temp_name(name: &std::ffi::OsStr, n: u64) -> std::ffi::OsString {
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".tmp-{}-{n}", std::process::id()));
    tmp
}

/// Removes the file at `path`; one that is not there is no error.
pub fn remove_if_present(path: &Path) -> Result<(), IoError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(IoError::new(path, "remove", e)),
        _ => Ok(()),
    }
}

/// Whether files can be created in the directory `dir` (permissions, a read-only file system):
/// creates an empty temporary file there (named as [`atomic_write`]'s are, for the target
/// `write-probe`) and removes it again. What a command checks before it deletes anything it
/// could not write back.
pub fn probe_writable(dir: &Path) -> Result<(), IoError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(temp_name(std::ffi::OsStr::new("write-probe"), n));
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| IoError::new(dir, "create files in", e))?;
    fs::remove_file(&tmp).map_err(|e| IoError::new(dir, "remove files in", e))
}

/// The name of the file an [`atomic_write`] temporary file named `name` was to replace:
/// `Some("config.toml")` for `.config.toml.tmp-1065-206`, `None` for any name not of the form
/// `.{name}.tmp-{pid}-{counter}`. A process killed between creating and renaming it leaves
/// such a file behind.
pub fn temp_target(name: &str) -> Option<&str> {
    let rest = name.strip_prefix('.')?;
    let at = rest.rfind(".tmp-")?;
    let (target, suffix) = (&rest[..at], &rest[at + ".tmp-".len()..]);
    let (pid, n) = suffix.split_once('-')?;
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    (!target.is_empty() && digits(pid) && digits(n)).then_some(target)
}

/// Streaming form of [`atomic_write`]: `write` produces the content into a buffered writer.
///
/// If `write` fails, nothing is renamed, the temporary file is removed and its error is
/// returned (as an [`IoError`] with action `"write"`).
pub fn atomic_write_with<F>(path: &Path, write: F) -> Result<(), IoError>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    let err = |action, e| IoError::new(path, action, e);
    // What the path names once the kernel has followed its links (also the "magic" ones of
    // /proc, such as /dev/stdout's, whose targets are no paths).
    if let Ok(meta) = fs::metadata(path) {
        let kind = meta.file_type();
        if !kind.is_file() && !kind.is_dir() {
            // A device, FIFO or socket: a rename would replace it with a regular file.
            return write_in_place(path, write).map_err(|e| err("write", e));
        }
    }
    // Write to what a symbolic link points to, not over the link.
    let target = resolve_links(path).map_err(|e| err("write", e))?;
    let path = target.as_path();
    let name = path.file_name().ok_or_else(|| {
        err(
            "write",
            io::Error::new(io::ErrorKind::InvalidInput, "the path does not name a file"),
        )
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(temp_name(name, n));

    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| err("write", e))?;
    // From here on, remove the temporary file on any failure.
    let result = (|| {
        let mut w = BufWriter::new(file);
        write(&mut w).map_err(|e| err("write", e))?;
        let file = w.into_inner().map_err(|e| err("write", e.into_error()))?;
        file.sync_all().map_err(|e| err("sync", e))?;
        drop(file);
        fs::rename(&tmp, path).map_err(|e| err("replace", e))
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    sync_dir(dir).map_err(|e| IoError::new(dir, "sync directory", e))
}

/// The most symbolic links [`resolve_links`] follows (Linux's limit).
const MAX_LINKS: usize = 40;

/// `path` with symbolic links in its last component followed (relative targets are taken
/// against the link's directory), up to the first path that is not a link, whether or not it
/// exists (a dangling link resolves to the file it would create). Links in the directories of
/// the path are left to the operating system, which follows them anyway.
fn resolve_links(path: &Path) -> io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = fs::read_link(&p)?;
                p = match p.parent() {
                    Some(dir) if to.is_relative() => dir.join(to),
                    _ => to,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("more than {MAX_LINKS} levels of symbolic links"),
    ))
}

/// Writes into the existing non-regular file `path` (a device, a FIFO) without replacing it.
fn write_in_place<F>(path: &Path, write: F) -> io::Result<()>
where
    F: FnOnce(&mut dyn Write) -> io::Result<()>,
{
    let file = OpenOptions::new().write(true).open(path)?;
    let mut w = BufWriter::new(file);
    write(&mut w)?;
    w.flush()
}

/// Fsyncs a directory so a rename in it is durable. Unix only; a no-op elsewhere.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir).and_then(|d| d.sync_all()) {
        Ok(()) => Ok(()),
        // Some filesystems cannot fsync a directory (EINVAL, ENOTSUP); the data is still safe.
        Err(e)
            if matches!(e.raw_os_error(), Some(22) | Some(95))
                || e.kind() == io::ErrorKind::Unsupported =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// An append-only text log such as `metrics.csv`: each [`AppendFile::append_line`] is one
/// write of the whole line and its newline, so a crash leaves at most one incomplete last line.
///
/// On resume, first cut the file back with [`truncate_to_lines`], then open it.
#[derive(Debug)]
pub struct AppendFile {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
}

impl AppendFile {
    /// Opens `path` for appending, creating it if missing.
    pub fn open(path: &Path) -> Result<Self, IoError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| IoError::new(path, "open", e))?;
        Ok(AppendFile {
            path: path.to_path_buf(),
            file,
            buf: Vec::new(),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `line` and a newline (`line` may already end in one `\n`), and flushes it to the
    /// operating system. A line containing any other `\n` or `\r` is refused: it would break
    /// the one-row-per-line count [`truncate_to_lines`] relies on.
    pub fn append_line(&mut self, line: &str) -> Result<(), IoError> {
        let line = line.strip_suffix('\n').unwrap_or(line);
        if line.contains(['\n', '\r']) {
            return Err(IoError::new(
                &self.path,
                "append to",
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the line contains a line break",
                ),
            ));
        }
        self.buf.clear();
        self.buf.extend_from_slice(line.as_bytes());
        self.buf.push(b'\n');
        self.file
            .write_all(&self.buf)
            .and_then(|()| self.file.flush())
            .map_err(|e| IoError::new(&self.path, "append to", e))
    }

    /// Fsyncs the file (e.g. right after writing a checkpoint that refers to its rows).
    pub fn sync(&self) -> Result<(), IoError> {
        self.file
            .sync_data()
            .map_err(|e| IoError::new(&self.path, "sync", e))
    }
}

/// Cuts the text file `path` back to its first `keep_lines` complete lines (each ending in
/// `\n`; a header line counts like any other), atomically via [`atomic_write`]. Used on resume
/// to drop the rows written after the last checkpoint, and any incomplete last line.
///
/// Does not rewrite a file that already has exactly `keep_lines` complete lines and nothing
/// more. It is an error if the file has fewer than `keep_lines` complete lines (the log and
/// the checkpoint disagree), or does not exist.
pub fn truncate_to_lines(path: &Path, keep_lines: usize) -> Result<(), IoError> {
    let bytes = fs::read(path).map_err(|e| IoError::new(path, "truncate", e))?;
    let mut end = 0;
    let mut kept = 0;
    if keep_lines > 0 {
        for (i, _) in bytes.iter().enumerate().filter(|(_, &b)| b == b'\n') {
            kept += 1;
            end = i + 1;
            if kept == keep_lines {
                break;
            }
        }
    }
    if kept < keep_lines {
        return Err(IoError::new(
            path,
            "truncate",
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "it has only {kept} complete line{}, fewer than the {keep_lines} to keep",
                    if kept == 1 { "" } else { "s" }
                ),
            ),
        ));
    }
    if end == bytes.len() {
        return Ok(());
    }
    atomic_write(path, &bytes[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leftovers(dir: &Path) -> Vec<String> {
        fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".tmp-"))
            .collect()
    }

    #[test]
    fn temp_target_names_the_file_a_temporary_file_was_for() {
        assert_eq!(
            temp_target(".config.toml.tmp-1065-206"),
            Some("config.toml")
        );
        assert_eq!(temp_target(".a.tmp-b.tmp-1-2"), Some("a.tmp-b"));
        for name in [
            "config.toml",
            ".config.toml",
            ".config.toml.tmp-",
            ".config.toml.tmp-12",
            ".config.toml.tmp-12-",
            ".config.toml.tmp-x-1",
            "..tmp-1-2",
            "config.toml.tmp-1-2",
        ] {
            assert_eq!(temp_target(name), None, "{name}");
        }
        // The names atomic_write gives its temporary files are recognised.
        let tmp = temp_name(std::ffi::OsStr::new("metrics.csv"), 7);
        assert_eq!(temp_target(&tmp.to_string_lossy()), Some("metrics.csv"));
    }

    #[test]
    fn atomic_write_creates_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.bin");
        atomic_write(&p, b"first version, rather long").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"first version, rather long");
        atomic_write(&p, b"second").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"second");
        atomic_write_with(&p, |w| {
            w.write_all(b"th")?;
            w.write_all(b"ird")
        })
        .unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"third");
        assert!(leftovers(dir.path()).is_empty());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn failed_stream_leaves_old_file_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("keep.txt");
        atomic_write(&p, b"good").unwrap();
        let e = atomic_write_with(&p, |w| {
            w.write_all(b"half a fi")?;
            Err(io::Error::other("simulated crash"))
        })
        .unwrap_err();
        assert_eq!(e.action, "write");
        assert!(e.to_string().contains("simulated crash"), "{e}");
        assert_eq!(fs::read(&p).unwrap(), b"good");
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn unwritable_location_is_an_error_naming_the_file() {
        // Tests may run as root, where permissions do not block writes: put the file under a
        // path whose "directory" is a regular file instead.
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("not-a-dir");
        fs::write(&blocker, b"").unwrap();
        let p = blocker.join("out.bin");
        let e = atomic_write(&p, b"data").unwrap_err();
        assert_eq!(e.path, p);
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("cannot write {}: ", p.display())),
            "{msg}"
        );
        assert!(std::error::Error::source(&e).is_some());
        assert!(AppendFile::open(&p).is_err());
        // A path that names no file.
        assert!(atomic_write(Path::new("/"), b"x").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_symbolic_link_is_followed_and_kept() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        let target = sub.join("target.json");
        fs::write(&target, b"old").unwrap();
        // A relative link, a link to that link, and a dangling one.
        let link = dir.path().join("link.json");
        symlink("sub/target.json", &link).unwrap();
        let link2 = dir.path().join("link2.json");
        symlink(&link, &link2).unwrap();
        atomic_write(&link2, b"new").unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert!(fs::symlink_metadata(&link2)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert!(leftovers(dir.path()).is_empty() && leftovers(&sub).is_empty());
        let dangling = dir.path().join("dangling.json");
        symlink("sub/created.json", &dangling).unwrap();
        atomic_write(&dangling, b"created").unwrap();
        assert!(fs::symlink_metadata(&dangling)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read(sub.join("created.json")).unwrap(), b"created");
        // A loop is an error naming the path, not a hang.
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        symlink(&b, &a).unwrap();
        symlink(&a, &b).unwrap();
        let e = atomic_write(&a, b"x").unwrap_err();
        assert!(e.to_string().contains("levels of symbolic links"), "{e}");
        assert_eq!(e.path, a);
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_written_in_place() {
        use std::io::Read;
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !made.is_ok_and(|s| s.success()) {
            eprintln!("skipped: mkfifo is not available");
            return;
        }
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || {
                let mut s = String::new();
                File::open(&fifo).unwrap().read_to_string(&mut s).unwrap();
                s
            })
        };
        atomic_write(&fifo, b"through the pipe").unwrap();
        assert_eq!(reader.join().unwrap(), "through the pipe");
        assert!(fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
        assert!(leftovers(dir.path()).is_empty());
    }

    /// Device nodes made here (as root), never the system's own: a copy of `/dev/null` (1, 3)
    /// and of `/dev/full` (1, 7) stay devices, and the second one's "disk full" is an error.
    #[cfg(unix)]
    #[test]
    fn a_device_is_written_in_place_not_replaced() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let null = dir.path().join("null");
        let full = dir.path().join("full");
        let mknod = |p: &Path, minor: &str| {
            std::process::Command::new("mknod")
                .arg(p)
                .args(["c", "1", minor])
                .status()
                .is_ok_and(|s| s.success())
        };
        if !(mknod(&null, "3") && mknod(&full, "7")) {
            eprintln!("skipped: cannot create device nodes (not root?)");
            return;
        }
        let is_dev = |p: &Path| {
            fs::symlink_metadata(p)
                .unwrap()
                .file_type()
                .is_char_device()
        };
        // On a filesystem mounted `nodev` opening the node fails; either way it must survive.
        let r = atomic_write(&null, b"discarded");
        assert!(is_dev(&null), "{r:?}");
        if r.is_ok() {
            let e = atomic_write(&full, b"no room").unwrap_err();
            assert_eq!(e.path, full);
            assert!(e.to_string().starts_with("cannot write"), "{e}");
        }
        assert!(is_dev(&full));
        // Through a symbolic link too.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&null, &link).unwrap();
        let _ = atomic_write(&link, b"x");
        assert!(is_dev(&null));
        assert!(leftovers(dir.path()).is_empty());
    }

    #[test]
    fn display_format() {
        let e = IoError::new(Path::new("/x/y"), "write", io::Error::from_raw_os_error(13));
        assert_eq!(
            e.to_string(),
            "cannot write /x/y: Permission denied (os error 13)"
        );
    }

    #[test]
    fn append_and_truncate() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("metrics.csv");
        {
            let mut f = AppendFile::open(&p).unwrap();
            f.append_line("step,loss").unwrap();
            f.append_line("0,1.5\n").unwrap();
            f.append_line("1,1.25").unwrap();
            f.sync().unwrap();
            assert!(f.append_line("2,\n1").is_err());
            assert!(f.append_line("2,1\r").is_err());
        }
        {
            let mut f = AppendFile::open(&p).unwrap();
            f.append_line("2,1.0").unwrap();
        }
        assert_eq!(
            fs::read_to_string(&p).unwrap(),
            "step,loss\n0,1.5\n1,1.25\n2,1.0\n"
        );
        // Simulate a crash in the middle of a row.
        fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"3,0.")
            .unwrap();

        // Keeping every complete line drops just the partial one.
        truncate_to_lines(&p, 4).unwrap();
        assert_eq!(
            fs::read_to_string(&p).unwrap(),
            "step,loss\n0,1.5\n1,1.25\n2,1.0\n"
        );
        // Already exact: untouched.
        truncate_to_lines(&p, 4).unwrap();
        truncate_to_lines(&p, 2).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "step,loss\n0,1.5\n");
        let e = truncate_to_lines(&p, 3).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "cannot truncate {}: it has only 2 complete lines, fewer than the 3 to keep",
                p.display()
            )
        );
        assert_eq!(fs::read_to_string(&p).unwrap(), "step,loss\n0,1.5\n");
        truncate_to_lines(&p, 0).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"");
        // Appending after a truncation continues the file.
        let mut f = AppendFile::open(&p).unwrap();
        f.append_line("step,loss").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "step,loss\n");
        assert!(leftovers(dir.path()).is_empty());
        assert!(truncate_to_lines(&dir.path().join("missing.csv"), 0).is_err());
    }
}
