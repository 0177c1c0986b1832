// PSA's pair affinities of AffinityNet features and their gradient, CUDA implementation (semantics:
// pair_affinity.cpp). Forward: one thread per (b, d, pixel) summing over channels; backward: one thread per
// (b, c, pixel) gathering from its 2D pairs (no atomics, deterministic).
#include "grid_cuda.cuh"

namespace wsss {
namespace {

template <typename T>
__device__ __forceinline__ T sgn_dev(T v) {
  return static_cast<T>((v > T(0)) - (v < T(0)));
}

template <typename T>
__global__ void pair_affinity_kernel(const T* __restrict__ f, const int* __restrict__ off, T* __restrict__ out,
                                     int64_t B, int64_t C, int64_t D, int64_t H, int64_t W) {
  const int64_t n = B * D * H * W, N = H * W;
  WSSS_CUDA_LOOP(i, n) {
    const int64_t x = i % W, y = (i / W) % H, d = (i / N) % D, b = i / (N * D);
    const int64_t ny = y + off[2 * d], nx = x + off[2 * d + 1];
    if (ny < 0 || ny >= H || nx < 0 || nx >= W) {
      out[i] = T(0);
      continue;
    }
    T acc = T(0);
    for (int64_t c = 0; c < C; ++c) {
      const T* fc = f + (b * C + c) * N;
      acc += abs(fc[y * W + x] - fc[ny * W + nx]);
    }
    out[i] = exp(-acc / static_cast<T>(C));
  }
}

template <typename T>
__global__ void pair_affinity_backward_kernel(const T* __restrict__ grad, const T* __restrict__ f,
                                              const T* __restrict__ a, const int* __restrict__ off,
                                              T* __restrict__ grad_f, int64_t B, int64_t C, int64_t D, int64_t H,
                                              int64_t W) {
  const int64_t n = B * C * H * W, N = H * W;
  const T scale = T(-1) / static_cast<T>(C);
  WSSS_CUDA_LOOP(i, n) {
    const int64_t x = i % W, y = (i / W) % H, c = (i / N) % C, b = i / (N * C);
    const T* fc = f + (b * C + c) * N;
    const T here = fc[y * W + x];
    T acc = T(0);
    for (int64_t d = 0; d < D; ++d) {
      const int64_t dy = off[2 * d], dx = off[2 * d + 1];
      const int64_t ty = y + dy, tx = x + dx;
      if (ty >= 0 && ty < H && tx >= 0 && tx < W) {
        const int64_t k = ((b * D + d) * H + y) * W + x;
        acc += grad[k] * a[k] * scale * sgn_dev(here - fc[ty * W + tx]);
      }
      const int64_t sy = y - dy, sx = x - dx;
      if (sy >= 0 && sy < H && sx >= 0 && sx < W) {
        const int64_t k = ((b * D + d) * H + sy) * W + sx;
        acc += grad[k] * a[k] * scale * sgn_dev(here - fc[sy * W + sx]);
      }
    }
    grad_f[i] = acc;
  }
}

at::Tensor pair_affinity_cuda(const at::Tensor& features, c10::IntArrayRef offsets_flat) {
  cuda::check_cuda(features, "wsss::pair_affinity", "features");
  TORCH_CHECK(features.dim() == 4, "wsss::pair_affinity: features must be (B, C, H, W)");
  TORCH_CHECK(offsets_flat.size() % 2 == 0, "wsss::pair_affinity: offsets must hold (dy, dx) pairs");
  c10::cuda::CUDAGuard guard(features.device());
  at::Tensor f = features.contiguous();
  const int64_t B = f.size(0), C = f.size(1), H = f.size(2), W = f.size(3);
  const int64_t D = static_cast<int64_t>(offsets_flat.size() / 2);
  at::Tensor out = at::empty({B, D, H, W}, f.options());
  if (out.numel() == 0) return out;
  std::vector<int> flat(offsets_flat.begin(), offsets_flat.end());
  at::Tensor off = cuda::offsets_on_device(flat, f);
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(f.scalar_type(), "wsss::pair_affinity_cuda", [&] {
    pair_affinity_kernel<scalar_t><<<cuda::blocks_for(B * D * H * W), cuda::kThreads, 0, stream>>>(
        f.data_ptr<scalar_t>(), off.data_ptr<int>(), out.data_ptr<scalar_t>(), B, C, D, H, W);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

at::Tensor pair_affinity_backward_cuda(const at::Tensor& grad, const at::Tensor& features, const at::Tensor& affinity,
                                       c10::IntArrayRef offsets_flat) {
  cuda::check_cuda(features, "wsss::pair_affinity_backward", "features");
  TORCH_CHECK(offsets_flat.size() % 2 == 0, "wsss::pair_affinity_backward: offsets must hold (dy, dx) pairs");
  c10::cuda::CUDAGuard guard(features.device());
  at::Tensor f = features.contiguous(), g = grad.contiguous(), a = affinity.contiguous();
  const int64_t B = f.size(0), C = f.size(1), H = f.size(2), W = f.size(3);
  const int64_t D = static_cast<int64_t>(offsets_flat.size() / 2);
  TORCH_CHECK(g.sizes() == a.sizes() && g.size(0) == B && g.size(1) == D && g.size(2) == H && g.size(3) == W,
              "wsss::pair_affinity_backward: grad and affinity must be (B, D, H, W) of the features");
  at::Tensor grad_f = at::empty(f.sizes(), f.options());
  if (f.numel() == 0) return grad_f;
  std::vector<int> flat(offsets_flat.begin(), offsets_flat.end());
  at::Tensor off = cuda::offsets_on_device(flat, f);
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(f.scalar_type(), "wsss::pair_affinity_backward_cuda", [&] {
    pair_affinity_backward_kernel<scalar_t><<<cuda::blocks_for(B * C * H * W), cuda::kThreads, 0, stream>>>(
        g.data_ptr<scalar_t>(), f.data_ptr<scalar_t>(), a.data_ptr<scalar_t>(), off.data_ptr<int>(),
        grad_f.data_ptr<scalar_t>(), B, C, D, H, W);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return grad_f;
}

}  // namespace

TORCH_LIBRARY_IMPL(wsss, CUDA, m) {
  m.impl("pair_affinity", &pair_affinity_cuda);
  m.impl("pair_affinity_backward", &pair_affinity_backward_cuda);
}

}  // namespace wsss
