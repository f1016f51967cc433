//! tensorlens's occupancy calculator held against NVIDIA's (`cuda_occupancy.h`), built with g++ from
//! `occupancy_oracle.cpp` and asked every question in one run. Both sides are given the same device
//! description, taken from our arch table; the header adds its own per-architecture constants
//! (block slots, allocation units, carveouts), so those get checked too.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use tensorlens::kernels::occupancy::{
    arch_limits, best_block_size, known_archs, occupancy, ArchLimits, KernelResources, Limiter, OccupancyError,
};

use crate::support;

// Bits of `cudaOccResult::limitingFactors`.
const LIMIT_WARPS: u32 = 0x01;
const LIMIT_REGISTERS: u32 = 0x02;
const LIMIT_SHARED_MEMORY: u32 = 0x04;
const LIMIT_BLOCKS: u32 = 0x08;

const KIB: u32 = 1024;

/// The oracle executable, compiled once per test run.
fn oracle() -> &'static PathBuf {
    static ORACLE: OnceLock<PathBuf> = OnceLock::new();
    ORACLE.get_or_init(|| {
        let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/cuda/occupancy_oracle.cpp");
        let exe = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("occupancy_oracle");
        let output = Command::new("g++")
            .args(["-std=c++17", "-O2", "-Wall", "-Wextra", "-I"])
            .arg(support::toolkit().join("include"))
            .arg(&source)
            .arg("-o")
            .arg(&exe)
            .output()
            .expect("run g++");
        assert!(output.status.success(), "g++ failed:\n{}", String::from_utf8_lossy(&output.stderr));
        exe
    })
}

/// Sends every query to one oracle process and returns its answers, one per query.
fn ask(queries: &[String]) -> Vec<String> {
    let mut child = Command::new(oracle())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the occupancy oracle");
    let mut stdin = child.stdin.take().unwrap();
    let input = queries.join("\n") + "\n";
    // Written from another thread so a full stdout pipe cannot stall both sides.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("wait for the occupancy oracle");
    writer.join().unwrap().expect("write to the occupancy oracle");
    assert!(output.status.success(), "oracle failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let answers: Vec<String> = String::from_utf8(output.stdout).unwrap().lines().map(str::to_owned).collect();
    assert_eq!(answers.len(), queries.len(), "one answer per query");
    answers
}

/// The device part of a query: our table's numbers in the order the oracle reads them.
fn device(arch: &ArchLimits) -> String {
    format!(
        "{} {} {} {} {} {} {} {} {} {}",
        arch.sm,
        arch.max_threads_per_block,
        arch.max_threads_per_sm,
        arch.max_registers_per_block,
        arch.registers_per_sm,
        arch.warp_size,
        arch.shared_per_block_default,
        arch.shared_per_sm,
        arch.max_shared_per_block_optin,
        arch.reserved_shared_per_block,
    )
}

fn kernel_fields(k: &KernelResources) -> String {
    format!("{} {} {}", k.registers_per_thread, k.static_shared_bytes, k.dynamic_shared_bytes)
}

/// Numbers after a leading "ok", or `None` for an "err" answer.
fn numbers(answer: &str) -> Option<Vec<u64>> {
    let rest = answer.strip_prefix("ok")?;
    Some(rest.split_whitespace().map(|n| n.parse().unwrap_or_else(|_| panic!("oracle said {answer:?}"))).collect())
}

fn archs() -> Vec<&'static ArchLimits> {
    known_archs().map(|sm| arch_limits(sm).unwrap()).collect()
}

/// Registers per thread: the common, the odd, both sides of group and unit boundaries, the most.
const REGISTERS: [u32; 14] = [0, 16, 24, 32, 37, 40, 64, 72, 96, 128, 168, 200, 232, 255];
const BLOCK_SIZES: [u32; 22] =
    [0, 1, 31, 32, 64, 96, 100, 128, 160, 192, 250, 256, 320, 384, 512, 640, 768, 800, 1000, 1024, 1025, 2048];

