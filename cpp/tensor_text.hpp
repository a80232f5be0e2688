// tensor-text: the plain-text tensor format shared by run_model and helpers/cpp.py.
//
//   # tensor-text v1                  <- required first line
//   input_ids int64 2 8               <- a header: name, dtype (int64 or float32), then the shape
//   101 7592 1010 2088 102 0 0 0      <- the values, one line per row of the last dimension
//   101 2023 2003 1037 2936 6251 1012 102
//   attention_mask int64 2 8          <- the next tensor
//   ...
//
// Blank lines and lines starting with '#' are ignored. A tensor of shape [a, b, c] has a*b lines of c
// values; a 1-D or 0-D tensor has one line. Every parse error names the file, the line and the fix.
#pragma once

#include <cstdint>
#include <filesystem>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace tensor_text {

inline constexpr const char* kFormatLine = "# tensor-text v1";

// One named tensor. int64 values are held exactly as doubles up to 2^53 (token ids are far below).
struct Tensor {
  std::string name;
  std::string dtype;            // "int64" or "float32"
  std::vector<int64_t> shape;   // empty for a scalar
  std::vector<double> values;   // row-major, product(shape) values
};

// A file that is missing, not in this format, or inconsistent: the message says where and how to fix it.
struct FormatError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::vector<Tensor> read(const std::filesystem::path& path);  // throws FormatError
void write(std::ostream& out, const std::vector<Tensor>& tensors);  // run_model writes through output_file
std::string shape_str(const std::vector<int64_t>& shape);  // "2x8"

}  // namespace tensor_text
