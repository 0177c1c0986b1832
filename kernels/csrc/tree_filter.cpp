// TreeFilter (learnable tree filter) on a spanning tree: product-of-weights similarity, differentiable.
//
// Tree edge weight w = exp(-sum_e (embed_u - embed_v)^2); S_ij = product of the weights on the path
// i -> j; out = A(x) / A(1) with A_i(x) = sum_j S_ij x_j. With the tree rooted at node 0 and visited
// in BFS order (topology, tree_filter.h), w_k the weight of the edge from position k to its parent:
//   leaf -> root   U_k = x_k + sum_{children q} w_q U_q
//   root -> leaf   A_0 = U_0;  A_k = U_k (1 - w_k^2) + w_k A_parent(k)
// Backward (u = upstream gradient of A(y), both through the same passes since S is symmetric):
//   dL/dy = A(u);  dL/dw_k = U_k(u) (A_p(y) - w_k U_k(y)) + U_k(y) (A_p(u) - w_k U_k(u)),
// summed over the feature channels (u = g/A(1), y = x) and the normaliser (u = -sum_c g_c out_c / A(1),
// y = 1); then dL/dd_k = -w_k dL/dw_k with d the squared embedding distance. All in float64.
//
// Ops (namespace wsss):
//   tree_filter_topology(tree, num_nodes) -> int32 (B, 5, N+1)   built on the host (a BFS per image,
//       images in parallel), returned on the tree's device.
//   tree_filter_passes(y, weights, topology) -> (U, A)          the two passes; y (B, K, N) float64 in
//       BFS position order, weights (B, N) float64. CPU: rows in parallel. CUDA: one block per row
//       walking the BFS levels (tree_filter.cu).
//   tree_filter_forward(features, embed, topology) -> out
//   tree_filter_backward(grad_out, features, embed, topology) -> (grad_features, grad_embed)
//       CPU: fused loops, (image, channel) rows in parallel, per-job gradient accumulators reduced in a
//       fixed order (deterministic for a given thread count). CUDA: the *_composite versions.
//   tree_filter_forward_composite / tree_filter_backward_composite: device-generic ATen ops around
//       tree_filter_passes (the CUDA path; callable on CPU so the tests check it there).
#include "tree_filter.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <vector>

#include "minimax.h"
#include "mst_union_find.h"

