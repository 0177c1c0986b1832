// Superpixel pooling / upsampling on SpixelFCN's 3 x 3 grid association (as MSA uses it), CPU.
//
// The image (H, W) is tiled into a grid of h x w cells of sh x sw pixels (H = h*sh, W = w*sw).
// Pixel p in cell (cy, cx) is associated with the 9 cells (cy+dy, cx+dx), dy, dx in {-1, 0, 1};
// assoc channel t = (dy+1)*3 + (dx+1) (row-major: top-left, top, top-right, left, centre, ...).
// Cells outside the grid do not exist: their terms are dropped (no renormalisation).
//
//   superpixel_pool_sums:  numer[k] = sum_{p: k in N9(p)} Q[p,k] f[p],  denom[k] = sum Q[p,k]
//   superpixel_upsample:   out[p]   = sum_{k in N9(p)} Q[p,k] s[k]
//   superpixel_assoc_dot:  out[p,t] = <X[p], Y[cell(p) + offset_t]>   (0 outside the grid)
// The last one is the association gradient of the other two (see kernels/superpixel.py).
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <tuple>
#include <vector>

namespace wsss {
namespace {

// Grain for at::parallel_for over items of `work` operations each: small ranges run inline.
int64_t grain_for(int64_t work) { return std::max<int64_t>(1, (int64_t(1) << 15) / std::max<int64_t>(1, work)); }

void check_layout(const char* op, const at::Tensor& pixels, const at::Tensor& assoc, int64_t sh, int64_t sw) {
  TORCH_CHECK(pixels.dim() == 4 && assoc.dim() == 4, op, ": inputs must be 4-D");
  TORCH_CHECK(sh >= 1 && sw >= 1, op, ": cell sizes must be >= 1");
  TORCH_CHECK(assoc.size(1) == 9, op, ": assoc must have 9 channels");
  TORCH_CHECK(assoc.size(0) == pixels.size(0), op, ": batch mismatch");
  TORCH_CHECK(assoc.size(2) % sh == 0 && assoc.size(3) % sw == 0, op, ": image size must be a multiple of the cell");
  TORCH_CHECK(pixels.scalar_type() == assoc.scalar_type(), op, ": dtype mismatch");
}

template <typename T>
void pool_sums_typed(const T* f, const T* q, T* num, T* den, int64_t B, int64_t C, int64_t H, int64_t W, int64_t sh,
                     int64_t sw) {
  const int64_t h = H / sh, w = W / sw, N = H * W, n = h * w;
  at::parallel_for(0, B * h, grain_for(9 * sh * W * (C + 1)), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / h, ky = row % h;
      T* nrow = num + b * C * n + ky * w;  // channel stride n
      T* drow = den + b * n + ky * w;
      for (int t = 0; t < 9; ++t) {
        const int64_t dy = t / 3 - 1, dx = t % 3 - 1, cy = ky - dy;
        if (cy < 0 || cy >= h) continue;
        const int64_t kx0 = std::max<int64_t>(0, dx), kx1 = std::min<int64_t>(w, w + dx);
        for (int64_t i = 0; i < sh; ++i) {
          const int64_t y = cy * sh + i;
          const T* qr = q + (b * 9 + t) * N + y * W;
          for (int64_t kx = kx0; kx < kx1; ++kx) {
            const T* qc = qr + (kx - dx) * sw;
            T s = 0;
            for (int64_t x = 0; x < sw; ++x) s += qc[x];
            drow[kx] += s;
          }
          for (int64_t c = 0; c < C; ++c) {
            const T* fr = f + (b * C + c) * N + y * W;
            T* nr = nrow + c * n;
            for (int64_t kx = kx0; kx < kx1; ++kx) {
              const int64_t x0 = (kx - dx) * sw;
              T s = 0;
              for (int64_t x = 0; x < sw; ++x) s += qr[x0 + x] * fr[x0 + x];
              nr[kx] += s;
            }
          }
        }
      }
    }
  });
}

template <typename T>
void upsample_typed(const T* s, const T* q, T* out, int64_t B, int64_t C, int64_t H, int64_t W, int64_t sh, int64_t sw) {
  const int64_t h = H / sh, w = W / sw, N = H * W, n = h * w;
  at::parallel_for(0, B * H, grain_for(9 * C * W), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / H, y = row % H, cy = y / sh;
      for (int64_t c = 0; c < C; ++c) {
        T* o = out + (b * C + c) * N + y * W;
        std::fill(o, o + W, T(0));
        for (int t = 0; t < 9; ++t) {
          const int64_t dy = t / 3 - 1, dx = t % 3 - 1, ny = cy + dy;
          if (ny < 0 || ny >= h) continue;
          const T* qr = q + (b * 9 + t) * N + y * W;
          const T* sr = s + (b * C + c) * n + ny * w;
          const int64_t cx0 = std::max<int64_t>(0, -dx), cx1 = std::min<int64_t>(w, w - dx);
          for (int64_t cx = cx0; cx < cx1; ++cx) {
            const T val = sr[cx + dx];
            for (int64_t x = cx * sw; x < (cx + 1) * sw; ++x) o[x] += qr[x] * val;
          }
        }
      }
    }
  });
}

