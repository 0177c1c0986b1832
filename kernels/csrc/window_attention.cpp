// Square-window pair products on a node grid (A2GNN's attention graph), CPU.
//
// Rows layout: a grid of h x w nodes, each a row of C contiguous values, tensors (B, h, w, C); a
// per-pair tensor is (B, h, w, D) with D = (2r+1)^2, pair d of node (y, x) the neighbour
// (y + dy, x + dx), offsets row-major over dy, dx in [-r, r] (d = D/2 the node itself).
// Neighbours outside the grid do not exist: their products are 0 and they contribute nothing.
//
//   window_dot:        out[y,x,d] = <a[y,x], b[y+dy,x+dx]>
//   window_aggregate:  out[y,x]   = sum_d w[y,x,d] v[y+dy,x+dx]
//   window_transpose:  out[y,x,d] = w[y+dy,x+dx,D-1-d]   (the pair seen from the other node)
//
// The transpose turns a gradient with respect to the neighbours into an aggregate over one's own
// window (kernels/window.py). The row loops are compiled for AVX-512, AVX2 and the baseline, picked at
// load time (target_clones): the extension itself is built for the baseline instruction set.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>

namespace wsss {
namespace window_ops {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define WSSS_WINDOW_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define WSSS_WINDOW_CLONES
#endif

int64_t grain(int64_t work) { return std::max<int64_t>(1, (int64_t(1) << 15) / std::max<int64_t>(1, work)); }

int64_t pairs_of(int64_t radius) {
  TORCH_CHECK(radius >= 0, "window ops: radius must be >= 0");
  return (2 * radius + 1) * (2 * radius + 1);
}

void check_rows(const char* op, const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.dim() == 4, op, ": ", name, " must be (B, h, w, C), got ", t.sizes());
  TORCH_CHECK(t.is_contiguous(), op, ": ", name, " must be contiguous");
}

// One 64-byte vector of T (an attribute on the dependent type itself would be ignored: one per dtype). Sums run
// in these vectors with unaligned loads and end lane by lane: their order is fixed by the code, whatever the
// rows' addresses (tests/test_kernels_window.py).
template <typename T>
struct VecOf;
template <>
struct VecOf<float> {
  typedef float type __attribute__((vector_size(64)));
};
template <>
struct VecOf<double> {
  typedef double type __attribute__((vector_size(64)));
};
template <typename T>
using Vec = typename VecOf<T>::type;

template <typename T>
__attribute__((always_inline)) inline Vec<T> load(const T* p) {
  Vec<T> value;
  __builtin_memcpy(&value, p, sizeof(value));
  return value;
}

// The lanes of `v` summed in a fixed order.
template <typename T>
__attribute__((always_inline)) inline T lane_sum(const Vec<T>& v) {
  constexpr int lanes = sizeof(Vec<T>) / sizeof(T);
  T sum = 0;
  for (int i = 0; i < lanes; ++i) sum += v[i];
  return sum;
}

// Nodes [begin, end) of window_dot (a function of its own, not the parallel_for lambda: a lambda does
// not inherit the target clones). The pairs of one window row are summed kPairs at a time: each load of the
// node's own row serves kPairs products.
constexpr int64_t kPairs = 4;

template <typename T>
WSSS_WINDOW_CLONES void dot_range(const T* a, const T* b, T* out, int64_t begin, int64_t end, int64_t H, int64_t W,
                                  int64_t C, int64_t r) {
  constexpr int64_t lanes = sizeof(Vec<T>) / sizeof(T);
  const int64_t side = 2 * r + 1, D = side * side, full = C / lanes * lanes;
  for (int64_t node = begin; node < end; ++node) {
    const int64_t x = node % W, y = (node / W) % H, image0 = node - y * W - x;
    const T* arow = a + node * C;
    T* orow = out + node * D;
    for (int64_t d = 0; d < D; ++d) orow[d] = 0;
    const int64_t x0 = std::max<int64_t>(0, x - r), x1 = std::min<int64_t>(W - 1, x + r);
    for (int64_t ny = std::max<int64_t>(0, y - r); ny <= std::min<int64_t>(H - 1, y + r); ++ny) {
      T* drow = orow + (ny - y + r) * side + r - x;  // drow[nx]: the pair with neighbour (ny, nx)
      const T* brow = b + (image0 + ny * W) * C;
      int64_t nx = x0;
      for (; nx + kPairs - 1 <= x1; nx += kPairs) {
        const T* b0 = brow + nx * C;
        Vec<T> acc[kPairs] = {};
        for (int64_t c = 0; c < full; c += lanes) {
          const Vec<T> values = load(arow + c);
          for (int64_t k = 0; k < kPairs; ++k) acc[k] += values * load(b0 + k * C + c);
        }
        for (int64_t k = 0; k < kPairs; ++k) {
          T sum = lane_sum<T>(acc[k]);
          for (int64_t c = full; c < C; ++c) sum += arow[c] * b0[k * C + c];
          drow[nx + k] = sum;
        }
      }
      for (; nx <= x1; ++nx) {
        const T* b0 = brow + nx * C;
        Vec<T> acc = {};
        for (int64_t c = 0; c < full; c += lanes) acc += load(arow + c) * load(b0 + c);
        T sum = lane_sum<T>(acc);
        for (int64_t c = full; c < C; ++c) sum += arow[c] * b0[c];
        drow[nx] = sum;
      }
    }
  }
}

template <typename T>
void dot_rows(const T* a, const T* b, T* out, int64_t B, int64_t H, int64_t W, int64_t C, int64_t r) {
  at::parallel_for(0, B * H * W, grain(pairs_of(r) * C),
                   [&](int64_t begin, int64_t end) { dot_range(a, b, out, begin, end, H, W, C, r); });
}

// Channels per pass of window_aggregate: kVectors vectors, accumulated in registers. A pass over a grid row reads
// the 2r+1 rows around it at these channels only, which stay in L1 while the row's nodes go by (all channels
// at once would stream every neighbour row from L2).
constexpr int64_t kVectors = 4;

// Grid rows [begin, end) (over B*H) of window_aggregate (a function of its own, not the parallel_for lambda: a
// lambda does not inherit the target clones).
template <typename T>
WSSS_WINDOW_CLONES void aggregate_range(const T* w, const T* v, T* out, int64_t begin, int64_t end, int64_t H,
                                        int64_t W, int64_t C, int64_t r) {
  constexpr int64_t lanes = sizeof(Vec<T>) / sizeof(T), chunk = kVectors * lanes;
  const int64_t side = 2 * r + 1, D = side * side, full = C / chunk * chunk;
  for (int64_t grid_row = begin; grid_row < end; ++grid_row) {
    const int64_t y = grid_row % H, image0 = (grid_row - y) * W;
    const int64_t y0 = std::max<int64_t>(0, y - r), y1 = std::min<int64_t>(H - 1, y + r);
    for (int64_t c0 = 0; c0 < full; c0 += chunk) {
      for (int64_t x = 0; x < W; ++x) {
        const int64_t node = grid_row * W + x;
        const int64_t x0 = std::max<int64_t>(0, x - r), x1 = std::min<int64_t>(W - 1, x + r);
        const T* wrow = w + node * D;
        Vec<T> acc[kVectors] = {};
        for (int64_t ny = y0; ny <= y1; ++ny) {
          const T* wd = wrow + (ny - y + r) * side + r - x;  // wd[nx]: the weight of neighbour (ny, nx)
          const T* vrow = v + (image0 + ny * W) * C + c0;
          for (int64_t nx = x0; nx <= x1; ++nx) {
            const T weight = wd[nx];
            const T* vp = vrow + nx * C;
            for (int64_t k = 0; k < kVectors; ++k) acc[k] += weight * load(vp + k * lanes);
          }
        }
        __builtin_memcpy(out + node * C + c0, acc, sizeof(acc));
      }
    }
    for (int64_t x = 0; x < W && full < C; ++x) {  // the channels past the last whole chunk
      const int64_t node = grid_row * W + x;
      T* orow = out + node * C;
      for (int64_t c = full; c < C; ++c) orow[c] = 0;
      for (int64_t ny = y0; ny <= y1; ++ny) {
        for (int64_t nx = std::max<int64_t>(0, x - r); nx <= std::min<int64_t>(W - 1, x + r); ++nx) {
          const T weight = w[node * D + (ny - y + r) * side + nx - x + r];
          const T* vrow = v + (image0 + ny * W + nx) * C;
          for (int64_t c = full; c < C; ++c) orow[c] += weight * vrow[c];
        }
      }
    }
  }
}

template <typename T>
void aggregate_rows(const T* w, const T* v, T* out, int64_t B, int64_t H, int64_t W, int64_t C, int64_t r) {
  at::parallel_for(0, B * H, grain(W * pairs_of(r) * C),
                   [&](int64_t begin, int64_t end) { aggregate_range(w, v, out, begin, end, H, W, C, r); });
}

template <typename T>
void transpose_pairs(const T* w, T* out, int64_t B, int64_t H, int64_t W, int64_t r) {
  const int64_t side = 2 * r + 1, D = side * side;
  at::parallel_for(0, B * H * W, grain(D), [&](int64_t begin, int64_t end) {
    for (int64_t node = begin; node < end; ++node) {
      const int64_t x = node % W, y = (node / W) % H, base = node - y * W - x;
      T* orow = out + node * D;
      for (int64_t dy = -r; dy <= r; ++dy) {
        for (int64_t dx = -r; dx <= r; ++dx) {
          const int64_t d = (dy + r) * side + (dx + r), ny = y + dy, nx = x + dx;
          orow[d] = (ny < 0 || ny >= H || nx < 0 || nx >= W) ? T(0) : w[(base + ny * W + nx) * D + (D - 1 - d)];
        }
      }
    }
  });
}

at::Tensor window_dot_cpu(const at::Tensor& a, const at::Tensor& b, int64_t radius) {
  check_rows("window_dot", a, "a");
  check_rows("window_dot", b, "b");
  TORCH_CHECK(a.sizes() == b.sizes() && a.scalar_type() == b.scalar_type(), "window_dot: a and b differ");
  const int64_t D = pairs_of(radius);
  auto out = at::empty({a.size(0), a.size(1), a.size(2), D}, a.options());
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "wsss::window_dot", [&] {
    dot_rows<scalar_t>(a.data_ptr<scalar_t>(), b.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), a.size(0), a.size(1),
                       a.size(2), a.size(3), radius);
  });
  return out;
}

