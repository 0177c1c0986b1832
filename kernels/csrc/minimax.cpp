// APro's global propagation: minimax (bottleneck) affinities on a spanning tree.
//
//   out_i = (p_i + sum_{j!=i} p_j exp(-W_ij/zeta^2)) / (1 + sum_{j!=i} exp(-W_ij/zeta^2)),
//   W_ij = largest tree edge weight on the path i -> j, edge weight w = sum_e (embed_u - embed_v)^2.
//
// Kruskal reconstruction tree (KRT): take the tree edges by ascending weight (ties by edge index)
// and merge components with a union-find; merge t creates node N+t with weight w_t whose children
// are the KRT nodes of the two merged components. W_ij is the weight of the lowest common ancestor of
// leaves i and j, so with f_t = exp(-w_t/zeta^2) and S(x) = sum of p over the leaves below x:
//   bottom-up  S(N+t) = S(child0) + S(child1)
//   top-down   T(root) = 0;  T(child0) = T(N+t) + f_t S(child1);  T(child1) = T(N+t) + f_t S(child0)
//   out_i = (p_i + T(i)) / (1 + T_count(i))            (T_count: the same passes with p = 1)
// The merge order and f_t depend only on the embedding, so they are built once per image and shared
// by every channel; the passes are O(N·C) after the O(N log N) sort. All sums are float64.
//
// Ops (namespace wsss):
//   minimax_propagation(values, tree, embed, zeta)      CPU: the passes above, channels processed in
//       node-major blocks, images/blocks in parallel. CUDA: minimax_propagation_ranges.
//   minimax_propagation_ranges(values, tree, embed, zeta)  the GPU formulation (see minimax.h); any device.
//   minimax_propagation_apro_reference(values, tree, embed, zeta)  APro's algorithm written
//       straightforwardly (benchmark baseline): CPU, single thread, each channel on its own — weights,
//       sort, union by size with lazy additive tags, tags pushed down. Accumulates in float64.
//   minimax_edge_weights(tree, embed) -> (B, N-1) float64 tree edge weights.
#include "minimax.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <vector>

#include "mst_grid.h"
#include "mst_union_find.h"

