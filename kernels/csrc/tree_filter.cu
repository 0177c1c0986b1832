// TreeFilter's two passes on CUDA (tree_filter_passes). One block per (image, channel) row walks the
// BFS levels of its image's tree (tree_filter.h): leaf -> root, each node gathering its children
// (consecutive BFS positions, so the sum order is fixed and the result deterministic), then root ->
// leaf; __syncthreads between levels. The CUDA forward/backward are the device-generic composites of
// tree_filter.cpp (ATen ops around these passes).
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <tuple>

#include "tree_filter.h"

namespace wsss {
namespace tree {
namespace {

constexpr int kTreeFilterThreads = 256;

__global__ void tree_filter_passes_kernel(const double* __restrict__ y, const double* __restrict__ weights,
                                          const int32_t* __restrict__ topology, int64_t K, int64_t N,
                                          double* __restrict__ up, double* __restrict__ all) {
  const int64_t row = blockIdx.x;
  const int64_t b = row / K;
  const int32_t* topo = topology + b * kTopologyRows * (N + 1);
  const int32_t* parent = topo + kParent * (N + 1);
  const int32_t* child_begin = topo + kChildBegin * (N + 1);
  const int32_t* child_end = topo + kChildEnd * (N + 1);
  const int32_t* level = topo + kLevel * (N + 1);
  const double* w = weights + b * N;
  const double* yr = y + row * N;
  double* u = up + row * N;
  double* a = all + row * N;

  __shared__ int32_t levels;
  if (threadIdx.x == 0) {  // number of levels: the first l >= 1 with level[l] == N
    int64_t lo = 1, hi = N;
    while (lo < hi) {
      const int64_t mid = (lo + hi) / 2;
      if (level[mid] >= N) hi = mid; else lo = mid + 1;
    }
    levels = static_cast<int32_t>(lo);
  }
  __syncthreads();
  const int32_t L = levels;

  for (int32_t l = L - 1; l >= 0; --l) {
    for (int32_t k = level[l] + threadIdx.x; k < level[l + 1]; k += blockDim.x) {
      double s = yr[k];
      for (int32_t q = child_begin[k]; q < child_end[k]; ++q) s += w[q] * u[q];
      u[k] = s;
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) a[0] = u[0];
  __syncthreads();
  for (int32_t l = 1; l < L; ++l) {
    for (int32_t k = level[l] + threadIdx.x; k < level[l + 1]; k += blockDim.x) {
      const double wk = w[k];
      a[k] = u[k] * (1.0 - wk * wk) + wk * a[parent[k]];
    }
    __syncthreads();
  }
}

std::tuple<at::Tensor, at::Tensor> tree_filter_passes_cuda(const at::Tensor& y_in, const at::Tensor& weights_in,
                                                           const at::Tensor& topo_in) {
  TORCH_CHECK_VALUE(y_in.dim() == 3 && y_in.scalar_type() == at::kDouble && y_in.is_cuda(),
                    "wsss::tree_filter_passes: y must be a (B, K, N) float64 CUDA tensor");
  const int64_t B = y_in.size(0), K = y_in.size(1), N = y_in.size(2);
  TORCH_CHECK_VALUE(weights_in.dim() == 2 && weights_in.size(0) == B && weights_in.size(1) == N &&
                        weights_in.scalar_type() == at::kDouble && weights_in.device() == y_in.device(),
                    "wsss::tree_filter_passes: weights must be (B, N) float64 on y's device");
  TORCH_CHECK_VALUE(topo_in.dim() == 3 && topo_in.size(0) == B && topo_in.size(1) == kTopologyRows &&
                        topo_in.size(2) == N + 1 && topo_in.scalar_type() == at::kInt &&
                        topo_in.device() == y_in.device(),
                    "wsss::tree_filter_passes: topology must be (B, 5, N+1) int32 on y's device");
  TORCH_CHECK_VALUE(B * K <= 2147483647LL, "wsss::tree_filter_passes: too many rows");
  const c10::cuda::CUDAGuard guard(y_in.device());
  const at::Tensor y = y_in.contiguous(), weights = weights_in.contiguous(), topo = topo_in.contiguous();
  at::Tensor up = at::empty_like(y), all = at::empty_like(y);
  if (B * K == 0 || N == 0) return {up, all};
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  tree_filter_passes_kernel<<<static_cast<unsigned int>(B * K), kTreeFilterThreads, 0, stream>>>(
      y.data_ptr<double>(), weights.data_ptr<double>(), topo.data_ptr<int32_t>(), K, N, up.data_ptr<double>(),
      all.data_ptr<double>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return {up, all};
}

}  // namespace
}  // namespace tree
}  // namespace wsss

TORCH_LIBRARY_IMPL(wsss, CUDA, m) {
  m.impl("tree_filter_passes", &wsss::tree::tree_filter_passes_cuda);
  m.impl("tree_filter_forward", &wsss::tree::tree_filter_forward_composite);
  m.impl("tree_filter_backward", &wsss::tree::tree_filter_backward_composite);
}