namespace wsss {
namespace tree {
namespace {

void build_topology(const int64_t* edges, int64_t N, int32_t* topo, int64_t image) {
  const int64_t stride = N + 1;
  int32_t* order = topo + kOrder * stride;
  int32_t* parent = topo + kParent * stride;
  int32_t* child_begin = topo + kChildBegin * stride;
  int32_t* child_end = topo + kChildEnd * stride;
  int32_t* level = topo + kLevel * stride;
  // Adjacency (CSR) in input edge order.
  std::vector<int32_t> offset(N + 1, 0), adjacent(2 * (N - 1));
  for (int64_t k = 0; k < 2 * (N - 1); ++k) {
    const int64_t x = edges[k];
    TORCH_CHECK_VALUE(x >= 0 && x < N, "wsss::tree_filter: tree[", image, "] node index ", x, " outside [0, ", N, ")");
    ++offset[x + 1];
  }
  for (int64_t i = 0; i < N; ++i) offset[i + 1] += offset[i];
  {
    std::vector<int32_t> fill(offset.begin(), offset.end() - 1);
    for (int64_t k = 0; k < N - 1; ++k) {
      const int32_t u = static_cast<int32_t>(edges[2 * k]), v = static_cast<int32_t>(edges[2 * k + 1]);
      adjacent[fill[u]++] = v;
      adjacent[fill[v]++] = u;
    }
  }
  // BFS from node 0, level by level.
  std::vector<uint8_t> seen(N, 0);
  std::vector<int32_t> parent_node(N, -1);
  order[0] = 0;
  parent[0] = 0;
  seen[0] = 1;
  int64_t tail = 1, head = 0, levels = 0;
  level[0] = 0;
  while (head < tail) {
    level[++levels] = static_cast<int32_t>(tail);  // provisional end of the level being expanded
    const int64_t level_end = tail;
    for (int64_t k = head; k < level_end; ++k) {
      const int32_t x = order[k];
      child_begin[k] = static_cast<int32_t>(tail);
      for (int32_t a = offset[x]; a < offset[x + 1]; ++a) {
        const int32_t y = adjacent[a];
        if (y == parent_node[k]) continue;
        TORCH_CHECK_VALUE(!seen[y], "wsss::tree_filter: tree[", image, "] is not a spanning tree: node ", y,
                          " is reached twice (a cycle or a repeated edge)");
        seen[y] = 1;
        order[tail] = y;
        parent[tail] = static_cast<int32_t>(k);
        parent_node[tail] = x;
        ++tail;
      }
      child_end[k] = static_cast<int32_t>(tail);
    }
    head = level_end;
  }
  TORCH_CHECK_VALUE(tail == N, "wsss::tree_filter: tree[", image, "] is not a spanning tree: only ", tail, " of ", N,
                    " nodes are connected to node 0");
  for (int64_t l = levels; l <= N; ++l) level[l] = static_cast<int32_t>(N);
  order[N] = parent[N] = child_begin[N] = child_end[N] = 0;
}

at::Tensor tree_filter_topology(const at::Tensor& tree, int64_t num_nodes) {
  TORCH_CHECK_VALUE(num_nodes >= 1 && num_nodes < (int64_t{1} << 31) - 1,
                    "wsss::tree_filter_topology: num_nodes must lie in [1, 2^31 - 2], got ", num_nodes);
  const int64_t N = num_nodes;
  TORCH_CHECK_VALUE(tree.dim() == 3 && tree.size(1) == N - 1 && tree.size(2) == 2,
                    "wsss::tree_filter_topology: tree must be (B, ", N - 1, ", 2), got ", tree.sizes());
  TORCH_CHECK_VALUE(tree.scalar_type() == at::kLong, "wsss::tree_filter_topology: tree must be int64, got ",
                    tree.scalar_type());
  const at::Tensor host = tree.cpu().contiguous();
  const int64_t B = tree.size(0);
  at::Tensor topo = at::empty({B, kTopologyRows, N + 1}, at::TensorOptions().dtype(at::kInt));
  const int64_t* edges = host.data_ptr<int64_t>();
  int32_t* out = topo.data_ptr<int32_t>();
  at::parallel_for(0, B, grain_for(8 * N), [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b)
      build_topology(edges + b * (N - 1) * 2, N, out + b * kTopologyRows * (N + 1), b);
  });
  return topo.to(tree.device());
}

void check_passes_inputs(const at::Tensor& y, const at::Tensor& weights, const at::Tensor& topo) {
  TORCH_CHECK_VALUE(y.dim() == 3 && y.scalar_type() == at::kDouble,
                    "wsss::tree_filter_passes: y must be (B, K, N) float64");
  const int64_t B = y.size(0), N = y.size(2);
  TORCH_CHECK_VALUE(weights.dim() == 2 && weights.size(0) == B && weights.size(1) == N &&
                        weights.scalar_type() == at::kDouble,
                    "wsss::tree_filter_passes: weights must be (B, N) float64");
  TORCH_CHECK_VALUE(topo.dim() == 3 && topo.size(0) == B && topo.size(1) == kTopologyRows && topo.size(2) == N + 1 &&
                        topo.scalar_type() == at::kInt,
                    "wsss::tree_filter_passes: topology must be (B, 5, N+1) int32 from tree_filter_topology");
  TORCH_CHECK_VALUE(weights.device() == y.device() && topo.device() == y.device(),
                    "wsss::tree_filter_passes: y, weights and topology must share a device");
}

std::tuple<at::Tensor, at::Tensor> tree_filter_passes_cpu(const at::Tensor& y_in, const at::Tensor& weights_in,
                                                          const at::Tensor& topo_in) {
  check_passes_inputs(y_in, weights_in, topo_in);
  const at::Tensor y = y_in.contiguous(), weights = weights_in.contiguous(), topo = topo_in.contiguous();
  const int64_t B = y.size(0), K = y.size(1), N = y.size(2);
  at::Tensor up = at::empty_like(y), all = at::empty_like(y);
  const double* yp = y.data_ptr<double>();
  const double* wp = weights.data_ptr<double>();
  const int32_t* tp = topo.data_ptr<int32_t>();
  double* U = up.data_ptr<double>();
  double* A = all.data_ptr<double>();
  at::parallel_for(0, B * K, grain_for(4 * N), [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t b = row / K;
      const double* w = wp + b * N;
      const int32_t* parent = tp + (b * kTopologyRows + kParent) * (N + 1);
      const double* yr = yp + row * N;
      double* u = U + row * N;
      double* a = A + row * N;
      std::copy(yr, yr + N, u);
      for (int64_t k = N - 1; k >= 1; --k) u[parent[k]] += w[k] * u[k];
      if (N > 0) a[0] = u[0];
      for (int64_t k = 1; k < N; ++k) a[k] = u[k] * (1.0 - w[k] * w[k]) + w[k] * a[parent[k]];
    }
  });
  return {up, all};
}

std::tuple<at::Tensor, at::Tensor> call_passes(const at::Tensor& y, const at::Tensor& weights, const at::Tensor& topo) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("wsss::tree_filter_passes", "")
                       .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&,
                                                                 const at::Tensor&)>();
  return op.call(y.contiguous(), weights.contiguous(), topo);
}

