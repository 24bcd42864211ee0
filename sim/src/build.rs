//! Building a design with Verilator into a cached shared library.
//!
//! Layout of the cache root:
//! - `<key>/libafmodel.so` (+ `build.log`, `shim.cpp`): one finished design build;
//! - `runtime-<key>/*.o`: the Verilator runtime (`verilated.o`, ...), built once per Verilator
//!   version and flags, because Verilator 5.006 `--build` without `--exe` does not build it and
//!   recompiling it for every design would cost ~3 s each time;
//! - `locks/<key>.lock`: advisory locks so concurrent builders of the same key wait for each other;
//! - `.tmp-*`: in-progress builds, renamed into place atomically when complete.

use crate::error::{Result, SimError};
use crate::model::CompiledDesign;
use crate::shim;
use crate::spec::{BuildOptions, DesignSpec};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

/// File name of the built library inside a cache entry.
const LIB_NAME: &str = "libafmodel.so";

/// Runtime objects linked into every model.
const RUNTIME_OBJECTS: [&str; 3] = ["verilated.o", "verilated_threads.o", "verilated_vcd_c.o"];

/// Flags for every C++ file (model, shim and runtime).
///
/// - `-fPIC`: the objects go into a shared library.
/// - `-fno-semantic-interposition`: without it GCC may not inline across the model's global
///   functions under `-fPIC`, which would cost speed against a plain executable.
/// - `-DVL_USER_*`: replace Verilator's `$finish`/`$stop`/fatal handlers (which call
///   `exit`/`abort`) with the shim's, so a misbehaving design cannot kill the host process.
const CFLAGS: [&str; 5] = [
    "-fPIC",
    "-fno-semantic-interposition",
    "-DVL_USER_FINISH",
    "-DVL_USER_STOP",
    "-DVL_USER_FATAL",
];

/// The cache root: `opts.cache_dir`, else `$ACCELFORGE_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/accelforge/verilator`, else `~/.cache/accelforge/verilator`.
pub fn cache_dir(opts: &BuildOptions) -> Result<PathBuf> {
    if let Some(dir) = &opts.cache_dir {
        return Ok(dir.clone());
    }
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(dir) = env("ACCELFORGE_CACHE_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = env("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("accelforge").join("verilator"));
    }
    if let Some(home) = env("HOME") {
        return Ok(PathBuf::from(home)
            .join(".cache")
            .join("accelforge")
            .join("verilator"));
    }
    Err(SimError::NoCacheDir)
}

/// Deletes every cached build under the cache root selected by `opts`.
///
/// Libraries already loaded stay usable (Linux keeps unlinked files alive). Do not run this while
/// another process is building into the same cache.
pub fn clear_cache(opts: &BuildOptions) -> Result<()> {
    let dir = cache_dir(opts)?;
    match fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(SimError::Io {
            action: "remove cache directory",
            path: dir,
            source,
        }),
    }
}

/// The output of `verilator --version`, e.g. `Verilator 5.006 2023-01-22 rev (Debian 5.006-3)`.
///
/// Fails with [`SimError::ToolMissing`] when Verilator is not installed and
/// [`SimError::ToolTooOld`] when it is older than 5.0. Memoised per executable path.
pub fn verilator_version(verilator: &Path) -> Result<String> {
    static VERSIONS: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
    let memo = VERSIONS.get_or_init(|| Mutex::new(HashMap::new()));
    if let Ok(map) = memo.lock()
        && let Some(v) = map.get(verilator)
    {
        return Ok(v.clone());
    }
    let tool = verilator.display().to_string();
    let out = Command::new(verilator)
        .arg("--version")
        .output()
        .map_err(|source| tool_missing(&tool, source))?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || !version.starts_with("Verilator ") {
        return Err(tool_missing(
            &tool,
            std::io::Error::other(format!(
                "`--version` printed `{version}` and exited with {}",
                out.status
            )),
        ));
    }
    let major: u32 = version
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.split('.').next())
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 5 {
        return Err(SimError::ToolTooOld { tool, version });
    }
    if let Ok(mut map) = memo.lock() {
        map.insert(verilator.to_path_buf(), version.clone());
    }
    Ok(version)
}

/// Hashes length-prefixed fields so that no two different inputs share a byte stream.
struct KeyHasher(Sha256);

impl KeyHasher {
    fn new(domain: &str) -> Self {
        let mut h = KeyHasher(Sha256::new());
        h.field(domain);
        h
    }
    fn field(&mut self, s: &str) {
        self.0.update((s.len() as u64).to_le_bytes());
        self.0.update(s.as_bytes());
    }
    fn finish(self) -> String {
        // 32 hex digits are plenty for a local cache and keep paths short.
        hex::encode(&self.0.finalize()[..16])
    }
}

