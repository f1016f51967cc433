//! Theoretical occupancy: how many blocks of a kernel fit on one SM at once, and what stops more.
//!
//! A block is resident only when the SM can give it all of: warp slots, a block slot, registers
//! for every warp and its shared memory. Each resource alone allows some number of blocks; the
//! smallest of those numbers is the answer, and the resource that gave it is the limiter.
//!
//! The model is the one NVIDIA's own calculator (`cuda_occupancy.h`,
//! `cudaOccMaxActiveBlocksPerMultiprocessor`) uses with a default device state, so that the
//! numbers agree with it (`tests/cuda/occupancy.rs` compares about 190,000 cases with it):
//!
//! - Warps: a block takes `ceil(threads / 32)` warp slots.
//! - Registers: a warp's registers are `registers_per_thread * 32`, rounded up to the
//!   allocation unit. Warps are given registers in groups of [`ArchLimits::warp_allocation_granularity`]
//!   (one warp per SM sub-partition), so the register file holds a whole number of such groups,
//!   and a block's request is checked against the per-block limit as if its warps were rounded up
//!   to a whole group (the hardware checks it that way).
//! - Shared memory: static + dynamic + the driver's per-block reserve, rounded up to the
//!   allocation unit. The carveout is left to the driver, which is modelled as choosing the largest
//!   one the SM has. The kernel is assumed to have opted in to exactly the dynamic shared memory it
//!   is launched with, so a block may use up to [`ArchLimits::max_shared_per_block_optin`].
//!   Static shared memory alone may not pass 48 KiB (ptxas refuses to build such a kernel).
//!
//! Out of scope: thread block clusters, partitioned global caching (pre-Turing only), and a
//! carveout the program sets itself.

use std::fmt;

/// Per-architecture limits that decide occupancy (facts from NVIDIA's compute capability tables).
///
/// The per-SM numbers are those the CUDA driver reports for the architecture (the same values
/// CCCL's `cuda::arch_traits` lists); the allocation granularities and carveouts are those
/// `cuda_occupancy.h` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ArchLimits {
    /// Compute capability as one number: 90 for sm_90, 121 for sm_121.
    pub sm: u32,
    pub warp_size: u32,
    pub max_threads_per_block: u32,
    pub max_threads_per_sm: u32,
    pub max_blocks_per_sm: u32,
    pub registers_per_sm: u32,
    pub max_registers_per_block: u32,
    /// 255 everywhere: ptxas never gives a thread more (it ignores `-maxrregcount=256`).
    pub max_registers_per_thread: u32,
    /// Registers are handed to a warp in multiples of this many.
    pub register_allocation_unit: u32,
    /// Warps receive registers in groups of this many (one per SM sub-partition).
    pub warp_allocation_granularity: u32,
    /// Shared memory per SM at the largest carveout, in bytes.
    pub shared_per_sm: u32,
    /// The most shared memory one block may use after opting in, in bytes (excluding the reserve).
    pub max_shared_per_block_optin: u32,
    /// What a block may use without opting in, and the ceiling for static shared memory: 48 KiB.
    pub shared_per_block_default: u32,
    /// Shared memory the driver keeps for itself in every block (1 KiB from sm_80 on).
    pub reserved_shared_per_block: u32,
    /// A block's shared memory is allocated in multiples of this many bytes.
    pub shared_allocation_unit: u32,
    /// The shared-memory sizes (KiB) the SM's unified L1/shared storage can be split into.
    pub shared_carveouts_kib: &'static [u32],
}

impl ArchLimits {
    /// Warp slots per SM: the denominator of occupancy.
    pub fn max_warps_per_sm(&self) -> u32 {
        self.max_threads_per_sm / self.warp_size.max(1)
    }

    /// The usual spelling of the architecture, e.g. `sm_90`.
    pub fn name(&self) -> String {
        format!("sm_{}", self.sm)
    }
}

const TURING_CARVEOUTS: &[u32] = &[32, 64];
const CARVEOUTS_TO_100: &[u32] = &[0, 8, 16, 32, 64, 100];
const CARVEOUTS_TO_164: &[u32] = &[0, 8, 16, 32, 64, 100, 132, 164];
const CARVEOUTS_TO_228: &[u32] = &[0, 8, 16, 32, 64, 100, 132, 164, 196, 228];

