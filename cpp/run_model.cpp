// run_model: run an exported Transformers model from C++, with no Python at serving time.
//
//   run_model MODEL INPUTS OUTPUTS [--warmup N] [--repeat N] [--threads N] [--shapes refuse|warn] [--overwrite]
//
// MODEL is a TorchScript file (helpers.files.save; loaded with torch::jit::load) or, if it ends in .pt2, an
// AOTInductor package (helpers.export.package; loaded with AOTIModelPackageLoader). Before loading it, the
// program checks it against the manifest beside it (MODEL.json: size, sha256, format; manifest.hpp), as
// helpers.files.load does in Python. INPUTS is a tensor-text file (tensor_text.hpp) holding input_ids and
// attention_mask, int64, [batch, sequence], checked against the shapes the model serves: a .pt's manifest lists
// them (--shapes warn runs other shapes, with a warning), a .pt2's metadata gives ranges (package_check.hpp).
// The outputs go to OUTPUTS as output_0, output_1, ..., written to a temporary file beside it and renamed into
// place (output_file.hpp), so OUTPUTS is complete or absent. Every error is one line on stderr, "error: ...".
//
// Exit codes (helpers/cpp.py's docstring mirrors them):
//   0  the outputs were written
//   1  LibTorch could not load or run the model, or another failure (out of memory, ...)
//   2  bad command line or input file, or inputs of a shape the model does not serve
//   3  the model file was refused: missing, no manifest beside it, an invalid or incomplete manifest, the file
//      truncated or changed since it was saved (size, sha256), or a .pt2 compiled by another torch
//   4  the outputs could not be written (a missing or read-only folder, a full disk)
#include <ATen/Parallel.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/script.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "manifest.hpp"
#include "output_file.hpp"
#include "package_check.hpp"
#include "tensor_text.hpp"

namespace fs = std::filesystem;
using Tensors = std::vector<torch::Tensor>;

enum ExitCode : int { kOk = 0, kModelFailed = 1, kBadInput = 2, kModelRefused = 3, kCannotWrite = 4 };

// Bad command line or input (exit 2): the message says what to change.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// LibTorch could not load or run the model (exit 1): the message names the file and LibTorch's reason.
struct ModelError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr const char* kUsage =
    "usage: run_model MODEL INPUTS OUTPUTS [--warmup N] [--repeat N] [--threads N] [--shapes refuse|warn] "
    "[--overwrite]\n"
    "  MODEL    TorchScript file (.pt, files.save) or AOTInductor package (.pt2, export.package), with the\n"
    "           manifest MODEL.json beside it: refused if either is missing, or the file changed since\n"
    "  INPUTS   tensor-text file with input_ids and attention_mask (int64, batch x sequence)\n"
    "  OUTPUTS  tensor-text file to write (output_0, output_1, ...); refused if it exists without --overwrite\n"
    "  --warmup N   untimed runs first (default 0)     --repeat N   timed runs (default 1)\n"
    "  --threads N  intra-op threads (default: LibTorch's choice)\n"
    "  --shapes warn  run a .pt at input shapes its manifest does not list, with a warning (default: refuse)\n"
    "exit codes: 0 ok; 1 the model could not be loaded or run; 2 bad command line, input file or input shape;\n"
    "  3 the model file was refused (missing, no or bad manifest, truncated or changed); 4 cannot write OUTPUTS\n";

struct Options {
  fs::path model, inputs, outputs;
  int warmup = 0, repeat = 1, threads = 0;
  bool overwrite = false, warn_shapes = false;
};

int to_count(const std::string& flag, const std::string& text, int minimum) {
  try {
    size_t used = 0;
    int n = std::stoi(text, &used);
    if (used == text.size() && n >= minimum) return n;
  } catch (const std::exception&) {
  }
  throw UsageError(flag + " needs a whole number >= " + std::to_string(minimum) + ", got '" + text + "'");
}

bool warn_or_refuse(const std::string& text) {
  if (text != "refuse" && text != "warn") throw UsageError("--shapes takes refuse or warn, got '" + text + "'");
  return text == "warn";
}

