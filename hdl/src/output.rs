//! Writing outputs so that nothing is lost or half-written: every command (and the library
//! writers) goes through here.
//!
//! - [`write_atomic`]: a file is written to a temporary file in the same directory, synced and
//!   renamed over the target; an existing target keeps its permission mode.
//! - [`StagedDir`]: a whole output directory is built in a sibling temporary directory and swapped
//!   in only when complete, so a failing command leaves what was there before.
//! - [`check_replaceable`]: an existing directory is replaced only when it holds an accelforge
//!   output (see [`is_accelforge_output`]), never a user's project, `.`, `/`, a file or a link.
//!
//! This lives in `hdl` because it is the one crate every writer (CLI, boards, templates, sim)
//! already depends on.

use std::path::{Path, PathBuf};

use crate::{HdlError, Result};

/// Marker file written into every accelforge output directory. Its presence is what lets
/// `--force` (and `demo`) replace the directory later.
pub const MARKER: &str = ".accelforge-output";

fn refuse(path: &Path, reason: impl Into<String>) -> HdlError {
    HdlError::Output {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Writes `bytes` to `path` via a temporary file in the same directory, an fsync and a rename,
/// so readers see the old contents or the new, never a mix. An existing file keeps its
/// permission mode (a temporary file is created 0600); a new one gets the usual mode under the
/// process umask.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = prepare(path, bytes)?;
    tmp.persist(path)
        .map_err(|e| HdlError::io("renaming into place", path, e.error))?;
    Ok(())
}

/// [`write_atomic`] for several files as one step: every file is written and synced beside its
/// target first, and only then are they renamed into place, so a failure while writing any of
/// them (a missing directory, a full disk) leaves all targets as they were.
pub fn write_atomic_all(files: &[(&Path, &[u8])]) -> Result<()> {
    let prepared = files
        .iter()
        .map(|(path, bytes)| prepare(path, bytes))
        .collect::<Result<Vec<_>>>()?;
    for (tmp, (path, _)) in prepared.into_iter().zip(files) {
        tmp.persist(path)
            .map_err(|e| HdlError::io("renaming into place", path, e.error))?;
    }
    Ok(())
}

/// The synced temporary file beside `path` holding `bytes`, with `path`'s mode if it exists.
fn prepare(path: &Path, bytes: &[u8]) -> Result<tempfile::NamedTempFile> {
    use std::io::Write as _;
    let dir = parent_of(path);
    if path.is_dir() {
        return Err(refuse(path, "it is a directory"));
    }
    let old_mode = std::fs::metadata(path).ok().map(|m| m.permissions());
    let mut builder = tempfile::Builder::new();
    builder.prefix(".accelforge-tmp-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        // Opened 0666 so the umask decides, as for any file a command writes.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder
        .tempfile_in(&dir)
        .map_err(|e| HdlError::io("creating a temporary file in", &dir, e))?;
    tmp.write_all(bytes)
        .map_err(|e| HdlError::io("writing", path, e))?;
    if let Some(perm) = old_mode {
        std::fs::set_permissions(tmp.path(), perm)
            .map_err(|e| HdlError::io("setting the mode of", path, e))?;
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| HdlError::io("syncing", path, e))?;
    Ok(tmp)
}

/// Whether `dir` holds an accelforge output: the [`MARKER`] file, a Zynq bundle's
/// `manifest.json` (generator `accelforge…`), or a sweep directory's `sweep.json`.
pub fn is_accelforge_output(dir: &Path) -> bool {
    if dir.join(MARKER).is_file() {
        return true;
    }
    let json = |name: &str| -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(dir.join(name)).ok()?;
        serde_json::from_str(&text).ok()
    };
    let bundle = json("manifest.json").is_some_and(|m| {
        m.get("generator")
            .and_then(|g| g.as_str())
            .is_some_and(|g| g.starts_with("accelforge"))
    });
    let sweep = json("sweep.json")
        .is_some_and(|m| m.get("fingerprint").is_some() && m.get("template").is_some());
    bundle || sweep
}

/// Checks that `dir` may be replaced: it does not exist, is an empty directory, or holds an
/// accelforge output. Refuses (naming the path and why) a symbolic link, a regular file, `/`,
/// the current directory or one of its ancestors, a directory holding `.git`, and any other
/// non-empty directory.
pub fn check_replaceable(dir: &Path) -> Result<()> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(HdlError::io("inspecting", dir, e)),
    };
    if meta.file_type().is_symlink() {
        return Err(refuse(
            dir,
            "it is a symbolic link; accelforge replaces only a real output directory (remove the link or choose another path)",
        ));
    }
    if !meta.is_dir() {
        return Err(refuse(
            dir,
            "it is a file, not an output directory (choose another path)",
        ));
    }
    let abs = std::fs::canonicalize(dir).map_err(|e| HdlError::io("resolving", dir, e))?;
    if abs.parent().is_none() {
        return Err(refuse(dir, "it is the root directory"));
    }
    if let Ok(cwd) = std::env::current_dir().and_then(std::fs::canonicalize)
        && cwd.starts_with(&abs)
    {
        return Err(refuse(
            dir,
            "it is the current directory or one of its parents (choose a subdirectory)",
        ));
    }
    if abs.join(".git").exists() {
        return Err(refuse(
            dir,
            "it holds `.git` (a repository, not an accelforge output)",
        ));
    }
    let mut entries = std::fs::read_dir(&abs).map_err(|e| HdlError::io("listing", dir, e))?;
    if entries.next().is_none() || is_accelforge_output(&abs) {
        return Ok(());
    }
    Err(refuse(
        dir,
        format!(
            "it is not empty and holds no accelforge output (no `{MARKER}`, bundle manifest.json or sweep.json); \
             choose a new or empty directory"
        ),
    ))
}