void check_filter_inputs(const at::Tensor& features, const at::Tensor& embed, const at::Tensor& topo, const char* op) {
  TORCH_CHECK_VALUE(features.dim() == 4 && embed.dim() == 4, "wsss::", op,
                    ": features and embed must be (B, C, H, W) and (B, E, H, W)");
  TORCH_CHECK_VALUE(features.scalar_type() == at::kFloat || features.scalar_type() == at::kDouble, "wsss::", op,
                    ": features must be float32 or float64, got ", features.scalar_type());
  TORCH_CHECK_VALUE(embed.scalar_type() == features.scalar_type() && embed.device() == features.device() &&
                        embed.size(0) == features.size(0) && embed.size(2) == features.size(2) &&
                        embed.size(3) == features.size(3),
                    "wsss::", op, ": embed ", embed.sizes(), " must match features ", features.sizes(),
                    " in dtype, device, batch and spatial size");
  const int64_t N = features.size(2) * features.size(3);
  TORCH_CHECK_VALUE(topo.dim() == 3 && topo.size(0) == features.size(0) && topo.size(1) == kTopologyRows &&
                        topo.size(2) == N + 1 && topo.scalar_type() == at::kInt && topo.device() == features.device(),
                    "wsss::", op, ": topology must be the (B, 5, H*W+1) int32 output of tree_filter_topology");
}

// ---- fused CPU forward / backward --------------------------------------------------------------------

// Edge weights at BFS positions (w[0] = 0) and, when `delta` is given, the embedding differences
// delta[e*N + k] = embed_e(order[k]) - embed_e(order[parent[k]]).
template <typename T>
void position_weights(const T* embed, int64_t E, int64_t N, const int32_t* order, const int32_t* parent, double* w,
                      double* delta) {
  w[0] = 0.0;
  if (delta)
    for (int64_t e = 0; e < E; ++e) delta[e * N] = 0.0;
  for (int64_t k = 1; k < N; ++k) {
    const int64_t i = order[k], j = order[parent[k]];
    double s = 0.0;
    for (int64_t e = 0; e < E; ++e) {
      const double d = static_cast<double>(embed[e * N + i]) - static_cast<double>(embed[e * N + j]);
      if (delta) delta[e * N + k] = d;
      s += d * d;
    }
    w[k] = std::exp(-s);
  }
}

inline void up_pass(double* u, const double* w, const int32_t* parent, int64_t N) {
  for (int64_t k = N - 1; k >= 1; --k) u[parent[k]] += w[k] * u[k];
}

