// Superpixel pooling / upsampling on the 3 x 3 grid association, CUDA (semantics: superpixel.cpp).
// Gather form everywhere (one thread per output element, no atomics): deterministic.
#include "grid_cuda.cuh"

#include <tuple>

namespace wsss {
namespace {

// One thread per (b, channel, cell); channel C is the denominator (sum of the association).
template <typename T>
__global__ void sp_pool_kernel(const T* __restrict__ f, const T* __restrict__ q, T* __restrict__ num,
                               T* __restrict__ den, int64_t B, int64_t C, int64_t H, int64_t W, int64_t sh, int64_t sw) {
  const int64_t h = H / sh, w = W / sw, N = H * W, n = h * w, total = B * (C + 1) * n;
  WSSS_CUDA_LOOP(i, total) {
    const int64_t k = i % n, c = (i / n) % (C + 1), b = i / (n * (C + 1));
    const int64_t ky = k / w, kx = k % w;
    T acc = 0;
    for (int t = 0; t < 9; ++t) {
      const int64_t cy = ky - (t / 3 - 1), cx = kx - (t % 3 - 1);
      if (cy < 0 || cy >= h || cx < 0 || cx >= w) continue;
      const T* qt = q + (b * 9 + t) * N;
      const T* fc = c < C ? f + (b * C + c) * N : nullptr;
      for (int64_t yy = cy * sh; yy < (cy + 1) * sh; ++yy)
        for (int64_t xx = cx * sw; xx < (cx + 1) * sw; ++xx) {
          const int64_t p = yy * W + xx;
          acc += fc ? qt[p] * fc[p] : qt[p];
        }
    }
    if (c < C)
      num[(b * C + c) * n + k] = acc;
    else
      den[b * n + k] = acc;
  }
}

template <typename T>
__global__ void sp_upsample_kernel(const T* __restrict__ s, const T* __restrict__ q, T* __restrict__ out, int64_t B,
                                   int64_t C, int64_t H, int64_t W, int64_t sh, int64_t sw) {
  const int64_t h = H / sh, w = W / sw, N = H * W, n = h * w, total = B * C * N;
  WSSS_CUDA_LOOP(i, total) {
    const int64_t p = i % N, bc = i / N, b = bc / C, y = p / W, x = p % W, cy = y / sh, cx = x / sw;
    T acc = 0;
    for (int t = 0; t < 9; ++t) {
      const int64_t ny = cy + t / 3 - 1, nx = cx + t % 3 - 1;
      if (ny < 0 || ny >= h || nx < 0 || nx >= w) continue;
      acc += q[(b * 9 + t) * N + p] * s[bc * n + ny * w + nx];
    }
    out[i] = acc;
  }
}

template <typename T>
__global__ void sp_assoc_dot_kernel(const T* __restrict__ X, const T* __restrict__ Y, T* __restrict__ out, int64_t B,
                                    int64_t C, int64_t H, int64_t W, int64_t sh, int64_t sw) {
  const int64_t h = H / sh, w = W / sw, N = H * W, n = h * w, total = B * 9 * N;
  WSSS_CUDA_LOOP(i, total) {
    const int64_t p = i % N, t = (i / N) % 9, b = i / (9 * N), y = p / W, x = p % W;
    const int64_t ny = y / sh + t / 3 - 1, nx = x / sw + t % 3 - 1;
    T acc = 0;
    if (ny >= 0 && ny < h && nx >= 0 && nx < w) {
      for (int64_t c = 0; c < C; ++c) acc += X[(b * C + c) * N + p] * Y[(b * C + c) * n + ny * w + nx];
    }
    out[i] = acc;
  }
}

void check_layout(const char* op, const at::Tensor& pixels, const at::Tensor& assoc, int64_t sh, int64_t sw) {
  cuda::check_cuda(pixels, op, "first input");
  cuda::check_cuda(assoc, op, "second input");
  TORCH_CHECK(pixels.device() == assoc.device(), op, ": inputs on different devices");
  TORCH_CHECK(pixels.dim() == 4 && assoc.dim() == 4, op, ": inputs must be 4-D");
  TORCH_CHECK(sh >= 1 && sw >= 1, op, ": cell sizes must be >= 1");
  TORCH_CHECK(pixels.scalar_type() == assoc.scalar_type(), op, ": dtype mismatch");
  TORCH_CHECK(assoc.size(0) == pixels.size(0), op, ": batch mismatch");
}

std::tuple<at::Tensor, at::Tensor> superpixel_pool_sums_cuda(const at::Tensor& features, const at::Tensor& assoc,
                                                             int64_t sh, int64_t sw) {
  check_layout("wsss::superpixel_pool_sums", features, assoc, sh, sw);
  TORCH_CHECK(assoc.size(1) == 9 && features.size(2) == assoc.size(2) && features.size(3) == assoc.size(3) &&
                  assoc.size(2) % sh == 0 && assoc.size(3) % sw == 0,
              "wsss::superpixel_pool_sums: bad shapes");
  c10::cuda::CUDAGuard guard(features.device());
  at::Tensor f = features.contiguous(), q = assoc.contiguous();
  const int64_t B = f.size(0), C = f.size(1), H = f.size(2), W = f.size(3);
  at::Tensor num = at::empty({B, C, H / sh, W / sw}, f.options());
  at::Tensor den = at::empty({B, 1, H / sh, W / sw}, f.options());
  const int64_t total = B * (C + 1) * (H / sh) * (W / sw);
  if (total == 0) return {num, den};
  AT_DISPATCH_FLOATING_TYPES(f.scalar_type(), "wsss::superpixel_pool_sums_cuda", [&] {
    sp_pool_kernel<scalar_t><<<cuda::blocks_for(total), cuda::kThreads, 0, c10::cuda::getCurrentCUDAStream()>>>(
        f.data_ptr<scalar_t>(), q.data_ptr<scalar_t>(), num.data_ptr<scalar_t>(), den.data_ptr<scalar_t>(), B, C, H, W,
        sh, sw);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return {num, den};
}

at::Tensor superpixel_upsample_cuda(const at::Tensor& sp, const at::Tensor& assoc, int64_t sh, int64_t sw) {
  check_layout("wsss::superpixel_upsample", sp, assoc, sh, sw);
  TORCH_CHECK(assoc.size(1) == 9 && sp.size(2) * sh == assoc.size(2) && sp.size(3) * sw == assoc.size(3),
              "wsss::superpixel_upsample: superpixel grid does not match assoc / cell");
  c10::cuda::CUDAGuard guard(sp.device());
  at::Tensor s = sp.contiguous(), q = assoc.contiguous();
  const int64_t B = s.size(0), C = s.size(1), H = q.size(2), W = q.size(3);
  at::Tensor out = at::empty({B, C, H, W}, s.options());
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(s.scalar_type(), "wsss::superpixel_upsample_cuda", [&] {
    sp_upsample_kernel<scalar_t><<<cuda::blocks_for(out.numel()), cuda::kThreads, 0,
                                   c10::cuda::getCurrentCUDAStream()>>>(
        s.data_ptr<scalar_t>(), q.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), B, C, H, W, sh, sw);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

at::Tensor superpixel_assoc_dot_cuda(const at::Tensor& pixels, const at::Tensor& cells, int64_t sh, int64_t sw) {
  check_layout("wsss::superpixel_assoc_dot", pixels, cells, sh, sw);
  TORCH_CHECK(pixels.size(1) == cells.size(1) && cells.size(2) * sh == pixels.size(2) &&
                  cells.size(3) * sw == pixels.size(3),
              "wsss::superpixel_assoc_dot: cells must be (B, C, H/sh, W/sw) for pixels (B, C, H, W)");
  c10::cuda::CUDAGuard guard(pixels.device());
  at::Tensor X = pixels.contiguous(), Y = cells.contiguous();
  const int64_t B = X.size(0), C = X.size(1), H = X.size(2), W = X.size(3);
  at::Tensor out = at::empty({B, 9, H, W}, X.options());
  if (out.numel() == 0) return out;
  AT_DISPATCH_FLOATING_TYPES(X.scalar_type(), "wsss::superpixel_assoc_dot_cuda", [&] {
    sp_assoc_dot_kernel<scalar_t><<<cuda::blocks_for(out.numel()), cuda::kThreads, 0,
                                    c10::cuda::getCurrentCUDAStream()>>>(
        X.data_ptr<scalar_t>(), Y.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), B, C, H, W, sh, sw);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(wsss, CUDA, m) {
  m.impl("superpixel_pool_sums", &superpixel_pool_sums_cuda);
  m.impl("superpixel_upsample", &superpixel_upsample_cuda);
  m.impl("superpixel_assoc_dot", &superpixel_assoc_dot_cuda);
}

}  // namespace wsss