namespace wsss {
namespace tree {

void check_tree(const at::Tensor& tree, const at::Tensor& like, const char* op) {
  const int64_t B = like.size(0), N = like.size(2) * like.size(3);
  TORCH_CHECK_VALUE(tree.defined() && tree.dim() == 3 && tree.size(0) == B && tree.size(1) == N - 1 &&
                        tree.size(2) == 2,
                    "wsss::", op, ": tree must be (B, H*W-1, 2) = (", B, ", ", N - 1, ", 2), got ",
                    tree.defined() ? tree.sizes() : c10::IntArrayRef{});
  TORCH_CHECK_VALUE(tree.scalar_type() == at::kLong, "wsss::", op, ": tree must be int64, got ", tree.scalar_type());
  TORCH_CHECK_VALUE(tree.device() == like.device(), "wsss::", op, ": tree is on ", tree.device(), ", the images on ",
                    like.device());
  if (tree.numel() > 0) {
    const auto [lo, hi] = at::aminmax(tree);
    const int64_t min_index = lo.item<int64_t>(), max_index = hi.item<int64_t>();
    TORCH_CHECK_VALUE(min_index >= 0 && max_index < N, "wsss::", op, ": tree node indices must lie in [0, ", N,
                      "), got [", min_index, ", ", max_index, "]");
  }
}

void check_tree_inputs(const at::Tensor& values, const at::Tensor& tree, const at::Tensor& embed, const char* op,
                       const char* values_name) {
  TORCH_CHECK_VALUE(values.defined() && values.dim() == 4, "wsss::", op, ": ", values_name, " must be (B, C, H, W)");
  TORCH_CHECK_VALUE(embed.defined() && embed.dim() == 4, "wsss::", op, ": embed must be (B, E, H, W)");
  TORCH_CHECK_VALUE(values.scalar_type() == at::kFloat || values.scalar_type() == at::kDouble, "wsss::", op, ": ",
                    values_name, " must be float32 or float64, got ", values.scalar_type());
  TORCH_CHECK_VALUE(embed.scalar_type() == values.scalar_type(), "wsss::", op, ": embed dtype ", embed.scalar_type(),
                    " differs from ", values_name, " dtype ", values.scalar_type());
  TORCH_CHECK_VALUE(embed.device() == values.device(), "wsss::", op, ": embed is on ", embed.device(), ", ",
                    values_name, " on ", values.device());
  TORCH_CHECK_VALUE(embed.size(0) == values.size(0) && embed.size(2) == values.size(2) &&
                        embed.size(3) == values.size(3),
                    "wsss::", op, ": embed ", embed.sizes(), " and ", values_name, " ", values.sizes(),
                    " differ in batch or spatial size");
  TORCH_CHECK_VALUE(values.size(2) >= 1 && values.size(3) >= 1, "wsss::", op, ": images must have H, W >= 1");
  TORCH_CHECK_VALUE(values.size(2) * values.size(3) < (int64_t{1} << 31) - 1, "wsss::", op,
                    ": at most 2^31 - 2 pixels per image");
  check_tree(tree, values, op);
}

void check_minimax_inputs(const at::Tensor& values, const at::Tensor& tree, const at::Tensor& embed, double zeta,
                          const char* op) {
  TORCH_CHECK_VALUE(std::isfinite(zeta) && zeta > 0, "wsss::", op, ": zeta must be finite and > 0, got ", zeta);
  check_tree_inputs(values, tree, embed, op);
}

namespace {

// Children of the KRT merge nodes: merge t (node N+t) joins the component of the endpoint u of
// edge `edge_at(t)` (child0) with that of v (child1); `size[t]` = leaves below node N+t. A
// union-find (path halving, union by size, ties to the smaller root index) whose node records keep
// parent, size and the component's KRT node in one cache line. Raises ValueError on a cycle.
template <typename EdgeAt>
void build_krt(const int64_t* edges, int64_t N, EdgeAt edge_at, int32_t* child0, int32_t* child1, int32_t* size,
               int64_t image) {
  struct Set {
    int32_t parent, size, top, unused;
  };
  std::unique_ptr<Set[]> sets(new Set[N]);
  for (int64_t i = 0; i < N; ++i) sets[i] = {static_cast<int32_t>(i), 1, static_cast<int32_t>(i), 0};
  auto find = [&](int32_t x) {
    while (sets[x].parent != x) {
      sets[x].parent = sets[sets[x].parent].parent;
      x = sets[x].parent;
    }
    return x;
  };
  for (int64_t t = 0; t < N - 1; ++t) {
    const int64_t k = edge_at(t);
    const int32_t u = static_cast<int32_t>(edges[2 * k]), v = static_cast<int32_t>(edges[2 * k + 1]);
    int32_t ru = find(u), rv = find(v);
    TORCH_CHECK_VALUE(ru != rv, "wsss: tree[", image, "] is not a spanning tree: edge ", k, " (", u, ", ", v,
                      ") closes a cycle");
    child0[t] = sets[ru].top;
    child1[t] = sets[rv].top;
    if (sets[ru].size < sets[rv].size || (sets[ru].size == sets[rv].size && rv < ru)) std::swap(ru, rv);
    sets[rv].parent = ru;
    sets[ru].size += sets[rv].size;
    sets[ru].top = static_cast<int32_t>(N + t);
    size[t] = sets[ru].size;
  }
}

template <typename T>
void edge_weights_image(const int64_t* edges, const T* embed, int64_t E, int64_t N, double* w) {
  at::parallel_for(0, N - 1, grain_for(E + 1), [&](int64_t begin, int64_t end) {
    for (int64_t k = begin; k < end; ++k) w[k] = squared_distance(embed, E, N, edges[2 * k], edges[2 * k + 1]);
  });
}

at::Tensor minimax_edge_weights_cpu(const at::Tensor& tree_in, const at::Tensor& embed_in) {
  TORCH_CHECK_VALUE(embed_in.dim() == 4, "wsss::minimax_edge_weights: embed must be (B, E, H, W)");
  check_tree(tree_in, embed_in, "minimax_edge_weights");
  const at::Tensor tree = tree_in.contiguous(), embed = embed_in.contiguous();
  const int64_t B = embed.size(0), E = embed.size(1), N = embed.size(2) * embed.size(3);
  at::Tensor weights = at::empty({B, N - 1}, embed.options().dtype(at::kDouble));
  double* w = weights.data_ptr<double>();
  const int64_t* edges = tree.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(embed.scalar_type(), "minimax_edge_weights", [&] {
    const scalar_t* e = embed.data_ptr<scalar_t>();
    at::parallel_for(0, B * (N - 1), grain_for(E + 1), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t b = i / (N - 1), k = i % (N - 1);
        const int64_t* uv = edges + b * (N - 1) * 2 + 2 * k;
        w[i] = squared_distance(e + b * E * N, E, N, uv[0], uv[1]);
      }
    });
  });
  return weights;
}

// Per-image, channel-independent part, laid out in post-order: every KRT subtree occupies a
// contiguous run of 2*leaves-1 slots ending with its root, so a merge node at slot s has its second
// child at s-1 and its first child at `first[m]`, and both passes walk memory almost sequentially
// (the node-id layout jumps to random pixels and is several times slower at 512x512).
struct Reconstruction {
  std::vector<int32_t> slot_of_pixel;  // post-order slot of leaf i
  std::vector<int32_t> merge_slot;     // merge nodes in ascending slot order: their slot,
  std::vector<int32_t> first;          // the slot of their first child
  std::vector<double> factor;          // and f = exp(-w / zeta^2)
  std::vector<double> denominator;     // 1 + T_count(i), per pixel
};

// Bottom-up then top-down pass over x ((2N-1) slots x K values, leaves filled): afterwards each leaf
// slot holds T(i) = sum_{j != i} p_j exp(-W_ij / zeta^2).
inline void minimax_passes(const Reconstruction& r, int64_t K, double* x) {
  const int64_t merges = static_cast<int64_t>(r.merge_slot.size());
  const int32_t* slot = r.merge_slot.data();
  const int32_t* first = r.first.data();
  const double* factor = r.factor.data();
  for (int64_t m = 0; m < merges; ++m) {
    double* s = x + int64_t{slot[m]} * K;
    const double* a = x + int64_t{first[m]} * K;
    const double* b = s - K;
    for (int64_t j = 0; j < K; ++j) s[j] = a[j] + b[j];
  }
  if (merges > 0) std::fill(x + int64_t{slot[merges - 1]} * K, x + (int64_t{slot[merges - 1]} + 1) * K, 0.0);
  for (int64_t m = merges - 1; m >= 0; --m) {
    const double* s = x + int64_t{slot[m]} * K;
    double* a = x + int64_t{first[m]} * K;
    double* b = x + (int64_t{slot[m]} - 1) * K;
    const double f = factor[m];
    for (int64_t j = 0; j < K; ++j) {
      const double sa = a[j], sb = b[j];
      a[j] = s[j] + f * sb;
      b[j] = s[j] + f * sa;
    }
  }
}

template <typename T>
void reconstruct(const int64_t* edges, const T* embed, int64_t E, int64_t N, double zz, int64_t image,
                 Reconstruction& r) {
  std::vector<double> w(N - 1);
  edge_weights_image(edges, embed, E, N, w.data());
  std::unique_ptr<WeightedEdge[]> order(new WeightedEdge[N - 1]);
  for (int64_t k = 0; k < N - 1; ++k) order[k] = WeightedEdge::make(w[k], k);
  sort_edges(order.get(), N - 1);
  // One record per KRT node (leaves 0..N-1, merges N..2N-2) for the top-down walk: leaf count, first
  // post-order slot of the subtree, and the count channel's T (for the denominators).
  struct Node {
    int32_t count, start;
    double t_count;
  };
  std::vector<int32_t> child0(N - 1), child1(N - 1), merged(N - 1);
  build_krt(edges, N, [&](int64_t t) { return static_cast<int64_t>(order[t].index); }, child0.data(), child1.data(),
            merged.data(), image);
  std::unique_ptr<Node[]> node(new Node[2 * N - 1]);
  for (int64_t i = 0; i < N; ++i) node[i].count = 1;
  for (int64_t t = 0; t < N - 1; ++t) node[N + t].count = merged[t];
  node[2 * N - 2].start = 0;
  node[2 * N - 2].t_count = 0.0;
  // Per post-order slot: first child's slot (-1 for leaves) and f, filled at merge slots.
  struct Slot {
    double factor;
    int32_t first, unused;
  };
  std::unique_ptr<Slot[]> slots(new Slot[2 * N - 1]);
  for (int64_t s = 0; s < 2 * N - 1; ++s) slots[s].first = -1;
  for (int64_t t = N - 2; t >= 0; --t) {
    const Node a = node[N + t];
    Node& n0 = node[child0[t]];
    Node& n1 = node[child1[t]];
    const double f = std::exp(-order[t].weight() / zz);
    n0.start = a.start;
    n1.start = a.start + 2 * n0.count - 1;
    n0.t_count = a.t_count + f * n1.count;
    n1.t_count = a.t_count + f * n0.count;
    slots[a.start + 2 * a.count - 2] = {f, a.start + 2 * n0.count - 2, 0};
  }
  r.slot_of_pixel.resize(N);  // a leaf's slot is its start
  r.denominator.resize(N);
  for (int64_t i = 0; i < N; ++i) {
    r.slot_of_pixel[i] = node[i].start;
    r.denominator[i] = 1.0 + node[i].t_count;
  }
  r.merge_slot.resize(N - 1);
  r.first.resize(N - 1);
  r.factor.resize(N - 1);
  int64_t m = 0;
  for (int64_t s = 0; s < 2 * N - 1; ++s) {
    if (slots[s].first < 0) continue;
    r.merge_slot[m] = static_cast<int32_t>(s);
    r.first[m] = slots[s].first;
    r.factor[m] = slots[s].factor;
    ++m;
  }
}

// Channels [c0, c0 + K) of one image, slot-major (K values per slot: one tree walk serves K
// channels). x: scratch of (2N-1)*K doubles.
template <typename T>
void propagate_block(const Reconstruction& r, const T* p, T* out, int64_t N, int64_t c0, int64_t K, double* x) {
  const int32_t* slot = r.slot_of_pixel.data();
  for (int64_t i = 0; i < N; ++i) {
    double* xi = x + int64_t{slot[i]} * K;
    for (int64_t j = 0; j < K; ++j) xi[j] = static_cast<double>(p[(c0 + j) * N + i]);
  }
  minimax_passes(r, K, x);
  const double* den = r.denominator.data();
  for (int64_t i = 0; i < N; ++i) {
    const double* xi = x + int64_t{slot[i]} * K;
    for (int64_t j = 0; j < K; ++j) {
      const int64_t at = (c0 + j) * N + i;
      out[at] = static_cast<T>((static_cast<double>(p[at]) + xi[j]) / den[i]);
    }
  }
}

at::Tensor minimax_propagation_cpu(const at::Tensor& values_in, const at::Tensor& tree_in, const at::Tensor& embed_in,
                                   double zeta) {
  check_minimax_inputs(values_in, tree_in, embed_in, zeta, "minimax_propagation");
  const at::Tensor values = values_in.contiguous(), tree = tree_in.contiguous(), embed = embed_in.contiguous();
  const int64_t B = values.size(0), C = values.size(1), N = values.size(2) * values.size(3), E = embed.size(1);
  at::Tensor out = at::empty_like(values);
  if (B == 0 || C == 0) return out;
  if (N == 1) return out.copy_(values);
  const double zz = zeta * zeta;
  const int64_t threads = at::get_num_threads();
  const int64_t* edges = tree.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "minimax_propagation", [&] {
    const scalar_t* e = embed.data_ptr<scalar_t>();
    const scalar_t* p = values.data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    std::vector<Reconstruction> recon(B);
    at::parallel_for(0, B, B >= threads ? grain_for(N * (E + 16)) : B, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b)
        reconstruct(edges + b * (N - 1) * 2, e + b * E * N, E, N, zz, b, recon[b]);
    });
    // Channel blocks of K channels: the scratch ((2N-1)*K doubles) stays near 4 MiB so the passes'
    // random accesses mostly hit the cache (K = 4 at 256x256, 1 at 512x512, 16 at 96x96), and there
    // are enough blocks for every thread.
    const int64_t fit = std::clamp<int64_t>((int64_t{1} << 22) / ((2 * N - 1) * 8), 1, 16);
    const bool split = 16 * B * C * N >= 2 * kMinParallelWork;  // ~16 operations per slot and channel
    int64_t blocks = (C + fit - 1) / fit;
    if (split) blocks = std::max(blocks, std::min(C, (threads + B - 1) / B));
    const int64_t K = (C + blocks - 1) / blocks;
    blocks = (C + K - 1) / K;
    at::parallel_for(0, B * blocks, grain_for(8 * N * K), [&](int64_t begin, int64_t end) {
      std::unique_ptr<double[]> scratch(new double[(2 * N - 1) * K]);
      for (int64_t job = begin; job < end; ++job) {
        const int64_t b = job / blocks, c0 = (job % blocks) * K;
        propagate_block(recon[b], p + b * C * N, o + b * C * N, N, c0, std::min(K, C - c0), scratch.get());
      }
    });
  });
  return out;
}