at::Tensor window_aggregate_cpu(const at::Tensor& weights, const at::Tensor& values, int64_t radius) {
  check_rows("window_aggregate", weights, "weights");
  check_rows("window_aggregate", values, "values");
  const int64_t D = pairs_of(radius);
  TORCH_CHECK(weights.size(0) == values.size(0) && weights.size(1) == values.size(1) &&
                  weights.size(2) == values.size(2) && weights.size(3) == D,
              "window_aggregate: weights must be (B, h, w, ", D, ") for values ", values.sizes());
  TORCH_CHECK(weights.scalar_type() == values.scalar_type(), "window_aggregate: dtype mismatch");
  auto out = at::empty_like(values);
  AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "wsss::window_aggregate", [&] {
    aggregate_rows<scalar_t>(weights.data_ptr<scalar_t>(), values.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(),
                             values.size(0), values.size(1), values.size(2), values.size(3), radius);
  });
  return out;
}

at::Tensor window_transpose_cpu(const at::Tensor& weights, int64_t radius) {
  check_rows("window_transpose", weights, "weights");
  TORCH_CHECK(weights.size(3) == pairs_of(radius), "window_transpose: weights must have (2r+1)^2 pairs");
  auto out = at::empty_like(weights);
  AT_DISPATCH_FLOATING_TYPES(weights.scalar_type(), "wsss::window_transpose", [&] {
    transpose_pairs<scalar_t>(weights.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), weights.size(0),
                              weights.size(1), weights.size(2), radius);
  });
  return out;
}

}  // namespace window_ops

TORCH_LIBRARY_FRAGMENT(wsss, m) {
  m.def("window_dot(Tensor a, Tensor b, int radius) -> Tensor");
  m.def("window_aggregate(Tensor weights, Tensor values, int radius) -> Tensor");
  m.def("window_transpose(Tensor weights, int radius) -> Tensor");
}

TORCH_LIBRARY_IMPL(wsss, CPU, m) {
  m.impl("window_dot", &window_ops::window_dot_cpu);
  m.impl("window_aggregate", &window_ops::window_aggregate_cpu);
  m.impl("window_transpose", &window_ops::window_transpose_cpu);
}

}  // namespace wsss