/// Static/dynamic splits of shared memory per block: every size alone as static (when ptxas would
/// allow it) and alone as dynamic, and larger ones as a mix, up to the opt-in limit and past it.
fn shared_splits(arch: &ArchLimits) -> BTreeSet<(u32, u32)> {
    let optin = arch.max_shared_per_block_optin;
    let static_max = arch.shared_per_block_default;
    let mut totals = vec![0, 1, 1000, KIB, 4 * KIB, 12 * KIB, 12 * KIB + 7, 32 * KIB, 48 * KIB, 48 * KIB + 1];
    totals.extend([64 * KIB, 99 * KIB, 100 * KIB, 163 * KIB, 200 * KIB, 227 * KIB, 228 * KIB]);
    totals.extend([optin / 3, optin / 2 + 77, optin - 129, optin - 1, optin, optin + 1, optin + 128]);
    let mut splits = BTreeSet::new();
    for total in totals {
        if total <= static_max {
            splits.insert((total, 0));
        }
        splits.insert((0, total));
        let part = (total / 3).min(static_max);
        splits.insert((part, total - part));
    }
    splits
}

/// The oracle bit that stands for one of our limiters.
fn bit(limiter: Limiter) -> u32 {
    match limiter {
        Limiter::Warps => LIMIT_WARPS,
        Limiter::Blocks => LIMIT_BLOCKS,
        Limiter::Registers => LIMIT_REGISTERS,
        Limiter::SharedMemory => LIMIT_SHARED_MEMORY,
    }
}

/// Where the oracle sees a launch that cannot run (no error, zero blocks), the bit of the resource
/// that ran out must be among its limiting factors.
fn error_bit(error: &OccupancyError) -> u32 {
    match error {
        OccupancyError::EmptyBlock => 0,
        OccupancyError::BlockTooLarge { .. } => LIMIT_WARPS,
        OccupancyError::TooManyRegistersPerThread { .. } | OccupancyError::TooManyRegistersPerBlock { .. } => {
            LIMIT_REGISTERS
        }
        OccupancyError::StaticSharedTooLarge { .. } | OccupancyError::TooMuchSharedMemory { .. } => LIMIT_SHARED_MEMORY,
    }
}

#[test]
fn occupancy_matches_nvidia_calculator() {
    let mut cases = Vec::new();
    for arch in archs() {
        for (static_shared_bytes, dynamic_shared_bytes) in shared_splits(arch) {
            for registers_per_thread in REGISTERS {
                for block_size in BLOCK_SIZES {
                    let kernel = KernelResources { registers_per_thread, static_shared_bytes, dynamic_shared_bytes };
                    cases.push((arch, kernel, block_size));
                }
            }
        }
    }
    let queries: Vec<String> = cases
        .iter()
        .map(|(arch, kernel, block)| format!("occ {} {} {block}", device(arch), kernel_fields(kernel)))
        .collect();
    let answers = ask(&queries);

    let (mut runnable, mut unrunnable) = (0, 0);
    let mut limiters = BTreeSet::new();
    let mut mismatches = Vec::new();
    for (((arch, kernel, block), query), answer) in cases.iter().zip(&queries).zip(&answers) {
        let ours = occupancy(arch, kernel, *block);
        let theirs = numbers(answer);
        let agrees = match (&ours, theirs.as_deref()) {
            (Ok(occ), Some(&[blocks, mask])) => {
                runnable += 1;
                limiters.insert(format!("{:?}", occ.limiter));
                let warps_per_block = block.div_ceil(arch.warp_size);
                u64::from(occ.active_blocks) == blocks
                    && occ.active_warps == occ.active_blocks * warps_per_block
                    && occ.max_warps == arch.max_threads_per_sm / arch.warp_size
                    && occ.occupancy == f64::from(occ.active_warps) / f64::from(occ.max_warps)
                    && mask as u32 & bit(occ.limiter) != 0
            }
            (Err(error), Some(&[0, mask])) => {
                unrunnable += 1;
                mask as u32 & error_bit(error) != 0
            }
            (Err(OccupancyError::EmptyBlock), None) => {
                unrunnable += 1;
                answer == "err 1"
            }
            _ => false,
        };
        if !agrees {
            mismatches.push(format!("{query}\n  oracle: {answer}\n  ours:   {ours:?}"));
        }
    }
    println!(
        "compared {} occupancy cases with cuda_occupancy.h: {runnable} runnable, {unrunnable} not; limiters seen: {limiters:?}",
        cases.len()
    );
    assert!(mismatches.is_empty(), "{} of {} cases differ:\n{}", mismatches.len(), cases.len(), mismatches.join("\n"));
    // The grid is meant to reach every limiter and plenty of failures; make sure it still does.
    assert_eq!(limiters.len(), 4, "{limiters:?}");
    assert!(runnable > 10_000 && unrunnable > 1_000, "{runnable} runnable, {unrunnable} not");
}

