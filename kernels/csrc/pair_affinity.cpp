// PSA's pair affinities of AffinityNet features and their gradient, CPU implementation.
//
//   a[b, d, y, x] = exp(-(1/C) * sum_c |f[b, c, y, x] - f[b, c, y + dy_d, x + dx_d]|)   (0 where the pair leaves
//   the image), the pairs of the half-neighbourhood `offsets` (kernels.direction_offsets).
//
// Backward, with w = grad_a * a * (-1/C) on the pairs inside the image (0 elsewhere) and sgn(0) = 0 as autograd's
// abs has it: every pixel p gathers
//   grad_f[c, p] = sum_d w[d, p] * sgn(f[c, p] - f[c, p + o_d]) + sum_d w[d, p - o_d] * sgn(f[c, p] - f[c, p - o_d]),
// so each output row is written by one thread (no atomics, deterministic at any thread count).
// The plain-PyTorch form of the same function (kernels.random_walk._pair_affinity_torch) is the reference.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <cmath>
#include <vector>

namespace wsss {
namespace {

std::vector<std::pair<int64_t, int64_t>> pair_offsets(c10::IntArrayRef flat, const char* op) {
  TORCH_CHECK(flat.size() % 2 == 0, op, ": offsets must hold (dy, dx) pairs, got ", flat.size(), " values");
  std::vector<std::pair<int64_t, int64_t>> offsets;
  for (size_t i = 0; i < flat.size(); i += 2) offsets.emplace_back(flat[i], flat[i + 1]);
  return offsets;
}

template <typename T>
inline T sgn(T v) {
  return static_cast<T>((v > T(0)) - (v < T(0)));
}

template <typename T>
void forward_typed(const at::Tensor& f, const std::vector<std::pair<int64_t, int64_t>>& offsets, at::Tensor& out) {
  const int64_t B = f.size(0), C = f.size(1), H = f.size(2), W = f.size(3), D = offsets.size(), N = H * W;
  const T* fp = f.data_ptr<T>();
  T* op = out.data_ptr<T>();
  const T scale = T(1) / static_cast<T>(C);
  at::parallel_for(0, B * D * H, std::max<int64_t>(1, 2048 / std::max<int64_t>(1, W * C)), [&](int64_t begin, int64_t end) {
    std::vector<T> acc(W);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / (D * H), d = (r / H) % D, y = r % H;
      const int64_t dy = offsets[d].first, dx = offsets[d].second;
      T* row = op + ((b * D + d) * H + y) * W;
      std::fill(row, row + W, T(0));
      if (y + dy < 0 || y + dy >= H) continue;
      const int64_t x0 = std::max<int64_t>(0, -dx), x1 = std::min<int64_t>(W, W - dx);
      if (x0 >= x1) continue;
      std::fill(acc.begin(), acc.end(), T(0));
      for (int64_t c = 0; c < C; ++c) {
        const T* src = fp + (b * C + c) * N + y * W;
        const T* dst = fp + (b * C + c) * N + (y + dy) * W + dx;
        for (int64_t x = x0; x < x1; ++x) acc[x] += std::abs(src[x] - dst[x]);
      }
      for (int64_t x = x0; x < x1; ++x) row[x] = std::exp(-acc[x] * scale);
    }
  });
}

template <typename T>
void backward_typed(const at::Tensor& grad, const at::Tensor& f, const at::Tensor& a,
                    const std::vector<std::pair<int64_t, int64_t>>& offsets, at::Tensor& grad_f) {
  const int64_t B = f.size(0), C = f.size(1), H = f.size(2), W = f.size(3), D = offsets.size(), N = H * W;
  const T* fp = f.data_ptr<T>();
  const T* gp = grad.data_ptr<T>();
  const T* ap = a.data_ptr<T>();
  T* out = grad_f.data_ptr<T>();
  const T scale = T(-1) / static_cast<T>(C);
  // w = grad * a * (-1/C): a is 0 on the pairs leaving the image, so w is too
  at::Tensor weights = at::empty({B * D * N}, f.options());
  T* wp = weights.data_ptr<T>();
  at::parallel_for(0, B * D * N, 16384, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) wp[i] = gp[i] * ap[i] * scale;
  });
  at::parallel_for(0, B * H, std::max<int64_t>(1, 512 / std::max<int64_t>(1, W)), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t b = r / H, y = r % H;
      for (int64_t c = 0; c < C; ++c) std::fill(out + (b * C + c) * N + y * W, out + (b * C + c) * N + (y + 1) * W, T(0));
      for (int64_t d = 0; d < D; ++d) {
        const int64_t dy = offsets[d].first, dx = offsets[d].second;
        // p as the source of pair (p, p + o)
        if (y + dy >= 0 && y + dy < H) {
          const int64_t x0 = std::max<int64_t>(0, -dx), x1 = std::min<int64_t>(W, W - dx);
          const T* w = wp + ((b * D + d) * H + y) * W;
          for (int64_t c = 0; c < C; ++c) {
            const T* fc = fp + (b * C + c) * N;
            T* gc = out + (b * C + c) * N + y * W;
            const T* src = fc + y * W;
            const T* dst = fc + (y + dy) * W + dx;
            for (int64_t x = x0; x < x1; ++x) gc[x] += w[x] * sgn(src[x] - dst[x]);
          }
        }
        // p as the target of pair (p - o, p)
        const int64_t sy = y - dy;
        if (sy >= 0 && sy < H) {
          const int64_t x0 = std::max<int64_t>(0, dx), x1 = std::min<int64_t>(W, W + dx);
          const T* w = wp + ((b * D + d) * H + sy) * W - dx;
          for (int64_t c = 0; c < C; ++c) {
            const T* fc = fp + (b * C + c) * N;
            T* gc = out + (b * C + c) * N + y * W;
            const T* here = fc + y * W;
            const T* there = fc + sy * W - dx;
            for (int64_t x = x0; x < x1; ++x) gc[x] += w[x] * sgn(here[x] - there[x]);
          }
        }
      }
    }
  });
}