// ---- APro's algorithm, straightforwardly (benchmark baseline) ---------------------------------------

// One channel of one image: union by size without path compression; every component root carries
// additive tags (numerator, count) that apply to all nodes below it. Merging A (kept root) and B
// with factor f: A's nodes gain f*S_B, B's gain f*S_A; since B's nodes will also collect A's tag
// after the link, B's tag is compensated. Each node's total is the sum of tags on its root path,
// pushed down in reverse link order (a node's parent is always linked later than the node).
template <typename T>
void apro_channel(const int64_t* edges, const T* embed, int64_t E, const T* p, T* out, int64_t N, double zz,
                  int64_t image) {
  std::vector<double> w(N - 1);
  for (int64_t k = 0; k < N - 1; ++k) w[k] = squared_distance(embed, E, N, edges[2 * k], edges[2 * k + 1]);
  std::vector<int64_t> order(N - 1);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return w[a] < w[b]; });
  std::vector<int64_t> parent(N), size(N, 1), linked;
  std::vector<double> sum(N), tag_value(N, 0.0), tag_count(N, 0.0);
  linked.reserve(N - 1);
  for (int64_t i = 0; i < N; ++i) {
    parent[i] = i;
    sum[i] = static_cast<double>(p[i]);
  }
  auto root = [&](int64_t x) {
    while (parent[x] != x) x = parent[x];
    return x;
  };
  for (int64_t k : order) {
    int64_t a = root(edges[2 * k]), b = root(edges[2 * k + 1]);
    TORCH_CHECK_VALUE(a != b, "wsss: tree[", image, "] is not a spanning tree: edge ", k, " closes a cycle");
    if (size[a] < size[b]) std::swap(a, b);
    const double f = std::exp(-w[k] / zz);
    tag_value[a] += f * sum[b];
    tag_count[a] += f * static_cast<double>(size[b]);
    tag_value[b] += f * sum[a] - tag_value[a];
    tag_count[b] += f * static_cast<double>(size[a]) - tag_count[a];
    parent[b] = a;
    sum[a] += sum[b];
    size[a] += size[b];
    linked.push_back(b);
  }
  for (auto it = linked.rbegin(); it != linked.rend(); ++it) {
    tag_value[*it] += tag_value[parent[*it]];
    tag_count[*it] += tag_count[parent[*it]];
  }
  for (int64_t i = 0; i < N; ++i)
    out[i] = static_cast<T>((static_cast<double>(p[i]) + tag_value[i]) / (1.0 + tag_count[i]));
}

