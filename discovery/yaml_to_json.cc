#include "discovery/yaml_to_json.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "yaml-cpp/eventhandler.h"
#include "yaml-cpp/exceptions.h"
#include "yaml-cpp/mark.h"
#include "yaml-cpp/parser.h"

namespace weft::discovery {
namespace {

using nlohmann::json;

// Guards against alias expansion bombs ("billion laughs"): a stream may
// produce at most this many JSON values, counting each alias expansion...
constexpr size_t kMaxValues = 1'000'000;
// Values not from aliases come from the text, at most one per byte (a
// scalar, `[]`, `- ` ...); the slack covers a document of one value. On some
// malformed flow collections yaml-cpp 0.7 emits value events without
// consuming input: fuzz_manifest_parser found 488 bytes that produced the
// whole budget above, 2 s of work (10 s under ASan).
constexpr size_t kValuesSlack = 64;

constexpr char kTagPrefix[] = "tag:yaml.org,2002:";

// A problem found by the event handler; carries the position like yaml-cpp's
// own exceptions. Never leaves this file.
struct ConversionError {
  YAML::Mark mark;
  std::string message;
};

bool IsDigits(std::string_view s, int base) {
  if (s.empty()) return false;
  for (char c : s) {
    bool ok = base == 8    ? (c >= '0' && c <= '7')
              : base == 10 ? (c >= '0' && c <= '9')
                           : ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'));
    if (!ok) return false;
  }
  return true;
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
bool IsCoreFloat(std::string_view s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
  size_t int_digits = 0, frac_digits = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++int_digits;
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++frac_digits;
  }
  if (int_digits == 0 && frac_digits == 0) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '-' || s[i] == '+')) ++i;
    size_t exp_digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++exp_digits;
    if (exp_digits == 0) return false;
  }
  return i == s.size();
}

std::optional<json> ParseInteger(std::string_view s) {
  bool negative = false;
  std::string_view digits = s;
  if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) {
    negative = digits[0] == '-';
    digits.remove_prefix(1);
  }
  int base = 10;
  if (!negative && s.size() > 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'x')) {
    base = s[1] == 'o' ? 8 : 16;
    digits = s.substr(2);
  }
  if (!IsDigits(digits, base)) return std::nullopt;
  uint64_t magnitude = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), magnitude, base);
  if (ec == std::errc() && ptr == digits.data() + digits.size()) {
    if (!negative) {
      if (magnitude <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return json(static_cast<int64_t>(magnitude));
      }
      return json(magnitude);
    }
    if (magnitude <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) + 1) {
      return json(static_cast<int64_t>(0 - magnitude));
    }
  }
  // Too large for 64 bits: keep the magnitude as a float, as JSON would.
  if (base != 10) return std::nullopt;
  double d = 0;
  auto r = std::from_chars(digits.data(), digits.data() + digits.size(), d);
  if (r.ec != std::errc()) return std::nullopt;
  return json(negative ? -d : d);
}

std::optional<json> ParseFloat(std::string_view s) {
  if (s == ".nan" || s == ".NaN" || s == ".NAN") return json(std::nan(""));
  std::string_view body = s;
  bool negative = false;
  if (!body.empty() && (body[0] == '-' || body[0] == '+')) {
    negative = body[0] == '-';
    body.remove_prefix(1);
  }
  if (body == ".inf" || body == ".Inf" || body == ".INF") {
    double inf = std::numeric_limits<double>::infinity();
    return json(negative ? -inf : inf);
  }
  if (!IsCoreFloat(s)) return std::nullopt;
  // from_chars rejects a leading '+', and "1." / ".5" need no special care.
  double d = 0;
  auto [ptr, ec] = std::from_chars(body.data(), body.data() + body.size(), d);
  if (ec != std::errc() && ec != std::errc::result_out_of_range) return std::nullopt;
  if (ptr != body.data() + body.size()) return std::nullopt;
  return json(negative ? -d : d);
}