// a holds U on entry and A on exit (a parent's A is final before its children are visited).
inline void down_pass(double* a, const double* w, const int32_t* parent, int64_t N) {
  for (int64_t k = 1; k < N; ++k) a[k] = a[k] * (1.0 - w[k] * w[k]) + w[k] * a[parent[k]];
}

const int32_t* topo_row(const at::Tensor& topo, int64_t b, int row) {
  const int64_t N1 = topo.size(2);
  return topo.data_ptr<int32_t>() + (b * kTopologyRows + row) * N1;
}

at::Tensor tree_filter_forward_cpu(const at::Tensor& features_in, const at::Tensor& embed_in,
                                   const at::Tensor& topo_in) {
  check_filter_inputs(features_in, embed_in, topo_in, "tree_filter_forward");
  const at::Tensor features = features_in.contiguous(), embed = embed_in.contiguous(), topo = topo_in.contiguous();
  const int64_t B = features.size(0), C = features.size(1), E = embed.size(1);
  const int64_t N = features.size(2) * features.size(3);
  at::Tensor out = at::empty_like(features);
  std::vector<double> weights(B * N), norm(B * N, 1.0);
  AT_DISPATCH_FLOATING_TYPES(features.scalar_type(), "tree_filter_forward", [&] {
    const scalar_t* x = features.data_ptr<scalar_t>();
    const scalar_t* emb = embed.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    at::parallel_for(0, B, grain_for(N * (E + 4)), [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const int32_t* order = topo_row(topo, b, kOrder);
        const int32_t* parent = topo_row(topo, b, kParent);
        double* w = weights.data() + b * N;
        position_weights(emb + b * E * N, E, N, order, parent, w, nullptr);
        up_pass(norm.data() + b * N, w, parent, N);
        down_pass(norm.data() + b * N, w, parent, N);
      }
    });
    at::parallel_for(0, B * C, grain_for(6 * N), [&](int64_t begin, int64_t end) {
      std::vector<double> a(N);
      for (int64_t row = begin; row < end; ++row) {
        const int64_t b = row / C;
        const int32_t* order = topo_row(topo, b, kOrder);
        const int32_t* parent = topo_row(topo, b, kParent);
        const double* w = weights.data() + b * N;
        const double* n = norm.data() + b * N;
        const scalar_t* xr = x + row * N;
        scalar_t* orow = o + row * N;
        for (int64_t k = 0; k < N; ++k) a[k] = static_cast<double>(xr[order[k]]);
        up_pass(a.data(), w, parent, N);
        down_pass(a.data(), w, parent, N);
        for (int64_t k = 0; k < N; ++k) orow[order[k]] = static_cast<scalar_t>(a[k] / n[k]);
      }
    });
  });
  return out;
}

