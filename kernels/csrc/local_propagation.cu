// APro's local propagation (LP), CUDA implementation (semantics: local_propagation.cpp).
// One kernel computes the normalised k x k window weights (B, k*k, H, W) once; one launch per
// iteration gathers each (b, c, pixel) from its window.
#include "grid_cuda.cuh"

namespace wsss {
namespace {

template <typename T>
__global__ void lp_weights_kernel(const T* __restrict__ img, T* __restrict__ w, int64_t B, int64_t K, int64_t H,
                                  int64_t W, int ksize, T inv_z2) {
  const int64_t N = H * W, n = B * N;
  const int r = ksize / 2, taps = ksize * ksize;
  WSSS_CUDA_LOOP(i, n) {
    const int64_t b = i / N, j = i % N, y = j / W, x = j % W;
    const T* ib = img + b * K * N;
    T* wb = w + b * taps * N;
    T sum = 0;
    for (int t = 0; t < taps; ++t) {
      const int64_t ny = y + t / ksize - r, nx = x + t % ksize - r;
      T a = 0;
      if (ny >= 0 && ny < H && nx >= 0 && nx < W) {
        T dist = 0;
        for (int64_t c = 0; c < K; ++c) {
          const T diff = ib[c * N + ny * W + nx] - ib[c * N + j];
          dist += diff * diff;
        }
        a = exp(-dist * inv_z2);
      }
      wb[t * N + j] = a;
      sum += a;
    }
    for (int t = 0; t < taps; ++t) wb[t * N + j] /= sum;
  }
}

template <typename T>
__global__ void lp_init_kernel(const T* __restrict__ values, const T* __restrict__ mask, T* __restrict__ out, int64_t B,
                               int64_t C, int64_t MC, int64_t N) {
  const int64_t n = B * C * N;
  WSSS_CUDA_LOOP(i, n) {
    const int64_t j = i % N, c = (i / N) % C, b = i / (N * C);
    out[i] = mask ? values[i] * mask[(b * MC + (MC == 1 ? 0 : c)) * N + j] : values[i];
  }
}

template <typename T>
__global__ void lp_step_kernel(const T* __restrict__ src, T* __restrict__ dst, const T* __restrict__ w,
                               const T* __restrict__ mask, int64_t B, int64_t C, int64_t MC, int64_t H, int64_t W,
                               int ksize) {
  const int64_t N = H * W, n = B * C * N;
  const int r = ksize / 2, taps = ksize * ksize;
  WSSS_CUDA_LOOP(i, n) {
    const int64_t j = i % N, bc = i / N, c = bc % C, b = bc / C, y = j / W, x = j % W;
    const T* v = src + bc * N;
    const T* wb = w + b * taps * N;
    T acc = 0;
    for (int t = 0; t < taps; ++t) {
      const int64_t ny = y + t / ksize - r, nx = x + t % ksize - r;
      if (ny >= 0 && ny < H && nx >= 0 && nx < W) acc += wb[t * N + j] * v[ny * W + nx];
    }
    dst[i] = mask ? acc * mask[(b * MC + (MC == 1 ? 0 : c)) * N + j] : acc;
  }
}

at::Tensor local_propagation_cuda(const at::Tensor& values, const at::Tensor& image,
                                  const std::optional<at::Tensor>& mask, int64_t kernel_size, double zeta,
                                  int64_t iterations) {
  cuda::check_cuda(values, "wsss::local_propagation", "values");
  cuda::check_cuda(image, "wsss::local_propagation", "image");
  TORCH_CHECK(values.dim() == 4 && image.dim() == 4, "wsss::local_propagation: values and image must be 4-D");
  TORCH_CHECK(image.size(0) == values.size(0) && image.size(2) == values.size(2) && image.size(3) == values.size(3),
              "wsss::local_propagation: image must be (B, K, H, W) like values");
  TORCH_CHECK(kernel_size >= 1 && kernel_size % 2 == 1, "wsss::local_propagation: kernel_size must be odd and >= 1");
  TORCH_CHECK(zeta > 0, "wsss::local_propagation: zeta must be > 0");
  TORCH_CHECK(iterations >= 0, "wsss::local_propagation: iterations must be >= 0");
  TORCH_CHECK(values.scalar_type() == image.scalar_type(), "wsss::local_propagation: dtype mismatch");
  c10::cuda::CUDAGuard guard(values.device());
  at::Tensor v = values.contiguous();
  at::Tensor im = image.contiguous();
  at::Tensor m;
  int64_t MC = 1;
  if (mask.has_value()) {
    cuda::check_cuda(*mask, "wsss::local_propagation", "mask");
    m = mask->contiguous();
    TORCH_CHECK(m.dim() == 4 && m.size(0) == v.size(0) && (m.size(1) == 1 || m.size(1) == v.size(1)) &&
                    m.size(2) == v.size(2) && m.size(3) == v.size(3),
                "wsss::local_propagation: mask must be (B, 1 or C, H, W)");
    TORCH_CHECK(m.scalar_type() == v.scalar_type(), "wsss::local_propagation: dtype mismatch");
    MC = m.size(1);
  }
  const int64_t B = v.size(0), C = v.size(1), H = v.size(2), W = v.size(3), K = im.size(1), N = H * W;
  at::Tensor output = at::empty(v.sizes(), v.options());
  if (v.numel() == 0) return output;
  auto stream = c10::cuda::getCurrentCUDAStream();
  const int ksize = static_cast<int>(kernel_size);
  AT_DISPATCH_FLOATING_TYPES(v.scalar_type(), "wsss::local_propagation_cuda", [&] {
    const scalar_t* mp = mask.has_value() ? m.data_ptr<scalar_t>() : nullptr;
    at::Tensor w = at::empty({B * ksize * ksize * N}, v.options());
    lp_weights_kernel<scalar_t><<<cuda::blocks_for(B * N), cuda::kThreads, 0, stream>>>(
        im.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(), B, K, H, W, ksize, static_cast<scalar_t>(1.0 / (zeta * zeta)));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    at::Tensor other = at::empty(v.sizes(), v.options());
    // x0 goes where the ping-pong needs it so that the last iteration writes into `output`.
    at::Tensor first = iterations % 2 == 0 ? output : other;
    lp_init_kernel<scalar_t><<<cuda::blocks_for(B * C * N), cuda::kThreads, 0, stream>>>(
        v.data_ptr<scalar_t>(), mp, first.data_ptr<scalar_t>(), B, C, MC, N);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    for (int64_t s = 0; s < iterations; ++s) {
      const bool to_output = (iterations - 1 - s) % 2 == 0;
      const scalar_t* src = (to_output ? other : output).data_ptr<scalar_t>();
      scalar_t* dst = (to_output ? output : other).data_ptr<scalar_t>();
      lp_step_kernel<scalar_t><<<cuda::blocks_for(B * C * N), cuda::kThreads, 0, stream>>>(
          src, dst, w.data_ptr<scalar_t>(), mp, B, C, MC, H, W, ksize);
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
  });
  return output;
}

}  // namespace

TORCH_LIBRARY_IMPL(wsss, CUDA, m) { m.impl("local_propagation", &local_propagation_cuda); }

}  // namespace wsss
