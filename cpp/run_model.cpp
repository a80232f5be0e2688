// run_model: run an exported Transformers model from C++, with no Python at serving time.
//
//   run_model MODEL INPUTS OUTPUTS [--warmup N] [--repeat N] [--threads N] [--overwrite]
//
// MODEL is a TorchScript file (torch.jit.save, loaded with torch::jit::load) or, if it ends in .pt2, an
// AOTInductor package (helpers.export.package, loaded with AOTIModelPackageLoader). INPUTS is a tensor-text
// file (tensor_text.hpp) holding input_ids and attention_mask, int64, [batch, sequence]; a .pt2's inputs are
// checked against the shapes its metadata says it serves (package_check.hpp) before it runs. The outputs go
// to OUTPUTS as output_0, output_1, ... Exit codes: 0 ok, 2 bad command line or input file (a shape the
// package does not serve included), 1 the model could not be loaded or run. Errors go to stderr as "error: ...".
#include <ATen/Parallel.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "package_check.hpp"
#include "tensor_text.hpp"

namespace fs = std::filesystem;
using Tensors = std::vector<torch::Tensor>;

// Bad command line or input: exit code 2 and a message that says what to change.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr const char* kUsage =
    "usage: run_model MODEL INPUTS OUTPUTS [--warmup N] [--repeat N] [--threads N] [--overwrite]\n"
    "  MODEL    TorchScript file (.pt) or AOTInductor package (.pt2)\n"
    "  INPUTS   tensor-text file with input_ids and attention_mask (int64, batch x sequence)\n"
    "  OUTPUTS  tensor-text file to write (output_0, output_1, ...); refused if it exists without --overwrite\n"
    "  --warmup N   untimed runs first (default 0)     --repeat N   timed runs (default 1)\n"
    "  --threads N  intra-op threads (default: LibTorch's choice)\n";

