// APro's local propagation (LP), CPU implementation.
//
// Affinities over the k x k window including the centre, computed once from the guide image:
//     a_ij = exp(-sum_c (I_c,j - I_c,i)^2 / zeta^2),  j in window(i) and inside the image,
// normalised per pixel, w_ij = a_ij / sum_j a_ij. Then `iterations` times
//     x_i <- mask_i * sum_j w_ij x_j,   starting from x = values * mask.
// The mask has one channel (shared) or C channels.
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

template <typename T>
void local_propagation_cpu_typed(const at::Tensor& values, const at::Tensor& image, const at::Tensor* mask,
                                 int64_t kernel_size, double zeta, int64_t iterations, at::Tensor& output) {
  const int64_t B = values.size(0), C = values.size(1), H = values.size(2), W = values.size(3);
  const int64_t K = image.size(1);
  const int64_t r = kernel_size / 2, taps = kernel_size * kernel_size;
  const PaddedGrid g(H, W, r, stencil::Vec<T>::lanes);
  const T inv_z2 = static_cast<T>(1.0 / (zeta * zeta));

  // Normalised window weights, one padded plane per tap: w[b][t] (0 where the tap leaves the image).
  at::Tensor weights = at::zeros({B * taps * g.plane}, values.options());
  T* w = weights.data_ptr<T>();
  const T* img = image.data_ptr<T>();
  at::parallel_for(0, B * H, stencil::grain_for(taps * W * (K + 8)), [&](int64_t begin, int64_t end) {
    std::vector<T> sum(W);
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / H, y = row % H;
      const T* ib = img + b * K * H * W;
      std::fill(sum.begin(), sum.end(), T(0));
      for (int64_t t = 0; t < taps; ++t) {
        const int64_t dy = t / kernel_size - r, dx = t % kernel_size - r;
        if (y + dy < 0 || y + dy >= H) continue;
        T* out = w + (b * taps + t) * g.plane + g.at(y, 0);
        const int64_t x0 = std::max<int64_t>(0, -dx), x1 = std::min<int64_t>(W, W - dx);
        for (int64_t x = x0; x < x1; ++x) {
          T dist = 0;
          for (int64_t c = 0; c < K; ++c) {
            const T diff = ib[(c * H + y + dy) * W + x + dx] - ib[(c * H + y) * W + x];
            dist += diff * diff;
          }
          out[x] = std::exp(-dist * inv_z2);
          sum[x] += out[x];
        }
      }
      for (int64_t t = 0; t < taps; ++t) {
        T* out = w + (b * taps + t) * g.plane + g.at(y, 0);
        for (int64_t x = 0; x < W; ++x) out[x] /= sum[x];  // sum >= 1 (the centre)
      }
    }
  });

  // Post-multiplier planes: the mask (or ones), zero in the padding.
  const int64_t mc = mask ? mask->size(1) : 1;
  at::Tensor post = at::zeros({B * mc * g.plane}, values.options());
  T* pp = post.data_ptr<T>();
  if (mask) {
    stencil::scatter_padded<T>(mask->data_ptr<T>(), pp, B * mc, g);
  } else {
    for (int64_t b = 0; b < B; ++b)
      for (int64_t y = 0; y < H; ++y) std::fill(pp + b * g.plane + g.at(y, 0), pp + b * g.plane + g.at(y, W), T(1));
  }

  // x0 = values * mask.
  at::Tensor buf_a = at::zeros({B * C * g.plane}, values.options());
  at::Tensor buf_b = at::zeros({B * C * g.plane}, values.options());
  T* a = buf_a.data_ptr<T>();
  stencil::scatter_padded<T>(values.data_ptr<T>(), a, B * C, g);
  const int64_t post_cstride = mc == 1 ? 0 : g.plane;
  at::parallel_for(0, B * C, stencil::grain_for(g.plane), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t b = i / C, c = i % C;
      const T* m = pp + b * mc * g.plane + c * post_cstride;
      T* x = a + i * g.plane;
      for (int64_t k = 0; k < g.plane; ++k) x[k] *= m[k];
    }
  });

  Problem P{B, C, g, {}, /*self_one=*/false, taps * g.plane, mc * g.plane, post_cstride};
  for (int64_t t = 0; t < taps; ++t) {
    const int64_t dy = t / kernel_size - r, dx = t % kernel_size - r;
    P.terms.push_back(Term{t * g.plane, g.shift(dy, dx)});
  }
  const T* result = stencil::propagate<T>(P, w, pp, a, buf_b.data_ptr<T>(), iterations);
  stencil::gather_padded<T>(result, output.data_ptr<T>(), B * C, g);
}

at::Tensor local_propagation_cpu(const at::Tensor& values, const at::Tensor& image, const std::optional<at::Tensor>& mask,
                                 int64_t kernel_size, double zeta, int64_t iterations) {
  TORCH_CHECK(values.dim() == 4 && image.dim() == 4, "wsss::local_propagation: values and image must be 4-D");
  TORCH_CHECK(image.size(0) == values.size(0) && image.size(2) == values.size(2) && image.size(3) == values.size(3),
              "wsss::local_propagation: image must be (B, K, H, W) like values");
  TORCH_CHECK(kernel_size >= 1 && kernel_size % 2 == 1, "wsss::local_propagation: kernel_size must be odd and >= 1");
  TORCH_CHECK(zeta > 0, "wsss::local_propagation: zeta must be > 0");
  TORCH_CHECK(iterations >= 0, "wsss::local_propagation: iterations must be >= 0");
  TORCH_CHECK(values.scalar_type() == image.scalar_type(), "wsss::local_propagation: dtype mismatch");
  at::Tensor v = values.contiguous();
  at::Tensor im = image.contiguous();
  at::Tensor m;
  if (mask.has_value()) {
    m = mask->contiguous();
    TORCH_CHECK(m.dim() == 4 && m.size(0) == v.size(0) && (m.size(1) == 1 || m.size(1) == v.size(1)) &&
                    m.size(2) == v.size(2) && m.size(3) == v.size(3),
                "wsss::local_propagation: mask must be (B, 1 or C, H, W)");
    TORCH_CHECK(m.scalar_type() == v.scalar_type(), "wsss::local_propagation: dtype mismatch");
  }
  at::Tensor output = at::empty(v.sizes(), v.options());
  if (v.numel() == 0) return output;
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "wsss::local_propagation", [&] {
    local_propagation_cpu_typed<scalar_t>(v, im, mask.has_value() ? &m : nullptr, kernel_size, zeta, iterations,
                                          output);
  });
  return output;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(wsss, m) {
  m.def("local_propagation(Tensor values, Tensor image, Tensor? mask, int kernel_size, float zeta, int iterations) -> Tensor");
}

TORCH_LIBRARY_IMPL(wsss, CPU, m) { m.impl("local_propagation", &local_propagation_cpu); }

}  // namespace wsss
