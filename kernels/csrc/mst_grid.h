// The 4-connected grid graph of the grid MST, shared by the CPU (mst.cpp) and CUDA (mst.cu) code.
//
// Nodes are pixels, index y*W + x. Edges are numbered as APro/TreeFilter enumerate them: first the
// (H-1)*W vertical pairs (y*W+x, (y+1)*W+x) row-major by the upper pixel, then the H*(W-1)
// horizontal pairs (y*W+x, y*W+x+1) row-major by the left pixel. Edge weight (float64):
//     w = sum_c (g_c[u] - g_c[v])^2 + 1,
// the squares summed in channel order, then 1 added; no fused multiply-add, so CPU and GPU give
// bit-identical weights (and therefore identical trees).
#pragma once

#include <cstdint>

#ifdef __CUDACC__
#define WSSS_TREE_HD __host__ __device__ inline
#else
#define WSSS_TREE_HD inline
#endif

namespace wsss {
namespace tree {

WSSS_TREE_HD int64_t grid_num_edges(int64_t H, int64_t W) { return (H - 1) * W + H * (W - 1); }

WSSS_TREE_HD void grid_edge(int64_t e, int64_t H, int64_t W, int64_t& u, int64_t& v) {
  const int64_t vertical = (H - 1) * W;
  if (e < vertical) {
    u = e;
    v = e + W;
  } else {
    const int64_t h = e - vertical;
    const int64_t y = h / (W - 1), x = h % (W - 1);
    u = y * W + x;
    v = u + 1;
  }
}

WSSS_TREE_HD double mul_exact_order(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dmul_rn(a, b);
#else
  return a * b;
#endif
}

WSSS_TREE_HD double add_exact_order(double a, double b) {
#ifdef __CUDA_ARCH__
  return __dadd_rn(a, b);
#else
  return a + b;
#endif
}

// sum_c (g[c*N + u] - g[c*N + v])^2 in channel order (float64, never contracted to FMA).
template <typename T>
WSSS_TREE_HD double squared_distance(const T* g, int64_t C, int64_t N, int64_t u, int64_t v) {
  double s = 0.0;
  for (int64_t c = 0; c < C; ++c) {
    const double d = static_cast<double>(g[c * N + u]) - static_cast<double>(g[c * N + v]);
    s = add_exact_order(s, mul_exact_order(d, d));
  }
  return s;
}

}  // namespace tree
}  // namespace wsss
