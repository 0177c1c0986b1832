// Minimum spanning tree of the 4-connected pixel grid (APro / TreeFilter's guide MST).
//
// Ops (namespace wsss):
//   grid_mst(guide)          (B, C, H, W) float32|float64 -> (B, H*W-1, 2) int64
//       CPU: Kruskal per image (edge weights and the sort multithreaded within an image, or one
//       image per thread when B > 1). CUDA: Borůvka (grid_mst_boruvka below) on the device.
//   grid_mst_boruvka(guide)  same result, Borůvka in ATen ops; any device (the CUDA path, also
//       callable on CPU so the tests exercise the exact algorithm the GPU runs).
//   grid_edge_weights(guide) -> (B, E) float64, edge weights in mst_grid.h's edge order.
//
// Determinism: edges are ordered by (weight, edge index) — a strict total order — so the MST is
// unique and Kruskal, Borůvka, CPU and GPU all return the same tree. Each tree edge is written as
// (u, v) with u < v (u the upper / left pixel), rows sorted by edge index (vertical edges first).
#include "mst.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <c10/core/ScalarType.h>
#include <torch/library.h>

#include <limits>
#include <memory>
#include <vector>

#include "mst_grid.h"
#include "mst_union_find.h"

namespace wsss {
namespace tree {

void check_grid_guide(const at::Tensor& guide, const char* op) {
  TORCH_CHECK_VALUE(guide.defined() && guide.dim() == 4, "wsss::", op, ": guide must be (B, C, H, W), got ",
                    guide.defined() ? guide.dim() : 0, " dimensions");
  TORCH_CHECK_VALUE(guide.scalar_type() == at::kFloat || guide.scalar_type() == at::kDouble, "wsss::", op,
                    ": guide must be float32 or float64, got ", guide.scalar_type());
  TORCH_CHECK_VALUE(guide.size(2) >= 1 && guide.size(3) >= 1, "wsss::", op, ": guide must have H, W >= 1, got ",
                    guide.sizes());
  TORCH_CHECK_VALUE(guide.size(2) * guide.size(3) < (int64_t{1} << 31) - 1, "wsss::", op,
                    ": at most 2^31 - 2 pixels per image");
}

at::Tensor grid_edge_endpoints(int64_t H, int64_t W, c10::Device device) {
  const int64_t E = grid_num_edges(H, W);
  at::Tensor host = at::empty({E, 2}, at::TensorOptions().dtype(at::kLong));
  int64_t* p = host.data_ptr<int64_t>();
  at::parallel_for(0, E, grain_for(4), [&](int64_t begin, int64_t end) {
    for (int64_t e = begin; e < end; ++e) grid_edge(e, H, W, p[2 * e], p[2 * e + 1]);
  });
  return host.to(device);
}

namespace {

at::Tensor grid_edge_weights_cpu(const at::Tensor& guide_in) {
  check_grid_guide(guide_in, "grid_edge_weights");
  TORCH_CHECK_VALUE(guide_in.device().is_cpu(), "wsss::grid_edge_weights: CPU kernel got a ", guide_in.device(),
                    " tensor");
  const at::Tensor guide = guide_in.contiguous();
  const int64_t B = guide.size(0), C = guide.size(1), H = guide.size(2), W = guide.size(3);
  const int64_t N = H * W, E = grid_num_edges(H, W);
  at::Tensor weights = at::empty({B, E}, guide.options().dtype(at::kDouble));
  double* w = weights.data_ptr<double>();
  AT_DISPATCH_FLOATING_TYPES(guide.scalar_type(), "grid_edge_weights", [&] {
    const scalar_t* g = guide.data_ptr<scalar_t>();
    at::parallel_for(0, B * E, grain_for(C + 1), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t b = i / E, e = i % E;
        int64_t u, v;
        grid_edge(e, H, W, u, v);
        w[i] = squared_distance(g + b * C * N, C, N, u, v) + 1.0;
      }
    });
  });
  return weights;
}

// Kruskal on one image: edges sorted by (weight, index), union-find; writes the N-1 tree edges in
// ascending edge index order to `out` ((N-1) x 2 int64).
template <typename T>
void kruskal_image(const T* g, int64_t C, int64_t H, int64_t W, int64_t* out) {
  const int64_t N = H * W, E = grid_num_edges(H, W);
  std::unique_ptr<WeightedEdge[]> edges(new WeightedEdge[E]);
  at::parallel_for(0, E, grain_for(C + 1), [&](int64_t begin, int64_t end) {
    for (int64_t e = begin; e < end; ++e) {
      int64_t u, v;
      grid_edge(e, H, W, u, v);
      edges[e] = WeightedEdge::make(squared_distance(g, C, N, u, v) + 1.0, e);
    }
  });
  sort_edges(edges.get(), E);
  UnionFind sets(N);
  std::vector<uint8_t> chosen(E, 0);
  int64_t taken = 0;
  for (int64_t k = 0; k < E && taken < N - 1; ++k) {
    const int64_t e = edges[k].index;
    int64_t u, v;
    grid_edge(e, H, W, u, v);
    const int32_t ru = sets.find(static_cast<int32_t>(u)), rv = sets.find(static_cast<int32_t>(v));
    if (ru != rv) {
      sets.link(ru, rv);
      chosen[e] = 1;
      ++taken;
    }
  }
  TORCH_CHECK(taken == N - 1, "wsss::grid_mst: internal error, spanning tree has ", taken, " edges, expected ", N - 1);
  int64_t row = 0;
  for (int64_t e = 0; e < E; ++e) {
    if (!chosen[e]) continue;
    grid_edge(e, H, W, out[2 * row], out[2 * row + 1]);
    ++row;
  }
}

at::Tensor grid_mst_cpu(const at::Tensor& guide_in) {
  check_grid_guide(guide_in, "grid_mst");
  const at::Tensor guide = guide_in.contiguous();
  const int64_t B = guide.size(0), C = guide.size(1), H = guide.size(2), W = guide.size(3), N = H * W;
  at::Tensor tree = at::empty({B, N - 1, 2}, guide.options().dtype(at::kLong));
  if (B == 0 || N == 1) return tree;
  int64_t* out = tree.data_ptr<int64_t>();
  AT_DISPATCH_FLOATING_TYPES(guide.scalar_type(), "grid_mst", [&] {
    const scalar_t* g = guide.data_ptr<scalar_t>();
    // One image per thread when there are enough images; otherwise images in turn, each parallel inside.
    const int64_t grain = B >= at::get_num_threads() ? grain_for(N * (C + 8)) : B;
    at::parallel_for(0, B, grain, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) kruskal_image(g + b * C * N, C, H, W, out + b * (N - 1) * 2);
    });
  });
  return tree;
}