std::tuple<at::Tensor, at::Tensor> tree_filter_backward_cpu(const at::Tensor& grad_in, const at::Tensor& features_in,
                                                            const at::Tensor& embed_in, const at::Tensor& topo_in) {
  check_filter_inputs(features_in, embed_in, topo_in, "tree_filter_backward");
  TORCH_CHECK_VALUE(grad_in.sizes() == features_in.sizes() && grad_in.scalar_type() == features_in.scalar_type(),
                    "wsss::tree_filter_backward: grad_out ", grad_in.sizes(), " must match features ",
                    features_in.sizes());
  const at::Tensor grad = grad_in.contiguous(), features = features_in.contiguous(), embed = embed_in.contiguous();
  const at::Tensor topo = topo_in.contiguous();
  const int64_t B = features.size(0), C = features.size(1), E = embed.size(1);
  const int64_t N = features.size(2) * features.size(3);
  at::Tensor grad_features = at::empty_like(features), grad_embed = at::empty_like(embed);
  // Per image: weights, embedding differences, U(1) and A(1).
  std::vector<double> weights(B * N), delta(B * E * N), up_one(B * N, 1.0), norm(B * N);
  // Channel chunks per image; every job accumulates its own dL/dw and dL/dA(1) (reduced in job order).
  const bool split = 24 * B * C * N >= 2 * kMinParallelWork;  // ~24 operations per pixel and channel
  const int64_t chunks = split ? std::max<int64_t>(1, std::min<int64_t>(C, (at::get_num_threads() + B - 1) / B)) : 1;
  std::vector<double> acc_w(B * chunks * N, 0.0), acc_n(B * chunks * N, 0.0);
  AT_DISPATCH_FLOATING_TYPES(features.scalar_type(), "tree_filter_backward", [&] {
    const scalar_t* x = features.data_ptr<scalar_t>();
    const scalar_t* g = grad.data_ptr<scalar_t>();
    const scalar_t* emb = embed.data_ptr<scalar_t>();
    scalar_t* gx = grad_features.data_ptr<scalar_t>();
    scalar_t* ge = grad_embed.data_ptr<scalar_t>();
    at::parallel_for(0, B, grain_for(N * (E + 4)), [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) {
        const int32_t* order = topo_row(topo, b, kOrder);
        const int32_t* parent = topo_row(topo, b, kParent);
        double* w = weights.data() + b * N;
        position_weights(emb + b * E * N, E, N, order, parent, w, delta.data() + b * E * N);
        double* u1 = up_one.data() + b * N;
        up_pass(u1, w, parent, N);
        std::copy(u1, u1 + N, norm.data() + b * N);
        down_pass(norm.data() + b * N, w, parent, N);
      }
    });
    const int64_t per_job = 24 * N * ((C + chunks - 1) / chunks);
    at::parallel_for(0, B * chunks, grain_for(per_job), [&](int64_t begin, int64_t end) {
      std::vector<double> ux(N), ax(N), uu(N), au(N);
      for (int64_t job = begin; job < end; ++job) {
        const int64_t b = job / chunks, chunk = job % chunks;
        const int32_t* order = topo_row(topo, b, kOrder);
        const int32_t* parent = topo_row(topo, b, kParent);
        const double* w = weights.data() + b * N;
        const double* n = norm.data() + b * N;
        double* dw = acc_w.data() + job * N;
        double* dn = acc_n.data() + job * N;
        for (int64_t c = C * chunk / chunks; c < C * (chunk + 1) / chunks; ++c) {
          const scalar_t* xr = x + (b * C + c) * N;
          const scalar_t* gr = g + (b * C + c) * N;
          scalar_t* gxr = gx + (b * C + c) * N;
          for (int64_t k = 0; k < N; ++k) {
            ux[k] = static_cast<double>(xr[order[k]]);
            uu[k] = static_cast<double>(gr[order[k]]) / n[k];
          }
          up_pass(ux.data(), w, parent, N);
          up_pass(uu.data(), w, parent, N);
          std::copy(ux.begin(), ux.end(), ax.begin());
          std::copy(uu.begin(), uu.end(), au.begin());
          down_pass(ax.data(), w, parent, N);
          down_pass(au.data(), w, parent, N);
          for (int64_t k = 0; k < N; ++k) {
            gxr[order[k]] = static_cast<scalar_t>(au[k]);
            dn[k] -= static_cast<double>(gr[order[k]]) * ax[k] / (n[k] * n[k]);
          }
          for (int64_t k = 1; k < N; ++k) {
            const int64_t p = parent[k];
            dw[k] += uu[k] * (ax[p] - w[k] * ux[k]) + ux[k] * (au[p] - w[k] * uu[k]);
          }
        }
      }
    });
    at::parallel_for(0, B, grain_for(N * (E + 12)), [&](int64_t begin, int64_t end) {
      std::vector<double> dw(N), un(N), an(N), gemb(E * N);
      for (int64_t b = begin; b < end; ++b) {
        const int32_t* order = topo_row(topo, b, kOrder);
        const int32_t* parent = topo_row(topo, b, kParent);
        const double* w = weights.data() + b * N;
        const double* n = norm.data() + b * N;
        const double* u1 = up_one.data() + b * N;
        std::fill(dw.begin(), dw.end(), 0.0);
        std::fill(un.begin(), un.end(), 0.0);
        for (int64_t chunk = 0; chunk < chunks; ++chunk) {
          const double* aw = acc_w.data() + (b * chunks + chunk) * N;
          const double* an_ = acc_n.data() + (b * chunks + chunk) * N;
          for (int64_t k = 0; k < N; ++k) {
            dw[k] += aw[k];
            un[k] += an_[k];
          }
        }
        // The normaliser's share: u = dL/dA(1), y = 1.
        up_pass(un.data(), w, parent, N);
        std::copy(un.begin(), un.end(), an.begin());
        down_pass(an.data(), w, parent, N);
        std::fill(gemb.begin(), gemb.end(), 0.0);
        const double* d = delta.data() + b * E * N;
        for (int64_t k = 1; k < N; ++k) {
          const int64_t p = parent[k];
          const double total = dw[k] + un[k] * (n[p] - w[k] * u1[k]) + u1[k] * (an[p] - w[k] * un[k]);
          const double coef = -2.0 * w[k] * total;  // dL/dd_k times d(d_k)/d(delta) = 2 delta
          const int64_t i = order[k], j = order[p];
          for (int64_t e = 0; e < E; ++e) {
            const double v = coef * d[e * N + k];
            gemb[e * N + i] += v;
            gemb[e * N + j] -= v;
          }
        }
        scalar_t* geb = ge + b * E * N;
        for (int64_t q = 0; q < E * N; ++q) geb[q] = static_cast<scalar_t>(gemb[q]);
      }
    });
  });
  return {grad_features, grad_embed};
}

}  // namespace

