//! Files that appear whole or not at all, with sortable names and retention.
//!
//! Every file is written to a temp file in the target folder, `fsync`ed,
//! renamed to its final name (never replacing another file), and the folder is
//! `fsync`ed so the rename itself survives a crash. Temps left by a killed
//! process are removed at the next start.

use std::fmt;
use std::fs::{self, DirBuilder, File};
use std::io::{self, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::meta;

/// Prefix of temp files: `.hotprof-tmp-<pid>-<random>`.
const TEMP_PREFIX: &str = ".hotprof-tmp-";

/// Why a file could not be written.
#[derive(Debug)]
pub struct OutputError {
    path: PathBuf,
    action: &'static str,
    source: io::Error,
}

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot {} {}: {}", self.action, self.path.display(), self.source)
    }
}

impl std::error::Error for OutputError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

fn err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> OutputError + 'a {
    move |source| OutputError { path: path.to_path_buf(), action, source }
}

/// The folder hotprof writes into, with its limits.
#[derive(Debug, Clone)]
pub(crate) struct OutputDir {
    pub dir: PathBuf,
    pub app: String,
    pub pid: u32,
    pub max_files: usize,
    pub max_bytes: u64,
}

impl OutputDir {
    /// Creates the folder (0700) if missing and removes temps of dead processes.
    pub(crate) fn prepare(&self) -> Result<usize, OutputError> {
        self.ensure_dir()?;
        Ok(remove_stale_temps(&self.dir))
    }

    /// Creates the folder if missing and proves a file can be made in it
    /// (a temp file, removed at once): `Err` says why not.
    pub(crate) fn check_writable(&self) -> Result<(), OutputError> {
        self.ensure_dir()?;
        tempfile::Builder::new()
            .prefix(&format!("{TEMP_PREFIX}{}-", self.pid))
            .tempfile_in(&self.dir)
            .map(drop)
            .map_err(err("create a file in", &self.dir))
    }

    fn ensure_dir(&self) -> Result<(), OutputError> {
        if self.dir.is_dir() {
            return Ok(());
        }
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(err("create folder", &self.dir))
    }

    /// Writes `contents` atomically as `<app>-<utc>-<pid>-<kind>.<ext>`, then
    /// applies retention. Returns the final path.
    pub(crate) fn write(&self, kind: &str, ext: &str, contents: &[u8]) -> Result<PathBuf, OutputError> {
        self.write_at(SystemTime::now(), kind, ext, contents)
    }

    /// Like `write`, with the time stamp given (files of one capture share it).
    pub(crate) fn write_at(
        &self,
        now: SystemTime,
        kind: &str,
        ext: &str,
        contents: &[u8],
    ) -> Result<PathBuf, OutputError> {
        self.ensure_dir()?;
        let mut tmp = tempfile::Builder::new()
            .prefix(&format!("{TEMP_PREFIX}{}-", self.pid))
            .tempfile_in(&self.dir)
            .map_err(err("create a temp file in", &self.dir))?;
        tmp.write_all(contents).map_err(err("write", tmp.path()))?;
        tmp.as_file().sync_all().map_err(err("fsync", tmp.path()))?;
        // Same name taken (two files in one millisecond): take the next
        // millisecond's name, so names keep sorting in the order of writing.
        let mut bump = 0;
        let path = loop {
            let stamp = meta::compact_utc(now + Duration::from_millis(bump));
            let path = self.dir.join(format!("{}-{stamp}-{}-{kind}.{ext}", self.app, self.pid));
            match tmp.persist_noclobber(&path) {
                Ok(_) => break path,
                Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists && bump < 1000 => {
                    tmp = e.file;
                    bump += 1;
                }
                Err(e) => return Err(err("rename into", &path)(e.error)),
            }
        };
        File::open(&self.dir).and_then(|d| d.sync_all()).map_err(err("fsync folder", &self.dir))?;
        self.enforce_retention(&path);
        Ok(path)
    }

    /// Removes the oldest hotprof files until the folder is within its caps.
    /// The file just written is never removed.
    fn enforce_retention(&self, keep: &Path) {
        let mut files = hotprof_files(&self.dir);
        // Oldest first: by the UTC stamp in the name, then by name.
        files.sort_by(|a, b| (stamp_of(&a.0), &a.0).cmp(&(stamp_of(&b.0), &b.0)));
        let mut count = files.len();
        let mut bytes: u64 = files.iter().map(|f| f.1).sum();
        for (path, len) in files {
            if count <= self.max_files && bytes <= self.max_bytes {
                break;
            }
            if path == keep {
                continue;
            }
            if fs::remove_file(&path).is_ok() {
                count -= 1;
                bytes = bytes.saturating_sub(len);
            }
        }
    }
}

/// Final-named hotprof files in `dir` with their sizes.
fn hotprof_files(dir: &Path) -> Vec<(PathBuf, u64)> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|n| stamp_of_name(n).is_some()))
        .filter_map(|e| Some((e.path(), e.metadata().ok().filter(|m| m.is_file())?.len())))
        .collect()
}

