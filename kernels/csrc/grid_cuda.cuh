// Small helpers shared by the CUDA grid ops (random walk, local propagation, superpixel pool/upsample).
// Only light headers: the toolkit needs no cuSPARSE/cuBLAS headers to build these files.
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace wsss {
namespace cuda {

constexpr int kThreads = 256;

inline unsigned int blocks_for(int64_t n) {
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned int>(std::max<int64_t>(1, std::min<int64_t>(b, 65535LL * 32)));
}

// Grid-stride loop over [0, n).
#define WSSS_CUDA_LOOP(i, n) \
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < (n); i += (int64_t)blockDim.x * gridDim.x)

// (dy, dx) offsets as an int32 tensor on the device of `like`.
inline at::Tensor offsets_on_device(const std::vector<int>& flat, const at::Tensor& like) {
  at::Tensor host = at::empty({static_cast<int64_t>(std::max<size_t>(flat.size(), 2))},
                              at::TensorOptions().dtype(at::kInt));
  int* p = host.data_ptr<int>();
  for (size_t i = 0; i < flat.size(); ++i) p[i] = flat[i];
  return host.to(like.device(), /*non_blocking=*/false);
}

inline void check_cuda(const at::Tensor& t, const char* op, const char* name) {
  TORCH_CHECK(t.is_cuda(), op, ": ", name, " must be a CUDA tensor");
}

}  // namespace cuda
}  // namespace wsss
