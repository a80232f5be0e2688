// Reading a model file's manifest and checking the file against it (see manifest.hpp).
#include "manifest.hpp"

#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>

#include "sha256.hpp"
#include "tensor_text.hpp"

namespace manifest {

const Kind kTorchScript{"torchscript-course/1", "files.save(traced, path, example_inputs)", "saved", "re-save",
                        "Loading a TorchScript file runs the code inside it",
                        {"format", "file", "bytes", "sha256", "inputs", "serves", "versions"}};
const Kind kAoti{"torchscript-course/aoti-1", "export.package(program, path)", "built", "rebuild",
                 "A .pt2 holds a compiled library that loading runs",
                 {"format", "file", "bytes", "sha256", "inputs", "outputs", "dims", "call", "settings", "versions"}};

namespace {

namespace fs = std::filesystem;

// A JSON value: what json.dumps writes. An object keeps its keys in order, its values in `items`.
struct Json {
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject } type = Type::kNull;
  double number = 0;
  std::string text{};              // a string's value
  std::vector<Json> items{};       // an array's elements, or an object's values
  std::vector<std::string> keys{}; // an object's keys, one per item

  const Json* find(const std::string& key) const {
    for (size_t i = 0; i < keys.size(); ++i) if (keys[i] == key) return &items[i];
    return nullptr;
  }
};

// A recursive-descent reader of one JSON document; throws std::runtime_error("at byte N: ...").
class JsonReader {
 public:
  explicit JsonReader(std::string text) : s_(std::move(text)) {}

  Json document() {
    Json value = read();
    if (skip(), at_ != s_.size()) fail("unexpected text after the JSON value");
    return value;
  }

 private:
  Json read() {
    skip();
    if (at_ == s_.size()) fail("the text ends where a value should be");
    const char c = s_[at_];
    if (c == '{' || c == '[') return read_container(c == '{');
    if (c == '"') return {.type = Json::Type::kString, .text = read_string()};
    for (const auto& [word, type] : {std::pair{"true", Json::Type::kBool}, {"false", Json::Type::kBool},
                                     {"null", Json::Type::kNull}}) {
      if (s_.compare(at_, std::string(word).size(), word) == 0) {
        at_ += std::string(word).size();
        return {.type = type, .number = word[0] == 't' ? 1.0 : 0.0};
      }
    }
    return read_number();
  }

  Json read_container(bool object) {
    Json value{.type = object ? Json::Type::kObject : Json::Type::kArray};
    const char close = object ? '}' : ']';
    ++at_;
    if (skip(), peek() == close) return ++at_, value;
    while (true) {
      if (object) {
        if (skip(), peek() != '"') fail("expected a key in double quotes");
        value.keys.push_back(read_string());
        expect(':');
      }
      value.items.push_back(read());
      if (skip(), peek() == close) return ++at_, value;
      expect(',');
    }
  }

  std::string read_string() {
    std::string out;
    for (++at_; peek() != '"'; ++at_) {
      if (at_ >= s_.size()) fail("a string is not closed");
      if (s_[at_] != '\\') {
        out += s_[at_];
        continue;
      }
      const char e = s_.at(++at_);
      if (e == 'u') append_utf8(out, read_hex4());
      else if (const auto pos = std::string("\"\\/bfnrt").find(e); pos != std::string::npos) out += "\"\\/\b\f\n\r\t"[pos];
      else fail(std::string("unknown escape \\") + e);
    }
    ++at_;
    return out;
  }

  // \uXXXX (at_ on the 'u'), a surrogate pair's second half included.
  uint32_t read_hex4() {
    auto hex4 = [this] {
      uint32_t code = 0;
      auto [ptr, err] = std::from_chars(s_.data() + at_ + 1, s_.data() + std::min(at_ + 5, s_.size()), code, 16);
      if (err != std::errc() || ptr != s_.data() + at_ + 5) fail("\\u needs four hex digits");
      at_ += 4;
      return code;
    };
    uint32_t code = hex4();
    if (code >= 0xD800 && code < 0xDC00 && s_.compare(at_ + 1, 2, "\\u") == 0) {
      at_ += 2;
      code = 0x10000 + ((code - 0xD800) << 10) + (hex4() - 0xDC00);
    }
    return code;
  }

