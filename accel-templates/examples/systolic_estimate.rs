//! Prints the cycle model for a GEMM: `cargo run --example systolic_estimate -- R C M K N [NC]`.
use accelforge_templates::systolic::{SystolicParams, cost, layer::Gemm};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let a: Vec<u32> = std::env::args()
        .skip(1)
        .map(|s| s.parse())
        .collect::<Result<_, _>>()?;
    let get = |i: usize, d: u32| a.get(i).copied().unwrap_or(d);
    let p = SystolicParams {
        rows: get(0, 16),
        cols: get(1, 16),
        max_k: get(3, 256).max(1),
        max_n_chunk: get(5, 64),
        ..Default::default()
    };
    let g = Gemm {
        m: get(2, 256),
        k: get(3, 256),
        n: get(4, 256),
    };
    let t = std::time::Instant::now();
    let e = cost::cycles(&p, &g)?;
    println!("{e:?} in {:?}", t.elapsed());
    println!("{:?}", cost::resources(&p)?);
    Ok(())
}
