// Layout of the tree-filter topology tensor, shared by tree_filter.cpp and tree_filter.cu.
//
// topology: int32 (B, 5, N+1), one BFS of each image's tree from node 0. Rows, indexed by BFS
// position k (children of a node are consecutive positions, levels are consecutive runs):
//   kOrder   node at position k
//   kParent  position of k's parent (0 for the root)
//   kChildBegin, kChildEnd  positions [begin, end) of k's children
//   kLevel   level l occupies positions [level[l], level[l+1]); entries past the last level are N
// Column N is padding (only the kLevel row uses it).
#pragma once

#include <ATen/core/Tensor.h>

#include <tuple>

namespace wsss {
namespace tree {

constexpr int kOrder = 0, kParent = 1, kChildBegin = 2, kChildEnd = 3, kLevel = 4, kTopologyRows = 5;

// Device-generic forward / backward (ATen ops around the tree_filter_passes op): the CUDA kernels of
// tree_filter_forward / tree_filter_backward, and the *_composite ops on every device.
at::Tensor tree_filter_forward_composite(const at::Tensor& features, const at::Tensor& embed,
                                         const at::Tensor& topology);
std::tuple<at::Tensor, at::Tensor> tree_filter_backward_composite(const at::Tensor& grad_out,
                                                                  const at::Tensor& features,
                                                                  const at::Tensor& embed,
                                                                  const at::Tensor& topology);

}  // namespace tree
}  // namespace wsss
