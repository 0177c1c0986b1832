// Grid MST on CUDA: Borůvka on the device (grid_mst_boruvka in mst.cpp, ATen CUDA ops: stable
// segmented sort for the edge ranks, scatter_reduce "amin" — an atomic minimum per component — for
// each component's lightest crossing edge, index_select pointer jumping to merge), fed by the edge
// weight kernel below. Identical (weight, edge index) order and weights as the CPU Kruskal, so the
// CPU and CUDA trees are identical.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>

#include "mst.h"
#include "mst_grid.h"

namespace wsss {
namespace tree {
namespace {

constexpr int kMstThreads = 256;

template <typename T>
__global__ void grid_edge_weights_kernel(const T* __restrict__ guide, int64_t B, int64_t C, int64_t H, int64_t W,
                                         double* __restrict__ weights) {
  const int64_t N = H * W, E = grid_num_edges(H, W), total = B * E;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t b = i / E, e = i % E;
    int64_t u, v;
    grid_edge(e, H, W, u, v);
    weights[i] = add_exact_order(squared_distance(guide + b * C * N, C, N, u, v), 1.0);
  }
}

at::Tensor grid_edge_weights_cuda(const at::Tensor& guide_in) {
  check_grid_guide(guide_in, "grid_edge_weights");
  TORCH_CHECK_VALUE(guide_in.is_cuda(), "wsss::grid_edge_weights: CUDA kernel got a ", guide_in.device(), " tensor");
  const c10::cuda::CUDAGuard guard(guide_in.device());
  const at::Tensor guide = guide_in.contiguous();
  const int64_t B = guide.size(0), C = guide.size(1), H = guide.size(2), W = guide.size(3);
  const int64_t E = grid_num_edges(H, W);
  at::Tensor weights = at::empty({B, E}, guide.options().dtype(at::kDouble));
  if (B * E == 0) return weights;
  const int64_t blocks = std::min<int64_t>((B * E + kMstThreads - 1) / kMstThreads, 65535LL * 16);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(guide.scalar_type(), "grid_edge_weights_cuda", [&] {
    grid_edge_weights_kernel<scalar_t><<<static_cast<unsigned int>(blocks), kMstThreads, 0, stream>>>(
        guide.data_ptr<scalar_t>(), B, C, H, W, weights.data_ptr<double>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return weights;
}

}  // namespace
}  // namespace tree
}  // namespace wsss

TORCH_LIBRARY_IMPL(wsss, CUDA, m) {
  m.impl("grid_mst", &wsss::tree::grid_mst_boruvka);
  m.impl("grid_edge_weights", &wsss::tree::grid_edge_weights_cuda);
}