Options parse_args(int argc, char** argv) {
  Options opt;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    const bool has_value = i + 1 < argc;
    if (arg == "--overwrite") opt.overwrite = true;
    else if (arg == "--warmup" && has_value) opt.warmup = to_count(arg, argv[++i], 0);
    else if (arg == "--repeat" && has_value) opt.repeat = to_count(arg, argv[++i], 1);
    else if (arg == "--threads" && has_value) opt.threads = to_count(arg, argv[++i], 1);
    else if (arg == "--shapes" && has_value) opt.warn_shapes = warn_or_refuse(argv[++i]);
    else if (arg.starts_with("--")) throw UsageError("unknown or incomplete option '" + arg + "'\n" + kUsage);
    else positional.push_back(arg);
  }
  if (positional.size() != 3) {
    throw UsageError("expected MODEL INPUTS OUTPUTS, got " + std::to_string(positional.size()) + " paths\n" + kUsage);
  }
  opt.model = positional[0], opt.inputs = positional[1], opt.outputs = positional[2];
  std::error_code ec;
  if (fs::exists(opt.outputs, ec) && !opt.overwrite) {
    throw UsageError("output file " + opt.outputs.string() + " already exists: choose another name, or pass "
                     "--overwrite to replace it");
  }
  return opt;
}

// ---- inputs: the tensor-text file, checked before the model sees it ----

torch::Tensor to_torch(const tensor_text::Tensor& t) {
  auto values = torch::tensor(t.values, torch::kFloat64);
  return values.to(t.dtype == "int64" ? torch::kInt64 : torch::kFloat32).reshape(t.shape);
}

torch::Tensor find_input(const std::map<std::string, torch::Tensor>& found, const std::string& name,
                         const fs::path& path) {
  auto it = found.find(name);
  if (it == found.end()) throw UsageError(path.string() + " has no tensor named " + name + ": write both "
                                          "input_ids and attention_mask (helpers.cpp.write_tensors)");
  if (it->second.scalar_type() != torch::kInt64) throw UsageError(name + " must be int64 (token ids and a 0/1 mask)");
  return it->second;
}

// input_ids and attention_mask, checked: both [batch, sequence], same shape, mask of 0s and 1s.
Tensors read_inputs(const fs::path& path) {
  std::map<std::string, torch::Tensor> found;
  for (const auto& t : tensor_text::read(path)) found[t.name] = to_torch(t);
  auto ids = find_input(found, "input_ids", path);
  auto mask = find_input(found, "attention_mask", path);
  if (ids.dim() != 2) {
    throw UsageError("input_ids has shape " + tensor_text::shape_str(ids.sizes().vec()) + " (" +
                     std::to_string(ids.dim()) + "-D); expected 2-D [batch, sequence]: write one "
                     "sentence as shape 1xN");
  }
  if (!mask.sizes().equals(ids.sizes())) {
    throw UsageError("attention_mask has shape " + tensor_text::shape_str(mask.sizes().vec()) +
                     " but input_ids has " + tensor_text::shape_str(ids.sizes().vec()) + ": they must match");
  }
  if (!mask.eq(0).logical_or(mask.eq(1)).all().item<bool>()) {
    throw UsageError("attention_mask may hold only 0 (padding) and 1 (token)");
  }
  return {ids, mask};
}

// input_ids and attention_mask in the order a model takes them (`names`, from its manifest or metadata).
Tensors in_order(const std::vector<std::string>& names, const Tensors& inputs) {
  Tensors ordered;
  for (const auto& name : names) {
    if (name == "input_ids" || name == "attention_mask") ordered.push_back(inputs[name == "input_ids" ? 0 : 1]);
    else throw package_check::ShapeError("this model takes " + name + ", which run_model does not read (only "
                                         "input_ids and attention_mask)");
  }
  return ordered;
}

// ---- the model: TorchScript or AOTInductor behind one signature ----

// A loaded model. `arrange` checks the inputs against what the model serves and puts them in its call order
// (throwing package_check::ShapeError), once before any call; `forward` runs it; `serves` says what it serves.
struct Model {
  std::function<Tensors(const Tensors&)> arrange = [](const Tensors& inputs) { return inputs; };
  std::function<Tensors(const Tensors&)> forward;
  std::string serves;
};

// A .pt's inputs, checked against the shapes its manifest lists (helpers.files.TracedModel's rule).
Tensors arrange_traced(const manifest::Manifest& m, bool warn, const Tensors& inputs) {
  Tensors ordered = in_order(m.inputs, inputs);
  manifest::Shapes got;
  for (const auto& t : ordered) got.push_back(t.sizes().vec());
  if (std::find(m.serves.begin(), m.serves.end(), got) != m.serves.end()) return ordered;
  const std::string message = m.file + " was traced and checked at " + manifest::describe_serves(m.serves) +
                              ", not " + manifest::describe_serves({got});
  if (!warn) {
    throw package_check::ShapeError(message + ": pad to one of those shapes, or verify the trace at this shape "
                                    "(tracing.verify) and save it with verified=report; --shapes warn runs it "
                                    "unchecked");
  }
  std::cerr << "warning: " << message << "; running it unchecked (--shapes warn)\n";
  return ordered;
}