/// One table row. What differs between the architectures is the thread and block slots and the
/// shared memory; everything else has been the same since Turing, except that from Ampere on the
/// driver reserves 1 KiB of every block's shared memory and allocates it in 128-byte steps.
const fn arch(sm: u32, max_threads_per_sm: u32, max_blocks_per_sm: u32, carveouts_kib: &'static [u32]) -> ArchLimits {
    let ampere_or_later = sm >= 80;
    let reserved_shared_per_block = if ampere_or_later { 1024 } else { 0 };
    let shared_per_sm = carveouts_kib[carveouts_kib.len() - 1] * 1024;
    ArchLimits {
        sm,
        warp_size: 32,
        max_threads_per_block: 1024,
        max_threads_per_sm,
        max_blocks_per_sm,
        registers_per_sm: 64 * 1024,
        max_registers_per_block: 64 * 1024,
        max_registers_per_thread: 255,
        register_allocation_unit: 256,
        warp_allocation_granularity: 4,
        shared_per_sm,
        max_shared_per_block_optin: shared_per_sm - reserved_shared_per_block,
        shared_per_block_default: 48 * 1024,
        reserved_shared_per_block,
        shared_allocation_unit: if ampere_or_later { 128 } else { 256 },
        shared_carveouts_kib: carveouts_kib,
    }
}

/// The architectures ptxas 13.5 compiles for, oldest first, except sm_107: ptxas and
/// `cuda_occupancy.h` accept it, but NVIDIA publishes no thread or shared-memory limits for it, and
/// a guessed row would produce confident wrong numbers.
static ARCHS: [ArchLimits; 12] = [
    arch(75, 1024, 16, TURING_CARVEOUTS),
    arch(80, 2048, 32, CARVEOUTS_TO_164),
    arch(86, 1536, 16, CARVEOUTS_TO_100),
    arch(87, 1536, 16, CARVEOUTS_TO_164),
    arch(88, 1536, 16, CARVEOUTS_TO_100),
    arch(89, 1536, 24, CARVEOUTS_TO_100),
    arch(90, 2048, 32, CARVEOUTS_TO_228),
    arch(100, 2048, 32, CARVEOUTS_TO_228),
    arch(103, 2048, 32, CARVEOUTS_TO_228),
    arch(110, 1536, 24, CARVEOUTS_TO_228),
    arch(120, 1536, 24, CARVEOUTS_TO_100),
    arch(121, 1536, 24, CARVEOUTS_TO_100),
];

/// The limits of an architecture given as a number (see [`parse_arch`]); `None` if not in the table.
pub fn arch_limits(sm: u32) -> Option<&'static ArchLimits> {
    ARCHS.iter().find(|arch| arch.sm == sm)
}

/// The architectures [`arch_limits`] knows, oldest first.
pub fn known_archs() -> impl Iterator<Item = u32> {
    ARCHS.iter().map(|arch| arch.sm)
}

/// Reads an architecture the ways people and tools write it: `sm_90`, `sm_90a`, `sm_100f`,
/// `compute_90`, `lto_90`, `sm90`, `90`, and compute-capability style `9.0` or `12.1`. The `a`/`f`
/// suffixes select architecture- or family-specific instructions; the SM's limits stay the same.
/// Only the spelling is checked: `sm_107` gives 107 even though [`arch_limits`] has no row for it.
pub fn parse_arch(s: &str) -> Option<u32> {
    let s = s.trim().to_ascii_lowercase();
    let body = ["compute_", "compute", "sm_", "sm", "lto_"].iter().find_map(|p| s.strip_prefix(p)).unwrap_or(&s);
    let body = body.strip_suffix(['a', 'f']).unwrap_or(body);
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) && !t.starts_with('0');
    let value = match body.split_once('.') {
        Some((major, minor)) if digits(major) && major.len() <= 2 && minor.len() == 1 => {
            major.parse::<u32>().ok()? * 10 + minor.parse::<u32>().ok()?
        }
        Some(_) => return None,
        None if digits(body) && (2..=3).contains(&body.len()) => body.parse().ok()?,
        None => return None,
    };
    Some(value)
}

