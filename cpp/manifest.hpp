// manifest: the check helpers.files.load makes before it loads a model file, made from C++.
//
// helpers.files.write_checked puts a manifest beside every file it saves: `model.pt` -> `model.pt.json`, holding
// the file's format, size in bytes and sha256, plus what the file serves:
//
//   {"format": "torchscript-course/1", "file": "model.pt", "bytes": 91123456, "sha256": "3f2a...",
//    "inputs": [{"name": "input_ids", ...}, {"name": "attention_mask", ...}],
//    "serves": [[[2, 14], [2, 14]], [[1, 5], [1, 5]]],     <- .pt: the input shapes it was traced and verified at
//    "versions": {"torch": "2.13.0+cpu", ...}, ...}
//
// A .pt2 (helpers.export.package) has format "torchscript-course/aoti-1" and must be run by the torch that built
// it. `check_file` refuses a missing, truncated or changed file and a missing, invalid or incomplete manifest,
// each with a ModelFileError whose message names the fix, in the words helpers/files.py uses.
// Plain C++20 with a small JSON reader: no LibTorch here.
#pragma once

#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace manifest {

// What kind of file a manifest guards, the words its errors use, and the keys its manifest must have
// (helpers.files.FileKind: TORCHSCRIPT and AOTI).
struct Kind {
  std::string format;              // the manifest's "format"
  std::string call;                // the Python call that makes the file
  std::string made, again;         // "saved"/"re-save" or "built"/"rebuild"
  std::string runs;                // why an altered file is dangerous to load
  std::vector<std::string> keys;   // what the manifest must hold
};
extern const Kind kTorchScript;  // .pt from helpers.files.save
extern const Kind kAoti;         // .pt2 from helpers.export.package

using Shapes = std::vector<std::vector<int64_t>>;  // one shape per input, in call order

struct Manifest {
  std::string file;                   // "model.pt"
  uint64_t bytes = 0;
  std::vector<std::string> inputs{};  // input names, in call order
  std::vector<Shapes> serves{};       // .pt: every call's input shapes it may be run at; empty for a .pt2
  std::string torch{};                // the torch version that wrote the file: "2.13.0+cpu"
};

// A file that cannot be trusted: missing, truncated, changed, or with a missing, invalid or incomplete manifest.
struct ModelFileError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::filesystem::path manifest_path(const std::filesystem::path& model);  // model.pt -> model.pt.json

// Checks `model` against its manifest (a .pt2 as kAoti, anything else as kTorchScript): it exists, its size and
// sha256 match, and a .pt2 was built by `torch_version` (this program's LibTorch). Throws ModelFileError.
Manifest check_file(const std::filesystem::path& model, const std::string& torch_version);

// "2x14 & 2x14, 1x5 & 1x5": the shapes a .pt serves, as helpers.files.TracedModel.serves() prints them.
std::string describe_serves(const std::vector<Shapes>& serves);

}  // namespace manifest