// A scalar with an explicit tag: the core-schema tags convert, any other tag
// keeps the text.
json ResolveTaggedScalar(const std::string& tag, const std::string& value, const YAML::Mark& mark) {
  const std::string suffix =
      tag.rfind(kTagPrefix, 0) == 0 ? tag.substr(sizeof(kTagPrefix) - 1) : std::string();
  std::optional<json> out;
  if (suffix == "int") {
    out = ParseInteger(value);
  } else if (suffix == "float") {
    out = ParseFloat(value);
    if (!out) out = ParseInteger(value);
    if (out && out->is_number_integer()) out = json(out->get<double>());
  } else if (suffix == "bool") {
    json v = ResolvePlainScalar(value);
    if (v.is_boolean()) out = v;
  } else if (suffix == "null") {
    json v = ResolvePlainScalar(value);
    if (v.is_null()) out = v;
  } else {
    return json(value);
  }
  if (!out) throw ConversionError{mark, absl::StrCat("\"", value, "\" is not a valid !!", suffix)};
  return *out;
}

size_t CountValues(const json& v) {
  size_t n = 1;
  if (v.is_structured()) {
    for (const json& child : v) n += CountValues(child);
  }
  return n;
}

// Builds JSON from yaml-cpp's parse events, one document at a time.
class JsonBuilder : public YAML::EventHandler {
 public:
  explicit JsonBuilder(size_t text_bytes) : max_text_values_(text_bytes + kValuesSlack) {}

  // The finished document (null when empty).
  json TakeDocument() { return std::move(document_); }

  void OnDocumentStart(const YAML::Mark&) override {
    stack_.clear();
    anchors_.clear();
    document_ = json();
  }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    if (ExpectingKey()) {
      BeginKey("null", /*plain=*/true, mark);
      return;
    }
    AddValue(json(), anchor, mark);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    if (it == anchors_.end()) throw ConversionError{mark, "unknown alias"};
    values_ += it->second.second;
    if (values_ > kMaxValues) {
      throw ConversionError{mark, "aliases expand to too many values"};
    }
    if (ExpectingKey()) {
      if (!it->second.first.is_string()) {
        throw ConversionError{mark, "only scalar mapping keys are supported"};
      }
      BeginKey(it->second.first.get<std::string>(), /*plain=*/false, mark);
      return;
    }
    AddValue(it->second.first, YAML::NullAnchor, mark);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    if (ExpectingKey()) {
      BeginKey(value, tag == "?", mark);
      if (anchor != YAML::NullAnchor) anchors_[anchor] = {json(value), 1};
      return;
    }
    json v;
    if (tag == "?") {
      v = ResolvePlainScalar(value);  // plain: resolve by the core schema
    } else if (tag == "!" || tag.empty()) {
      v = value;  // quoted or block scalar: always a string
    } else {
      v = ResolveTaggedScalar(tag, value, mark);
    }
    AddValue(std::move(v), anchor, mark);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Push(json::array(), anchor, mark);
  }
  void OnSequenceEnd() override { Pop(); }

  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Push(json::object(), anchor, mark);
  }
  void OnMapEnd() override {
    Frame& frame = stack_.back();
    // Merge keys: explicit keys win, then earlier merged maps over later ones.
    for (const json& merged : frame.merges) {
      for (const auto& [key, value] : merged.items()) {
        if (!frame.value.contains(key)) frame.value[key] = value;
      }
    }
    Pop();
  }

 private:
  struct Frame {
    json value;
    YAML::anchor_t anchor = YAML::NullAnchor;
    YAML::Mark mark;
    bool has_key = false;  // maps: the key of the next value has been read
    bool merge_key = false;
    std::string key;
    std::vector<json> merges;
  };

  bool ExpectingKey() const {
    return !stack_.empty() && stack_.back().value.is_object() && !stack_.back().has_key;
  }

  void BeginKey(std::string key, bool plain, const YAML::Mark& mark) {
    Frame& frame = stack_.back();
    frame.merge_key = plain && key == "<<";
    if (!frame.merge_key && frame.value.contains(key)) {
      throw ConversionError{mark, absl::StrCat("duplicate key \"", key, "\"")};
    }
    frame.key = std::move(key);
    frame.has_key = true;
  }

  void Count(const YAML::Mark& mark) {
    if (++values_ > kMaxValues) throw ConversionError{mark, "too many values"};
    if (++text_values_ > max_text_values_) throw ConversionError{mark, "more values than the text holds"};
  }

  void Push(json value, YAML::anchor_t anchor, const YAML::Mark& mark) {
    if (ExpectingKey()) throw ConversionError{mark, "only scalar mapping keys are supported"};
    Count(mark);
    Frame frame;
    frame.value = std::move(value);
    frame.anchor = anchor;
    frame.mark = mark;
    stack_.push_back(std::move(frame));
  }

  void Pop() {
    Frame frame = std::move(stack_.back());
    stack_.pop_back();
    if (frame.anchor != YAML::NullAnchor) {
      anchors_[frame.anchor] = {frame.value, CountValues(frame.value)};
    }
    Attach(std::move(frame.value), frame.mark);
  }

  void AddValue(json value, YAML::anchor_t anchor, const YAML::Mark& mark) {
    Count(mark);
    if (anchor != YAML::NullAnchor) anchors_[anchor] = {value, 1};
    Attach(std::move(value), mark);
  }

  // Puts a finished value into its parent (or makes it the document).
  void Attach(json value, const YAML::Mark& mark) {
    if (stack_.empty()) {
      document_ = std::move(value);
      return;
    }
    Frame& parent = stack_.back();
    if (parent.value.is_array()) {
      parent.value.push_back(std::move(value));
      return;
    }
    parent.has_key = false;
    if (parent.merge_key) {
      if (value.is_object()) {
        parent.merges.push_back(std::move(value));
      } else if (value.is_array()) {
        for (json& item : value) {
          if (!item.is_object()) throw ConversionError{mark, "a merge key (<<) takes maps only"};
          parent.merges.push_back(std::move(item));
        }
      } else {
        throw ConversionError{mark, "a merge key (<<) takes maps only"};
      }
      return;
    }
    parent.value[parent.key] = std::move(value);
  }

  std::vector<Frame> stack_;
  std::map<YAML::anchor_t, std::pair<json, size_t>> anchors_;
  const size_t max_text_values_;
  size_t values_ = 0;
  size_t text_values_ = 0;
  json document_;
};

}  // namespace

