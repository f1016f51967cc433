// Answers occupancy questions with NVIDIA's own calculator (cuda_occupancy.h, host-only C++), so
// that tests/cuda/occupancy.rs can hold tensorlens's calculator against it without a GPU.
//
// One query per line on stdin, one answer per line on stdout. Every query starts with a device:
//   SM MAX_THREADS_PER_BLOCK MAX_THREADS_PER_SM REGS_PER_BLOCK REGS_PER_SM WARP_SIZE
//   SHARED_PER_BLOCK SHARED_PER_SM SHARED_OPTIN SHARED_RESERVED
// and then, by command:
//   occ   DEVICE REGS STATIC DYNAMIC BLOCK -> "ok ACTIVE_BLOCKS LIMITING_MASK" (cudaOccMaxActiveBlocksPerMultiprocessor)
//   best  DEVICE REGS STATIC DYNAMIC       -> "ok BLOCK_SIZE BLOCKS_PER_SM" (cudaOccMaxPotentialOccupancyBlockSize)
//   facts DEVICE                           -> "ok MAX_BLOCKS SMEM_UNIT REG_UNIT MAX_REGS_PER_THREAD SUB_PARTITIONS CARVEOUT_KIB..."
// A failed call answers "err CODE". The kernel is described as cudaFuncGetAttributes would for a
// kernel that opted in to exactly the dynamic shared memory it is launched with; the device state
// is the default one (the driver chooses the carveout).

#include <cuda_occupancy.h>

#include <climits>
#include <iostream>
#include <set>
#include <sstream>
#include <string>

namespace {

bool read_device(std::istringstream &in, cudaOccDeviceProp &device) {
    long sm = 0, shared_per_block = 0, shared_per_sm = 0, optin = 0, reserved = 0;
    in >> sm >> device.maxThreadsPerBlock >> device.maxThreadsPerMultiprocessor >> device.regsPerBlock >>
        device.regsPerMultiprocessor >> device.warpSize >> shared_per_block >> shared_per_sm >> optin >> reserved;
    device.computeMajor = static_cast<int>(sm / 10);
    device.computeMinor = static_cast<int>(sm % 10);
    device.sharedMemPerBlock = static_cast<size_t>(shared_per_block);
    device.sharedMemPerMultiprocessor = static_cast<size_t>(shared_per_sm);
    device.sharedMemPerBlockOptin = static_cast<size_t>(optin);
    device.reservedSharedMemPerBlock = static_cast<size_t>(reserved);
    device.numSms = 1;  // so a suggested grid size is blocks per SM
    return static_cast<bool>(in);
}

bool read_kernel(std::istringstream &in, cudaOccFuncAttributes &kernel, size_t &dynamic) {
    long regs = 0, static_bytes = 0, dynamic_bytes = 0;
    in >> regs >> static_bytes >> dynamic_bytes;
    kernel.maxThreadsPerBlock = INT_MAX;
    kernel.numRegs = static_cast<int>(regs);
    kernel.sharedSizeBytes = static_cast<size_t>(static_bytes);
    kernel.partitionedGCConfig = PARTITIONED_GC_OFF;
    kernel.shmemLimitConfig = FUNC_SHMEM_LIMIT_OPTIN;
    kernel.maxDynamicSharedSizeBytes = static_cast<size_t>(dynamic_bytes);
    kernel.numBlockBarriers = 1;  // what a compiled kernel reports
    kernel.virtualResourceCount = 0;
    dynamic = static_cast<size_t>(dynamic_bytes);
    return static_cast<bool>(in);
}

// Every carveout size (KiB) the header will round a shared-memory request up to, found by asking it.
std::set<size_t> carveouts(const cudaOccDeviceProp &device) {
    std::set<size_t> sizes;
    for (size_t kib = 0; kib <= 1024; ++kib) {
        size_t bytes = kib * 1024;
        if (cudaOccAlignUpShmemSizeVoltaPlus(&bytes, &device) == CUDA_OCC_SUCCESS) {
            sizes.insert(bytes / 1024);
        }
    }
    return sizes;
}

std::string answer(const std::string &line) {
    std::istringstream in(line);
    std::string command;
    in >> command;
    cudaOccDeviceProp device;
    if (!read_device(in, device)) {
        return "bad device";
    }
    cudaOccDeviceState state;
    std::ostringstream out;
    if (command == "occ" || command == "best") {
        cudaOccFuncAttributes kernel;
        size_t dynamic = 0;
        if (!read_kernel(in, kernel, dynamic)) {
            return "bad kernel";
        }
        if (command == "occ") {
            long block = 0;
            if (!(in >> block)) {
                return "bad block";
            }
            cudaOccResult result;
            cudaOccError error = cudaOccMaxActiveBlocksPerMultiprocessor(&result, &device, &kernel, &state,
                                                                         static_cast<int>(block), dynamic);
            if (error != CUDA_OCC_SUCCESS) {
                out << "err " << error;
            } else {
                out << "ok " << result.activeBlocksPerMultiprocessor << ' ' << result.limitingFactors;
            }
        } else {
            int grid = 0, block = 0;
            cudaOccError error =
                cudaOccMaxPotentialOccupancyBlockSize(&grid, &block, &device, &kernel, &state, nullptr, dynamic);
            if (error != CUDA_OCC_SUCCESS) {
                out << "err " << error;
            } else {
                out << "ok " << block << ' ' << grid;
            }
        }
    } else if (command == "facts") {
        int max_blocks = 0, smem_unit = 0, reg_unit = 0, max_regs = 0, sub_partitions = 0;
        cudaOccError errors[] = {
            cudaOccMaxBlocksPerMultiprocessor(&max_blocks, &device),
            cudaOccSMemAllocationGranularity(&smem_unit, &device),
            cudaOccRegAllocationGranularity(&reg_unit, &device),
            cudaOccRegAllocationMaxPerThread(&max_regs, &device),
            cudaOccSubPartitionsPerMultiprocessor(&sub_partitions, &device),
        };
        for (cudaOccError error : errors) {
            if (error != CUDA_OCC_SUCCESS) {
                out << "err " << error;
                return out.str();
            }
        }
        out << "ok " << max_blocks << ' ' << smem_unit << ' ' << reg_unit << ' ' << max_regs << ' ' << sub_partitions;
        for (size_t kib : carveouts(device)) {
            out << ' ' << kib;
        }
    } else {
        return "bad command";
    }
    return out.str();
}

}  // namespace

int main() {
    std::ios::sync_with_stdio(false);
    std::string line;
    while (std::getline(std::cin, line)) {
        std::cout << answer(line) << '\n';
    }
    return 0;
}
