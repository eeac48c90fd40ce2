#include "tests/testing/pgv_checker.h"

#include <google/protobuf/any.pb.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/duration.pb.h>
#include <google/protobuf/dynamic_message.h>

#include <memory>
#include <sstream>

#include "re2/re2.h"
#include "validate/validate.pb.h"

namespace weft::testing {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

class Checker {
 public:
  explicit Checker(PgvResult& result) : result_(result) {}

  void CheckMessage(const Message& m, const std::string& path) {
    const Descriptor* d = m.GetDescriptor();
    if (d->options().GetExtension(validate::disabled)) return;
    if (d->full_name() == "google.protobuf.Any") {
      CheckAnyPayload(m, path);
      return;
    }
    const Reflection* r = m.GetReflection();
    for (int i = 0; i < d->oneof_decl_count(); ++i) {
      const auto* oneof = d->oneof_decl(i);
      if (oneof->options().GetExtension(validate::required) && !r->HasOneof(m, oneof)) {
        Violation(Join(path, oneof->name()), "one of the oneof's fields is required");
      }
    }
    for (int i = 0; i < d->field_count(); ++i) CheckField(m, d->field(i), path);
  }

 private:
  static std::string Join(const std::string& path, const std::string& name) {
    return path.empty() ? name : path + "." + name;
  }

  void Violation(const std::string& path, const std::string& reason) {
    result_.violations.push_back(path + ": " + reason);
  }

  void CheckAnyPayload(const Message& any_msg, const std::string& path) {
    google::protobuf::Any any;
    any.CopyFrom(any_msg);
    const std::string& url = any.type_url();
    std::string type = url.substr(url.rfind('/') + 1);
    const Descriptor* d = google::protobuf::DescriptorPool::generated_pool()->FindMessageTypeByName(type);
    if (d == nullptr) {
      result_.unknown_anys.push_back(url);
      return;
    }
    const Message* prototype = google::protobuf::MessageFactory::generated_factory()->GetPrototype(d);
    std::unique_ptr<Message> inner(prototype->New());
    if (!inner->ParseFromString(any.value())) {
      Violation(path, "Any payload does not parse as " + type);
      return;
    }
    CheckMessage(*inner, path + "<" + type + ">");
  }

  template <typename Rules, typename T>
  void CheckNumber(const Rules& rules, T v, const std::string& path) {
    if (rules.has_const_() && v != rules.const_()) Violation(path, "must equal " + Str(rules.const_()));
    if (rules.has_lt() && !(v < rules.lt())) Violation(path, "must be < " + Str(rules.lt()));
    if (rules.has_lte() && !(v <= rules.lte())) Violation(path, "must be <= " + Str(rules.lte()));
    if (rules.has_gt() && !(v > rules.gt())) Violation(path, "must be > " + Str(rules.gt()));
    if (rules.has_gte() && !(v >= rules.gte())) Violation(path, "must be >= " + Str(rules.gte()));
    if (rules.in_size() > 0) {
      bool found = false;
      for (const auto& x : rules.in()) found = found || x == v;
      if (!found) Violation(path, "must be one of the listed values");
    }
    for (const auto& x : rules.not_in()) {
      if (x == v) Violation(path, "must not be " + Str(x));
    }
  }

  template <typename T>
  static std::string Str(T v) {
    std::ostringstream s;
    s << v;
    return s.str();
  }

  static size_t Utf8Length(const std::string& s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
  }

  void CheckString(const validate::StringRules& r, const std::string& v, const std::string& path) {
    if (r.ignore_empty() && v.empty()) return;
    size_t len = Utf8Length(v);
    if (r.has_const_() && v != r.const_()) Violation(path, "must equal \"" + r.const_() + "\"");
    if (r.has_len() && len != r.len()) Violation(path, "length must be " + Str(r.len()));
    if (r.has_min_len() && len < r.min_len()) Violation(path, "length must be at least " + Str(r.min_len()));
    if (r.has_max_len() && len > r.max_len()) Violation(path, "length must be at most " + Str(r.max_len()));
    if (r.has_min_bytes() && v.size() < r.min_bytes()) Violation(path, "must have at least " + Str(r.min_bytes()) + " bytes");
    if (r.has_max_bytes() && v.size() > r.max_bytes()) Violation(path, "must have at most " + Str(r.max_bytes()) + " bytes");
    if (r.has_prefix() && v.rfind(r.prefix(), 0) != 0) Violation(path, "must start with \"" + r.prefix() + "\"");
    if (r.has_suffix() && (v.size() < r.suffix().size() || v.compare(v.size() - r.suffix().size(), std::string::npos, r.suffix()) != 0)) {
      Violation(path, "must end with \"" + r.suffix() + "\"");
    }
    if (r.has_contains() && v.find(r.contains()) == std::string::npos) Violation(path, "must contain \"" + r.contains() + "\"");
    if (r.has_not_contains() && v.find(r.not_contains()) != std::string::npos) {
      Violation(path, "must not contain \"" + r.not_contains() + "\"");
    }
    if (r.in_size() > 0) {
      bool found = false;
      for (const auto& x : r.in()) found = found || x == v;
      if (!found) Violation(path, "must be one of the listed values");
    }
    for (const auto& x : r.not_in()) {
      if (x == v) Violation(path, "must not be \"" + x + "\"");
    }
    if (r.has_pattern()) {
      RE2 re(r.pattern());
      if (re.ok() && !RE2::PartialMatch(v, re)) Violation(path, "must match " + r.pattern());
    }
    if (r.has_well_known_regex()) {
      const char* pattern = nullptr;
      switch (r.well_known_regex()) {
        case validate::HTTP_HEADER_NAME:
          pattern = r.strict() ? "^:?[0-9a-zA-Z!#$%&'*+-.^_|~`]+$" : "^[^\\x00\\n\\r]*$";
          break;
        case validate::HTTP_HEADER_VALUE:
          pattern = r.strict() ? "^[^\\x00-\\x08\\x0A-\\x1F\\x7F]*$" : "^[^\\x00\\n\\r]*$";
          break;
        default:
          break;
      }
      if (pattern != nullptr && !RE2::PartialMatch(v, RE2(pattern))) {
        Violation(path, "must be a valid HTTP header " + std::string(r.well_known_regex() == validate::HTTP_HEADER_NAME ? "name" : "value"));
      }
    }
  }