#[test]
fn best_block_size_reaches_nvidia_best_occupancy() {
    let mut cases = Vec::new();
    for arch in archs() {
        for registers_per_thread in REGISTERS {
            for (static_shared_bytes, dynamic_shared_bytes) in
                [(0, 0), (1000, 0), (12 * KIB, 0), (0, 40 * KIB), (0, 90 * KIB), (0, 150 * KIB)]
            {
                cases.push((arch, KernelResources { registers_per_thread, static_shared_bytes, dynamic_shared_bytes }));
            }
        }
    }
    let queries: Vec<String> =
        cases.iter().map(|(arch, k)| format!("best {} {}", device(arch), kernel_fields(k))).collect();
    let answers = ask(&queries);
    for (((arch, kernel), query), answer) in cases.iter().zip(&queries).zip(&answers) {
        let theirs = numbers(answer).unwrap_or_else(|| panic!("{query}: oracle said {answer}"));
        let (their_block, their_blocks) = (theirs[0] as u32, theirs[1] as u32);
        match best_block_size(arch, kernel) {
            None => assert_eq!(their_block, 0, "{query}: we found no block size, the oracle found {answer}"),
            Some(best) => {
                // Same occupancy; NVIDIA breaks ties towards larger blocks, we towards smaller.
                assert_eq!(
                    best.active_warps * arch.warp_size,
                    their_block * their_blocks,
                    "{query}: {best:?} vs {answer}"
                );
                assert!(best.block_size <= their_block, "{query}: {best:?} vs {answer}");
                let at_theirs = occupancy(arch, kernel, their_block).unwrap();
                assert_eq!(at_theirs.active_warps, best.active_warps, "{query}");
            }
        }
    }
    println!("compared {} best-block-size cases with cuda_occupancy.h", cases.len());
}

/// The constants `cuda_occupancy.h` keeps for itself, per architecture, against our table.
#[test]
fn arch_table_matches_the_header_constants() {
    let archs = archs();
    let queries: Vec<String> = archs.iter().map(|arch| format!("facts {}", device(arch))).collect();
    for (arch, answer) in archs.iter().zip(ask(&queries)) {
        let facts = numbers(&answer).unwrap_or_else(|| panic!("sm_{}: the header does not know it: {answer}", arch.sm));
        let [max_blocks, shared_unit, register_unit, max_registers, sub_partitions, carveouts @ ..] = facts.as_slice()
        else {
            panic!("sm_{}: {answer}", arch.sm)
        };
        let name = arch.name();
        assert_eq!(*max_blocks, u64::from(arch.max_blocks_per_sm), "{name} blocks per SM");
        assert_eq!(*shared_unit, u64::from(arch.shared_allocation_unit), "{name} shared allocation unit");
        assert_eq!(*register_unit, u64::from(arch.register_allocation_unit), "{name} register allocation unit");
        assert_eq!(*sub_partitions, u64::from(arch.warp_allocation_granularity), "{name} warp groups");
        let ours: Vec<u64> = arch.shared_carveouts_kib.iter().map(|&k| u64::from(k)).collect();
        assert_eq!(carveouts, ours.as_slice(), "{name} carveouts");
        // The header allows 256 registers a thread; ptxas never uses more than 255 (it ignores
        // -maxrregcount=256), so we keep 255 and reject 256. See the test below.
        assert_eq!((*max_registers, arch.max_registers_per_thread), (256, 255), "{name} registers per thread");
    }
}