json ResolvePlainScalar(const std::string& text) {
  if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") {
    return json();
  }
  if (text == "true" || text == "True" || text == "TRUE") return json(true);
  if (text == "false" || text == "False" || text == "FALSE") return json(false);
  const char first = text[0];
  if ((first >= '0' && first <= '9') || first == '-' || first == '+' || first == '.') {
    if (std::optional<json> i = ParseInteger(text)) return *i;
    if (std::optional<json> f = ParseFloat(text)) return *f;
  }
  return json(text);
}

std::string YamlSyntaxError::ToString() const {
  if (line <= 0) return message;
  return absl::StrCat("line ", line, ", column ", column, ": ", message);
}

YamlStream ParseYamlStream(std::string_view text) {
  YamlStream out;
  std::istringstream in{std::string(text)};
  JsonBuilder builder(text.size());
  int document = 0;
  try {
    YAML::Parser parser(in);
    while (parser.HandleNextDocument(builder)) {
      out.documents.push_back(builder.TakeDocument());
      ++document;
    }
  } catch (const ConversionError& e) {
    out.error = YamlSyntaxError{document, e.mark.line + 1, e.mark.column + 1, e.message};
  } catch (const YAML::Exception& e) {
    YamlSyntaxError error{document, 0, 0, e.msg};
    if (!e.mark.is_null()) {
      error.line = e.mark.line + 1;
      error.column = e.mark.column + 1;
    }
    out.error = std::move(error);
  } catch (const std::exception& e) {
    out.error = YamlSyntaxError{document, 0, 0, e.what()};
  }
  return out;
}

}  // namespace weft::discovery
