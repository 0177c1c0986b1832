// Sparse random walk on a radius-r neighbour graph, CUDA implementation (semantics: random_walk.cpp).
//
// Three kernels: edge weights e[b,d,i] = affinity^beta (0 for pairs leaving the image), 1/deg per
// pixel, and one launch per step where each thread gathers one (b, c, pixel) from its 2D+1
// neighbours (edge planes and 1/deg stay in L2; no atomics, deterministic). Frozen pixels (optional mask)
// copy their value at every step and receive nothing; they still send along their edges.
#include <optional>

#include "grid_cuda.cuh"

namespace wsss {
namespace {

template <typename T>
__global__ void rw_edges_kernel(const T* __restrict__ aff, const int* __restrict__ off, T* __restrict__ e, int64_t B,
                                int64_t D, int64_t H, int64_t W, T beta) {
  const int64_t n = B * D * H * W;
  WSSS_CUDA_LOOP(i, n) {
    const int64_t x = i % W, y = (i / W) % H, d = (i / (W * H)) % D;
    const int64_t ny = y + off[2 * d], nx = x + off[2 * d + 1];
    const bool valid = ny >= 0 && ny < H && nx >= 0 && nx < W;
    e[i] = valid ? pow(aff[i], beta) : T(0);
  }
}

template <typename T>
__global__ void rw_inv_degree_kernel(const T* __restrict__ e, const int* __restrict__ off, const T* __restrict__ frozen,
                                     T* __restrict__ inv, int64_t B, int64_t D, int64_t H, int64_t W) {
  const int64_t n = B * H * W, N = H * W;
  WSSS_CUDA_LOOP(i, n) {
    if (frozen != nullptr && frozen[i] != T(0)) {  // receives along no edge: its value is copied
      inv[i] = T(1);
      continue;
    }
    const int64_t b = i / N, j = i % N, y = j / W, x = j % W;
    const T* eb = e + b * D * N;
    T deg = 1;
    for (int64_t d = 0; d < D; ++d) {
      const int dy = off[2 * d], dx = off[2 * d + 1];
      deg += eb[d * N + j];  // already 0 when j + o_d leaves the image
      const int64_t py = y - dy, px = x - dx;
      if (py >= 0 && py < H && px >= 0 && px < W) deg += eb[d * N + py * W + px];
    }
    inv[i] = T(1) / deg;
  }
}

template <typename T>
__global__ void rw_step_kernel(const T* __restrict__ src, T* __restrict__ dst, const T* __restrict__ e,
                               const T* __restrict__ inv, const int* __restrict__ off, const T* __restrict__ frozen,
                               int64_t B, int64_t C, int64_t D, int64_t H, int64_t W) {
  const int64_t N = H * W, n = B * C * N;
  WSSS_CUDA_LOOP(i, n) {
    const int64_t bc = i / N, j = i % N, b = bc / C, y = j / W, x = j % W;
    const T* v = src + bc * N;
    if (frozen != nullptr && frozen[b * N + j] != T(0)) {
      dst[i] = v[j];
      continue;
    }
    const T* eb = e + b * D * N;
    T acc = v[j];
    for (int64_t d = 0; d < D; ++d) {
      const int dy = off[2 * d], dx = off[2 * d + 1];
      const int64_t ny = y + dy, nx = x + dx;
      if (ny >= 0 && ny < H && nx >= 0 && nx < W) acc += eb[d * N + j] * v[ny * W + nx];
      const int64_t py = y - dy, px = x - dx;
      if (py >= 0 && py < H && px >= 0 && px < W) {
        const int64_t k = py * W + px;
        acc += eb[d * N + k] * v[k];
      }
    }
    dst[i] = acc * inv[b * N + j];
  }
}

at::Tensor random_walk_cuda(const at::Tensor& values, const at::Tensor& affinity, c10::IntArrayRef offsets_flat,
                            double beta, int64_t steps, const std::optional<at::Tensor>& frozen) {
  cuda::check_cuda(values, "wsss::random_walk", "values");
  cuda::check_cuda(affinity, "wsss::random_walk", "affinity");
  TORCH_CHECK(offsets_flat.size() % 2 == 0, "wsss::random_walk: offsets must hold (dy, dx) pairs");
  TORCH_CHECK(values.dim() == 4 && affinity.dim() == 4, "wsss::random_walk: values and affinity must be 4-D");
  const int64_t D = static_cast<int64_t>(offsets_flat.size() / 2);
  TORCH_CHECK(affinity.size(0) == values.size(0) && affinity.size(1) == D && affinity.size(2) == values.size(2) &&
                  affinity.size(3) == values.size(3),
              "wsss::random_walk: affinity must be (B, D, H, W) with D = number of offsets");
  TORCH_CHECK(values.scalar_type() == affinity.scalar_type(), "wsss::random_walk: dtype mismatch");
  TORCH_CHECK(values.device() == affinity.device(), "wsss::random_walk: values and affinity on different devices");
  TORCH_CHECK(steps >= 0, "wsss::random_walk: steps must be >= 0");
  c10::cuda::CUDAGuard guard(values.device());
  at::Tensor v = values.contiguous();
  at::Tensor a = affinity.contiguous();
  const int64_t B = v.size(0), C = v.size(1), H = v.size(2), W = v.size(3);
  at::Tensor f;
  if (frozen.has_value()) {
    TORCH_CHECK(frozen->dim() == 3 && frozen->size(0) == B && frozen->size(1) == H && frozen->size(2) == W,
                "wsss::random_walk: frozen must be (B, H, W) like values");
    f = frozen->to(v.device(), v.scalar_type()).contiguous();
  }
  at::Tensor output = at::empty(v.sizes(), v.options());
  if (v.numel() == 0) return output;
  std::vector<int> flat(offsets_flat.begin(), offsets_flat.end());
  at::Tensor off = cuda::offsets_on_device(flat, v);
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "wsss::random_walk_cuda", [&] {
    at::Tensor e = at::empty({std::max<int64_t>(1, B * D * H * W)}, v.options());
    at::Tensor inv = at::empty({B * H * W}, v.options());
    if (D > 0) {
      rw_edges_kernel<scalar_t><<<cuda::blocks_for(B * D * H * W), cuda::kThreads, 0, stream>>>(
          a.data_ptr<scalar_t>(), off.data_ptr<int>(), e.data_ptr<scalar_t>(), B, D, H, W, static_cast<scalar_t>(beta));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    rw_inv_degree_kernel<scalar_t><<<cuda::blocks_for(B * H * W), cuda::kThreads, 0, stream>>>(
        e.data_ptr<scalar_t>(), off.data_ptr<int>(), f.defined() ? f.data_ptr<scalar_t>() : nullptr,
        inv.data_ptr<scalar_t>(), B, D, H, W);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    if (steps == 0) {
      output.copy_(v);
      return;
    }
    at::Tensor other = at::empty(v.sizes(), v.options());
    // Ping-pong between `output` and `other`, arranged so that the last step writes into `output`.
    const scalar_t* src = v.data_ptr<scalar_t>();
    for (int64_t s = 0; s < steps; ++s) {
      scalar_t* dst = ((steps - 1 - s) % 2 == 0 ? output : other).data_ptr<scalar_t>();
      rw_step_kernel<scalar_t><<<cuda::blocks_for(B * C * H * W), cuda::kThreads, 0, stream>>>(
          src, dst, e.data_ptr<scalar_t>(), inv.data_ptr<scalar_t>(), off.data_ptr<int>(),
          f.defined() ? f.data_ptr<scalar_t>() : nullptr, B, C, D, H, W);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      src = dst;
    }
  });
  return output;
}

}  // namespace

TORCH_LIBRARY_IMPL(wsss, CUDA, m) { m.impl("random_walk", &random_walk_cuda); }

}  // namespace wsss
