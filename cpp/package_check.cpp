// Reading a package's course.* metadata and checking input shapes against it (see package_check.hpp).
#include "package_check.hpp"

#include <charconv>

#include "tensor_text.hpp"

namespace package_check {
namespace {

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t end; (end = text.find(sep, start)) != std::string::npos; start = end + 1) {
    parts.push_back(text.substr(start, end - start));
  }
  parts.push_back(text.substr(start));
  return parts;
}

std::optional<int64_t> to_int(const std::string& word) {
  int64_t value = 0;
  auto [ptr, err] = std::from_chars(word.data(), word.data() + word.size(), value);
  if (err != std::errc() || ptr != word.data() + word.size()) return std::nullopt;
  return value;
}

[[noreturn]] void malformed(const std::string& key, const std::string& part) {
  throw std::runtime_error("its " + key + " metadata has '" + part + "', which is not in the format "
                           "helpers.export.package writes: rebuild the package with it");
}

// "input_ids[batch,seq]:int64"
Input parse_input(const std::string& text) {
  const size_t open = text.find('['), close = text.find("]:");
  if (open == std::string::npos || close == std::string::npos || close < open) malformed("course.inputs", text);
  return {text.substr(0, open), split(text.substr(open + 1, close - open - 1), ','), text.substr(close + 2)};
}

// "batch=1..64" -> {"batch", {1, 64}}
std::pair<std::string, std::pair<int64_t, int64_t>> parse_range(const std::string& text) {
  const size_t eq = text.find('='), dots = text.find("..");
  if (eq == std::string::npos || dots == std::string::npos || dots < eq) malformed("course.dims", text);
  auto lo = to_int(text.substr(eq + 1, dots - eq - 1)), hi = to_int(text.substr(dots + 2));
  if (!lo || !hi) malformed("course.dims", text);
  return {text.substr(0, eq), {*lo, *hi}};
}

std::string join(const std::vector<std::string>& words, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) out += (i ? sep : "") + words[i];
  return out;
}

// The same advice helpers.export.check_inputs gives, per dim.
std::string fix(const std::string& dim, int64_t lo, int64_t hi) {
  const std::string max = std::to_string(hi);
  if (dim == "batch") return "split the batch into chunks of at most " + max + ", or export with a larger max_batch";
  if (dim == "seq") {
    return "truncate or pad to " + std::to_string(lo) + ".." + max + " tokens (tokenizer(..., truncation=True, "
           "max_length=" + max + ")), or export with another max_seq";
  }
  return "export again with a range that covers it";
}

}  // namespace

std::optional<Spec> read_spec(const std::unordered_map<std::string, std::string>& metadata) {
  auto inputs = metadata.find("course.inputs"), dims = metadata.find("course.dims");
  if (inputs == metadata.end()) return std::nullopt;
  Spec spec;
  for (const auto& part : split(inputs->second, ';')) spec.inputs.push_back(parse_input(part));
  if (dims != metadata.end() && !dims->second.empty()) {
    for (const auto& part : split(dims->second, ';')) spec.ranges.insert(parse_range(part));
  }
  for (const auto& input : spec.inputs) {
    for (const auto& dim : input.dims) {
      if (!to_int(dim) && !spec.ranges.contains(dim)) malformed("course.dims", "no range for " + dim);
    }
  }
  return spec;
}

void check(const Spec& spec, const Input& input, const std::vector<int64_t>& shape, const std::string& dtype) {
  const std::string wanted = input.name + " [" + join(input.dims, ", ") + "] " + input.dtype;
  if (dtype != input.dtype || shape.size() != input.dims.size()) {
    throw ShapeError(input.name + " is " + dtype + " with shape " + tensor_text::shape_str(shape) +
                     "; this package takes " + wanted);
  }
  for (size_t axis = 0; axis < shape.size(); ++axis) {
    const std::string& dim = input.dims[axis];
    if (auto size = to_int(dim)) {
      if (shape[axis] == *size) continue;
      throw ShapeError(input.name + " has shape " + tensor_text::shape_str(shape) + "; this package was exported "
                       "for [" + join(input.dims, ", ") + "] only - pad or batch the inputs to that shape, or "
                       "export with dynamic=True (helpers.export.export_program) to serve other shapes");
    }
    const auto [lo, hi] = spec.ranges.at(dim);
    if (shape[axis] < lo || shape[axis] > hi) {
      throw ShapeError(input.name + " has " + dim + " " + std::to_string(shape[axis]) + "; this package serves " +
                       dim + " " + std::to_string(lo) + ".." + std::to_string(hi) + " - " + fix(dim, lo, hi));
    }
  }
}

std::string describe(const Spec& spec) {
  std::vector<std::string> inputs, ranges;
  for (const auto& input : spec.inputs) inputs.push_back(input.name + " [" + join(input.dims, ", ") + "]");
  for (const auto& [dim, range] : spec.ranges) {
    ranges.push_back(dim + " " + std::to_string(range.first) + ".." + std::to_string(range.second));
  }
  return join(inputs, ", ") + (ranges.empty() ? "; static shapes" : "; " + join(ranges, ", "));
}

}  // namespace package_check