  void CheckDuration(const validate::DurationRules& r, const Message& m, const std::string& path) {
    google::protobuf::Duration d;
    d.CopyFrom(m);
    auto nanos = [](const google::protobuf::Duration& x) { return x.seconds() * 1000000000LL + x.nanos(); };
    int64_t v = nanos(d);
    if (r.has_const_() && v != nanos(r.const_())) Violation(path, "must equal the constant duration");
    if (r.has_lt() && !(v < nanos(r.lt()))) Violation(path, "must be < " + Str(nanos(r.lt())) + "ns");
    if (r.has_lte() && !(v <= nanos(r.lte()))) Violation(path, "must be <= " + Str(nanos(r.lte())) + "ns");
    if (r.has_gt() && !(v > nanos(r.gt()))) Violation(path, "must be > " + Str(nanos(r.gt())) + "ns");
    if (r.has_gte() && !(v >= nanos(r.gte()))) Violation(path, "must be >= " + Str(nanos(r.gte())) + "ns");
  }

  // Rules on one value (a singular field or a repeated item).
  void CheckValue(const Message& m, const FieldDescriptor* f, int index, const validate::FieldRules& rules,
                  const std::string& path) {
    const Reflection* r = m.GetReflection();
    const bool rep = f->is_repeated();
#define WEFT_GET(Type) (rep ? r->GetRepeated##Type(m, f, index) : r->Get##Type(m, f))
    switch (f->cpp_type()) {
      case FieldDescriptor::CPPTYPE_STRING:
        if (rules.has_string()) CheckString(rules.string(), WEFT_GET(String), path);
        break;
      case FieldDescriptor::CPPTYPE_UINT32:
        if (rules.has_uint32()) CheckNumber(rules.uint32(), WEFT_GET(UInt32), path);
        if (rules.has_fixed32()) CheckNumber(rules.fixed32(), WEFT_GET(UInt32), path);
        break;
      case FieldDescriptor::CPPTYPE_UINT64:
        if (rules.has_uint64()) CheckNumber(rules.uint64(), WEFT_GET(UInt64), path);
        if (rules.has_fixed64()) CheckNumber(rules.fixed64(), WEFT_GET(UInt64), path);
        break;
      case FieldDescriptor::CPPTYPE_INT32:
        if (rules.has_int32()) CheckNumber(rules.int32(), WEFT_GET(Int32), path);
        if (rules.has_sint32()) CheckNumber(rules.sint32(), WEFT_GET(Int32), path);
        if (rules.has_sfixed32()) CheckNumber(rules.sfixed32(), WEFT_GET(Int32), path);
        break;
      case FieldDescriptor::CPPTYPE_INT64:
        if (rules.has_int64()) CheckNumber(rules.int64(), WEFT_GET(Int64), path);
        if (rules.has_sint64()) CheckNumber(rules.sint64(), WEFT_GET(Int64), path);
        if (rules.has_sfixed64()) CheckNumber(rules.sfixed64(), WEFT_GET(Int64), path);
        break;
      case FieldDescriptor::CPPTYPE_DOUBLE:
        if (rules.has_double_()) CheckNumber(rules.double_(), WEFT_GET(Double), path);
        break;
      case FieldDescriptor::CPPTYPE_FLOAT:
        if (rules.has_float_()) CheckNumber(rules.float_(), WEFT_GET(Float), path);
        break;
      case FieldDescriptor::CPPTYPE_BOOL:
        if (rules.has_bool_() && rules.bool_().has_const_() && WEFT_GET(Bool) != rules.bool_().const_()) {
          Violation(path, "must be " + Str(rules.bool_().const_()));
        }
        break;
      case FieldDescriptor::CPPTYPE_ENUM: {
        int v = WEFT_GET(EnumValue);
        if (rules.has_enum_()) {
          const auto& er = rules.enum_();
          if (er.defined_only() && f->enum_type()->FindValueByNumber(v) == nullptr) {
            Violation(path, "must be a defined enum value, not " + Str(v));
          }
          if (er.has_const_() && v != er.const_()) Violation(path, "must equal " + Str(er.const_()));
          if (er.in_size() > 0) {
            bool found = false;
            for (int x : er.in()) found = found || x == v;
            if (!found) Violation(path, "must be one of the listed values");
          }
          for (int x : er.not_in()) {
            if (x == v) Violation(path, "must not be " + Str(x));
          }
        }
        break;
      }
      case FieldDescriptor::CPPTYPE_MESSAGE: {
        const Message& sub = rep ? r->GetRepeatedMessage(m, f, index) : r->GetMessage(m, f);
        const std::string& type = f->message_type()->full_name();
        if (type == "google.protobuf.Duration" && rules.has_duration()) CheckDuration(rules.duration(), sub, path);
        if (type == "google.protobuf.Any" && rules.has_any() && rules.any().in_size() > 0) {
          google::protobuf::Any any;
          any.CopyFrom(sub);
          bool found = false;
          for (const auto& x : rules.any().in()) found = found || x == any.type_url();
          if (!found) Violation(path, "type " + any.type_url() + " not allowed here");
        }
        // Wrappers (UInt32Value, ...): the scalar rules apply to `value`.
        if (f->message_type()->file()->name() == "google/protobuf/wrappers.proto") {
          const FieldDescriptor* value = f->message_type()->FindFieldByName("value");
          CheckValue(sub, value, -1, rules, path);
        }
        if (!(rules.has_message() && rules.message().skip())) CheckMessage(sub, path);
        break;
      }
    }
#undef WEFT_GET
  }