// ---- device-generic forward / backward (the CUDA path) --------------------------------------------

namespace {

// Per-image tensors in BFS position order shared by forward and backward.
struct Layout {
  at::Tensor order, parent;      // (B, N) int64
  at::Tensor embed_pos, delta;   // (B, E, N) float64: embedding at k, and minus at k's parent
  at::Tensor weights;            // (B, N) float64, 0 at the root
};

Layout make_layout(const at::Tensor& embed, const at::Tensor& topo) {
  const int64_t B = embed.size(0), E = embed.size(1), N = embed.size(2) * embed.size(3);
  Layout l;
  l.order = topo.select(1, kOrder).narrow(1, 0, N).to(at::kLong);
  l.parent = topo.select(1, kParent).narrow(1, 0, N).to(at::kLong);
  l.embed_pos = embed.reshape({B, E, N}).to(at::kDouble).gather(2, l.order.unsqueeze(1).expand({B, E, N}));
  l.delta = l.embed_pos - l.embed_pos.gather(2, l.parent.unsqueeze(1).expand({B, E, N}));
  l.weights = at::exp(-l.delta.square().sum(1));
  l.weights.select(1, 0).zero_();
  return l;
}

at::Tensor to_positions(const at::Tensor& t, const Layout& l) {
  const int64_t B = t.size(0), K = t.size(1), N = l.order.size(1);
  return t.reshape({B, K, N}).to(at::kDouble).gather(2, l.order.unsqueeze(1).expand({B, K, N}));
}

at::Tensor to_pixels(const at::Tensor& t, const Layout& l, const at::Tensor& like) {
  const int64_t B = t.size(0), K = t.size(1), N = t.size(2);
  return at::empty({B, K, N}, t.options())
      .scatter_(2, l.order.unsqueeze(1).expand({B, K, N}), t)
      .to(like.scalar_type())
      .view({B, K, like.size(2), like.size(3)});
}

}  // namespace

at::Tensor tree_filter_forward_composite(const at::Tensor& features, const at::Tensor& embed,
                                         const at::Tensor& topo) {
  check_filter_inputs(features, embed, topo, "tree_filter_forward");
  const int64_t B = features.size(0), N = features.size(2) * features.size(3);
  const Layout l = make_layout(embed, topo);
  const at::Tensor norm = std::get<1>(call_passes(at::ones({B, 1, N}, l.weights.options()), l.weights, topo));
  const at::Tensor filtered = std::get<1>(call_passes(to_positions(features, l), l.weights, topo));
  return to_pixels(filtered / norm, l, features);
}