at::Tensor minimax_propagation_apro_reference_cpu(const at::Tensor& values_in, const at::Tensor& tree_in,
                                                  const at::Tensor& embed_in, double zeta) {
  check_minimax_inputs(values_in, tree_in, embed_in, zeta, "minimax_propagation_apro_reference");
  const at::Tensor values = values_in.contiguous(), tree = tree_in.contiguous(), embed = embed_in.contiguous();
  const int64_t B = values.size(0), C = values.size(1), N = values.size(2) * values.size(3), E = embed.size(1);
  at::Tensor out = at::empty_like(values);
  if (N == 1) return out.copy_(values);
  AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "minimax_propagation_apro_reference", [&] {
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < C; ++c)
        apro_channel(tree.data_ptr<int64_t>() + b * (N - 1) * 2, embed.data_ptr<scalar_t>() + b * E * N, E,
                     values.data_ptr<scalar_t>() + (b * C + c) * N, out.data_ptr<scalar_t>() + (b * C + c) * N, N,
                     zeta * zeta, b);
  });
  return out;
}

at::Tensor call_minimax_edge_weights(const at::Tensor& tree, const at::Tensor& embed) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("wsss::minimax_edge_weights", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&)>();
  return op.call(tree, embed);
}

}  // namespace

at::Tensor minimax_propagation_ranges(const at::Tensor& values_in, const at::Tensor& tree_in,
                                      const at::Tensor& embed_in, double zeta) {
  check_minimax_inputs(values_in, tree_in, embed_in, zeta, "minimax_propagation");
  const at::Tensor values = values_in.contiguous(), tree = tree_in.contiguous(), embed = embed_in.contiguous();
  const int64_t B = values.size(0), C = values.size(1), N = values.size(2) * values.size(3);
  if (B == 0 || C == 0 || N == 1) return values.clone();
  const double zz = zeta * zeta;
  const auto device = values.device();
  const auto dopt = values.options().dtype(at::kDouble);

  // Device: weights and their order. Host: the reconstruction tree as leaf-order ranges.
  const at::Tensor weights = call_minimax_edge_weights(tree, embed);
  auto [sorted, order] = at::sort(weights, /*stable=*/true, /*dim=*/1, /*descending=*/false);
  const at::Tensor tree_h = tree.cpu(), order_h = order.cpu().contiguous(), sorted_h = sorted.cpu().contiguous();
  const auto lopt_h = at::TensorOptions().dtype(at::kLong);
  at::Tensor perm_h = at::empty({B, N}, lopt_h);            // leaf order position -> pixel
  at::Tensor bounds_h = at::empty({3, B, N - 1}, lopt_h);   // merge t: [lo, mid) child0, [mid, hi) child1
  at::Tensor factor_h = at::empty({B, N - 1}, dopt.device(at::kCPU));
  at::Tensor den_h = at::empty({B, N}, dopt.device(at::kCPU));  // in leaf order
  const int64_t* edges = tree_h.data_ptr<int64_t>();
  at::parallel_for(0, B, grain_for(16 * N), [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) {
      const int64_t* ord = order_h.data_ptr<int64_t>() + b * (N - 1);
      const double* sw = sorted_h.data_ptr<double>() + b * (N - 1);
      std::vector<int32_t> ch0(N - 1), ch1(N - 1), merged(N - 1);
      build_krt(edges + b * (N - 1) * 2, N, [&](int64_t t) { return ord[t]; }, ch0.data(), ch1.data(), merged.data(),
                b);
      std::vector<int64_t> count(2 * N - 1, 1), lo(2 * N - 1, 0);
      for (int64_t t = 0; t < N - 1; ++t) count[N + t] = merged[t];
      for (int64_t t = N - 2; t >= 0; --t) {
        lo[ch0[t]] = lo[N + t];
        lo[ch1[t]] = lo[N + t] + count[ch0[t]];
      }
      double* f = factor_h.data_ptr<double>() + b * (N - 1);
      int64_t* lo_t = bounds_h.data_ptr<int64_t>() + b * (N - 1);
      int64_t* mid_t = lo_t + B * (N - 1);
      int64_t* hi_t = mid_t + B * (N - 1);
      for (int64_t t = 0; t < N - 1; ++t) {
        f[t] = std::exp(-sw[t] / zz);
        lo_t[t] = lo[N + t];
        mid_t[t] = lo[ch1[t]];
        hi_t[t] = lo[N + t] + count[N + t];
      }
      std::vector<double> x(count.begin(), count.end());
      x[2 * N - 2] = 0.0;
      for (int64_t t = N - 2; t >= 0; --t) {
        const double ta = x[N + t], s0 = x[ch0[t]], s1 = x[ch1[t]];
        x[ch0[t]] = ta + f[t] * s1;
        x[ch1[t]] = ta + f[t] * s0;
      }
      int64_t* perm = perm_h.data_ptr<int64_t>() + b * N;
      double* den = den_h.data_ptr<double>() + b * N;
      for (int64_t i = 0; i < N; ++i) {
        perm[lo[i]] = i;
        den[lo[i]] = 1.0 + x[i];
      }
    }
  });
  const at::Tensor perm = perm_h.to(device).unsqueeze(1).expand({B, C, N});
  const at::Tensor bounds = bounds_h.to(device);
  const at::Tensor lo = bounds[0].unsqueeze(1).expand({B, C, N - 1});
  const at::Tensor mid = bounds[1].unsqueeze(1).expand({B, C, N - 1});
  const at::Tensor hi = bounds[2].unsqueeze(1).expand({B, C, N - 1});
  const at::Tensor factor = factor_h.to(device).unsqueeze(1);
  const at::Tensor den = den_h.to(device).unsqueeze(1);

  // Device, per channel: q in leaf order; subtree sums S = P[hi] - P[lo] from the prefix sum P.
  const at::Tensor q = values.reshape({B, C, N}).to(at::kDouble).gather(2, perm);
  const at::Tensor prefix = at::cat({at::zeros({B, C, 1}, dopt), q.cumsum(2)}, 2);
  const at::Tensor p_lo = prefix.gather(2, lo), p_mid = prefix.gather(2, mid), p_hi = prefix.gather(2, hi);
  const at::Tensor add0 = factor * (p_hi - p_mid);  // to child0's leaves [lo, mid): f * S(child1)
  const at::Tensor add1 = factor * (p_mid - p_lo);  // to child1's leaves [mid, hi): f * S(child0)
  // Range additions through a difference array, then T = its prefix sum.
  at::Tensor diff = at::zeros({B, C, N + 1}, dopt);
  diff.scatter_add_(2, lo, add0);
  diff.scatter_add_(2, mid, add1 - add0);
  diff.scatter_add_(2, hi, -add1);
  const at::Tensor total = diff.narrow(2, 0, N).cumsum(2);
  const at::Tensor result = (q + total) / den;
  return at::empty({B, C, N}, dopt).scatter_(2, perm, result).to(values.scalar_type()).view(values.sizes());
}

}  // namespace tree
}  // namespace wsss

TORCH_LIBRARY_FRAGMENT(wsss, m) {
  m.def("minimax_propagation(Tensor values, Tensor tree, Tensor embed, float zeta) -> Tensor");
  m.def("minimax_propagation_ranges(Tensor values, Tensor tree, Tensor embed, float zeta) -> Tensor");
  m.def("minimax_propagation_apro_reference(Tensor values, Tensor tree, Tensor embed, float zeta) -> Tensor");
  m.def("minimax_edge_weights(Tensor tree, Tensor embed) -> Tensor");
}

TORCH_LIBRARY_IMPL(wsss, CPU, m) {
  m.impl("minimax_propagation", &wsss::tree::minimax_propagation_cpu);
  m.impl("minimax_propagation_apro_reference", &wsss::tree::minimax_propagation_apro_reference_cpu);
  m.impl("minimax_edge_weights", &wsss::tree::minimax_edge_weights_cpu);
}

TORCH_LIBRARY_IMPL(wsss, CompositeExplicitAutograd, m) {
  m.impl("minimax_propagation_ranges", &wsss::tree::minimax_propagation_ranges);
}
