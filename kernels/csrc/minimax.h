// Declarations shared by minimax.cpp (CPU + device-generic code) and minimax.cu (CUDA).
#pragma once

#include <ATen/core/Tensor.h>

namespace wsss {
namespace tree {

// Raises c10::ValueError unless tree is (B, N-1, 2) int64 on `like`'s device with every index in
// [0, N) (N = H*W of the (B, *, H, W) tensors); checks ranges before any kernel reads through it.
void check_tree(const at::Tensor& tree, const at::Tensor& like, const char* op);

// Raises c10::ValueError unless values (B, C, H, W) and embed (B, E, H, W) share device, dtype
// (float32/float64), batch and spatial size (H, W >= 1) and tree passes check_tree.
void check_tree_inputs(const at::Tensor& values, const at::Tensor& tree, const at::Tensor& embed, const char* op,
                       const char* values_name = "values");

// check_tree_inputs, and zeta > 0 finite.
void check_minimax_inputs(const at::Tensor& values, const at::Tensor& tree, const at::Tensor& embed, double zeta,
                          const char* op);

// The GPU formulation of minimax propagation, written with ATen ops (runs on any device):
// edge weights and the sort on the device; the Kruskal reconstruction tree (a sequential union-find
// pass, O(N α(N))) on the host; then per channel, on the device, a prefix sum in the tree's leaf
// order gives every subtree sum as a difference, the ancestor sums become range additions
// (scatter_add into a difference array) and a second prefix sum — O(N·C) work, no level loop.
at::Tensor minimax_propagation_ranges(const at::Tensor& values, const at::Tensor& tree, const at::Tensor& embed,
                                      double zeta);

}  // namespace tree
}  // namespace wsss