std::tuple<at::Tensor, at::Tensor> tree_filter_backward_composite(const at::Tensor& grad_out,
                                                                  const at::Tensor& features,
                                                                  const at::Tensor& embed, const at::Tensor& topo) {
  check_filter_inputs(features, embed, topo, "tree_filter_backward");
  TORCH_CHECK_VALUE(grad_out.sizes() == features.sizes() && grad_out.device() == features.device(),
                    "wsss::tree_filter_backward: grad_out ", grad_out.sizes(), " must match features ",
                    features.sizes());
  const int64_t B = features.size(0), N = features.size(2) * features.size(3);
  const Layout l = make_layout(embed, topo);
  const at::Tensor& w = l.weights;
  const at::Tensor ones = at::ones({B, 1, N}, w.options());
  const auto [up_one, norm] = call_passes(ones, w, topo);
  const auto [up_x, all_x] = call_passes(to_positions(features, l), w, topo);
  const at::Tensor grad = to_positions(grad_out, l);
  const at::Tensor out = all_x / norm;
  const auto [up_u, all_u] = call_passes(grad / norm, w, topo);
  const auto [up_n, all_n] = call_passes(-(grad * out).sum(1, true) / norm, w, topo);
  auto at_parent = [&](const at::Tensor& t) {
    return t.gather(2, l.parent.unsqueeze(1).expand({B, t.size(1), N}));
  };
  const at::Tensor wk = w.unsqueeze(1);
  at::Tensor dw = (up_u * (at_parent(all_x) - wk * up_x) + up_x * (at_parent(all_u) - wk * up_u)).sum(1) +
                  (up_n * (at_parent(norm) - wk * up_one) + up_one * (at_parent(all_n) - wk * up_n)).squeeze(1);
  // dL/dd_k = -w_k dL/dw_k (0 at the root, where w = 0); d_k = |e_k - e_parent|^2.
  const at::Tensor contrib = (-2.0 * w * dw).unsqueeze(1) * l.delta;  // (B, E, N): gradient at position k
  at::Tensor grad_embed_pos = contrib.clone();
  grad_embed_pos.scatter_add_(2, l.parent.unsqueeze(1).expand_as(contrib), -contrib);
  return {to_pixels(all_u, l, features), to_pixels(grad_embed_pos, l, embed)};
}

}  // namespace tree
}  // namespace wsss

TORCH_LIBRARY_FRAGMENT(wsss, m) {
  m.def("tree_filter_topology(Tensor tree, int num_nodes) -> Tensor");
  m.def("tree_filter_passes(Tensor y, Tensor weights, Tensor topology) -> (Tensor, Tensor)");
  m.def("tree_filter_forward(Tensor features, Tensor embed, Tensor topology) -> Tensor");
  m.def("tree_filter_backward(Tensor grad_out, Tensor features, Tensor embed, Tensor topology) -> (Tensor, Tensor)");
  m.def("tree_filter_forward_composite(Tensor features, Tensor embed, Tensor topology) -> Tensor");
  m.def("tree_filter_backward_composite(Tensor grad_out, Tensor features, Tensor embed, Tensor topology) -> "
        "(Tensor, Tensor)");
}

TORCH_LIBRARY_IMPL(wsss, CPU, m) {
  m.impl("tree_filter_passes", &wsss::tree::tree_filter_passes_cpu);
  m.impl("tree_filter_forward", &wsss::tree::tree_filter_forward_cpu);
  m.impl("tree_filter_backward", &wsss::tree::tree_filter_backward_cpu);
}

TORCH_LIBRARY_IMPL(wsss, CompositeExplicitAutograd, m) {
  m.impl("tree_filter_topology", &wsss::tree::tree_filter_topology);
  m.impl("tree_filter_forward_composite", &wsss::tree::tree_filter_forward_composite);
  m.impl("tree_filter_backward_composite", &wsss::tree::tree_filter_backward_composite);
}
