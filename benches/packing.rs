//! Packing requests: the hand-written `Packed` (resp/pack.rs) beside redis-rs's `Cmd` and `Pipeline`
//! building the same bytes. `Packed` writes each argument once, straight into the request's
//! buffer; `Cmd` copies the arguments into its own buffer, then packs them into a second one.
//! The async path converts `Packed` to a `Pipeline` (`to_pipeline`), so its column is the cost
//! of that conversion plus redis-rs's packing.
//!
//! `cargo bench --bench packing` (part of `make bench`): medians of 31 blocks, ns per request.

use _native::resp::pack::Packed;
use std::hint::black_box;
use std::time::Instant;

/// The median over 31 blocks of the nanoseconds one call of `f` takes.
fn median_ns(iterations: u32, mut f: impl FnMut()) -> f64 {
    let mut blocks: Vec<f64> = (0..31)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iterations {
                f();
            }
            start.elapsed().as_nanos() as f64 / f64::from(iterations)
        })
        .collect();
    blocks.sort_by(f64::total_cmp);
    blocks[blocks.len() / 2]
}

/// A request as argument lists, one per command.
struct Case {
    name: &'static str,
    commands: Vec<Vec<Vec<u8>>>,
}

fn packed(case: &Case) -> Packed {
    let mut packed = Packed::new();
    for args in &case.commands {
        packed.start(args.len());
        for arg in args {
            packed.arg(arg);
        }
    }
    packed
}

fn redis_rs(case: &Case) -> Vec<u8> {
    let mut pipeline = redis::Pipeline::with_capacity(case.commands.len());
    for args in &case.commands {
        let mut cmd = redis::Cmd::new();
        for arg in args {
            cmd.arg(arg.as_slice());
        }
        pipeline.add_command(cmd);
    }
    pipeline.get_packed_pipeline()
}

fn main() {
    let key = |i: usize| format!(":1:user:{i}:profile").into_bytes();
    let html = "<li class=\"item\">fragment</li>".repeat(64).into_bytes(); // ~2 KB
    let set = |i: usize| {
        vec![
            b"SET".to_vec(),
            key(i),
            html.clone(),
            b"PX".to_vec(),
            b"300000".to_vec(),
        ]
    };
    let cases = [
        Case {
            name: "GET",
            commands: vec![vec![b"GET".to_vec(), key(0)]],
        },
        Case {
            name: "SET 2 KB PX",
            commands: vec![set(0)],
        },
        Case {
            name: "MGET 100 keys",
            commands: vec![std::iter::once(b"MGET".to_vec())
                .chain((0..100).map(key))
                .collect()],
        },
        Case {
            name: "100 × SET 2 KB PX, pipelined",
            commands: (0..100).map(set).collect(),
        },
    ];
    println!("| request | Packed (ns) | redis-rs Cmd/Pipeline (ns) | ratio | Packed → Pipeline, async (ns) |");
    println!("| --- | --- | --- | --- | --- |");
    for case in &cases {
        assert_eq!(
            packed(case).bytes(),
            redis_rs(case),
            "{}: the same bytes",
            case.name
        );
        let iterations = if case.commands.len() > 1 { 200 } else { 20_000 };
        let ours = median_ns(iterations, || drop(black_box(packed(black_box(case)))));
        let theirs = median_ns(iterations, || drop(black_box(redis_rs(black_box(case)))));
        let converted = median_ns(iterations, || {
            drop(black_box(
                packed(black_box(case)).to_pipeline().get_packed_pipeline(),
            ))
        });
        println!(
            "| {} | {ours:.0} | {theirs:.0} | {:.2}× | {converted:.0} |",
            case.name,
            ours / theirs
        );
    }
}