struct Options {
  fs::path model, inputs, outputs;
  int warmup = 0, repeat = 1, threads = 0;
  bool overwrite = false;
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
    else if (arg.starts_with("--")) throw UsageError("unknown or incomplete option '" + arg + "'\n" + kUsage);
    else positional.push_back(arg);
  }
  if (positional.size() != 3) {
    throw UsageError("expected MODEL INPUTS OUTPUTS, got " + std::to_string(positional.size()) + " paths\n" + kUsage);
  }
  opt.model = positional[0], opt.inputs = positional[1], opt.outputs = positional[2];
  if (!fs::exists(opt.model)) {
    throw UsageError("model file " + opt.model.string() + " does not exist: save one from Python first "
                     "(tracing.save for .pt, export.package for .pt2)");
  }
  if (fs::exists(opt.outputs) && !opt.overwrite) {
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

// ---- the model: TorchScript or AOTInductor behind one signature ----

// A loaded model. `arrange` checks the inputs against what the model serves and puts them in its call order
// (throwing package_check::ShapeError), once before any call; `forward` runs it. `serves` says what a .pt2 is
// checked against; a TorchScript file has no such record, and its inputs go in as they are.
struct Model {
  std::function<Tensors(const Tensors&)> arrange = [](const Tensors& inputs) { return inputs; };
  std::function<Tensors(const Tensors&)> forward;
  std::string serves;
};

// input_ids and attention_mask in the package's call order, each checked against the package's metadata.
Tensors arrange_for(const package_check::Spec& spec, const Tensors& inputs) {
  const std::map<std::string, torch::Tensor> named{{"input_ids", inputs[0]}, {"attention_mask", inputs[1]}};
  Tensors ordered;
  for (const auto& input : spec.inputs) {
    auto it = named.find(input.name);
    if (it == named.end()) throw package_check::ShapeError("this package takes " + input.name + ", which "
                                                           "run_model does not read (only input_ids, attention_mask)");
    package_check::check(spec, input, it->second.sizes().vec(), "int64");
    ordered.push_back(it->second);
  }
  return ordered;
}

void flatten(const c10::IValue& value, Tensors& out) {
  if (value.isTensor()) out.push_back(value.toTensor());
  else if (value.isTuple()) for (const auto& v : value.toTupleRef().elements()) flatten(v, out);
  else if (value.isList()) for (const auto& v : value.toListRef()) flatten(v, out);
  else if (value.isGenericDict()) for (const auto& kv : value.toGenericDict()) flatten(kv.value(), out);
}

Model load_model(const fs::path& path) {
  if (path.extension() == ".pt2") {
    auto loader = std::make_shared<torch::inductor::AOTIModelPackageLoader>(path.string());
    Model model{.forward = [loader](const Tensors& inputs) { return loader->run(inputs); },
                .serves = "unknown: no course.inputs metadata (export.package writes it)"};
    if (auto spec = package_check::read_spec(loader->get_metadata())) {  // what export.package stored in it
      model.arrange = [spec = *spec](const Tensors& inputs) { return arrange_for(spec, inputs); };
      model.serves = package_check::describe(*spec);
    }
    return model;
  }
  auto module = std::make_shared<torch::jit::Module>(torch::jit::load(path.string()));
  module->eval();
  return {.forward = [module](const Tensors& inputs) {
    Tensors out;
    flatten(module->forward(std::vector<c10::IValue>(inputs.begin(), inputs.end())), out);
    return out;
  }};
}

// ---- outputs ----

void write_outputs(const fs::path& path, const Tensors& outputs) {
  std::vector<tensor_text::Tensor> tensors;
  for (size_t i = 0; i < outputs.size(); ++i) {
    auto x = outputs[i].detach().cpu();
    const bool is_float = x.is_floating_point();
    auto values = x.to(torch::kFloat64).contiguous();
    tensors.push_back({"output_" + std::to_string(i), is_float ? "float32" : "int64", x.sizes().vec(),
                       std::vector<double>(values.data_ptr<double>(), values.data_ptr<double>() + x.numel())});
  }
  tensor_text::write(path, tensors);
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

// Runs warm-up then timed calls; prints every timed call on one 'run_seconds:' line for the caller to parse.
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
  std::printf("runs: %d warm-up, %d timed, median %.3f ms\nrun_seconds:", opt.warmup, opt.repeat, median * 1e3);
  for (double s : runs) std::printf(" %.9f", s);
  std::printf("\n");
  return outputs;
}

int run(const Options& opt) {
  if (opt.threads > 0) at::set_num_threads(opt.threads);
  setenv("AOTI_RUNTIME_CHECK_INPUTS", "1", 0);  // a .pt2's own shape check runs only when this is set
  Tensors inputs = read_inputs(opt.inputs);
  const std::string kind = opt.model.extension() == ".pt2" ? "AOTInductor package" : "TorchScript";
  auto start = std::chrono::steady_clock::now();
  Model model;
  try {
    model = load_model(opt.model);
  } catch (const std::exception& err) {
    std::cerr << "error: cannot load " << opt.model.string() << " as " << kind << ": " << summary(err) << "\n";
    return 1;
  }
  std::printf("model: %s (%s), loaded in %.2f s\n", opt.model.string().c_str(), kind.c_str(), seconds_since(start));
  if (!model.serves.empty()) std::printf("serves: %s\n", model.serves.c_str());
  std::printf("inputs: input_ids %s, attention_mask %s, threads %d\n",
              tensor_text::shape_str(inputs[0].sizes().vec()).c_str(),
              tensor_text::shape_str(inputs[1].sizes().vec()).c_str(), at::get_num_threads());
  inputs = model.arrange(inputs);  // a shape the package does not serve stops here, with the range and the fix
  Tensors outputs;
  try {
    outputs = run_timed(model.forward, inputs, opt);
  } catch (const std::exception& err) {
    const std::string why = summary(err);
    std::cerr << "error: the model failed on inputs of shape " << tensor_text::shape_str(inputs[0].sizes().vec())
              << ": " << why << "\n";
    if (why.find("dim value") != std::string::npos) {
      std::cerr << "this .pt2 accepts only the shapes it was exported for: pad or batch the inputs to match, or "
                   "export again with dynamic_shapes that cover this shape (export.package also records them, "
                   "so run_model can name the range)\n";
    }
    return 1;
  }
  write_outputs(opt.outputs, outputs);
  std::printf("outputs: %zu tensors written to %s\n", outputs.size(), opt.outputs.string().c_str());
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(parse_args(argc, argv));
  } catch (const UsageError& err) {
    std::cerr << "error: " << err.what() << "\n";
  } catch (const tensor_text::FormatError& err) {
    std::cerr << "error: " << err.what() << "\n";
  } catch (const package_check::ShapeError& err) {
    std::cerr << "error: " << err.what() << "\n";
  }
  return 2;
}
