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

namespace wsss {
namespace tree {

constexpr int kOrder = 0, kParent = 1, kChildBegin = 2, kChildEnd = 3, kLevel = 4, kTopologyRows = 5;

}  // namespace tree
}  // namespace wsss
