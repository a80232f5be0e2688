// Reading and writing the tensor-text format (see tensor_text.hpp). Plain C++20: no LibTorch here.
#include "tensor_text.hpp"

#include <charconv>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iterator>
#include <numeric>
#include <sstream>

namespace tensor_text {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> split(const std::string& line) {
  std::istringstream words(line);
  return {std::istream_iterator<std::string>(words), std::istream_iterator<std::string>()};
}

// A number that must use the whole word: "12x" or "1.5" for an int64 is an error, not 12 or 1.
template <typename T>
bool parse_number(const std::string& word, T& out) {
  const char* end = word.data() + word.size();
  auto [ptr, err] = std::from_chars(word.data(), end, out);
  return err == std::errc() && ptr == end;
}

constexpr int64_t kMaxValues = int64_t{1} << 40;  // a bound on every shape, so no product overflows

int64_t product(const std::vector<int64_t>& dims) {
  return std::accumulate(dims.begin(), dims.end(), int64_t{1}, std::multiplies<>());
}

class Reader {
 public:
  explicit Reader(const fs::path& path) : path_(path) {
    std::error_code ec;  // the non-throwing overloads: a name too long or a folder we may not enter is an error
    const auto status = fs::status(path, ec);
    if (!fs::exists(status)) {
      fail_file(ec && ec != std::errc::no_such_file_or_directory
                    ? "cannot be read (" + ec.message() + "): check the path and its permissions"
                    : "does not exist: check the path, or write it with helpers.cpp.write_tensors");
    }
    if (fs::is_directory(status)) fail_file("is a folder: give the path of a tensor-text file");
    in_.open(path);
    if (!in_) fail_file("cannot be opened for reading (check its permissions)");
  }

  std::vector<Tensor> read_all() {
    std::string line;
    if (!std::getline(in_, line) || split(line) != split(kFormatLine)) {
      fail(std::string("expected '") + kFormatLine + "' as the first line: this is not a tensor-text file "
           "(write it with helpers.cpp.write_tensors)");
    }
    std::vector<Tensor> tensors;
    while (next_words()) {
      tensors.push_back(header());
      read_rows(tensors.back());
    }
    if (tensors.empty()) fail("the file holds no tensors: expected a header such as 'input_ids int64 1 8'");
    return tensors;
  }

 private:
  // The next non-blank, non-comment line, split into words; false at the end of the file.
  bool next_words() {
    std::string line;
    while (std::getline(in_, line)) {
      ++line_no_;
      words_ = split(line);
      if (!words_.empty() && words_[0][0] != '#') return true;
    }
    return false;
  }

  Tensor header() {
    if (words_.size() < 2) fail("expected a header 'name dtype dim...' such as 'input_ids int64 1 8'");
    Tensor t{words_[0], words_[1], {}, {}};
    if (t.dtype != "int64" && t.dtype != "float32") {
      fail("unknown dtype '" + t.dtype + "' for " + t.name + ": use int64 or float32");
    }
    for (size_t i = 2; i < words_.size(); ++i) {
      int64_t dim = 0;
      if (!parse_number(words_[i], dim) || dim < 1) {
        fail("dimension '" + words_[i] + "' of " + t.name + " is not a whole number >= 1");
      }
      if (dim > kMaxValues / product(t.shape)) fail("the shape of " + t.name + " holds more than 2^40 values");
      t.shape.push_back(dim);
    }
    return t;
  }

  void read_rows(Tensor& t) {
    const int64_t row_len = t.shape.empty() ? 1 : t.shape.back();
    const int64_t rows = product(t.shape) / row_len;
    for (int64_t row = 0; row < rows; ++row) {
      if (!next_words()) {
        fail(t.name + " (shape " + shape_str(t.shape) + ") ends after " + std::to_string(row) + " of " +
             std::to_string(rows) + " rows: the file is truncated or the shape is wrong");
      }
      if (static_cast<int64_t>(words_.size()) != row_len) {
        fail("row " + std::to_string(row) + " of " + t.name + " has " + std::to_string(words_.size()) +
             " values, expected " + std::to_string(row_len) + " (shape " + shape_str(t.shape) + ")");
      }
      for (const auto& word : words_) t.values.push_back(value(t, word));
    }
  }

  double value(const Tensor& t, const std::string& word) {
    if (t.dtype == "float32") {
      double v = 0;
      if (!parse_number(word, v)) fail("'" + word + "' in " + t.name + " is not a number");
      return v;
    }
    int64_t v = 0;
    if (!parse_number(word, v)) fail("'" + word + "' in " + t.name + " is not a whole number (dtype int64)");
    if (v > (int64_t{1} << 53) || v < -(int64_t{1} << 53)) fail(word + " in " + t.name + " is beyond +-2^53");
    return static_cast<double>(v);
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw FormatError(path_.string() + ":" + std::to_string(line_no_ + (line_no_ == 0)) + ": " + what);
  }
  [[noreturn]] void fail_file(const std::string& what) const {
    throw FormatError("input file " + path_.string() + " " + what);
  }

  fs::path path_;
  std::ifstream in_;
  std::vector<std::string> words_;
  int line_no_ = 0;
};

void write_value(std::ostream& out, const Tensor& t, double v) {
  if (t.dtype == "int64") {
    out << static_cast<int64_t>(v);
  } else {
    char buf[32];  // 9 significant digits round-trip every float32 exactly
    std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(static_cast<float>(v)));
    out << buf;
  }
}

}  // namespace

std::string shape_str(const std::vector<int64_t>& shape) {
  if (shape.empty()) return "scalar";
  std::string s;
  for (auto d : shape) s += (s.empty() ? "" : "x") + std::to_string(d);
  return s;
}

std::vector<Tensor> read(const fs::path& path) { return Reader(path).read_all(); }

void write(std::ostream& out, const std::vector<Tensor>& tensors) {
  out << kFormatLine << "\n";
  for (const auto& t : tensors) {
    out << t.name << " " << t.dtype;
    for (auto d : t.shape) out << " " << d;
    out << "\n";
    const size_t row_len = t.shape.empty() ? 1 : static_cast<size_t>(t.shape.back());
    for (size_t i = 0; i < t.values.size(); ++i) {
      write_value(out, t, t.values[i]);
      out << ((i + 1) % row_len == 0 ? "\n" : " ");
    }
  }
}

}  // namespace tensor_text
