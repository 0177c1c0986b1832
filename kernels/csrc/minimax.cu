// Minimax (APro global) propagation on CUDA: minimax_propagation_ranges (minimax.cpp) — edge weights
// (kernel below) and their sort on the device, the Kruskal reconstruction tree on the host, then the
// per-channel prefix sums / range additions on the device — registered as the CUDA kernel of
// minimax_propagation.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>

#include "minimax.h"
#include "mst_grid.h"

namespace wsss {
namespace tree {
namespace {

constexpr int kMinimaxThreads = 256;

// weights[b, k] = sum_e (embed[b, e, u] - embed[b, e, v])^2 for tree edge k = (u, v).
template <typename T>
__global__ void tree_edge_weights_kernel(const int64_t* __restrict__ edges, const T* __restrict__ embed, int64_t B,
                                         int64_t E, int64_t N, double* __restrict__ weights) {
  const int64_t total = B * (N - 1);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t b = i / (N - 1);
    weights[i] = squared_distance(embed + b * E * N, E, N, edges[2 * i], edges[2 * i + 1]);
  }
}

at::Tensor minimax_edge_weights_cuda(const at::Tensor& tree_in, const at::Tensor& embed_in) {
  TORCH_CHECK_VALUE(embed_in.dim() == 4, "wsss::minimax_edge_weights: embed must be (B, E, H, W)");
  TORCH_CHECK_VALUE(embed_in.is_cuda(), "wsss::minimax_edge_weights: CUDA kernel got a ", embed_in.device(),
                    " tensor");
  check_tree(tree_in, embed_in, "minimax_edge_weights");
  const c10::cuda::CUDAGuard guard(embed_in.device());
  const at::Tensor tree = tree_in.contiguous(), embed = embed_in.contiguous();
  const int64_t B = embed.size(0), E = embed.size(1), N = embed.size(2) * embed.size(3);
  at::Tensor weights = at::empty({B, N - 1}, embed.options().dtype(at::kDouble));
  if (B * (N - 1) == 0) return weights;
  const int64_t blocks = std::min<int64_t>((B * (N - 1) + kMinimaxThreads - 1) / kMinimaxThreads, 65535LL * 16);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(embed.scalar_type(), "minimax_edge_weights_cuda", [&] {
    tree_edge_weights_kernel<scalar_t><<<static_cast<unsigned int>(blocks), kMinimaxThreads, 0, stream>>>(
        tree.data_ptr<int64_t>(), embed.data_ptr<scalar_t>(), B, E, N, weights.data_ptr<double>());
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return weights;
}

at::Tensor minimax_propagation_cuda(const at::Tensor& values, const at::Tensor& tree, const at::Tensor& embed,
                                    double zeta) {
  const c10::cuda::CUDAGuard guard(values.device());
  return minimax_propagation_ranges(values, tree, embed, zeta);
}

}  // namespace
}  // namespace tree
}  // namespace wsss

TORCH_LIBRARY_IMPL(wsss, CUDA, m) {
  m.impl("minimax_propagation", &wsss::tree::minimax_propagation_cuda);
  m.impl("minimax_edge_weights", &wsss::tree::minimax_edge_weights_cuda);
}