  static void append_utf8(std::string& out, uint32_t code) {
    if (code < 0x80) { out += static_cast<char>(code); return; }
    const int extra = code < 0x800 ? 1 : code < 0x10000 ? 2 : 3;
    constexpr unsigned char kLead[] = {0, 0xC0, 0xE0, 0xF0};  // 110xxxxx, 1110xxxx or 11110xxx
    out += static_cast<char>(kLead[extra] | (code >> (6 * extra)));
    for (int i = extra - 1; i >= 0; --i) out += static_cast<char>(0x80 | ((code >> (6 * i)) & 0x3F));
  }

  Json read_number() {
    const size_t end = s_.find_first_not_of("+-0123456789.eE", at_);
    const size_t stop = end == std::string::npos ? s_.size() : end;
    Json value{.type = Json::Type::kNumber};
    auto [ptr, err] = std::from_chars(s_.data() + at_, s_.data() + stop, value.number);
    if (stop == at_ || err != std::errc() || ptr != s_.data() + stop) fail("expected a value");
    at_ = stop;
    return value;
  }

  void skip() { while (at_ < s_.size() && std::string(" \t\r\n").find(s_[at_]) != std::string::npos) ++at_; }
  char peek() const { return at_ < s_.size() ? s_[at_] : '\0'; }
  void expect(char c) {
    if (skip(), peek() != c) fail(std::string("expected '") + c + "'");
    ++at_;
  }
  [[noreturn]] void fail(const std::string& what) const {
    throw std::runtime_error("at byte " + std::to_string(at_) + ": " + what);
  }

  std::string s_;
  size_t at_ = 0;
};

// The manifest as JSON: ModelFileError if it is missing, not JSON, of another kind or incomplete.
Json read_json(const fs::path& model, const Kind& kind) {
  const fs::path path = manifest_path(model);
  const std::string name = path.filename().string(), again = kind.again;
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    throw ModelFileError(name + " is missing, so " + model.filename().string() + " cannot be checked. " +
                         char(std::toupper(again[0])) + again.substr(1) + " it with " + kind.call +
                         ": run_model runs only files it can check");
  }
  std::ifstream in(path);
  if (!in) throw ModelFileError("cannot open " + name + " for reading (check its permissions)");
  std::stringstream text;
  text << in.rdbuf();
  Json json;
  try {
    json = JsonReader(text.str()).document();
  } catch (const std::runtime_error& err) {
    throw ModelFileError(name + " is not valid JSON (" + err.what() + "); " + again + " the file");
  }
  const Json* format = json.find("format");
  if (!format || format->text != kind.format) {
    throw ModelFileError(name + " is not a " + kind.format + " manifest; " + again + " the file with " + kind.call);
  }
  std::string missing;
  for (const auto& key : kind.keys) if (!json.find(key)) missing += (missing.empty() ? "" : ", ") + key;
  if (!missing.empty()) {
    throw ModelFileError(name + " has no " + missing + ": it was not written by " + kind.call + " or was edited; " +
                         again + " the file");
  }
  return json;
}

// A field that holds the wrong kind of value: the manifest was edited or written by something else.
[[noreturn]] void malformed(const fs::path& model, const Kind& kind, const std::string& key, const std::string& want) {
  throw ModelFileError(manifest_path(model).filename().string() + " has a malformed \"" + key + "\" (expected " +
                       want + "): it was not written by " + kind.call + " or was edited; " + kind.again + " the file");
}

int64_t whole(const Json& value, bool& ok) {
  const auto n = static_cast<int64_t>(value.number);
  ok = ok && value.type == Json::Type::kNumber && static_cast<double>(n) == value.number && n >= 0;
  return n;
}

