//! Reading .npy files given on the command line: the header is checked against the file before
//! the reader allocates what it declares, and the common mistakes get one plain message.

use std::path::Path;

use anyhow::Context;

/// A file that is not .npy at all (empty, or another format) gets one plain message instead of
/// the reader's "failed to fill whole buffer".
pub(crate) fn check_magic(bytes: &[u8]) -> anyhow::Result<()> {
    const MAGIC: &[u8] = b"\x93NUMPY";
    if bytes.is_empty() {
        anyhow::bail!("not a .npy file: empty");
    }
    if !bytes.starts_with(MAGIC) {
        anyhow::bail!("not a .npy file: it does not start with the .npy magic `\\x93NUMPY`");
    }
    Ok(())
}

/// The reader allocates what the header declares before reading the data, so a header that
/// claims 2^40 elements aborted the process. Refuse a header whose shape and element size ask
/// for more bytes than the file holds (or than the simulation bound on elements) first.
pub(crate) fn check_size_matches_header(bytes: &[u8]) -> anyhow::Result<()> {
    let bad = |why: &str| anyhow::anyhow!("not a valid .npy file: {why}");
    let version = *bytes
        .get(6)
        .ok_or_else(|| bad("truncated before its version"))?;
    let (len_bytes, start) = if version == 1 { (2, 10) } else { (4, 12) };
    let len_field = bytes
        .get(8..8 + len_bytes)
        .ok_or_else(|| bad("truncated header"))?;
    let header_len = len_field
        .iter()
        .rev()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
    let header = bytes
        .get(start..start + header_len)
        .ok_or_else(|| bad("the header is longer than the file"))?;
    let header = std::str::from_utf8(header).map_err(|_| bad("the header is not text"))?;
    let field = |key: &str| -> anyhow::Result<&str> {
        let at = header
            .find(&format!("'{key}'"))
            .ok_or_else(|| bad(&format!("the header has no '{key}'")))?;
        Ok(header[at + key.len() + 2..]
            .trim_start()
            .trim_start_matches(':')
            .trim_start())
    };
    let descr = field("descr")?;
    let item_bytes: u64 = descr
        .trim_start_matches(['\'', '"'])
        .chars()
        .skip(2)
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .map_err(|_| {
            bad(&format!(
                "unsupported dtype {}",
                descr.split(',').next().unwrap_or("")
            ))
        })?;
    let shape = field("shape")?;
    let inner = shape
        .strip_prefix('(')
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("the shape is not a tuple"))?;
    let mut elements: u64 = 1;
    for dim in inner.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let n: u64 = dim
            .parse()
            .map_err(|_| bad(&format!("shape entry `{dim}` is not a size")))?;
        elements = elements
            .checked_mul(n)
            .ok_or_else(|| bad(&format!("shape ({inner}) overflows")))?;
    }
    let bound = accelforge_templates::limits::MAX_SIM_ELEMENTS;
    if elements > bound {
        anyhow::bail!(
            "the .npy header declares {elements} elements (shape ({inner})), above the bound of \
             {bound} elements this command loads"
        );
    }
    let need = elements.saturating_mul(item_bytes);
    let have = (bytes.len() - (start + header_len)) as u64;
    if need > have {
        anyhow::bail!(
            "the .npy header declares shape ({inner}) = {elements} elements of {item_bytes} \
             bytes ({need} bytes), but the file holds only {have} bytes of data: it is truncated \
             or its header is wrong"
        );
    }
    Ok(())
}

pub(crate) fn read<A: ndarray_npy::ReadableElement>(
    bytes: &[u8],
) -> Result<ndarray::ArrayD<A>, ndarray_npy::ReadNpyError> {
    use ndarray_npy::ReadNpyExt;
    ndarray::ArrayD::<A>::read_npy(bytes)
}

/// A float32 array of any shape, checked as above; another dtype is an error naming it.
pub(crate) fn read_f32(path: &Path, what: &str) -> anyhow::Result<ndarray::ArrayD<f32>> {
    let bytes = read_checked(path)?;
    match read::<f32>(&bytes) {
        Ok(a) => Ok(a),
        Err(ndarray_npy::ReadNpyError::WrongDescriptor(d)) => anyhow::bail!(
            "reading {}: {what} must be float32 (numpy dtype '<f4'), the file holds {}",
            path.display(),
            descr_of(&d)
        ),
        Err(e) => anyhow::bail!("reading {} as .npy: {e}", path.display()),
    }
}

/// A 1-D array of integer class labels (int64 or int32).
pub(crate) fn read_labels(path: &Path) -> anyhow::Result<Vec<i64>> {
    let bytes = read_checked(path)?;
    let a = match read::<i64>(&bytes) {
        Ok(a) => a,
        Err(ndarray_npy::ReadNpyError::WrongDescriptor(d)) => match read::<i32>(&bytes) {
            Ok(a) => a.mapv(i64::from),
            Err(_) => anyhow::bail!(
                "reading {}: labels must be int64 or int32, the file holds {}",
                path.display(),
                descr_of(&d)
            ),
        },
        Err(e) => anyhow::bail!("reading {} as .npy: {e}", path.display()),
    };
    if a.ndim() != 1 {
        anyhow::bail!(
            "reading {}: labels must be a 1-D array, the file has shape {:?}",
            path.display(),
            a.shape()
        );
    }
    Ok(a.iter().copied().collect())
}

fn read_checked(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    check_magic(&bytes).with_context(|| format!("reading {}", path.display()))?;
    check_size_matches_header(&bytes).with_context(|| format!("reading {}", path.display()))?;
    Ok(bytes)
}

/// The dtype of a descriptor the reader rejected (its Debug form is `String("<f8")`), for
/// messages: `'<f8'`.
fn descr_of(d: &impl std::fmt::Debug) -> String {
    let text = format!("{d:?}");
    let inner: String = text
        .split(['"', '\''])
        .nth(1)
        .map_or(text.clone(), str::to_string);
    format!("'{inner}'")
}
