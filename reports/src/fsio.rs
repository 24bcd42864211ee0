//! File helpers: whole files are written to a temporary file in the target directory and
//! renamed into place, so a reader (or a crash) never sees half a file.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use crate::error::{ReportError, Result, io_err};

/// A file being written; it appears under its final name only on [`AtomicFile::commit`].
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    tmp: std::io::BufWriter<tempfile::NamedTempFile>,
}

impl AtomicFile {
    /// Starts writing `path` (its directory must exist).
    pub fn create(path: &Path) -> Result<Self> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let tmp = tempfile::Builder::new()
            .prefix(".tmp-")
            .tempfile_in(dir)
            .map_err(io_err("creating a temporary file for", path))?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            tmp: std::io::BufWriter::new(tmp),
        })
    }

    /// Appends bytes.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.tmp
            .write_all(bytes)
            .map_err(io_err("writing", &self.path))
    }

    /// Flushes and renames into place.
    pub fn commit(self) -> Result<()> {
        let path = self.path;
        let tmp = self
            .tmp
            .into_inner()
            .map_err(|e| io_err("writing", &path)(e.into_error()))?;
        // Temporary files are created private (0600); a result file should be as readable as
        // any file the user creates.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            tmp.as_file()
                .set_permissions(std::fs::Permissions::from_mode(0o644))
                .map_err(io_err("setting permissions of", &path))?;
        }
        tmp.persist(&path)
            .map_err(|e| io_err("renaming into place", &path)(e.error))?;
        Ok(())
    }
}

/// Writes a whole file atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(path)?;
    f.write(bytes)?;
    f.commit()
}

/// Writes pretty JSON atomically (with a final newline).
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let mut text = serde_json::to_string_pretty(value).map_err(|e| ReportError::Parse {
        path: path.to_path_buf(),
        line: None,
        reason: e.to_string(),
    })?;
    text.push('\n');
    write_atomic(path, text.as_bytes())
}

/// Reads and parses a JSON file.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(io_err("reading", path))?;
    serde_json::from_str(&text).map_err(|e| ReportError::Parse {
        path: path.to_path_buf(),
        line: None,
        reason: e.to_string(),
    })
}

/// Calls `f(line_number, line)` for every complete line of a JSON-lines file. A final line
/// without its newline is what a killed writer leaves behind: it is skipped, not an error
/// (the point will be evaluated again on resume).
pub fn for_each_line(path: &Path, mut f: impl FnMut(u64, &str) -> Result<()>) -> Result<()> {
    let file = std::fs::File::open(path).map_err(io_err("reading", path))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut line = String::new();
    let mut number = 0u64;
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(io_err("reading", path))?;
        if n == 0 || !line.ends_with('\n') {
            return Ok(());
        }
        number += 1;
        let text = line.trim_end();
        if !text.is_empty() {
            f(number, text)?;
        }
    }
}