/// The one place we knowingly differ: 256 registers a thread, which the header accepts and no
/// compiled kernel can have.
#[test]
fn register_ceiling_differs_from_the_header_on_purpose() {
    let arch = arch_limits(90).unwrap();
    let kernel = KernelResources { registers_per_thread: 256, static_shared_bytes: 0, dynamic_shared_bytes: 0 };
    let answers = ask(&[format!("occ {} {} 128", device(arch), kernel_fields(&kernel))]);
    assert_eq!(numbers(&answers[0]).unwrap()[0], 2, "the header runs 2 blocks");
    assert_eq!(
        occupancy(arch, &kernel, 128),
        Err(OccupancyError::TooManyRegistersPerThread { sm: 90, registers: 256, max: 255 })
    );
}

/// A few architectures against the numbers NVIDIA publishes (CUDA programming guide, compute
/// capability tables; the device attributes a real GPU reports).
#[test]
fn arch_table_matches_published_facts() {
    struct Published {
        sm: u32,
        threads_per_sm: u32,
        blocks_per_sm: u32,
        shared_per_sm_kib: u32,
        optin_kib: u32,
        reserved: u32,
    }
    let published = [
        Published {
            sm: 75,
            threads_per_sm: 1024,
            blocks_per_sm: 16,
            shared_per_sm_kib: 64,
            optin_kib: 64,
            reserved: 0,
        },
        Published {
            sm: 80,
            threads_per_sm: 2048,
            blocks_per_sm: 32,
            shared_per_sm_kib: 164,
            optin_kib: 163,
            reserved: KIB,
        },
        Published {
            sm: 86,
            threads_per_sm: 1536,
            blocks_per_sm: 16,
            shared_per_sm_kib: 100,
            optin_kib: 99,
            reserved: KIB,
        },
        Published {
            sm: 87,
            threads_per_sm: 1536,
            blocks_per_sm: 16,
            shared_per_sm_kib: 164,
            optin_kib: 163,
            reserved: KIB,
        },
        Published {
            sm: 89,
            threads_per_sm: 1536,
            blocks_per_sm: 24,
            shared_per_sm_kib: 100,
            optin_kib: 99,
            reserved: KIB,
        },
        Published {
            sm: 90,
            threads_per_sm: 2048,
            blocks_per_sm: 32,
            shared_per_sm_kib: 228,
            optin_kib: 227,
            reserved: KIB,
        },
        Published {
            sm: 100,
            threads_per_sm: 2048,
            blocks_per_sm: 32,
            shared_per_sm_kib: 228,
            optin_kib: 227,
            reserved: KIB,
        },
        Published {
            sm: 120,
            threads_per_sm: 1536,
            blocks_per_sm: 24,
            shared_per_sm_kib: 100,
            optin_kib: 99,
            reserved: KIB,
        },
    ];
    for p in published {
        let arch = arch_limits(p.sm).unwrap();
        let name = arch.name();
        assert_eq!(arch.max_threads_per_sm, p.threads_per_sm, "{name} threads per SM");
        assert_eq!(arch.max_blocks_per_sm, p.blocks_per_sm, "{name} blocks per SM");
        assert_eq!(arch.shared_per_sm, p.shared_per_sm_kib * KIB, "{name} shared per SM");
        assert_eq!(arch.max_shared_per_block_optin, p.optin_kib * KIB, "{name} opt-in shared per block");
        assert_eq!(arch.reserved_shared_per_block, p.reserved, "{name} reserved shared per block");
        assert_eq!(arch.shared_per_block_default, 48 * KIB, "{name} default shared per block");
        assert_eq!(arch.registers_per_sm, 64 * KIB, "{name} registers per SM");
        assert_eq!(arch.max_registers_per_block, 64 * KIB, "{name} registers per block");
        assert_eq!(arch.max_registers_per_thread, 255, "{name} registers per thread");
        assert_eq!(arch.max_threads_per_block, 1024, "{name} threads per block");
        assert_eq!(arch.warp_size, 32, "{name} warp size");
    }
}