void check_inputs(const at::Tensor& f, const char* op) {
  TORCH_CHECK(f.dim() == 4, op, ": features must be (B, C, H, W), got ", f.dim(), " dimensions");
  TORCH_CHECK(f.size(1) >= 1, op, ": features need at least one channel");
}

at::Tensor pair_affinity_cpu(const at::Tensor& features, c10::IntArrayRef offsets_flat) {
  check_inputs(features, "wsss::pair_affinity");
  const auto offsets = pair_offsets(offsets_flat, "wsss::pair_affinity");
  at::Tensor f = features.contiguous();
  at::Tensor out = at::empty({f.size(0), static_cast<int64_t>(offsets.size()), f.size(2), f.size(3)}, f.options());
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(f.scalar_type(), "wsss::pair_affinity", [&] { forward_typed<scalar_t>(f, offsets, out); });
  return out;
}

at::Tensor pair_affinity_backward_cpu(const at::Tensor& grad, const at::Tensor& features, const at::Tensor& affinity,
                                      c10::IntArrayRef offsets_flat) {
  check_inputs(features, "wsss::pair_affinity_backward");
  const auto offsets = pair_offsets(offsets_flat, "wsss::pair_affinity_backward");
  at::Tensor f = features.contiguous(), g = grad.contiguous(), a = affinity.contiguous();
  TORCH_CHECK(g.sizes() == a.sizes() && g.size(0) == f.size(0) && g.size(1) == static_cast<int64_t>(offsets.size()) &&
                  g.size(2) == f.size(2) && g.size(3) == f.size(3),
              "wsss::pair_affinity_backward: grad and affinity must be (B, D, H, W) of the features");
  at::Tensor grad_f = at::empty(f.sizes(), f.options());
  if (f.numel() == 0) return grad_f;
  AT_DISPATCH_FLOATING_TYPES(f.scalar_type(), "wsss::pair_affinity_backward",
                             [&] { backward_typed<scalar_t>(g, f, a, offsets, grad_f); });
  return grad_f;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(wsss, m) {
  m.def("pair_affinity(Tensor features, int[] offsets) -> Tensor");
  m.def("pair_affinity_backward(Tensor grad, Tensor features, Tensor affinity, int[] offsets) -> Tensor");
}

TORCH_LIBRARY_IMPL(wsss, CPU, m) {
  m.impl("pair_affinity", &pair_affinity_cpu);
  m.impl("pair_affinity_backward", &pair_affinity_backward_cpu);
}

}  // namespace wsss
