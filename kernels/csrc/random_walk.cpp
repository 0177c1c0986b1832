// Sparse random walk on a radius-r neighbour graph (PSA / IRN semantics), CPU implementation.
//
// Graph: an edge between pixel i and i + o_d for every direction d of the half-neighbourhood
// `offsets` (each unordered pair once), weighted affinity[b, d, i]^beta; pairs leaving the image are
// dropped. With the self loop (weight 1) this is A = pairs + pairs^T + I after the element-wise power.
// One step maps row vectors v -> v T with T column-normalised:
//     v'_j = (v_j + sum_d w_d(j) v_{j+o_d} + sum_d w_d(j-o_d) v_{j-o_d}) / deg_j,
//     deg_j = 1 + sum_d w_d(j) + sum_d w_d(j-o_d).
// Memory O(N * D): the D edge planes, one 1/deg plane and two ping-pong value buffers.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <cmath>

#include "grid_stencil.h"

namespace wsss {
namespace {

using stencil::PaddedGrid;
using stencil::Problem;
using stencil::Term;

std::vector<std::pair<int64_t, int64_t>> parse_offsets(c10::IntArrayRef flat) {
  TORCH_CHECK(flat.size() % 2 == 0, "wsss::random_walk: offsets must hold (dy, dx) pairs, got ", flat.size(), " values");
  std::vector<std::pair<int64_t, int64_t>> offsets;
  for (size_t i = 0; i < flat.size(); i += 2) offsets.emplace_back(flat[i], flat[i + 1]);
  return offsets;
}

template <typename T>
void random_walk_cpu_typed(const at::Tensor& values, const at::Tensor& affinity,
                           const std::vector<std::pair<int64_t, int64_t>>& offsets, double beta, int64_t steps,
                           at::Tensor& output) {
  const int64_t B = values.size(0), C = values.size(1), H = values.size(2), W = values.size(3);
  const int64_t D = static_cast<int64_t>(offsets.size());
  int64_t pad = 0;
  for (auto& o : offsets) pad = std::max({pad, std::abs(o.first), std::abs(o.second)});
  const PaddedGrid g(H, W, pad, stencil::Vec<T>::lanes);

  // Edge planes e[b][d] = affinity^beta where the pair lies inside the image, else 0 (padding 0).
  at::Tensor edges = at::zeros({std::max<int64_t>(1, B * D * g.plane)}, values.options());
  at::Tensor inv_deg = at::zeros({B * g.plane}, values.options());
  T* e = edges.data_ptr<T>();
  T* inv = inv_deg.data_ptr<T>();
  const T* aff = affinity.data_ptr<T>();
  const T tbeta = static_cast<T>(beta);
  at::parallel_for(0, B * D * H, stencil::grain_for(16 * W), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t bd = r / H, y = r % H, d = bd % D;
      const int64_t dy = offsets[d].first, dx = offsets[d].second;
      if (y + dy < 0 || y + dy >= H) continue;
      const int64_t x0 = std::max<int64_t>(0, -dx), x1 = std::min<int64_t>(W, W - dx);
      const T* a = aff + (bd * H + y) * W;
      T* out = e + bd * g.plane + g.at(y, 0);
      for (int64_t x = x0; x < x1; ++x) out[x] = std::pow(a[x], tbeta);
    }
  });
  at::parallel_for(0, B * H, stencil::grain_for(2 * D * W), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / H, y = r % H;
      const T* eb = e + b * D * g.plane;
      T* out = inv + b * g.plane + g.at(y, 0);
      for (int64_t x = 0; x < W; ++x) {
        const int64_t j = g.at(y, x);
        T deg = 1;
        for (int64_t d = 0; d < D; ++d) {
          deg += eb[d * g.plane + j] + eb[d * g.plane + j - g.shift(offsets[d].first, offsets[d].second)];
        }
        out[x] = T(1) / deg;
      }
    }
  });

  Problem P{B, C, g, {}, /*self_one=*/true, D * g.plane, g.plane, 0};
  for (int64_t d = 0; d < D; ++d) {
    const int64_t s = g.shift(offsets[d].first, offsets[d].second);
    P.terms.push_back(Term{d * g.plane, s});       // neighbour j + o_d, edge stored at j
    P.terms.push_back(Term{d * g.plane - s, -s});  // neighbour j - o_d, edge stored at j - o_d
  }
  at::Tensor buf_a = at::zeros({B * C * g.plane}, values.options());
  at::Tensor buf_b = at::zeros({B * C * g.plane}, values.options());
  stencil::scatter_padded<T>(values.data_ptr<T>(), buf_a.data_ptr<T>(), B * C, g);
  const T* result = stencil::propagate<T>(P, e, inv, buf_a.data_ptr<T>(), buf_b.data_ptr<T>(), steps);
  stencil::gather_padded<T>(result, output.data_ptr<T>(), B * C, g);
}

at::Tensor random_walk_cpu(const at::Tensor& values, const at::Tensor& affinity, c10::IntArrayRef offsets_flat,
                           double beta, int64_t steps) {
  const auto offsets = parse_offsets(offsets_flat);
  TORCH_CHECK(values.dim() == 4 && affinity.dim() == 4, "wsss::random_walk: values and affinity must be 4-D");
  TORCH_CHECK(affinity.size(0) == values.size(0) && affinity.size(2) == values.size(2) &&
                  affinity.size(3) == values.size(3) && affinity.size(1) == static_cast<int64_t>(offsets.size()),
              "wsss::random_walk: affinity must be (B, D, H, W) with D = number of offsets");
  TORCH_CHECK(values.scalar_type() == affinity.scalar_type(), "wsss::random_walk: dtype mismatch");
  TORCH_CHECK(steps >= 0, "wsss::random_walk: steps must be >= 0");
  at::Tensor v = values.contiguous();
  at::Tensor a = affinity.contiguous();
  at::Tensor output = at::empty(v.sizes(), v.options());
  if (v.numel() == 0) return output;
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "wsss::random_walk", [&] {
    random_walk_cpu_typed<scalar_t>(v, a, offsets, beta, steps, output);
  });
  return output;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(wsss, m) {
  m.def("random_walk(Tensor values, Tensor affinity, int[] offsets, float beta, int steps) -> Tensor");
}

TORCH_LIBRARY_IMPL(wsss, CPU, m) { m.impl("random_walk", &random_walk_cpu); }

}  // namespace wsss