/// An output directory under construction: files go into a temporary directory beside the
/// target, and [`StagedDir::commit`] swaps it in. Dropped without commit, it leaves the target
/// as it was.
#[derive(Debug)]
pub struct StagedDir {
    target: PathBuf,
    tmp: tempfile::TempDir,
}

impl StagedDir {
    /// Starts building `target`. When `target` exists it must pass [`check_replaceable`], and
    /// `replace` must be true (else an error suggesting `--force`).
    pub fn new(target: &Path, replace: bool) -> Result<StagedDir> {
        if std::fs::symlink_metadata(target).is_ok() {
            if !replace {
                return Err(refuse(
                    target,
                    "it already exists; pass --force to replace it",
                ));
            }
            check_replaceable(target)?;
        }
        let parent = parent_of(target);
        std::fs::create_dir_all(&parent).map_err(|e| HdlError::io("creating", &parent, e))?;
        let tmp = tempfile::Builder::new()
            .prefix(".accelforge-new-")
            .tempdir_in(&parent)
            .map_err(|e| HdlError::io("creating a temporary directory in", &parent, e))?;
        Ok(StagedDir {
            target: target.to_path_buf(),
            tmp,
        })
    }

    /// Where to write the files now.
    pub fn path(&self) -> &Path {
        self.tmp.path()
    }