/// What one kernel asks of the SM for each of its blocks (from ptxas's resource report, plus the
/// dynamic shared memory of the launch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelResources {
    pub registers_per_thread: u32,
    pub static_shared_bytes: u32,
    pub dynamic_shared_bytes: u32,
}

/// The resource that allowed the fewest blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Limiter {
    /// Threads (warp slots) per SM.
    Warps,
    /// The SM's maximum number of resident blocks.
    Blocks,
    Registers,
    SharedMemory,
}

impl Limiter {
    /// When several resources allow the same, smallest, number of blocks, the first of these is
    /// named. The slot limits come first because when one of them binds, using fewer registers or
    /// less shared memory cannot raise occupancy, so naming a resource would suggest a change that
    /// does not help. Only the block size changes them; warps come before blocks since reaching
    /// every thread slot is the best an SM can do.
    pub const PRIORITY: [Limiter; 4] = [Limiter::Warps, Limiter::Blocks, Limiter::Registers, Limiter::SharedMemory];

    /// A short name for display: "limited by {describe}".
    pub fn describe(self) -> &'static str {
        match self {
            Limiter::Warps => "threads per SM",
            Limiter::Blocks => "blocks per SM",
            Limiter::Registers => "registers",
            Limiter::SharedMemory => "shared memory",
        }
    }
}

impl fmt::Display for Limiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// How many blocks each resource alone would allow; `None` where the kernel does not use the
/// resource at all (no registers, or no shared memory and no driver reserve), so it sets no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct BlockLimits {
    pub warps: u32,
    pub blocks: u32,
    pub registers: Option<u32>,
    pub shared_memory: Option<u32>,
}

impl BlockLimits {
    fn of(&self, limiter: Limiter) -> Option<u32> {
        match limiter {
            Limiter::Warps => Some(self.warps),
            Limiter::Blocks => Some(self.blocks),
            Limiter::Registers => self.registers,
            Limiter::SharedMemory => self.shared_memory,
        }
    }
}

/// Theoretical occupancy of one kernel at one block size on one SM.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Occupancy {
    pub block_size: u32,
    pub active_blocks: u32,
    pub active_warps: u32,
    pub max_warps: u32,
    /// `active_warps / max_warps`, from 0 to 1.
    pub occupancy: f64,
    pub limiter: Limiter,
    /// Every resource's own block count, so a reader can see how close the others are.
    pub limits: BlockLimits,
    /// Registers one block is given (whole warps, rounded to the allocation unit).
    pub registers_per_block: u32,
    /// Shared memory one block is given, in bytes: static + dynamic + reserve, rounded up.
    pub shared_per_block: u32,
}

/// Why a block cannot be launched at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OccupancyError {
    #[error("a block must have at least one thread")]
    EmptyBlock,
    #[error("a block of {block_size} threads is larger than the {max} threads a block may have on sm_{sm}")]
    BlockTooLarge { sm: u32, block_size: u32, max: u32 },
    #[error("{registers} registers per thread is more than the {max} a thread may use on sm_{sm}")]
    TooManyRegistersPerThread { sm: u32, registers: u32, max: u32 },
    #[error(
        "a block of {block_size} threads at {registers} registers per thread needs {needed} registers \
         (allocated per warp, for whole groups of {group} warps), more than the {max} a block may use on sm_{sm}"
    )]
    TooManyRegistersPerBlock { sm: u32, block_size: u32, registers: u32, group: u32, needed: u64, max: u32 },
    #[error(
        "{bytes} bytes of static shared memory is more than the {max} bytes allowed for static allocations \
         on sm_{sm}; larger buffers must be dynamic (extern __shared__) with an opt-in"
    )]
    StaticSharedTooLarge { sm: u32, bytes: u32, max: u32 },
    #[error(
        "a block needs {needed} bytes of shared memory ({static_bytes} static + {dynamic_bytes} dynamic), \
         more than the {max} bytes a block may use on sm_{sm}"
    )]
    TooMuchSharedMemory { sm: u32, static_bytes: u32, dynamic_bytes: u32, needed: u64, max: u64 },
}