  void CheckField(const Message& m, const FieldDescriptor* f, const std::string& path) {
    const Reflection* r = m.GetReflection();
    const std::string fpath = Join(path, f->name());
    const bool has_rules = f->options().HasExtension(validate::rules);
    const validate::FieldRules rules = has_rules ? f->options().GetExtension(validate::rules) : validate::FieldRules();
    if (f->is_map()) {
      int n = r->FieldSize(m, f);
      if (rules.has_map()) {
        if (rules.map().has_min_pairs() && static_cast<uint64_t>(n) < rules.map().min_pairs()) Violation(fpath, "too few pairs");
        if (rules.map().has_max_pairs() && static_cast<uint64_t>(n) > rules.map().max_pairs()) Violation(fpath, "too many pairs");
      }
      const FieldDescriptor* value = f->message_type()->FindFieldByName("value");
      const FieldDescriptor* key = f->message_type()->FindFieldByName("key");
      for (int i = 0; i < n; ++i) {
        const Message& entry = r->GetRepeatedMessage(m, f, i);
        std::string k = key->cpp_type() == FieldDescriptor::CPPTYPE_STRING ? entry.GetReflection()->GetString(entry, key)
                                                                           : Str(i);
        if (rules.has_map() && rules.map().has_keys()) CheckValue(entry, key, -1, rules.map().keys(), fpath + "[" + k + "]");
        validate::FieldRules value_rules = rules.has_map() && rules.map().has_values() ? rules.map().values() : validate::FieldRules();
        CheckValue(entry, value, -1, value_rules, fpath + "[" + k + "]");
      }
      return;
    }
    if (f->is_repeated()) {
      int n = r->FieldSize(m, f);
      validate::FieldRules item_rules;
      if (rules.has_repeated()) {
        const auto& rr = rules.repeated();
        if (rr.has_min_items() && static_cast<uint64_t>(n) < rr.min_items()) {
          Violation(fpath, "must have at least " + Str(rr.min_items()) + " items");
        }
        if (rr.has_max_items() && static_cast<uint64_t>(n) > rr.max_items()) {
          Violation(fpath, "must have at most " + Str(rr.max_items()) + " items");
        }
        if (rr.has_items()) item_rules = rr.items();
      }
      for (int i = 0; i < n; ++i) CheckValue(m, f, i, item_rules, fpath + "[" + Str(i) + "]");
      return;
    }
    if (f->real_containing_oneof() != nullptr && !r->HasField(m, f)) return;
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (!r->HasField(m, f)) {
        bool required = (rules.has_message() && rules.message().required()) ||
                        (rules.has_duration() && rules.duration().required()) ||
                        (rules.has_any() && rules.any().required()) ||
                        (rules.has_timestamp() && rules.timestamp().required());
        if (required) Violation(fpath, "required");
        return;
      }
    }
    CheckValue(m, f, -1, rules, fpath);
  }

  PgvResult& result_;
};

}  // namespace

PgvResult CheckPgv(const google::protobuf::Message& message) {
  PgvResult result;
  Checker(result).CheckMessage(message, "");
  return result;
}

}  // namespace weft::testing