fn runtime_key(version: &str, opts: &BuildOptions) -> String {
    let mut h = KeyHasher::new("accelforge-sim runtime v1");
    h.field(version);
    h.field(&opts.opt_fast);
    for f in CFLAGS {
        h.field(f);
    }
    h.finish()
}

/// The cache key of a design build: everything that can change the built library.
pub(crate) fn design_key(spec: &DesignSpec, opts: &BuildOptions, version: &str) -> String {
    let mut h = KeyHasher::new("accelforge-sim design v1");
    h.field(env!("CARGO_PKG_VERSION"));
    h.field(&shim::SHIM_ABI.to_string());
    h.field(version);
    h.field(&spec.top);
    h.field(&spec.sources.len().to_string());
    for (name, text) in &spec.sources {
        h.field(name);
        h.field(text);
    }
    // Ports (order = shim indices) and the clock shape the generated shim.
    h.field(&spec.ports.len().to_string());
    for p in &spec.ports {
        h.field(&p.name);
        h.field(&p.width.to_string());
        h.field(&format!("{:?}", p.dir));
    }
    h.field(spec.clock.as_deref().unwrap_or(""));
    h.field(if opts.trace { "trace" } else { "notrace" });
    h.field(&opts.opt_fast);
    h.field(if opts.warnings_fatal {
        "wfatal"
    } else {
        "wnofatal"
    });
    for a in &opts.extra_verilator_args {
        h.field(a);
    }
    for f in CFLAGS {
        h.field(f);
    }
    h.finish()
}

fn io_err(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> SimError {
    let path = path.to_path_buf();
    move |source| SimError::Io {
        action,
        path,
        source,
    }
}

/// Holds an exclusive advisory lock on `locks/<key>.lock` for its lifetime.
struct KeyLock {
    _file: fs::File,
}

impl KeyLock {
    fn acquire(root: &Path, key: &str) -> Result<Self> {
        let dir = root.join("locks");
        fs::create_dir_all(&dir).map_err(io_err("create lock directory", &dir))?;
        let path = dir.join(format!("{key}.lock"));
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err("open lock file", &path))?;
        // flock semantics: also excludes other threads of this process, since each call opens
        // its own file description.
        file.lock().map_err(io_err("lock", &path))?;
        Ok(Self { _file: file })
    }
}

/// How to install a missing tool.
fn install_hint(tool: &str) -> String {
    if tool == "make" || tool == "g++" {
        "install it with `apt-get install make g++` (needed to compile Verilated models)"
            .to_string()
    } else {
        "install it with `apt-get install verilator` (Verilator >= 5.0 is required) or set BuildOptions::verilator to its path".to_string()
    }
}

fn tool_missing(tool: &str, source: std::io::Error) -> SimError {
    SimError::ToolMissing {
        tool: tool.to_string(),
        hint: install_hint(tool),
        source,
    }
}

/// Runs a command, returning its output; a program that cannot be started becomes `ToolMissing`.
fn run(cmd: &mut Command, tool: &str) -> Result<Output> {
    cmd.output().map_err(|source| tool_missing(tool, source))
}

fn combined_log(out: &Output) -> String {
    let mut log = String::from_utf8_lossy(&out.stdout).into_owned();
    log.push_str(&String::from_utf8_lossy(&out.stderr));
    log
}

fn tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Builds (or fetches from the cache) and loads a design.
pub fn build(spec: &DesignSpec, opts: &BuildOptions) -> Result<CompiledDesign> {
    spec.validate()?;
    let version = verilator_version(&opts.verilator)?;
    let root = cache_dir(opts)?;
    let key = design_key(spec, opts, &version);
    let entry = root.join(&key);
    let lib = entry.join(LIB_NAME);

    // Fast path: entries appear only by atomic rename, so an existing library is complete.
    if lib.is_file() {
        return CompiledDesign::load(spec.clone(), opts.trace, lib, true);
    }

    fs::create_dir_all(&root).map_err(io_err("create cache directory", &root))?;
    let _lock = KeyLock::acquire(&root, &key)?;
    if lib.is_file() {
        // Someone else built it while we waited for the lock.
        return CompiledDesign::load(spec.clone(), opts.trace, lib, true);
    }
    sweep_stale_temp_dirs(&root);
    let runtime = ensure_runtime(&root, opts, &version, spec)?;

    let tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempdir_in(&root)
        .map_err(io_err("create temporary build directory", &root))?;
    let out_dir = tmp.path().join("out");
    fs::create_dir_all(&out_dir).map_err(io_err("create directory", &out_dir))?;
    let obj = verilate(spec, opts, tmp.path())?;
    compile_model(spec, opts, &obj, &out_dir)?;
    link(spec, &obj, &runtime, &out_dir.join(LIB_NAME))?;
    fs::rename(&out_dir, &entry).map_err(io_err("move finished build into", &entry))?;
    drop(tmp);
    CompiledDesign::load(spec.clone(), opts.trace, lib, false)
}

