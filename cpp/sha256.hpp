// sha256: the SHA-256 digest of a file (FIPS 180-4), as Python's hashlib.sha256(...).hexdigest() gives it.
//
// The manifest beside a saved model records its sha256 (helpers.files.write_checked); run_model compares the
// file against it before loading. A few dozen lines of plain C++20, so the program needs no crypto library.
#pragma once

#include <filesystem>
#include <string>

namespace sha256 {

// Lower-case hex digest of the file's bytes, read in 1 MiB chunks. Throws std::runtime_error if it cannot be read.
std::string of_file(const std::filesystem::path& path);

}  // namespace sha256