at::Tensor call_grid_edge_weights(const at::Tensor& guide) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("wsss::grid_edge_weights", "")
                       .typed<at::Tensor(const at::Tensor&)>();
  return op.call(guide);
}

}  // namespace

at::Tensor grid_mst_boruvka(const at::Tensor& guide_in) {
  check_grid_guide(guide_in, "grid_mst");
  const at::Tensor guide = guide_in.contiguous();
  const int64_t B = guide.size(0), H = guide.size(2), W = guide.size(3), N = H * W;
  const int64_t E = grid_num_edges(H, W);
  const auto lopt = guide.options().dtype(at::kLong);
  if (B == 0 || N == 1) return at::empty({B, N - 1, 2}, lopt);

  const at::Tensor weights = call_grid_edge_weights(guide);  // (B, E) float64
  const at::Tensor endpoints = grid_edge_endpoints(H, W, guide.device());
  const at::Tensor eu = endpoints.select(1, 0).contiguous(), ev = endpoints.select(1, 1).contiguous();
  // Rank of every edge in its image under the (weight, index) order: a stable sort keeps ties in
  // index order. Ranks make the order an integer key that a per-component minimum can compare.
  const at::Tensor order = std::get<1>(at::sort(weights, /*stable=*/true, /*dim=*/1, /*descending=*/false));
  const at::Tensor rank = at::empty_like(order).scatter_(1, order, at::arange(E, lopt).expand({B, E}));
  const at::Tensor image = at::arange(B, lopt).unsqueeze(1);
  const at::Tensor ranked_edge = (order + image * E).reshape({-1});  // global id of the rank-r edge of image b
  at::Tensor src = (eu.unsqueeze(0) + image * N).reshape({-1});      // global endpoints of every edge
  at::Tensor dst = (ev.unsqueeze(0) + image * N).reshape({-1});
  at::Tensor key = rank.reshape({-1});
  at::Tensor comp = at::arange(B * N, lopt);  // component root of every node (flat: a root points to itself)
  at::Tensor chosen = at::zeros({B * E}, guide.options().dtype(at::kBool));
  const int64_t none = std::numeric_limits<int64_t>::max();

  while (true) {
    // Drop edges inside one component; stop when none cross.
    at::Tensor cu = comp.index_select(0, src), cv = comp.index_select(0, dst);
    const at::Tensor crossing = cu.ne(cv).nonzero().squeeze(1);
    if (crossing.numel() == 0) break;
    src = src.index_select(0, crossing);
    dst = dst.index_select(0, crossing);
    key = key.index_select(0, crossing);
    cu = cu.index_select(0, crossing);
    cv = cv.index_select(0, crossing);
    // Lightest crossing edge of every component.
    at::Tensor best = at::full({B * N}, none, lopt);
    best.scatter_reduce_(0, cu, key, "amin", /*include_self=*/true);
    best.scatter_reduce_(0, cv, key, "amin", /*include_self=*/true);
    const at::Tensor roots = best.ne(none).nonzero().squeeze(1);
    const at::Tensor edge = ranked_edge.index_select(0, at::div(roots, N, "floor") * E + best.index_select(0, roots));
    chosen.index_fill_(0, edge, true);
    const at::Tensor local = edge.remainder(E), offset = at::div(edge, E, "floor") * N;
    const at::Tensor ru = comp.index_select(0, eu.index_select(0, local) + offset);
    const at::Tensor rv = comp.index_select(0, ev.index_select(0, local) + offset);
    const at::Tensor other = at::where(ru.eq(roots), rv, ru);
    // Hook every component onto the one across its edge; two components that chose the same edge
    // point at each other: the smaller root stays a root.
    at::Tensor next = comp.clone();
    next.index_copy_(0, roots, other);
    const at::Tensor mutual = next.index_select(0, other).eq(roots).logical_and_(roots.lt(other));
    const at::Tensor keep = roots.masked_select(mutual);
    next.index_copy_(0, keep, keep);
    // Pointer jumping until every node points at its new root.
    while (true) {
      at::Tensor jumped = next.index_select(0, next);
      if (at::equal(jumped, next)) break;
      next = jumped;
    }
    comp = next;
  }

  const at::Tensor chosen2d = chosen.view({B, E});
  TORCH_CHECK(chosen2d.sum(1).eq(N - 1).all().item<bool>(),
              "wsss::grid_mst: internal error, Borůvka did not produce a spanning tree");
  const at::Tensor local = chosen2d.nonzero().select(1, 1);  // row-major: per image, ascending edge index
  return at::stack({eu.index_select(0, local), ev.index_select(0, local)}, 1).view({B, N - 1, 2});
}

}  // namespace tree
}  // namespace wsss

TORCH_LIBRARY_FRAGMENT(wsss, m) {
  m.def("grid_mst(Tensor guide) -> Tensor");
  m.def("grid_mst_boruvka(Tensor guide) -> Tensor");
  m.def("grid_edge_weights(Tensor guide) -> Tensor");
}

TORCH_LIBRARY_IMPL(wsss, CPU, m) {
  m.impl("grid_mst", &wsss::tree::grid_mst_cpu);
  m.impl("grid_edge_weights", &wsss::tree::grid_edge_weights_cpu);
}

TORCH_LIBRARY_IMPL(wsss, CompositeExplicitAutograd, m) {
  m.impl("grid_mst_boruvka", &wsss::tree::grid_mst_boruvka);
}
