// Sparse random walk on a radius-r neighbour graph (PSA / IRN semantics), CPU implementation.
//
// Graph: an edge between pixel i and i + o_d for every direction d of the half-neighbourhood
// `offsets` (each unordered pair once), weighted affinity[b, d, i]^beta; pairs leaving the image are
// dropped. With the self loop (weight 1) this is A = pairs + pairs^T + I after the element-wise power.
// One step maps row vectors v -> v T with T column-normalised:
//     v'_j = (v_j + sum_d w_d(j) v_{j+o_d} + sum_d w_d(j-o_d) v_{j-o_d}) / deg_j,
//     deg_j = 1 + sum_d w_d(j) + sum_d w_d(j-o_d).
// Memory O(N * D): the D edge planes, one 1/deg plane and two ping-pong value buffers.
//
// Frozen pixels (optional (B, H, W) mask, non-zero = frozen; RETAB's second walk): a frozen pixel j keeps
// its value at every step (its column of T is the identity: no edge into it) but still sends its value
// along its edges to the pixels that are not frozen. The graph is then directed, so the edges a pixel
// receives along are kept in a second set of D planes: plane d of the first set holds the weight with
// which j receives from j + o_d (stored at j), plane d of the second the weight with which j + o_d
// receives from j (stored at j); without a mask both sets are the same planes.
#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <cmath>
#include <optional>

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
                           const T* frozen, at::Tensor& output) {
  const int64_t B = values.size(0), C = values.size(1), H = values.size(2), W = values.size(3);
  const int64_t D = static_cast<int64_t>(offsets.size());
  int64_t pad = 0;
  for (auto& o : offsets) pad = std::max({pad, std::abs(o.first), std::abs(o.second)});
  const PaddedGrid g(H, W, pad, stencil::Vec<T>::lanes);

  // Edge planes e[b][d] = affinity^beta where the pair lies inside the image, else 0 (padding 0); with
  // frozen pixels, planes [D, 2D) of each batch item hold the reverse direction (see the file comment).
  const int64_t sets = frozen != nullptr ? 2 : 1;
  const int64_t per_batch = sets * D * g.plane;
  at::Tensor edges = at::zeros({std::max<int64_t>(1, B * per_batch)}, values.options());
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
      const int64_t b = bd / D;
      T* out = e + b * per_batch + d * g.plane + g.at(y, 0);
      if (frozen == nullptr) {
        for (int64_t x = x0; x < x1; ++x) out[x] = std::pow(a[x], tbeta);
        continue;
      }
      // j = (y, x) receives from j + o_d unless j is frozen; j + o_d receives from j unless it is frozen
      const T* f_here = frozen + (b * H + y) * W;
      const T* f_there = frozen + (b * H + y + dy) * W + dx;
      T* back = out + D * g.plane;
      for (int64_t x = x0; x < x1; ++x) {
        const T w = std::pow(a[x], tbeta);
        out[x] = f_here[x] != T(0) ? T(0) : w;
        back[x] = f_there[x] != T(0) ? T(0) : w;
      }
    }
  });
  const int64_t back_set = (sets - 1) * D * g.plane;  // offset of the reverse planes (0: the same planes)
  at::parallel_for(0, B * H, stencil::grain_for(2 * D * W), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / H, y = r % H;
      const T* eb = e + b * per_batch;
      T* out = inv + b * g.plane + g.at(y, 0);
      for (int64_t x = 0; x < W; ++x) {
        const int64_t j = g.at(y, x);
        T deg = 1;
        for (int64_t d = 0; d < D; ++d) {
          deg += eb[d * g.plane + j] + eb[back_set + d * g.plane + j - g.shift(offsets[d].first, offsets[d].second)];
        }
        out[x] = T(1) / deg;
      }
    }
  });

  Problem P{B, C, g, {}, /*self_one=*/true, per_batch, g.plane, 0};
  for (int64_t d = 0; d < D; ++d) {
    const int64_t s = g.shift(offsets[d].first, offsets[d].second);
    P.terms.push_back(Term{d * g.plane, s});                  // neighbour j + o_d, edge stored at j
    P.terms.push_back(Term{back_set + d * g.plane - s, -s});  // neighbour j - o_d, edge stored at j - o_d
  }
  at::Tensor buf_a = at::zeros({B * C * g.plane}, values.options());
  at::Tensor buf_b = at::zeros({B * C * g.plane}, values.options());
  stencil::scatter_padded<T>(values.data_ptr<T>(), buf_a.data_ptr<T>(), B * C, g);
  const T* result = stencil::propagate<T>(P, e, inv, buf_a.data_ptr<T>(), buf_b.data_ptr<T>(), steps);
  stencil::gather_padded<T>(result, output.data_ptr<T>(), B * C, g);
}

at::Tensor random_walk_cpu(const at::Tensor& values, const at::Tensor& affinity, c10::IntArrayRef offsets_flat,
                           double beta, int64_t steps, const std::optional<at::Tensor>& frozen) {
  const auto offsets = parse_offsets(offsets_flat);
  TORCH_CHECK(values.dim() == 4 && affinity.dim() == 4, "wsss::random_walk: values and affinity must be 4-D");
  TORCH_CHECK(affinity.size(0) == values.size(0) && affinity.size(2) == values.size(2) &&
                  affinity.size(3) == values.size(3) && affinity.size(1) == static_cast<int64_t>(offsets.size()),
              "wsss::random_walk: affinity must be (B, D, H, W) with D = number of offsets");
  TORCH_CHECK(values.scalar_type() == affinity.scalar_type(), "wsss::random_walk: dtype mismatch");
  TORCH_CHECK(steps >= 0, "wsss::random_walk: steps must be >= 0");
  at::Tensor v = values.contiguous();
  at::Tensor a = affinity.contiguous();
  at::Tensor f;
  if (frozen.has_value()) {
    TORCH_CHECK(frozen->dim() == 3 && frozen->size(0) == values.size(0) && frozen->size(1) == values.size(2) &&
                    frozen->size(2) == values.size(3),
                "wsss::random_walk: frozen must be (B, H, W) like values");
    f = frozen->to(v.scalar_type()).contiguous();
  }
  at::Tensor output = at::empty(v.sizes(), v.options());
  if (v.numel() == 0) return output;
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "wsss::random_walk", [&] {
    random_walk_cpu_typed<scalar_t>(v, a, offsets, beta, steps, f.defined() ? f.data_ptr<scalar_t>() : nullptr, output);
  });
  return output;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(wsss, m) {
  m.def("random_walk(Tensor values, Tensor affinity, int[] offsets, float beta, int steps, Tensor? frozen=None) -> Tensor");
}

TORCH_LIBRARY_IMPL(wsss, CPU, m) { m.impl("random_walk", &random_walk_cpu); }

}  // namespace wsss