template <typename T>
void assoc_dot_typed(const T* X, const T* Y, T* out, int64_t B, int64_t C, int64_t H, int64_t W, int64_t sh,
                     int64_t sw) {
  const int64_t h = H / sh, w = W / sw, N = H * W, n = h * w;
  at::parallel_for(0, B * H, grain_for(9 * C * W), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / H, y = row % H, cy = y / sh;
      for (int t = 0; t < 9; ++t) {
        T* o = out + (b * 9 + t) * N + y * W;
        std::fill(o, o + W, T(0));
        const int64_t dy = t / 3 - 1, dx = t % 3 - 1, ny = cy + dy;
        if (ny < 0 || ny >= h) continue;
        const int64_t cx0 = std::max<int64_t>(0, -dx), cx1 = std::min<int64_t>(w, w - dx);
        for (int64_t c = 0; c < C; ++c) {
          const T* xr = X + (b * C + c) * N + y * W;
          const T* yr = Y + (b * C + c) * n + ny * w;
          for (int64_t cx = cx0; cx < cx1; ++cx) {
            const T val = yr[cx + dx];
            for (int64_t x = cx * sw; x < (cx + 1) * sw; ++x) o[x] += xr[x] * val;
          }
        }
      }
    }
  });
}

std::tuple<at::Tensor, at::Tensor> superpixel_pool_sums_cpu(const at::Tensor& features, const at::Tensor& assoc,
                                                            int64_t sh, int64_t sw) {
  check_layout("wsss::superpixel_pool_sums", features, assoc, sh, sw);
  TORCH_CHECK(features.size(2) == assoc.size(2) && features.size(3) == assoc.size(3),
              "wsss::superpixel_pool_sums: features and assoc sizes differ");
  at::Tensor f = features.contiguous(), q = assoc.contiguous();
  const int64_t B = f.size(0), C = f.size(1), H = f.size(2), W = f.size(3);
  at::Tensor num = at::zeros({B, C, H / sh, W / sw}, f.options());
  at::Tensor den = at::zeros({B, 1, H / sh, W / sw}, f.options());
  if (num.numel() == 0 && den.numel() == 0) return {num, den};
  AT_DISPATCH_FLOATING_TYPES(f.scalar_type(), "wsss::superpixel_pool_sums", [&] {
    pool_sums_typed<scalar_t>(f.data_ptr<scalar_t>(), q.data_ptr<scalar_t>(), num.data_ptr<scalar_t>(),
                              den.data_ptr<scalar_t>(), B, C, H, W, sh, sw);
  });
  return {num, den};
}

at::Tensor superpixel_upsample_cpu(const at::Tensor& sp, const at::Tensor& assoc, int64_t sh, int64_t sw) {
  check_layout("wsss::superpixel_upsample", sp, assoc, sh, sw);
  TORCH_CHECK(sp.size(2) * sh == assoc.size(2) && sp.size(3) * sw == assoc.size(3),
              "wsss::superpixel_upsample: superpixel grid does not match assoc / cell");
  at::Tensor s = sp.contiguous(), q = assoc.contiguous();
  const int64_t B = s.size(0), C = s.size(1), H = q.size(2), W = q.size(3);
  at::Tensor out = at::empty({B, C, H, W}, s.options());
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(s.scalar_type(), "wsss::superpixel_upsample", [&] {
    upsample_typed<scalar_t>(s.data_ptr<scalar_t>(), q.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), B, C, H, W, sh,
                             sw);
  });
  return out;
}

at::Tensor superpixel_assoc_dot_cpu(const at::Tensor& pixels, const at::Tensor& cells, int64_t sh, int64_t sw) {
  TORCH_CHECK(pixels.dim() == 4 && cells.dim() == 4, "wsss::superpixel_assoc_dot: inputs must be 4-D");
  TORCH_CHECK(sh >= 1 && sw >= 1, "wsss::superpixel_assoc_dot: cell sizes must be >= 1");
  TORCH_CHECK(pixels.size(0) == cells.size(0) && pixels.size(1) == cells.size(1) &&
                  cells.size(2) * sh == pixels.size(2) && cells.size(3) * sw == pixels.size(3),
              "wsss::superpixel_assoc_dot: cells must be (B, C, H/sh, W/sw) for pixels (B, C, H, W)");
  TORCH_CHECK(pixels.scalar_type() == cells.scalar_type(), "wsss::superpixel_assoc_dot: dtype mismatch");
  at::Tensor X = pixels.contiguous(), Y = cells.contiguous();
  const int64_t B = X.size(0), C = X.size(1), H = X.size(2), W = X.size(3);
  at::Tensor out = at::empty({B, 9, H, W}, X.options());
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(X.scalar_type(), "wsss::superpixel_assoc_dot", [&] {
    assoc_dot_typed<scalar_t>(X.data_ptr<scalar_t>(), Y.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), B, C, H, W, sh,
                              sw);
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(wsss, m) {
  m.def("superpixel_pool_sums(Tensor features, Tensor assoc, int cell_h, int cell_w) -> (Tensor, Tensor)");
  m.def("superpixel_upsample(Tensor sp_features, Tensor assoc, int cell_h, int cell_w) -> Tensor");
  m.def("superpixel_assoc_dot(Tensor pixels, Tensor cells, int cell_h, int cell_w) -> Tensor");
}

TORCH_LIBRARY_IMPL(wsss, CPU, m) {
  m.impl("superpixel_pool_sums", &superpixel_pool_sums_cpu);
  m.impl("superpixel_upsample", &superpixel_upsample_cpu);
  m.impl("superpixel_assoc_dot", &superpixel_assoc_dot_cpu);
}

}  // namespace wsss