fn round_up(value: u64, unit: u64) -> u64 {
    value.div_ceil(unit.max(1)) * unit.max(1)
}

fn narrow(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// Theoretical occupancy of a kernel launched with `block_size` threads per block, or why such a
/// block cannot run at all.
pub fn occupancy(arch: &ArchLimits, resources: &KernelResources, block_size: u32) -> Result<Occupancy, OccupancyError> {
    let sm = arch.sm;
    if block_size == 0 {
        return Err(OccupancyError::EmptyBlock);
    }
    if block_size > arch.max_threads_per_block {
        return Err(OccupancyError::BlockTooLarge { sm, block_size, max: arch.max_threads_per_block });
    }
    let warp_size = arch.warp_size.max(1);
    let warps_per_block = block_size.div_ceil(warp_size);
    let max_warps = arch.max_warps_per_sm();

    // Registers.
    let registers = resources.registers_per_thread;
    if registers > arch.max_registers_per_thread {
        return Err(OccupancyError::TooManyRegistersPerThread { sm, registers, max: arch.max_registers_per_thread });
    }
    let per_warp = round_up(u64::from(registers) * u64::from(warp_size), arch.register_allocation_unit.into());
    let group = u64::from(arch.warp_allocation_granularity.max(1));
    let checked = per_warp * round_up(warps_per_block.into(), group);
    let too_many_registers = |needed: u64, max: u32| OccupancyError::TooManyRegistersPerBlock {
        sm,
        block_size,
        registers,
        group: group as u32,
        needed,
        max,
    };
    if checked > u64::from(arch.max_registers_per_block) {
        return Err(too_many_registers(checked, arch.max_registers_per_block));
    }
    let by_registers = (per_warp > 0).then(|| {
        let warps = u64::from(arch.registers_per_sm) / (per_warp * group) * group;
        narrow(warps / u64::from(warps_per_block))
    });

    // Shared memory.
    let (static_bytes, dynamic_bytes) = (resources.static_shared_bytes, resources.dynamic_shared_bytes);
    if static_bytes > arch.shared_per_block_default {
        return Err(OccupancyError::StaticSharedTooLarge {
            sm,
            bytes: static_bytes,
            max: arch.shared_per_block_default,
        });
    }
    let requested = u64::from(static_bytes) + u64::from(dynamic_bytes);
    let reserve = u64::from(arch.reserved_shared_per_block);
    let shared_per_block = round_up(requested + reserve, arch.shared_allocation_unit.into());
    let too_much_shared =
        |max: u64| OccupancyError::TooMuchSharedMemory { sm, static_bytes, dynamic_bytes, needed: requested, max };
    if shared_per_block > u64::from(arch.max_shared_per_block_optin) + reserve {
        return Err(too_much_shared(arch.max_shared_per_block_optin.into()));
    }
    let by_shared = (shared_per_block > 0).then(|| narrow(u64::from(arch.shared_per_sm) / shared_per_block));

    let limits = BlockLimits {
        warps: max_warps / warps_per_block,
        blocks: arch.max_blocks_per_sm,
        registers: by_registers,
        shared_memory: by_shared,
    };
    // With NVIDIA's tables each check above already guarantees one block; these only guard a
    // hand-made `ArchLimits` whose per-SM amounts are below its per-block ones.
    if limits.warps == 0 {
        return Err(OccupancyError::BlockTooLarge { sm, block_size, max: arch.max_threads_per_sm });
    }
    if by_registers == Some(0) {
        return Err(too_many_registers(checked, arch.registers_per_sm));
    }
    if by_shared == Some(0) {
        return Err(too_much_shared(u64::from(arch.shared_per_sm).saturating_sub(reserve)));
    }

    let active_blocks = Limiter::PRIORITY.iter().filter_map(|&l| limits.of(l)).min().unwrap_or(0);
    let limiter =
        Limiter::PRIORITY.into_iter().find(|&l| limits.of(l) == Some(active_blocks)).unwrap_or(Limiter::Blocks);
    let active_warps = active_blocks * warps_per_block;
    Ok(Occupancy {
        block_size,
        active_blocks,
        active_warps,
        max_warps,
        occupancy: if max_warps == 0 { 0.0 } else { f64::from(active_warps) / f64::from(max_warps) },
        limiter,
        limits,
        registers_per_block: narrow(per_warp * u64::from(warps_per_block)),
        shared_per_block: narrow(shared_per_block),
    })
}

/// The block size with the highest occupancy, trying every multiple of the warp size up to the
/// largest block; `None` if no block size can run.
///
/// Ties go to the smallest block size. At equal resident warps, smaller blocks are the more
/// forgiving choice: a block that waits at a barrier or finishes its share holds fewer warps idle,
/// and a grid of a given size splits into more blocks, so more SMs get work. (NVIDIA's
/// `cudaOccMaxPotentialOccupancyBlockSize` breaks ties the other way, towards the largest.)
pub fn best_block_size(arch: &ArchLimits, resources: &KernelResources) -> Option<Occupancy> {
    let warp_size = arch.warp_size.max(1);
    let mut best: Option<Occupancy> = None;
    for warps in 1..=arch.max_threads_per_block / warp_size {
        let Ok(candidate) = occupancy(arch, resources, warps * warp_size) else { continue };
        if best.is_none_or(|b| candidate.active_warps > b.active_warps) {
            best = Some(candidate);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel(registers_per_thread: u32, static_shared_bytes: u32, dynamic_shared_bytes: u32) -> KernelResources {
        KernelResources { registers_per_thread, static_shared_bytes, dynamic_shared_bytes }
    }

    fn sm(n: u32) -> &'static ArchLimits {
        arch_limits(n).unwrap()
    }

    #[test]
    fn light_kernel_fills_an_sm90() {
        // 8 warps a block; 64 warp slots allow 8 blocks, and so do the registers: 32 regs * 32
        // threads = 1024 a warp, 65536 / 1024 = 64 warps. Slots win the tie.
        let occ = occupancy(sm(90), &kernel(32, 0, 0), 256).unwrap();
        assert_eq!((occ.active_blocks, occ.active_warps, occ.max_warps), (8, 64, 64));
        assert_eq!(occ.occupancy, 1.0);
        assert_eq!(occ.limiter, Limiter::Warps);
        assert_eq!(occ.limits, BlockLimits { warps: 8, blocks: 32, registers: Some(8), shared_memory: Some(228) });
        assert_eq!(occ.registers_per_block, 8 * 1024);
        assert_eq!(occ.shared_per_block, 1024, "only the driver's reserve");
    }

    #[test]
    fn heavy_registers_quarter_an_sm90() {
        // 128 regs: 4096 a warp, 16 warps in the register file, 2 blocks of 8 warps: 16/64.
        let occ = occupancy(sm(90), &kernel(128, 0, 0), 256).unwrap();
        assert_eq!((occ.active_blocks, occ.active_warps), (2, 16));
        assert_eq!(occ.occupancy, 0.25);
        assert_eq!(occ.limiter, Limiter::Registers);
    }

    #[test]
    fn registers_fill_whole_groups_of_warps() {
        // 96 regs: 3072 a warp. 65536 / 3072 = 21.3 warps, but a quarter of the file (16384)
        // holds only 5, so 20 warps: 5 blocks of 4 warps, not 5.33.
        let occ = occupancy(sm(80), &kernel(96, 0, 0), 128).unwrap();
        assert_eq!(occ.limits.registers, Some(5));
        assert_eq!((occ.active_blocks, occ.limiter), (5, Limiter::Registers));
    }

    #[test]
    fn few_warps_per_block_hit_the_block_slots() {
        // sm_75: 32 warp slots but 16 block slots; one-warp blocks stop at 16 warps.
        let occ = occupancy(sm(75), &kernel(16, 0, 0), 32).unwrap();
        assert_eq!((occ.active_blocks, occ.active_warps, occ.limiter), (16, 16, Limiter::Blocks));
        assert_eq!(occ.occupancy, 0.5);
        assert_eq!(occ.limits.shared_memory, None, "no shared memory and no reserve before sm_80");
    }

    #[test]
    fn shared_memory_counts_the_reserve_and_rounding() {
        // sm_80: 48 KiB + 1 KiB reserve = 49 KiB a block; 164 / 49 = 3 blocks of 4 warps.
        let occ = occupancy(sm(80), &kernel(32, 48 * 1024, 0), 128).unwrap();
        assert_eq!((occ.active_blocks, occ.active_warps, occ.limiter), (3, 12, Limiter::SharedMemory));
        assert_eq!(occ.occupancy, 12.0 / 64.0);
        // 1000 static + 1000 dynamic + 1024 reserve = 3024, allocated as 3072.
        let occ = occupancy(sm(86), &kernel(32, 1000, 1000), 128).unwrap();
        assert_eq!(occ.shared_per_block, 3072);
        assert_eq!(occ.limits.shared_memory, Some(100 * 1024 / 3072));
    }

    #[test]
    fn dynamic_shared_memory_may_use_the_opt_in_limit() {
        let optin = sm(90).max_shared_per_block_optin;
        assert_eq!(optin, 227 * 1024);
        let occ = occupancy(sm(90), &kernel(32, 48 * 1024, optin - 48 * 1024), 256).unwrap();
        assert_eq!((occ.active_blocks, occ.limiter), (1, Limiter::SharedMemory));
        assert_eq!(
            occupancy(sm(90), &kernel(32, 48 * 1024, optin - 48 * 1024 + 1), 256),
            Err(OccupancyError::TooMuchSharedMemory {
                sm: 90,
                static_bytes: 48 * 1024,
                dynamic_bytes: optin - 48 * 1024 + 1,
                needed: u64::from(optin) + 1,
                max: optin.into(),
            })
        );
    }

    #[test]
    fn invalid_launches_say_why_with_numbers() {
        let a = sm(90);
        assert_eq!(occupancy(a, &kernel(32, 0, 0), 0), Err(OccupancyError::EmptyBlock));
        let err = occupancy(a, &kernel(32, 0, 0), 1025).unwrap_err();
        assert_eq!(err, OccupancyError::BlockTooLarge { sm: 90, block_size: 1025, max: 1024 });
        assert_eq!(
            err.to_string(),
            "a block of 1025 threads is larger than the 1024 threads a block may have on sm_90"
        );
        let err = occupancy(a, &kernel(256, 0, 0), 32).unwrap_err();
        assert_eq!(err, OccupancyError::TooManyRegistersPerThread { sm: 90, registers: 256, max: 255 });
        // 255 regs: 8192 a warp; 16 warps need 131072.
        let err = occupancy(a, &kernel(255, 0, 0), 512).unwrap_err();
        assert!(matches!(err, OccupancyError::TooManyRegistersPerBlock { needed: 131072, max: 65536, .. }), "{err:?}");
        let err = occupancy(a, &kernel(0, 48 * 1024 + 1, 0), 32).unwrap_err();
        assert_eq!(err, OccupancyError::StaticSharedTooLarge { sm: 90, bytes: 49153, max: 49152 });
        assert!(err.to_string().contains("49153 bytes of static shared memory"), "{err}");
        let err = occupancy(sm(75), &kernel(0, 0, 64 * 1024 + 1), 32).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a block needs 65537 bytes of shared memory (0 static + 65537 dynamic), more than the 65536 bytes a \
             block may use on sm_75"
        );
    }

    #[test]
    fn register_check_rounds_warps_to_whole_groups() {
        // 200 regs: 6400 a warp. 10 warps would need 64000, which fits, but the hardware checks
        // 12 warps (three groups of 4): 76800.
        let err = occupancy(sm(90), &kernel(200, 0, 0), 320).unwrap_err();
        assert!(matches!(err, OccupancyError::TooManyRegistersPerBlock { needed: 76800, group: 4, .. }), "{err:?}");
        assert!(err.to_string().contains("needs 76800 registers"), "{err}");
        assert!(occupancy(sm(90), &kernel(200, 0, 0), 256).is_ok());
    }

    #[test]
    fn kernels_without_registers_or_shared_memory_are_limited_by_slots() {
        let occ = occupancy(sm(75), &kernel(0, 0, 0), 1024).unwrap();
        assert_eq!(occ.limits.registers, None);
        assert_eq!((occ.active_blocks, occ.limiter, occ.occupancy), (1, Limiter::Warps, 1.0));
    }

    #[test]
    fn odd_block_sizes_take_whole_warps() {
        let occ = occupancy(sm(86), &kernel(32, 0, 0), 100).unwrap();
        assert_eq!(occ.limits.warps, 48 / 4);
        assert_eq!(occ.active_warps, occ.active_blocks * 4);
    }

    #[test]
    fn best_block_size_prefers_the_smallest_of_equals() {
        // sm_90, 32 regs: 32 block slots, so two-warp blocks are the first to fill all 64 warps.
        let best = best_block_size(sm(90), &kernel(32, 0, 0)).unwrap();
        assert_eq!((best.block_size, best.active_warps, best.occupancy), (64, 64, 1.0));
        // sm_86, 64 regs: registers allow 32 warps whatever the block size; a single warp per
        // block is capped by 16 block slots, so two warps is the first size to reach 32.
        let best = best_block_size(sm(86), &kernel(64, 0, 0)).unwrap();
        assert_eq!((best.block_size, best.active_warps), (64, 32));
        // No block size can hold more than the opt-in shared memory.
        assert_eq!(best_block_size(sm(86), &kernel(32, 0, 200 * 1024)), None);
    }

    #[test]
    fn best_block_size_is_never_beaten() {
        for arch in &ARCHS {
            for registers in [16, 40, 72, 128, 255] {
                let k = kernel(registers, 4096, 0);
                let best = best_block_size(arch, &k).unwrap();
                for size in 1..=arch.max_threads_per_block {
                    if let Ok(other) = occupancy(arch, &k, size) {
                        assert!(other.active_warps <= best.active_warps, "sm_{} {registers} regs {size}", arch.sm);
                        if size % 32 == 0 && other.active_warps == best.active_warps {
                            assert!(size >= best.block_size);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn parse_arch_reads_the_usual_spellings() {
        for (text, sm) in [
            ("sm_90", 90),
            ("sm_90a", 90),
            ("compute_90", 90),
            ("compute_90a", 90),
            ("90", 90),
            ("sm_100f", 100),
            ("sm_121a", 121),
            ("lto_89", 89),
            ("sm75", 75),
            (" SM_86 ", 86),
            ("8.6", 86),
            ("12.0", 120),
            ("10.3f", 103),
            ("sm_107", 107),
        ] {
            assert_eq!(parse_arch(text), Some(sm), "{text}");
        }
        for text in ["", "sm_", "sm_9", "sm_0090", "sm_90b", "sm_1000", "gfx90a", "9", "9.", "9.10", "compute_9x", "a"]
        {
            assert_eq!(parse_arch(text), None, "{text}");
        }
    }

    #[test]
    fn table_is_consistent() {
        let archs: Vec<u32> = known_archs().collect();
        assert_eq!(archs, [75, 80, 86, 87, 88, 89, 90, 100, 103, 110, 120, 121]);
        assert!(archs.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(arch_limits(107), None);
        for arch in &ARCHS {
            assert_eq!(arch.max_warps_per_sm() * arch.warp_size, arch.max_threads_per_sm);
            assert_eq!(arch.shared_per_sm, arch.shared_carveouts_kib.last().unwrap() * 1024);
            assert_eq!(arch.max_shared_per_block_optin + arch.reserved_shared_per_block, arch.shared_per_sm);
            assert_eq!(
                (arch.max_shared_per_block_optin + arch.reserved_shared_per_block) % arch.shared_allocation_unit,
                0
            );
            assert!(arch.max_registers_per_block <= arch.registers_per_sm);
            assert_eq!(parse_arch(&arch.name()), Some(arch.sm));
        }
    }

    #[test]
    fn limiter_descriptions() {
        let described: Vec<&str> = Limiter::PRIORITY.iter().map(|l| l.describe()).collect();
        assert_eq!(described, ["threads per SM", "blocks per SM", "registers", "shared memory"]);
        assert_eq!(Limiter::SharedMemory.to_string(), "shared memory");
        assert_eq!(serde_json::to_string(&Limiter::SharedMemory).unwrap(), "\"shared_memory\"");
    }
}
