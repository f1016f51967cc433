//! CUDA tests that run everywhere: the real NVRTC and ptxas from the PyPI wheels (installed by
//! `tests/cuda/setup`), and NVIDIA's occupancy calculator (`cuda_occupancy.h`) built with g++ as an
//! oracle. No GPU is needed.

mod nvrtc;
mod occupancy;
mod support;
mod timing;
mod triton;
