// Host helpers shared by the tree ops (grid MST, minimax propagation, tree filter): parallel-region
// sizing, disjoint sets, a deterministic (weight, index) sort key and its radix sort.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstring>
#include <cstdint>
#include <memory>
#include <vector>

namespace wsss {
namespace tree {

// Smallest amount of work (element operations, ~1 ms) worth a parallel region: waking the pool costs
// microseconds on an idle machine but a scheduler time slice on a busy one (the pipeline runs several
// jobs at once), so small problems run on the calling thread.
constexpr int64_t kMinParallelWork = int64_t{1} << 20;

// at::parallel_for grain for items of `work_per_item` operations each.
inline int64_t grain_for(int64_t work_per_item) {
  return std::max<int64_t>(1, kMinParallelWork / std::max<int64_t>(1, work_per_item));
}

// Disjoint sets over [0, n): path halving + union by size, parent and size side by side (one cache
// miss per visited node). On equal sizes the set whose root has the smaller index stays root, so the
// structure is a pure function of the union sequence.
class UnionFind {
 public:
  explicit UnionFind(int64_t n) : node_(new Node[n]) {
    for (int64_t i = 0; i < n; ++i) node_[i] = {static_cast<int32_t>(i), 1};
  }

  int32_t find(int32_t x) {
    while (node_[x].parent != x) {
      node_[x].parent = node_[node_[x].parent].parent;
      x = node_[x].parent;
    }
    return x;
  }

  // Links the roots ra != rb; returns the surviving root.
  int32_t link(int32_t ra, int32_t rb) {
    if (node_[ra].size < node_[rb].size || (node_[ra].size == node_[rb].size && rb < ra)) std::swap(ra, rb);
    node_[rb].parent = ra;
    node_[ra].size += node_[rb].size;
    return ra;
  }

 private:
  struct Node {
    int32_t parent, size;
  };
  std::unique_ptr<Node[]> node_;
};

// Sort key: ascending weight, ties broken by ascending edge index (a strict total order, so the
// minimum spanning tree under it is unique and every correct MST algorithm returns the same tree).
// Weights are >= 0 (sums of squares, + 1), whose IEEE bit patterns order like the values, so the key
// holds the bits: radix-sortable, and NaN (from NaN inputs) sorts last instead of breaking the order.
struct WeightedEdge {
  uint64_t key;
  int32_t index;

  static WeightedEdge make(double weight, int64_t index) {
    uint64_t bits;
    std::memcpy(&bits, &weight, sizeof bits);
    return {bits, static_cast<int32_t>(index)};
  }
  double weight() const {
    double w;
    std::memcpy(&w, &key, sizeof w);
    return w;
  }
};

inline bool operator<(const WeightedEdge& a, const WeightedEdge& b) {
  return a.key < b.key || (a.key == b.key && a.index < b.index);
}

// Stable LSD radix sort on the 64-bit key, 8-bit digits (8 passes; passes whose digit is the same
// for every element are skipped). Input ties are in index order, so the result is the (key, index)
// order. `buffer` holds n elements.
inline void radix_sort(WeightedEdge* data, int64_t n, WeightedEdge* buffer) {
  constexpr int kBits = 8, kPasses = 8;
  constexpr int64_t kBuckets = int64_t{1} << kBits;
  std::vector<int64_t> histogram(kPasses * kBuckets, 0);
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t key = data[i].key;
    for (int p = 0; p < kPasses; ++p) ++histogram[p * kBuckets + ((key >> (p * kBits)) & (kBuckets - 1))];
  }
  WeightedEdge* src = data;
  WeightedEdge* dst = buffer;
  for (int p = 0; p < kPasses; ++p) {
    int64_t* count = histogram.data() + p * kBuckets;
    if (std::any_of(count, count + kBuckets, [n](int64_t c) { return c == n; })) continue;
    int64_t offset = 0;
    for (int64_t d = 0; d < kBuckets; ++d) {
      const int64_t c = count[d];
      count[d] = offset;
      offset += c;
    }
    for (int64_t i = 0; i < n; ++i) dst[count[(src[i].key >> (p * kBits)) & (kBuckets - 1)]++] = src[i];
    std::swap(src, dst);
  }
  if (src != data) std::copy(src, src + n, data);
}

// Sorts `data` ascending by (key, index); the input must list each index once, in ascending index
// order. For more than 2^20 elements (a radix pass is memory-bound and fast below that), outside a
// parallel region and with more than one thread, radix-sorts 2^k chunks concurrently and merges them
// pairwise (also concurrently).
inline void sort_edges(WeightedEdge* data, int64_t n) {
  std::unique_ptr<WeightedEdge[]> buffer(new WeightedEdge[n]);
  const int64_t threads = at::get_num_threads();
  if (n < (1 << 20) || threads < 2 || at::in_parallel_region()) {
    radix_sort(data, n, buffer.get());
    return;
  }
  int64_t chunks = 1;
  while (chunks * 2 <= threads && chunks < 64) chunks *= 2;
  auto bound = [&](int64_t c) { return n * c / chunks; };
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) radix_sort(data + bound(c), bound(c + 1) - bound(c), buffer.get() + bound(c));
  });
  WeightedEdge* src = data;
  WeightedEdge* dst = buffer.get();
  for (int64_t width = 1; width < chunks; width *= 2) {
    const int64_t pairs = chunks / (2 * width);
    at::parallel_for(0, pairs, 1, [&](int64_t begin, int64_t end) {
      for (int64_t p = begin; p < end; ++p) {
        const int64_t lo = bound(2 * p * width), mid = bound((2 * p + 1) * width), hi = bound((2 * p + 2) * width);
        std::merge(src + lo, src + mid, src + mid, src + hi, dst + lo);
      }
    });
    std::swap(src, dst);
  }
  if (src != data) std::copy(src, src + n, data);
}

}  // namespace tree
}  // namespace wsss