// "serves": [[[2, 14], [2, 14]], ...]: each call's input shapes.
std::vector<Shapes> read_serves(const Json& json, bool& ok) {
  std::vector<Shapes> serves;
  ok = json.type == Json::Type::kArray;
  for (const auto& call : json.items) {
    ok = ok && call.type == Json::Type::kArray;
    Shapes& shapes = serves.emplace_back();
    for (const auto& shape : call.items) {
      ok = ok && shape.type == Json::Type::kArray;
      auto& dims = shapes.emplace_back();
      for (const auto& dim : shape.items) dims.push_back(whole(dim, ok));
    }
  }
  return serves;
}

Manifest read_fields(const Json& json, const fs::path& model, const Kind& kind) {
  Manifest m{.file = json.find("file")->text};
  bool ok = true;
  m.bytes = static_cast<uint64_t>(whole(*json.find("bytes"), ok));
  if (!ok) malformed(model, kind, "bytes", "a whole number");
  const Json& inputs = *json.find("inputs");
  ok = inputs.type == Json::Type::kArray && !inputs.items.empty();
  for (const auto& input : inputs.items) {
    const Json* name = input.find("name");
    ok = ok && name && name->type == Json::Type::kString;
    m.inputs.push_back(ok ? name->text : "");
  }
  if (!ok) malformed(model, kind, "inputs", "a list of {\"name\": ...}, one per input");
  if (kind.format == kTorchScript.format) {
    m.serves = read_serves(*json.find("serves"), ok);
    if (!ok) malformed(model, kind, "serves", "a list of input shapes per call, such as [[[2, 14], [2, 14]]]");
  }
  const Json* torch = json.find("versions")->find("torch");
  if (!torch || torch->type != Json::Type::kString) malformed(model, kind, "versions", "{\"torch\": \"2.13.0\", ...}");
  m.torch = torch->text;
  return m;
}

const Kind& kind_of(const fs::path& model) { return model.extension() == ".pt2" ? kAoti : kTorchScript; }

std::string release(const std::string& version) { return version.substr(0, version.find('+')); }  // "2.13.0"

}  // namespace

fs::path manifest_path(const fs::path& model) { return model.string() + ".json"; }

Manifest check_file(const fs::path& model, const std::string& torch_version) {
  const Kind& kind = kind_of(model);
  const std::string name = model.filename().string();
  std::error_code ec;
  if (!fs::is_regular_file(model, ec)) {
    throw ModelFileError("model file " + model.string() + (fs::exists(model, ec) ? " is not a file" : " does not exist") +
                         ": make it with " + kind.call + ", or check the path");
  }
  const Json json = read_json(model, kind);
  const Manifest m = read_fields(json, model, kind);
  const uint64_t size = fs::file_size(model);
  if (size != m.bytes) {
    throw ModelFileError(name + " is " + std::to_string(size) + " bytes but was " + kind.made + " as " +
                         std::to_string(m.bytes) + ": the file is truncated or was replaced. Copy it again or " +
                         kind.again + " it");
  }
  if (sha256::of_file(model) != json.find("sha256")->text) {
    throw ModelFileError(name + " changed after it was " + kind.made + " (sha256 differs from " +
                         manifest_path(model).filename().string() + "). " + kind.runs + ": " + kind.again +
                         " it yourself rather than trusting it");
  }
  if (&kind == &kAoti && release(m.torch) != release(torch_version)) {
    throw ModelFileError(name + " was compiled by torch " + m.torch + "; this run_model links LibTorch " +
                         torch_version + ". A package needs the torch that built it: rebuild it, or build "
                         "run_model against that torch");
  }
  return m;
}

std::string describe_serves(const std::vector<Shapes>& serves) {
  std::string out;
  for (const auto& shapes : serves) {
    std::string call;
    for (const auto& shape : shapes) call += (call.empty() ? "" : " & ") + tensor_text::shape_str(shape);
    out += (out.empty() ? "" : ", ") + call;
  }
  return out;
}

}  // namespace manifest