/// Best-effort removal of `.tmp-*` build directories left by killed processes. Only old ones:
/// a young one may be another process's build in progress.
fn sweep_stale_temp_dirs(root: &Path) {
    const STALE: std::time::Duration = std::time::Duration::from_secs(6 * 3600);
    let Ok(entries) = fs::read_dir(root) else {
        return;
    };
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE);
        if old && e.file_name().to_string_lossy().starts_with(".tmp-") {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Writes the sources and runs `verilator --cc`, returning the object directory.
fn verilate(spec: &DesignSpec, opts: &BuildOptions, work: &Path) -> Result<PathBuf> {
    let src = work.join("src");
    fs::create_dir_all(&src).map_err(io_err("create directory", &src))?;
    let mut files = Vec::new();
    for (name, text) in &spec.sources {
        let path = src.join(name);
        fs::write(&path, text).map_err(io_err("write Verilog source", &path))?;
        files.push(path);
    }
    let obj = work.join("obj");
    let mut cmd = Command::new(&opts.verilator);
    cmd.arg("--cc")
        .arg("--Mdir")
        .arg(&obj)
        .arg("--top-module")
        .arg(&spec.top)
        .arg("-O3");
    if !opts.warnings_fatal {
        cmd.arg("-Wno-fatal");
    }
    if opts.trace {
        cmd.arg("--trace");
    }
    for f in CFLAGS {
        cmd.arg("-CFLAGS").arg(f);
    }
    cmd.args(&opts.extra_verilator_args).args(&files);
    let out = run(&mut cmd, &opts.verilator.display().to_string())?;
    let log = combined_log(&out);
    let _ = fs::write(work.join("out").join("verilator.log"), &log);
    if !out.status.success() {
        // Strip the temporary directory so messages read `file.v:2:14: ...`.
        let prefix = format!("{}/", src.display());
        let mut errors: Vec<String> = log
            .lines()
            .filter(|l| l.starts_with("%Error"))
            .map(|l| l.replace(&prefix, ""))
            .collect();
        if errors.is_empty() {
            errors.push(tail(&log, 30));
        }
        return Err(SimError::VerilatorFailed {
            top: spec.top.clone(),
            errors,
        });
    }
    let header_path = obj.join(format!("V{}.h", spec.top));
    let header = fs::read_to_string(&header_path).map_err(io_err("read", &header_path))?;
    shim::check_ports(spec, &shim::parse_header_ports(&header))?;
    Ok(obj)
}

fn make_cmd(spec: &DesignSpec, opts: &BuildOptions, obj: &Path) -> Command {
    let mut cmd = Command::new("make");
    cmd.arg("-s")
        .arg("-C")
        .arg(obj)
        .arg("-f")
        .arg(format!("V{}.mk", spec.top))
        .arg(format!("-j{}", opts.jobs.max(1)))
        .arg(format!("OPT_FAST={}", opts.opt_fast));
    cmd
}

fn compile_model(spec: &DesignSpec, opts: &BuildOptions, obj: &Path, out: &Path) -> Result<()> {
    let header_path = obj.join(format!("V{}.h", spec.top));
    let header = fs::read_to_string(&header_path).map_err(io_err("read", &header_path))?;
    let shim_src = shim::generate(spec, opts.trace, &shim::parse_header_ports(&header));
    let shim_path = obj.join("af_shim.cpp");
    fs::write(&shim_path, &shim_src).map_err(io_err("write shim", &shim_path))?;
    let _ = fs::write(out.join("af_shim.cpp"), &shim_src);
    let mut cmd = make_cmd(spec, opts, obj);
    cmd.arg(format!("V{}__ALL.a", spec.top)).arg("af_shim.o");
    let res = run(&mut cmd, "make")?;
    let log = combined_log(&res);
    let _ = fs::write(out.join("build.log"), &log);
    if !res.status.success() {
        return Err(SimError::CompileFailed {
            top: spec.top.clone(),
            stage: "model compile".into(),
            log_tail: tail(&log, 40),
        });
    }
    Ok(())
}

/// Returns the directory holding the runtime objects, building them if needed.
///
/// Built with the current design's makefile (any design will do: the runtime does not depend on
/// it), then published with the same lock + temp dir + rename scheme as designs.
fn ensure_runtime(
    root: &Path,
    opts: &BuildOptions,
    version: &str,
    spec: &DesignSpec,
) -> Result<PathBuf> {
    let key = format!("runtime-{}", runtime_key(version, opts));
    let dir = root.join(&key);
    let complete = |d: &Path| RUNTIME_OBJECTS.iter().all(|o| d.join(o).is_file());
    if complete(&dir) {
        return Ok(dir);
    }
    let _lock = KeyLock::acquire(root, &key)?;
    if complete(&dir) {
        return Ok(dir);
    }
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-rt-")
        .tempdir_in(root)
        .map_err(io_err("create temporary build directory", root))?;
    // A throwaway verilation just to get a makefile with the right flags.
    let mut rt_spec = spec.clone();
    rt_spec.sources = vec![(
        "af_rt.v".to_string(),
        "module af_rt(input wire clk); endmodule\n".to_string(),
    )];
    rt_spec.top = "af_rt".to_string();
    rt_spec.ports = vec![crate::spec::PortSpec::input("clk", 1)];
    rt_spec.clock = Some("clk".into());
    rt_spec.reset = None;
    fs::create_dir_all(tmp.path().join("out"))
        .map_err(io_err("create directory", &tmp.path().join("out")))?;
    let rt_opts = BuildOptions {
        trace: false,
        extra_verilator_args: Vec::new(),
        ..opts.clone()
    };
    let obj = verilate(&rt_spec, &rt_opts, tmp.path())?;
    let mut cmd = make_cmd(&rt_spec, &rt_opts, &obj);
    cmd.args(RUNTIME_OBJECTS);
    let res = run(&mut cmd, "make")?;
    if !res.status.success() {
        return Err(SimError::CompileFailed {
            top: spec.top.clone(),
            stage: "Verilator runtime compile".into(),
            log_tail: tail(&combined_log(&res), 40),
        });
    }
    let out = tmp.path().join("runtime");
    fs::create_dir_all(&out).map_err(io_err("create directory", &out))?;
    for o in RUNTIME_OBJECTS {
        fs::rename(obj.join(o), out.join(o)).map_err(io_err("move runtime object", &out))?;
    }
    fs::rename(&out, &dir).map_err(io_err("move runtime into", &dir))?;
    Ok(dir)
}

fn link(spec: &DesignSpec, obj: &Path, runtime: &Path, lib: &Path) -> Result<()> {
    // Export only the shim's entry points: each loaded library then keeps its own private copy
    // of the Verilator runtime, so different designs in one process cannot bind to each other's
    // globals.
    let map = obj.join("af_exports.map");
    fs::write(&map, "{ global: af_*; local: *; };\n").map_err(io_err("write", &map))?;
    let mut cmd = Command::new("g++");
    cmd.arg("-shared")
        .arg("-o")
        .arg(lib)
        .arg(format!("-Wl,--version-script={}", map.display()))
        .arg("-Wl,-z,defs")
        .arg(obj.join("af_shim.o"))
        .arg(obj.join(format!("V{}__ALL.a", spec.top)));
    for o in RUNTIME_OBJECTS {
        cmd.arg(runtime.join(o));
    }
    cmd.args(["-pthread", "-latomic"]);
    let res = run(&mut cmd, "g++")?;
    if !res.status.success() {
        return Err(SimError::CompileFailed {
            top: spec.top.clone(),
            stage: "link".into(),
            log_tail: tail(&combined_log(&res), 40),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_changes_with_inputs() {
        let spec = DesignSpec::new("t")
            .source("t.v", "module t(input clk); endmodule")
            .input("clk", 1);
        let o = BuildOptions::default();
        let k = design_key(&spec, &o, "Verilator 5.006");
        assert_eq!(k, design_key(&spec, &o, "Verilator 5.006"));
        assert_ne!(k, design_key(&spec, &o, "Verilator 5.008"));
        assert_ne!(
            k,
            design_key(&spec, &BuildOptions::with_trace(true), "Verilator 5.006")
        );
        let mut s2 = spec.clone();
        s2.sources[0].1.push(' ');
        assert_ne!(k, design_key(&s2, &o, "Verilator 5.006"));
    }

    #[test]
    fn cache_dir_prefers_explicit_option() {
        let o = BuildOptions {
            cache_dir: Some(PathBuf::from("/x/y")),
            ..BuildOptions::default()
        };
        assert_eq!(cache_dir(&o).ok(), Some(PathBuf::from("/x/y")));
    }
}
