// CPU engine shared by the grid propagation ops (random walk, local propagation).
//
// Both ops repeat, for every channel c of every batch item b and every pixel j,
//
//     out[b,c,j] = post[b,c|0,j] * ( [self_one] * in[b,c,j] + sum_t W[b, j + w_off_t] * in[b,c, j + v_off_t] )
//
// where the terms t are fixed offsets on the pixel grid and W holds precomputed, zero-padded weight
// planes. Every plane (values, weights, post) uses one padded layout (PaddedGrid): `pad` zero rows and
// columns around the image, and each row widened to a multiple of the vector width, so the inner loop
// needs no bounds test and neighbours outside the image read zeros. Outputs written into the padding
// columns are multiplied by a zero `post` there, so the padding stays zero across ping-pong steps.
//
// Loop order per step: rows of (b, y); per row, channels in groups of up to four that share every
// weight load; per group, vector tiles across x with the accumulators in registers. Threads split
// the (b, c) planes (no synchronisation) or, with fewer planes than threads, the rows (see propagate).
#pragma once

#include <ATen/Parallel.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

// The 64-byte vector types below pass through always_inline helpers only, so GCC's note that their
// ABI depends on -mavx512f never applies.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

namespace wsss {
namespace stencil {

template <typename T>
struct Vec;
template <>
struct Vec<float> {
  typedef float type __attribute__((vector_size(64)));
  static constexpr int lanes = 16;
};
template <>
struct Vec<double> {
  typedef double type __attribute__((vector_size(64)));
  static constexpr int lanes = 8;
};

template <typename V, typename T>
static inline __attribute__((always_inline)) V vload(const T* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}

template <typename V, typename T>
static inline __attribute__((always_inline)) void vstore(T* p, const V& v) {
  std::memcpy(p, &v, sizeof(V));
}

// Grain for at::parallel_for over items of `work` elementary operations each: ranges below ~32k
// operations run inline (a parallel region costs far more than that on a busy machine).
inline int64_t grain_for(int64_t work) { return std::max<int64_t>(1, (int64_t(1) << 15) / std::max<int64_t>(1, work)); }

// Padded plane layout of an H x W image.
struct PaddedGrid {
  int64_t H, W, pad, width, rows, stride, plane;
  PaddedGrid(int64_t H_, int64_t W_, int64_t pad_, int64_t lanes) : H(H_), W(W_), pad(pad_) {
    width = (W + lanes - 1) / lanes * lanes;  // interior row length, a multiple of the vector width
    rows = H + 2 * pad;
    stride = pad + width + pad;
    plane = rows * stride;
  }
  // Index of interior pixel (y, x) inside a plane; y and x may lie in [-pad, H+pad) x [-pad, width+pad).
  inline int64_t at(int64_t y, int64_t x) const { return (y + pad) * stride + (x + pad); }
  inline int64_t shift(int64_t dy, int64_t dx) const { return dy * stride + dx; }
};

struct Term {
  int64_t w_off;  // offset into the batch item's weight planes, relative to the pixel index (includes plane * plane_size)
  int64_t v_off;  // offset of the neighbour's value relative to the pixel index
};

struct Problem {
  int64_t B, C;
  PaddedGrid grid;
  std::vector<Term> terms;
  bool self_one;            // add in[j] with weight 1
  int64_t w_batch_stride;   // elements between batch items of the weight planes
  int64_t post_batch_stride;
  int64_t post_channel_stride;  // 0 when one post plane serves every channel
};

template <typename T, int CG>
static inline __attribute__((always_inline)) void row_group(const Problem& P, const T* __restrict w, const T* const* in,
                                                            T* const* out, const T* const* post, int64_t row) {
  using V = typename Vec<T>::type;
  constexpr int L = Vec<T>::lanes;
  const Term* terms = P.terms.data();
  const int nterms = static_cast<int>(P.terms.size());
  for (int64_t x0 = 0; x0 < P.grid.width; x0 += L) {
    const int64_t j = row + x0;
    V acc[CG];
    for (int c = 0; c < CG; ++c) acc[c] = P.self_one ? vload<V>(in[c] + j) : V{};
    for (int t = 0; t < nterms; ++t) {
      const V wt = vload<V>(w + terms[t].w_off + j);
      const int64_t k = j + terms[t].v_off;
      for (int c = 0; c < CG; ++c) acc[c] += wt * vload<V>(in[c] + k);
    }
    for (int c = 0; c < CG; ++c) vstore(out[c] + j, acc[c] * vload<V>(post[c] + j));
  }
}

// One propagation step for the rows [row_begin, row_end) of the flattened (b, y) range, restricted to
// the value planes (b * C + c) in [plane_begin, plane_end).
template <typename T>
static inline __attribute__((always_inline)) void rows_impl(const Problem& P, const T* w_all, const T* src, T* dst,
                                                            const T* post_all, int64_t row_begin, int64_t row_end,
                                                            int64_t plane_begin, int64_t plane_end) {
  const PaddedGrid& g = P.grid;
  for (int64_t r = row_begin; r < row_end; ++r) {
    const int64_t b = r / g.H, y = r % g.H;
    const int64_t c_begin = std::max<int64_t>(0, plane_begin - b * P.C);
    const int64_t c_end = std::min<int64_t>(P.C, plane_end - b * P.C);
    if (c_begin >= c_end) continue;
    const int64_t row = g.at(y, 0);
    const T* w = w_all + b * P.w_batch_stride;
    for (int64_t c0 = c_begin; c0 < c_end; c0 += 4) {
      const int cg = static_cast<int>(std::min<int64_t>(4, c_end - c0));
      const T* in[4];
      T* out[4];
      const T* post[4];
      for (int c = 0; c < cg; ++c) {
        in[c] = src + (b * P.C + c0 + c) * g.plane;
        out[c] = dst + (b * P.C + c0 + c) * g.plane;
        post[c] = post_all + b * P.post_batch_stride + (c0 + c) * P.post_channel_stride;
      }
      switch (cg) {
        case 4: row_group<T, 4>(P, w, in, out, post, row); break;
        case 3: row_group<T, 3>(P, w, in, out, post, row); break;
        case 2: row_group<T, 2>(P, w, in, out, post, row); break;
        default: row_group<T, 1>(P, w, in, out, post, row); break;
      }
    }
  }
}

template <typename T>
using RowsFn = void (*)(const Problem&, const T*, const T*, T*, const T*, int64_t, int64_t, int64_t, int64_t);

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
// Compiled three times; the widest one this CPU supports is chosen at run time, so the library
// stays portable (no -march=native) and still uses AVX-512 / AVX2 where present.
template <typename T>
__attribute__((target("avx512f,avx512vl,avx512dq,avx2,fma"))) void rows_avx512(const Problem& P, const T* w, const T* s, T* d,
                                                                               const T* p, int64_t a, int64_t e, int64_t pb, int64_t pe) {
  rows_impl<T>(P, w, s, d, p, a, e, pb, pe);
}
template <typename T>
__attribute__((target("avx2,fma"))) void rows_avx2(const Problem& P, const T* w, const T* s, T* d, const T* p, int64_t a, int64_t e, int64_t pb, int64_t pe) {
  rows_impl<T>(P, w, s, d, p, a, e, pb, pe);
}
#endif
template <typename T>
void rows_generic(const Problem& P, const T* w, const T* s, T* d, const T* p, int64_t a, int64_t e, int64_t pb, int64_t pe) {
  rows_impl<T>(P, w, s, d, p, a, e, pb, pe);
}

template <typename T>
RowsFn<T> select_rows_fn() {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    return &rows_avx512<T>;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return &rows_avx2<T>;
#endif
  return &rows_generic<T>;
}

// Runs `steps` steps between the ping-pong buffers a and b ([B][C][plane], zero padding, input in a);
// returns the buffer holding the result.
//
// With at least as many value planes (b, c) as threads, each thread owns a contiguous share of the
// planes and runs all steps on it alone: no synchronisation at all (a barrier per step costs a
// scheduler time slice whenever the machine is oversubscribed). With fewer planes than threads
// (e.g. one channel on a many-core machine), threads split the rows and meet at a barrier per step.
template <typename T>
T* propagate(const Problem& P, const T* weights, const T* post, T* a, T* b, int64_t steps) {
  const RowsFn<T> fn = select_rows_fn<T>();
  const int64_t nrows = P.B * P.grid.H, nplanes = P.B * P.C;
  const int64_t max_threads = std::max<int64_t>(1, at::get_num_threads());
  const bool by_planes = nplanes >= max_threads;
  const double work = double(nplanes) * double(P.grid.plane) * double(P.terms.size() + 1) * double(steps);
  const int threads = work < double(1 << 21) ? 1  // below ~1 ms of work: not worth waking threads
                                             : static_cast<int>(std::min<int64_t>(max_threads, by_planes ? nplanes : nrows));
  T* result = steps % 2 == 0 ? a : b;
#ifdef _OPENMP
#pragma omp parallel num_threads(threads)
  {
    const int64_t tid = omp_get_thread_num();
    const int64_t nth = omp_get_num_threads();
#else
  {
    const int64_t tid = 0, nth = 1;
    (void)threads;
#endif
    T* src = a;
    T* dst = b;
    if (by_planes) {
      const int64_t begin = nplanes * tid / nth, end = nplanes * (tid + 1) / nth;
      for (int64_t s = 0; s < steps; ++s) {
        fn(P, weights, src, dst, post, 0, nrows, begin, end);
        std::swap(src, dst);
      }
    } else {
      // Static, contiguous bands of rows: the same thread touches the same weights every step.
      const int64_t begin = nrows * tid / nth, end = nrows * (tid + 1) / nth;
      for (int64_t s = 0; s < steps; ++s) {
        fn(P, weights, src, dst, post, begin, end, 0, nplanes);
#ifdef _OPENMP
#pragma omp barrier
#endif
        std::swap(src, dst);
      }
    }
  }
  return result;
}

// Copies an unpadded contiguous [N][H][W] tensor into padded planes (padding must already be zero).
template <typename T>
void scatter_padded(const T* src, T* dst, int64_t n, const PaddedGrid& g) {
  at::parallel_for(0, n * g.H, grain_for(g.W), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t i = r / g.H, y = r % g.H;
      std::memcpy(dst + i * g.plane + g.at(y, 0), src + (i * g.H + y) * g.W, sizeof(T) * g.W);
    }
  });
}

template <typename T>
void gather_padded(const T* src, T* dst, int64_t n, const PaddedGrid& g) {
  at::parallel_for(0, n * g.H, grain_for(g.W), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t i = r / g.H, y = r % g.H;
      std::memcpy(dst + (i * g.H + y) * g.W, src + i * g.plane + g.at(y, 0), sizeof(T) * g.W);
    }
  });
}

}  // namespace stencil
}  // namespace wsss

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
