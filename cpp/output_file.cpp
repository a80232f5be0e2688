// A temporary file renamed into place (see output_file.hpp).
#include "output_file.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace output_file {

namespace fs = std::filesystem;

OutputFile::OutputFile(fs::path target) : target_(std::move(target)) {
  const fs::path folder = target_.parent_path().empty() ? fs::path(".") : target_.parent_path();
  std::string pattern = (folder / ("." + target_.filename().string() + ".XXXXXX")).string();
  std::vector<char> name(pattern.begin(), pattern.end());
  name.push_back('\0');
  const int fd = mkstemp(name.data());
  if (fd < 0) {
    throw WriteError("cannot write outputs in " + folder.string() + ": " + std::strerror(errno) +
                     " - create the folder, or choose one you can write to");
  }
  const mode_t mask = umask(0);  // mkstemp makes the file 0600: give it the permissions a plain open would
  umask(mask);
  fchmod(fd, 0666 & ~mask);
  close(fd);
  tmp_ = name.data();
  out_.open(tmp_);
  if (!out_) {  // the destructor does not run for a constructor that throws: remove it here
    fs::remove(tmp_);
    throw WriteError("cannot open " + tmp_.string() + " for writing");
  }
}

OutputFile::~OutputFile() {
  if (committed_) return;
  out_.close();
  std::error_code ignored;  // a destructor must not throw; a temporary we cannot remove is all that is left
  fs::remove(tmp_, ignored);
}

void OutputFile::commit() {
  out_.flush();
  const bool written = static_cast<bool>(out_);
  out_.close();
  if (!written || out_.fail()) throw WriteError("writing " + tmp_.string() + " failed (is the disk full?)");
  std::error_code ec;
  fs::rename(tmp_, target_, ec);
  if (ec) throw WriteError("cannot rename " + tmp_.string() + " to " + target_.string() + ": " + ec.message());
  committed_ = true;
}

}  // namespace output_file
