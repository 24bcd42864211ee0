//! The board database: built-in boards compiled into the binary, optionally overridden or
//! extended by a user directory of TOML files.

use std::path::{Path, PathBuf};

use crate::board::{Board, parse_board};
use crate::error::{BoardError, Result};

/// Environment variable naming a directory of user board files.
pub const BOARDS_DIR_ENV: &str = "ACCELFORGE_BOARDS_DIR";

/// The built-in board files, embedded so the binary works without the source tree.
const BUILTIN: &[(&str, &str)] = &[
    ("pynq-z1", include_str!("../boards/pynq-z1.toml")),
    ("pynq-z2", include_str!("../boards/pynq-z2.toml")),
    ("zybo-z7-10", include_str!("../boards/zybo-z7-10.toml")),
    ("zybo-z7-20", include_str!("../boards/zybo-z7-20.toml")),
    ("zedboard", include_str!("../boards/zedboard.toml")),
    ("cora-z7-07s", include_str!("../boards/cora-z7-07s.toml")),
    ("ultra96-v2", include_str!("../boards/ultra96-v2.toml")),
    ("kv260", include_str!("../boards/kv260.toml")),
    ("zcu104", include_str!("../boards/zcu104.toml")),
    ("zcu102", include_str!("../boards/zcu102.toml")),
];

/// The raw text of every built-in board file, as `(name, toml)`.
pub fn builtin_sources() -> &'static [(&'static str, &'static str)] {
    BUILTIN
}

/// Where a board definition came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "path", rename_all = "lowercase")]
pub enum Origin {
    /// Compiled into the binary.
    BuiltIn,
    /// Read from a user board file.
    User(PathBuf),
}

/// A board and where it came from.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The validated board.
    pub board: Board,
    /// Its origin.
    pub origin: Origin,
}

/// A collection of validated boards with tolerant lookup by name.
#[derive(Debug, Clone)]
pub struct BoardDb {
    entries: Vec<Entry>,
    notes: Vec<String>,
    broken: Vec<BrokenFile>,
}

/// A user board file that failed to load. One bad file must not break every command: it is
/// skipped, listed as a warning, and an error only when its board is asked for.
#[derive(Debug, Clone)]
pub struct BrokenFile {
    /// The file.
    pub file: PathBuf,
    /// Why it was skipped (the load error's message).
    pub problem: String,
}

/// Lookup key: lowercase with `_`, `-`, spaces and dots dropped, so `PYNQ-Z2`, `pynq_z2`,
/// `pynq z2` and `pynqz2` all meet.
pub fn lookup_key(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' ' | '.' | '\t'))
        .flat_map(char::to_lowercase)
        .collect()
}

impl BoardDb {
    /// The built-in boards only.
    pub fn builtin() -> Result<Self> {
        let mut entries = Vec::with_capacity(BUILTIN.len());
        for (name, text) in BUILTIN {
            let file = format!("built-in:{name}.toml");
            let board = parse_board(text, &file)?;
            check_stem(&board, name, &file)?;
            entries.push(Entry {
                board,
                origin: Origin::BuiltIn,
            });
        }
        Ok(Self {
            entries,
            notes: Vec::new(),
            broken: Vec::new(),
        })
    }

    /// Built-ins plus the user directory chosen by `flag_dir`, or else by the
    /// `ACCELFORGE_BOARDS_DIR` environment variable (an empty value counts as unset). The flag
    /// wins over the variable so one command can be pointed elsewhere without unsetting it.
    pub fn load(flag_dir: Option<&Path>) -> Result<Self> {
        let env_dir = std::env::var_os(BOARDS_DIR_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        let mut db = Self::builtin()?;
        if let Some(dir) = flag_dir.map(Path::to_path_buf).or(env_dir) {
            db.add_user_dir(&dir)?;
        }
        Ok(db)
    }

    /// Adds every `*.toml` file in `dir` (not recursive, sorted by file name). A user board
    /// whose name equals an existing board replaces it, and a note saying so is recorded (see
    /// [`BoardDb::notes`]). The file stem must equal the board's `name`, so "same name" means
    /// the same thing for the file and for the board.
    pub fn add_user_dir(&mut self, dir: &Path) -> Result<()> {
        let read_dir = std::fs::read_dir(dir).map_err(|source| BoardError::ReadDir {
            dir: dir.to_path_buf(),
            source,
        })?;
        let mut files = Vec::new();
        for item in read_dir {
            let item = item.map_err(|source| BoardError::ReadDir {
                dir: dir.to_path_buf(),
                source,
            })?;
            let path = item.path();
            if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
                files.push(path);
            }
        }
        files.sort();
        let mut seen: Vec<(String, PathBuf)> = Vec::new();
        for path in files {
            match Self::read_user_file(&path, &seen) {
                Ok(board) => {
                    seen.push((lookup_key(&board.name), path.clone()));
                    self.insert(board, Origin::User(path));
                }
                Err(e) => self.broken.push(BrokenFile {
                    file: path,
                    problem: e.to_string(),
                }),
            }
        }
        Ok(())
    }