// A .pt2's inputs in its call order, each checked against the ranges in its metadata.
Tensors arrange_package(const package_check::Spec& spec, const Tensors& inputs) {
  std::vector<std::string> names;
  for (const auto& input : spec.inputs) names.push_back(input.name);
  Tensors ordered = in_order(names, inputs);
  for (size_t i = 0; i < ordered.size(); ++i) {
    package_check::check(spec, spec.inputs[i], ordered[i].sizes().vec(), "int64");
  }
  return ordered;
}

void flatten(const c10::IValue& value, Tensors& out) {
  if (value.isTensor()) out.push_back(value.toTensor());
  else if (value.isTuple()) for (const auto& v : value.toTupleRef().elements()) flatten(v, out);
  else if (value.isList()) for (const auto& v : value.toListRef()) flatten(v, out);
  else if (value.isGenericDict()) for (const auto& kv : value.toGenericDict()) flatten(kv.value(), out);
}

Model load_model(const fs::path& path, const manifest::Manifest& m, bool warn_shapes) {
  if (path.extension() == ".pt2") {
    auto loader = std::make_shared<torch::inductor::AOTIModelPackageLoader>(path.string());
    Model model{.forward = [loader](const Tensors& inputs) { return loader->run(inputs); },
                .serves = "unknown: no course.inputs metadata (export.package writes it)"};
    if (auto spec = package_check::read_spec(loader->get_metadata())) {  // what export.package stored in it
      model.arrange = [spec = *spec](const Tensors& inputs) { return arrange_package(spec, inputs); };
      model.serves = package_check::describe(*spec);
    }
    return model;
  }
  auto module = std::make_shared<torch::jit::Module>(torch::jit::load(path.string()));
  module->eval();
  return {.arrange = [m, warn_shapes](const Tensors& inputs) { return arrange_traced(m, warn_shapes, inputs); },
          .forward = [module](const Tensors& inputs) {
            Tensors out;
            flatten(module->forward(std::vector<c10::IValue>(inputs.begin(), inputs.end())), out);
            return out;
          },
          .serves = manifest::describe_serves(m.serves) + " (the shapes it was traced and checked at)"};
}

// ---- outputs ----

std::vector<tensor_text::Tensor> to_text(const Tensors& outputs) {
  std::vector<tensor_text::Tensor> tensors;
  for (size_t i = 0; i < outputs.size(); ++i) {
    auto x = outputs[i].detach().cpu();
    const bool is_float = x.is_floating_point();
    auto values = x.to(torch::kFloat64).contiguous();
    tensors.push_back({"output_" + std::to_string(i), is_float ? "float32" : "int64", x.sizes().vec(),
                       std::vector<double>(values.data_ptr<double>(), values.data_ptr<double>() + x.numel())});
  }
  return tensors;
}

