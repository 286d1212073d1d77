//! Writing files so that nothing already written is lost.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so
/// a crash or a full disk leaves either the old file or the new one, never half of one.
///
/// The temporary file is `.NAME.tmp-PID`. A process killed mid-write leaves its one
/// behind; the next write of the same file removes every such file whose process has
/// ended, so they cannot pile up.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |tmp| {
        let mut file = std::fs::File::create(tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", tmp.display()))
    })
}

/// [`write_atomic`] for writers that can only write to a path of their own (dfdx's
/// safetensors saver): `write` fills the temporary file, which is then renamed.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?;
    let prefix = format!(".{}.tmp-", name.to_string_lossy());
    remove_stale_temporaries(dir, &prefix);
    let tmp = dir.join(format!("{prefix}{}", std::process::id()));
    let result = write(&tmp).and_then(|()| {
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Removes the files `PREFIX<pid>` in `dir` that an earlier, ended process left behind.
/// Best effort: a file that cannot be listed or removed is left where it is.
fn remove_stale_temporaries(dir: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix(prefix))
            .and_then(|pid| pid.parse::<u32>().ok());
        if pid.is_some_and(|pid| pid != std::process::id() && !process_runs(pid)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether process `pid` still runs, as `/proc` tells (Linux). Where there is no `/proc`,
/// every other writer counts as ended: a concurrent write of the same file then fails at
/// its rename, with an error, and the file keeps its last whole version.
fn process_runs(pid: u32) -> bool {
    let proc = Path::new("/proc");
    proc.join("self").exists() && proc.join(pid.to_string()).exists()
}

/// Serializes `value` as pretty JSON and writes it atomically.
pub fn write_json(path: &Path, value: &impl serde::Serialize) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Reads and parses a JSON file, naming it in any error.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("vae-io-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Names in `dir` other than `keep`: a temporary file left behind would show here.
    fn others(dir: &Path, keep: &str) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != keep)
            .collect()
    }

    #[test]
    fn a_write_replaces_the_file_whole_and_leaves_nothing_else() {
        let dir = temp_dir("replace");
        let path = dir.join("model.vae");
        write_atomic(&path, b"old contents").unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(others(&dir, "model.vae"), Vec::<String>::new());
    }

    #[test]
    fn a_failed_write_keeps_what_was_there_and_removes_its_temporary_file() {
        // The rename fails (a non-empty folder stands where the file goes), after the
        // temporary file was written in full.
        let dir = temp_dir("fail");
        let path = dir.join("model.vae");
        std::fs::create_dir_all(path.join("inside")).unwrap();
        let err = write_atomic(&path, b"new").unwrap_err();
        assert!(format!("{err:#}").contains("cannot move"), "{err:#}");
        assert!(path.join("inside").is_dir());
        assert_eq!(others(&dir, "model.vae"), Vec::<String>::new());

        // A folder that cannot be created in: nothing is written, the error names it.
        let err = write_atomic(Path::new("/proc/version/x.vae"), b"new").unwrap_err();
        assert!(format!("{err:#}").contains("cannot create"), "{err:#}");
    }

    #[test]
    fn a_write_removes_what_killed_writes_of_the_same_file_left_behind() {
        let dir = temp_dir("stale");
        // The process id of a process that has ended, and of one that runs (the test
        // runner's parent).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let ended = child.id();
        child.wait().unwrap();
        let running = std::os::unix::process::parent_id();
        let left = [
            format!(".model.vae.tmp-{ended}"),
            format!(".model.vae.tmp-{running}"),
            format!(".other.vae.tmp-{ended}"),
        ];
        for name in &left {
            std::fs::write(dir.join(name), b"half a file").unwrap();
        }
        write_atomic(&dir.join("model.vae"), b"new").unwrap();
        let mut found = others(&dir, "model.vae");
        found.sort();
        // The ended writer's file of the same name is gone; a running writer's and
        // another file's temporaries are not this write's business.
        assert_eq!(found, [left[1].clone(), left[2].clone()]);
    }
}
