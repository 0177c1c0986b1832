// Declarations shared by mst.cpp (CPU + device-generic code) and mst.cu (CUDA registrations).
#pragma once

#include <ATen/core/Tensor.h>

namespace wsss {
namespace tree {

// Raises c10::ValueError unless `guide` is a (B, C, H, W) float32/float64 tensor with H, W >= 1.
void check_grid_guide(const at::Tensor& guide, const char* op);

// Borůvka's MST on the 4-connected grid written with ATen ops (sort, scatter_reduce "amin" =
// per-component atomic minimum on CUDA, index_select pointer jumping): runs on any device and returns
// the same tree as the CPU Kruskal (same (weight, edge index) order).
at::Tensor grid_mst_boruvka(const at::Tensor& guide);

// (E, 2) int64 endpoints of the grid edges in mst_grid.h's order, on `device`.
at::Tensor grid_edge_endpoints(int64_t H, int64_t W, c10::Device device);

}  // namespace tree
}  // namespace wsss
