//! The one block-RAM / UltraRAM mapping table of the workspace: how many primitives Yosys
//! (`synth_xilinx`) uses for one simple-dual-port memory of `width × depth` bits. Every
//! resource model counts memories here.

/// RAMB36 aspect ratios, `(depth, width)`; the 72-bit mode is the simple-dual-port one.
pub const RAMB36_SHAPES: [(u64, u64); 7] = [
    (512, 72),
    (1024, 36),
    (2048, 18),
    (4096, 9),
    (8192, 4),
    (16384, 2),
    (32768, 1),
];

/// RAMB18 aspect ratios, `(depth, width)`; the 36-bit mode is the simple-dual-port one.
pub const RAMB18_SHAPES: [(u64, u64); 6] = [
    (512, 36),
    (1024, 18),
    (2048, 9),
    (4096, 4),
    (8192, 2),
    (16384, 1),
];

fn tiles(shapes: &[(u64, u64)], width: u64, depth: u64) -> u64 {
    shapes
        .iter()
        .map(|&(d, w)| width.div_ceil(w) * depth.div_ceil(d))
        .min()
        .unwrap_or(0)
}

/// RAMB18s for a `width × depth` memory tiled with RAMB18 primitives only (the cheapest aspect
/// ratio, several side by side for wider words); 0 for an empty memory.
pub fn ramb18_for(width: u64, depth: u64) -> u64 {
    tiles(&RAMB18_SHAPES, width, depth)
}

/// `(RAMB36, RAMB18)` for a `width × depth` memory: the cheapest tiling with either primitive,
/// RAMB18s only when strictly cheaper than half as many RAMB36s (what Yosys picks for
/// `-family xc7` and `xcup`).
pub fn bram_for(width: u64, depth: u64) -> (u64, u64) {
    let best36 = tiles(&RAMB36_SHAPES, width, depth);
    let best18 = ramb18_for(width, depth);
    if best18 < 2 * best36 {
        (0, best18)
    } else {
        (best36, 0)
    }
}

/// URAM288 blocks (4096 words × 72 bits, cascaded in depth and placed side by side in width)
/// for one `width × depth` memory, as Yosys's `synth_xilinx -uram` maps it.
pub fn uram_for(width: u64, depth: u64) -> u64 {
    width.div_ceil(72) * depth.div_ceil(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aspect_ratios() {
        assert_eq!(ramb18_for(36, 512), 1);
        assert_eq!(ramb18_for(32, 512), 1);
        assert_eq!(ramb18_for(8, 2048), 1);
        assert_eq!(ramb18_for(8, 4096), 2);
        assert_eq!(ramb18_for(32, 1024), 2);
        assert_eq!(ramb18_for(72, 512), 2);
        assert_eq!(ramb18_for(0, 512), 0);
        assert_eq!(bram_for(72, 512), (1, 0));
        assert_eq!(bram_for(36, 512), (0, 1));
        assert_eq!(bram_for(8, 32768), (8, 0));
        assert_eq!(uram_for(72, 4096), 1);
        assert_eq!(uram_for(73, 4097), 4);
    }
}