    fn read_user_file(path: &Path, seen: &[(String, PathBuf)]) -> Result<Board> {
        let text = std::fs::read_to_string(path).map_err(|source| BoardError::ReadFile {
            file: path.to_path_buf(),
            source,
        })?;
        let file = path.display().to_string();
        let board = parse_board(&text, &file)?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        check_stem(&board, &stem, &file)?;
        let key = lookup_key(&board.name);
        if let Some((_, first)) = seen.iter().find(|(k, _)| *k == key) {
            return Err(BoardError::Duplicate {
                name: board.name.clone(),
                first: first.display().to_string(),
                second: file,
            });
        }
        Ok(board)
    }

    /// User board files that were skipped because they failed to load, for `boards list` to
    /// warn about.
    pub fn broken(&self) -> &[BrokenFile] {
        &self.broken
    }

    fn insert(&mut self, board: Board, origin: Origin) {
        let key = lookup_key(&board.name);
        if let Some(slot) = self
            .entries
            .iter_mut()
            .find(|e| lookup_key(&e.board.name) == key)
        {
            let what = match (&slot.origin, &origin) {
                (Origin::BuiltIn, Origin::User(p)) => {
                    format!(
                        "user board file {} overrides built-in board `{}`",
                        p.display(),
                        board.name
                    )
                }
                (_, Origin::User(p)) => {
                    format!(
                        "user board file {} replaces board `{}`",
                        p.display(),
                        board.name
                    )
                }
                (_, Origin::BuiltIn) => format!("board `{}` redefined", board.name),
            };
            self.notes.push(what);
            *slot = Entry { board, origin };
        } else {
            self.entries.push(Entry { board, origin });
        }
    }

    /// Messages about overrides, for the CLI to print on stderr.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// All boards, built-ins first in their fixed order, then user boards in file-name order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// All boards.
    pub fn boards(&self) -> impl Iterator<Item = &Board> {
        self.entries.iter().map(|e| &e.board)
    }

    /// Known board names, comma-separated (for messages).
    pub fn known_names(&self) -> String {
        self.boards()
            .map(|b| b.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Finds a board by name or display name, ignoring case, `_`, `-`, dots and spaces.
    pub fn entry(&self, name: &str) -> Result<&Entry> {
        let key = lookup_key(name);
        // A broken user file for this name wins over a built-in of the same name: the user
        // meant their file, and silently using the built-in would hide the mistake.
        if let Some(b) = self.broken.iter().find(|b| {
            !key.is_empty()
                && b.file
                    .file_stem()
                    .is_some_and(|s| lookup_key(&s.to_string_lossy()) == key)
        }) {
            return Err(BoardError::BrokenFile {
                name: name.to_string(),
                file: b.file.display().to_string(),
                problem: b.problem.clone(),
            });
        }
        let found = if key.is_empty() {
            None
        } else {
            self.entries.iter().find(|e| {
                lookup_key(&e.board.name) == key || lookup_key(&e.board.display_name) == key
            })
        };
        found.ok_or_else(|| BoardError::UnknownBoard {
            name: name.to_string(),
            known: self.known_names(),
        })
    }

    /// Finds a board by name (see [`BoardDb::entry`]).
    pub fn get(&self, name: &str) -> Result<&Board> {
        self.entry(name).map(|e| &e.board)
    }
}

fn check_stem(board: &Board, stem: &str, file: &str) -> Result<()> {
    if lookup_key(stem) != lookup_key(&board.name) {
        return Err(BoardError::Invalid {
            file: file.to_string(),
            key: "name".into(),
            problem: format!(
                "`{}` must match the file name `{stem}.toml` (the file name is how overrides are matched)",
                board.name
            ),
        });
    }
    Ok(())
}

/// A built-in board by name; convenience for code that needs no user boards.
pub fn builtin_board(name: &str) -> Result<Board> {
    BoardDb::builtin()?.get(name).cloned()
}