fn stamp_of(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).and_then(stamp_of_name).unwrap_or("")
}

/// Finds the `YYYYMMDDTHHMMSSmmmZ` part of a hotprof file name.
fn stamp_of_name(name: &str) -> Option<&str> {
    if name.starts_with('.') {
        return None;
    }
    name.split('-').find(|part| {
        let b = part.as_bytes();
        b.len() == 19
            && b[8] == b'T'
            && b[18] == b'Z'
            && b[..8].iter().chain(&b[9..18]).all(u8::is_ascii_digit)
    })
}

/// Removes `.hotprof-tmp-<pid>-*` files and scratch folders whose process is
/// gone (or is us, from an earlier life of this pid). Returns how many were removed.
fn remove_stale_temps(dir: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let me = std::process::id();
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(TEMP_PREFIX)) else {
                return false;
            };
            let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
            match pid {
                Some(pid) => pid == me || !Path::new(&format!("/proc/{pid}")).exists(),
                None => true,
            }
        })
        .filter(|e| {
            let path = e.path();
            if path.is_dir() { fs::remove_dir_all(path) } else { fs::remove_file(path) }.is_ok()
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn out(dir: &Path) -> OutputDir {
        OutputDir { dir: dir.to_path_buf(), app: "svc".into(), pid: 42, max_files: 3, max_bytes: 1 << 20 }
    }

    #[test]
    fn writes_whole_files_with_private_modes() {
        let root = tempfile::tempdir().unwrap();
        let o = out(&root.path().join("a/b"));
        o.prepare().unwrap();
        let p = o.write("threads", "txt", b"hello").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"hello");
        assert_eq!(fs::metadata(&o.dir).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(fs::metadata(&p).unwrap().permissions().mode() & 0o777, 0o600);
        let name = p.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("svc-") && name.ends_with("-42-threads.txt"), "{name}");
        assert!(stamp_of_name(name).is_some());
    }

    #[test]
    fn same_millisecond_never_overwrites() {
        let root = tempfile::tempdir().unwrap();
        let mut o = out(root.path());
        o.max_files = 100;
        let paths: Vec<_> =
            (0..20).map(|i| o.write("threads", "txt", format!("{i}").as_bytes()).unwrap()).collect();
        let unique: std::collections::HashSet<_> = paths.iter().collect();
        assert_eq!(unique.len(), 20);
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(sorted, paths, "names sort in the order the files were written");
    }

    #[test]
    fn retention_removes_oldest_first() {
        let root = tempfile::tempdir().unwrap();
        let o = out(root.path());
        fs::write(root.path().join("svc-20200101T000000000Z-1-threads.txt"), "old").unwrap();
        fs::write(root.path().join("unrelated.txt"), "keep me").unwrap();
        let mut last = PathBuf::new();
        for _ in 0..4 {
            last = o.write("threads", "txt", b"x").unwrap();
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let left = hotprof_files(root.path());
        assert_eq!(left.len(), 3);
        assert!(!root.path().join("svc-20200101T000000000Z-1-threads.txt").exists());
        assert!(root.path().join("unrelated.txt").exists());
        assert!(last.exists());
    }

    #[test]
    fn retention_by_bytes_keeps_the_new_file() {
        let root = tempfile::tempdir().unwrap();
        let mut o = out(root.path());
        o.max_bytes = 10;
        o.write("threads", "txt", b"12345678").unwrap();
        let p = o.write("threads", "txt", b"123456789012").unwrap();
        assert_eq!(hotprof_files(root.path()).len(), 1);
        assert!(p.exists());
    }

    #[test]
    fn stale_temps_of_dead_processes_are_removed() {
        let root = tempfile::tempdir().unwrap();
        let dead = root.path().join(format!("{TEMP_PREFIX}999999999-abc"));
        let alive = root.path().join(format!("{TEMP_PREFIX}1-abc")); // pid 1 is alive
        fs::write(&dead, "partial").unwrap();
        fs::write(&alive, "in progress elsewhere").unwrap();
        // Folders too (earlier versions kept a scratch folder): a dead
        // process's, with what it left inside.
        let dead_scratch = root.path().join(format!("{TEMP_PREFIX}999999998-cpu"));
        fs::create_dir(&dead_scratch).unwrap();
        fs::write(dead_scratch.join(".tmpXYZ"), "buffer").unwrap();
        let alive_scratch = root.path().join(format!("{TEMP_PREFIX}1-cpu"));
        fs::create_dir(&alive_scratch).unwrap();
        assert_eq!(out(root.path()).prepare().unwrap(), 2);
        assert!(!dead.exists() && !dead_scratch.exists());
        assert!(alive.exists() && alive_scratch.is_dir());
    }

    #[test]
    fn unwritable_folder_is_a_clear_error() {
        let o = out(Path::new("/proc/hotprof-cannot-exist"));
        let e = o.write("threads", "txt", b"x").unwrap_err().to_string();
        assert!(e.starts_with("cannot create folder /proc/hotprof-cannot-exist"), "{e}");
    }
}
