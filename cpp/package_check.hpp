// package_check: which input shapes an AOTInductor package serves, read from the metadata that
// helpers.export.package stores inside the .pt2, and the check run_model makes before calling it.
//
// The compiled code checks shapes only when AOTI_RUNTIME_CHECK_INPUTS=1, and export.package compiles with
// aot_inductor.check_lowerbound off (else that check refuses a batch of 1, which the code computes correctly), so
// lower bounds are this check's job. Without a check, a wrong shape reads past the inputs or aborts the process.
//
//   course.inputs  input_ids[batch,seq]:int64;attention_mask[batch,seq]:int64  <- call order; a dim: name or size
//   course.dims    batch=1..64;seq=2..512                  <- each named dim's range, inclusive; empty if static
//
// Plain C++20: no LibTorch here (run_model passes shapes, not tensors).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace package_check {

struct Input {
  std::string name;               // "input_ids"
  std::vector<std::string> dims;  // {"batch", "seq"}, or sizes such as {"2", "8"} for a static package
  std::string dtype;              // "int64"
};

struct Spec {
  std::vector<Input> inputs;                                     // in the order the package takes them
  std::map<std::string, std::pair<int64_t, int64_t>> ranges;     // "batch" -> {1, 64}, inclusive
};

// An input the package does not serve: the message names the limit and the fix.
struct ShapeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The spec in a package's metadata; nullopt if it has none (a .pt2 not built by helpers.export.package).
// Throws std::runtime_error if the metadata is there but malformed.
std::optional<Spec> read_spec(const std::unordered_map<std::string, std::string>& metadata);

// Throws ShapeError unless a tensor of `shape` and `dtype` fits `input` (its rank, fixed sizes and ranges).
void check(const Spec& spec, const Input& input, const std::vector<int64_t>& shape, const std::string& dtype);

// "input_ids [batch, seq], attention_mask [batch, seq]; batch 1..64, seq 2..512": what the package serves.
std::string describe(const Spec& spec);

}  // namespace package_check
