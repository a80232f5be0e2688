// output_file: a file that appears complete or not at all, and never leaves a temporary behind.
//
// OutputFile creates a uniquely named temporary beside the target (".NAME.XXXXXX", so two runs never share
// one, on the same disk, so the final rename is atomic). The caller writes to stream(), then commit() flushes
// it and renames it onto the target. If commit() is never reached (an error, an exception unwinding the stack),
// the destructor removes the temporary. Creating it first also tells, before any slow work, whether the
// folder can be written at all. POSIX (mkstemp); plain C++20 otherwise.
#pragma once

#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace output_file {

// The target cannot be written: a missing or read-only folder, a full disk. The message names the path.
struct WriteError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class OutputFile {
 public:
  explicit OutputFile(std::filesystem::path target);  // throws WriteError if the temporary cannot be created
  ~OutputFile();                                       // removes the temporary unless committed
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  std::ostream& stream() { return out_; }
  void commit();  // flush, close, rename onto the target; throws WriteError

 private:
  std::filesystem::path target_, tmp_;
  std::ofstream out_;
  bool committed_ = false;
};

}  // namespace output_file