    /// The final location.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Writes the [`MARKER`] (naming `command`) and moves the directory into place, replacing
    /// the old one (moved aside first, restored if the swap fails).
    pub fn commit(self, command: &str) -> Result<()> {
        write_atomic(
            &self.tmp.path().join(MARKER),
            format!("accelforge {command}\n").as_bytes(),
        )?;
        let parent = parent_of(&self.target);
        // rename() cannot replace a non-empty directory: move the old one aside first.
        let backup = if std::fs::symlink_metadata(&self.target).is_ok() {
            let holder = tempfile::Builder::new()
                .prefix(".accelforge-old-")
                .tempdir_in(&parent)
                .map_err(|e| HdlError::io("creating a temporary directory in", &parent, e))?;
            let old = holder.path().join("old");
            std::fs::rename(&self.target, &old)
                .map_err(|e| HdlError::io("moving aside", &self.target, e))?;
            Some((holder, old))
        } else {
            None
        };
        let new = self.tmp.keep();
        if let Err(e) = std::fs::rename(&new, &self.target) {
            if let Some((_, old)) = &backup {
                let _ = std::fs::rename(old, &self.target);
            }
            let _ = std::fs::remove_dir_all(&new);
            return Err(HdlError::io("moving into place", &self.target, e));
        }
        // The holder (a TempDir) deletes the old output when dropped.
        drop(backup);
        Ok(())
    }
}

/// Writes the [`MARKER`] into an output directory written in place (e.g. `gen` without a
/// bundle), so a later `--force` recognises it.
pub fn mark(dir: &Path, command: &str) -> Result<()> {
    write_atomic(
        &dir.join(MARKER),
        format!("accelforge {command}\n").as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_an_output() {
        let t = tempfile::tempdir().expect("tempdir");
        let repo = t.path().join("repo");
        std::fs::create_dir_all(repo.join(".git")).expect("mkdir");
        let e = check_replaceable(&repo).expect_err("repo");
        assert!(e.to_string().contains(".git"), "{e}");
        let file = t.path().join("f.txt");
        std::fs::write(&file, "x").expect("write");
        assert!(
            check_replaceable(&file)
                .unwrap_err()
                .to_string()
                .contains("file")
        );
        let other = t.path().join("other");
        std::fs::create_dir(&other).expect("mkdir");
        std::fs::write(other.join("notes.txt"), "x").expect("write");
        assert!(check_replaceable(&other).is_err());
        assert!(check_replaceable(Path::new("/")).is_err());
        #[cfg(unix)]
        {
            let link = t.path().join("link");
            std::os::unix::fs::symlink(&other, &link).expect("symlink");
            assert!(
                check_replaceable(&link)
                    .unwrap_err()
                    .to_string()
                    .contains("link")
            );
        }
        mark(&other, "test").expect("mark");
        check_replaceable(&other).expect("marked output");
    }

    #[test]
    fn staged_dir_keeps_the_old_output_until_commit() {
        let t = tempfile::tempdir().expect("tempdir");
        let out = t.path().join("out");
        std::fs::create_dir(&out).expect("mkdir");
        mark(&out, "test").expect("mark");
        std::fs::write(out.join("old.txt"), "old").expect("write");
        {
            let s = StagedDir::new(&out, true).expect("staged");
            std::fs::write(s.path().join("new.txt"), "new").expect("write");
            // Dropped without commit.
        }
        assert!(out.join("old.txt").is_file());
        let s = StagedDir::new(&out, true).expect("staged");
        std::fs::write(s.path().join("new.txt"), "new").expect("write");
        s.commit("test").expect("commit");
        assert!(!out.join("old.txt").exists());
        assert!(out.join("new.txt").is_file());
        assert!(is_accelforge_output(&out));
        let leftovers: Vec<_> = std::fs::read_dir(t.path())
            .expect("ls")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
    }

    #[cfg(unix)]
    #[test]
    fn write_atomic_keeps_the_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let t = tempfile::tempdir().expect("tempdir");
        let f = t.path().join("data.json");
        std::fs::write(&f, "{}").expect("write");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        write_atomic(&f, b"{\"a\":1}").expect("write");
        let mode = std::fs::metadata(&f).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        // A new file gets the mode std::fs::write gives (0666 under the umask), not 0600.
        let g = t.path().join("new.json");
        write_atomic(&g, b"{}").expect("write");
        let plain = t.path().join("plain.json");
        std::fs::write(&plain, "{}").expect("write");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(&g), mode(&plain));
    }
}