// The line of a LibTorch error that says what went wrong: the first, or for a TorchScript traceback the last.
std::string summary(const std::exception& err) {
  std::string text = err.what();
  if (auto* c10_error = dynamic_cast<const c10::Error*>(&err)) text = c10_error->what_without_backtrace();
  text.erase(text.find_last_not_of(" \n") + 1);
  if (text.starts_with("The following operation failed in the TorchScript interpreter")) {
    return text.substr(text.find_last_of('\n') + 1);
  }
  return text.substr(0, text.find('\n'));
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Runs warm-up then timed calls; prints how (with the thread count), then every timed call on one 'run_seconds:'
// line for the caller to parse.
Tensors run_timed(const std::function<Tensors(const Tensors&)>& model, const Tensors& inputs, const Options& opt) {
  c10::InferenceMode no_autograd;
  for (int i = 0; i < opt.warmup; ++i) model(inputs);
  Tensors outputs;
  std::vector<double> runs;
  for (int i = 0; i < opt.repeat; ++i) {
    auto start = std::chrono::steady_clock::now();
    outputs = model(inputs);
    runs.push_back(seconds_since(start));
  }
  std::vector<double> sorted = runs;
  std::sort(sorted.begin(), sorted.end());
  const size_t n = sorted.size();
  const double median = n % 2 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  std::printf("runs: %d warm-up, %d timed, threads %d, median %.3f ms\nrun_seconds:", opt.warmup, opt.repeat,
              at::get_num_threads(), median * 1e3);
  for (double s : runs) std::printf(" %.9f", s);
  std::printf("\n");
  return outputs;
}

// LibTorch's reason a call failed, and for a .pt2's own shape check ("dim value") what to do about it.
ModelError run_failed(const Tensors& inputs, const std::exception& err) {
  const std::string why = summary(err);
  const bool shape = why.find("dim value") != std::string::npos;
  return ModelError("the model failed on inputs of shape " + tensor_text::shape_str(inputs[0].sizes().vec()) + ": " +
                    why + (shape ? " - this .pt2 accepts only the shapes it was exported for: pad or batch the inputs "
                                   "to match, or export again with dynamic_shapes that cover this shape" : ""));
}

// The model loaded (ModelError if LibTorch cannot), after saying what was loaded, how fast, and what it serves.
Model load_reporting(const Options& opt, const manifest::Manifest& checked) {
  const std::string kind = opt.model.extension() == ".pt2" ? "AOTInductor package" : "TorchScript";
  auto start = std::chrono::steady_clock::now();
  Model model;
  try {
    model = load_model(opt.model, checked, opt.warn_shapes);
  } catch (const std::exception& err) {
    throw ModelError("cannot load " + opt.model.string() + " as " + kind + ": " + summary(err));
  }
  std::printf("model: %s (%s), loaded in %.2f s\n", opt.model.filename().c_str(), kind.c_str(), seconds_since(start));
  std::printf("serves: %s\n", model.serves.c_str());
  return model;
}

int run(const Options& opt) {
  if (opt.threads > 0) at::set_num_threads(opt.threads);
  setenv("AOTI_RUNTIME_CHECK_INPUTS", "1", 0);  // a .pt2's own shape check runs only when this is set
  const manifest::Manifest checked = manifest::check_file(opt.model, TORCH_VERSION);
  std::printf("checked: %s matches %s (size and sha256)\n", opt.model.filename().c_str(),
              manifest::manifest_path(opt.model).filename().c_str());
  Tensors inputs = read_inputs(opt.inputs);
  output_file::OutputFile output(opt.outputs);  // a folder we cannot write to stops here, before the slow part
  Model model = load_reporting(opt, checked);
  std::printf("inputs: input_ids %s, attention_mask %s\n", tensor_text::shape_str(inputs[0].sizes().vec()).c_str(),
              tensor_text::shape_str(inputs[1].sizes().vec()).c_str());
  inputs = model.arrange(inputs);  // a shape the model does not serve stops here, with what it serves and the fix
  Tensors outputs;
  try {
    outputs = run_timed(model.forward, inputs, opt);
  } catch (const std::exception& err) {
    throw run_failed(inputs, err);
  }
  tensor_text::write(output.stream(), to_text(outputs));
  output.commit();
  std::printf("outputs: %zu tensors written to %s\n", outputs.size(), opt.outputs.string().c_str());
  return kOk;
}

// The exit code for an exception, after printing it as one "error:" line (usage text may follow).
int report(const std::exception_ptr& caught) {
  auto fail = [](int code, const std::string& message) {
    std::fflush(stdout);  // what the program printed before the error comes first
    std::cerr << "error: " << message << "\n";
    return code;
  };
  try {
    std::rethrow_exception(caught);
  } catch (const UsageError& err) {
    return fail(kBadInput, err.what());
  } catch (const tensor_text::FormatError& err) {
    return fail(kBadInput, err.what());
  } catch (const package_check::ShapeError& err) {
    return fail(kBadInput, err.what());
  } catch (const manifest::ModelFileError& err) {
    return fail(kModelRefused, err.what());
  } catch (const output_file::WriteError& err) {
    return fail(kCannotWrite, err.what());
  } catch (const ModelError& err) {
    return fail(kModelFailed, err.what());
  } catch (const fs::filesystem_error& err) {
    return fail(kModelFailed, std::string(err.what()) + ": check the path and its permissions");
  } catch (const std::exception& err) {
    return fail(kModelFailed, summary(err));
  } catch (...) {
    return fail(kModelFailed, "an exception of unknown type (not a std::exception)");
  }
}

int main(int argc, char** argv) {
  try {
    return run(parse_args(argc, argv));
  } catch (...) {
    return report(std::current_exception());
  }
}
