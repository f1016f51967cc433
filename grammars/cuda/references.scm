; inherits: cpp
; CUDA adds execution-space qualifiers and kernel launches to C++.

["__global__" "__device__" "__host__" "__shared__" "__constant__" "__managed__"
 "__forceinline__" "__noinline__" "__grid_constant__" "__launch_bounds__"] @tl.qualifier

; k<<<grid, block, smem, stream>>>(args): the launch configuration and the kernel called.
(call_expression function: (_) @tl.launch.kernel (kernel_call_syntax) @tl.launch.config) @tl.launch
