// Validation of policy documents into typed policies (policy_set.h).
// Every problem is collected with its field path, like gRPC's
// ValidationErrors, so that a user fixes all of them in one pass; an object
// with any error is rejected alone.
#include <algorithm>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "policy/cluster_builder.h"
#include "policy/duration.h"
#include "policy/policy_set.h"
#include "re2/re2.h"

namespace weft::policy {
namespace {

using nlohmann::json;

constexpr char kGatewayGroup[] = "gateway.networking.k8s.io";
// Gateway API limits (the CRD's maxItems).
constexpr size_t kMaxRules = 16;
constexpr size_t kMaxMatches = 64;
constexpr size_t kMaxFilters = 16;
constexpr size_t kMaxBackends = 16;
constexpr size_t kMaxHeaderMatches = 16;

const std::set<std::string> kHttpMethods = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                            "CONNECT", "OPTIONS", "TRACE", "PATCH"};
// Envoy's retry_on conditions that make sense for HTTP and gRPC.
const std::set<std::string> kRetryOn = {"5xx",          "gateway-error",     "reset",
                                        "connect-failure", "retriable-4xx", "refused-stream",
                                        "cancelled",    "deadline-exceeded", "internal",
                                        "resource-exhausted", "unavailable"};

bool IsHeaderNameChar(char c) {
  // RFC 7230 tchar.
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IsHeaderName(const std::string& s) {
  return !s.empty() && s.size() <= 256 && std::all_of(s.begin(), s.end(), IsHeaderNameChar);
}

bool IsDnsLabel(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    if (!(absl::ascii_islower(static_cast<unsigned char>(c)) || absl::ascii_isdigit(static_cast<unsigned char>(c)) ||
          c == '-')) {
      return false;
    }
  }
  return s.front() != '-' && s.back() != '-';
}

bool IsHostname(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    std::string_view label = s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (!IsDnsLabel(label)) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// A pattern with at most one '*', at its start or its end ("*" alone too).
bool IsWildcardPattern(const std::string& s) {
  size_t stars = std::count(s.begin(), s.end(), '*');
  if (stars == 0) return true;
  if (stars > 1) return s == "*" ? true : false;
  return s.front() == '*' || s.back() == '*';
}

// Collects the errors of one document.
class DocumentValidator {
 public:
  DocumentValidator(const discovery::PolicyDocument& doc, PolicyStatus& status)
      : doc_(doc), status_(status) {}

  void Error(const std::string& field, const std::string& reason) {
    discovery::ConfigError e;
    e.source = doc_.meta.source;
    e.kind = doc_.kind;
    e.namespace_ = doc_.meta.namespace_;
    e.name = doc_.meta.name;
    e.field = field;
    e.reason = reason;
    status_.errors.push_back(std::move(e));
  }

  bool ok() const { return status_.errors.empty(); }

  // Reports fields of `object` not in `known` ("unknown field", as
  // kubectl's strict field validation does).
  void KnownFields(const json& object, const std::string& path, std::initializer_list<const char*> known) {
    for (const auto& [key, value] : object.items()) {
      bool found = false;
      for (const char* k : known) found = found || key == k;
      if (!found) Error(Join(path, key), "unknown field");
    }
  }

  static std::string Join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }
  static std::string Index(const std::string& path, size_t i) { return absl::StrCat(path, "[", i, "]"); }

  // Returns the member when it exists and has the right JSON type.
  const json* Object(const json& parent, const std::string& path, const char* key, bool required = false) {
    auto it = parent.find(key);
    if (it == parent.end() || it->is_null()) {
      if (required) Error(Join(path, key), "required");
      return nullptr;
    }
    if (!it->is_object()) {
      Error(Join(path, key), "must be an object");
      return nullptr;
    }
    return &*it;
  }

  const json* Array(const json& parent, const std::string& path, const char* key, size_t max_items,
                    bool required = false) {
    auto it = parent.find(key);
    if (it == parent.end() || it->is_null()) {
      if (required) Error(Join(path, key), "required");
      return nullptr;
    }
    if (!it->is_array()) {
      Error(Join(path, key), "must be a list");
      return nullptr;
    }
    if (required && it->empty()) {
      Error(Join(path, key), "must have at least one item");
      return nullptr;
    }
    if (it->size() > max_items) {
      Error(Join(path, key), absl::StrCat("must have at most ", max_items, " items"));
      return nullptr;
    }
    return &*it;
  }

  std::optional<std::string> String(const json& parent, const std::string& path, const char* key,
                                    bool required = false) {
    auto it = parent.find(key);
    if (it == parent.end() || it->is_null()) {
      if (required) Error(Join(path, key), "required");
      return std::nullopt;
    }
    if (!it->is_string()) {
      Error(Join(path, key), "must be a string");
      return std::nullopt;
    }
    if (required && it->get_ref<const std::string&>().empty()) {
      Error(Join(path, key), "must not be empty");
      return std::nullopt;
    }
    return it->get<std::string>();
  }

  std::optional<std::string> StringItem(const json& v, const std::string& path) {
    if (!v.is_string()) {
      Error(path, "must be a string");
      return std::nullopt;
    }
    return v.get<std::string>();
  }

  std::optional<int64_t> Integer(const json& parent, const std::string& path, const char* key, int64_t min,
                                 int64_t max, bool required = false) {
    auto it = parent.find(key);
    if (it == parent.end() || it->is_null()) {
      if (required) Error(Join(path, key), "required");
      return std::nullopt;
    }
    if (!it->is_number_integer()) {
      Error(Join(path, key), "must be an integer");
      return std::nullopt;
    }
    int64_t v = it->get<int64_t>();
    if (v < min || v > max) {
      Error(Join(path, key), absl::StrCat("must be between ", min, " and ", max));
      return std::nullopt;
    }
    return v;
  }

  std::optional<uint32_t> Uint(const json& parent, const std::string& path, const char* key, int64_t min,
                               int64_t max, bool required = false) {
    auto v = Integer(parent, path, key, min, max, required);
    if (!v) return std::nullopt;
    return static_cast<uint32_t>(*v);
  }

  std::optional<int64_t> Duration(const json& parent, const std::string& path, const char* key,
                                  bool required = false, bool allow_zero = true) {
    auto s = String(parent, path, key, required);
    if (!s) return std::nullopt;
    auto ms = ParseDurationMs(*s);
    if (!ms) {
      Error(Join(path, key), "not a duration (like 500ms, 2s, 1m30s)");
      return std::nullopt;
    }
    if (!allow_zero && *ms == 0) {
      Error(Join(path, key), "must be greater than 0");
      return std::nullopt;
    }
    return ms;
  }

  std::optional<std::string> Enum(const json& parent, const std::string& path, const char* key,
                                  std::initializer_list<const char*> values, bool required = false) {
    auto s = String(parent, path, key, required);
    if (!s) return std::nullopt;
    for (const char* v : values) {
      if (*s == v) return s;
    }
    std::vector<std::string> names(values.begin(), values.end());
    Error(Join(path, key), absl::StrCat("must be one of ", absl::StrJoin(names, ", ")));
    return std::nullopt;
  }

  void Regex(const std::string& pattern, const std::string& path) {
    RE2 re(pattern, RE2::Quiet);
    if (!re.ok()) Error(path, "invalid RE2 regular expression: " + re.error());
  }

  std::map<std::string, std::string> Labels(const json& parent, const std::string& path, const char* key) {
    std::map<std::string, std::string> out;
    const json* selector = Object(parent, path, key);
    if (selector == nullptr) return out;
    const std::string sel_path = Join(path, key);
    KnownFields(*selector, sel_path, {"matchLabels"});
    const json* labels = Object(*selector, sel_path, "matchLabels");
    if (labels == nullptr) return out;
    for (const auto& [k, v] : labels->items()) {
      if (!v.is_string()) {
        Error(Join(Join(sel_path, "matchLabels"), k), "must be a string");
      } else {
        out[k] = v.get<std::string>();
      }
    }
    return out;
  }

  // targetRefs of a weft policy: local references to Services (and
  // HTTPRoutes when allowed).
  std::vector<TargetRef> TargetRefs(const json& spec, bool allow_routes) {
    std::vector<TargetRef> out;
    const json* refs = Array(spec, "spec", "targetRefs", 16);
    if (refs == nullptr) return out;
    for (size_t i = 0; i < refs->size(); ++i) {
      const std::string path = Index("spec.targetRefs", i);
      const json& ref = (*refs)[i];
      if (!ref.is_object()) {
        Error(path, "must be an object");
        continue;
      }
      KnownFields(ref, path, {"group", "kind", "name"});
      TargetRef t;
      auto kind = String(ref, path, "kind", true);
      auto name = String(ref, path, "name", true);
      auto group = String(ref, path, "group");
      if (!kind || !name) continue;
      t.kind = *kind;
      t.name = *name;
      if (t.kind == "Service") {
        t.group = group.value_or("");
        if (t.group != "" && t.group != "core") Error(Join(path, "group"), "a Service's group is \"\" (core)");
        t.group = "";
      } else if (t.kind == "HTTPRoute" && allow_routes) {
        t.group = group.value_or(kGatewayGroup);
        if (t.group != kGatewayGroup) Error(Join(path, "group"), absl::StrCat("must be ", kGatewayGroup));
      } else {
        Error(Join(path, "kind"), allow_routes ? "must be Service or HTTPRoute" : "must be Service");
        continue;
      }
      out.push_back(std::move(t));
    }
    return out;
  }

 private:
  const discovery::PolicyDocument& doc_;
  PolicyStatus& status_;
};

PolicyMeta MetaOf(const discovery::PolicyDocument& doc) {
  return PolicyMeta{doc.kind, doc.meta.namespace_, doc.meta.name, doc.meta.source.ToString()};
}

// ---------------------------------------------------------------- HTTPRoute

void ValidatePathValue(DocumentValidator& v, const std::string& value, const std::string& path) {
  if (value.empty() || value[0] != '/') {
    v.Error(path, "must be an absolute path (start with /)");
  } else if (value.find("//") != std::string::npos || value.find("/./") != std::string::npos ||
             value.find("/../") != std::string::npos || value.find('#') != std::string::npos ||
             absl::AsciiStrToLower(value).find("%2f") != std::string::npos) {
    v.Error(path, "must not contain '//', '/./', '/../', '%2f' or '#'");
  }
}

std::vector<ValueMatch> ParseValueMatches(DocumentValidator& v, const json& match, const std::string& path,
                                          const char* key, bool case_insensitive) {
  std::vector<ValueMatch> out;
  const json* list = v.Array(match, path, key, kMaxHeaderMatches);
  if (list == nullptr) return out;
  std::set<std::string> names;
  for (size_t i = 0; i < list->size(); ++i) {
    const std::string p = DocumentValidator::Index(DocumentValidator::Join(path, key), i);
    const json& item = (*list)[i];
    if (!item.is_object()) {
      v.Error(p, "must be an object");
      continue;
    }
    v.KnownFields(item, p, {"type", "name", "value"});
    auto type = v.Enum(item, p, "type", {"Exact", "RegularExpression"});
    auto name = v.String(item, p, "name", true);
    auto value = v.String(item, p, "value", true);
    if (!name || !value) continue;
    if (!IsHeaderName(*name)) v.Error(p + ".name", "not a valid header or parameter name");
    std::string key_name = case_insensitive ? absl::AsciiStrToLower(*name) : *name;
    if (!names.insert(key_name).second) v.Error(p + ".name", "duplicate name: " + *name);
    ValueMatch m;
    m.name = case_insensitive ? key_name : *name;
    m.value = *value;
    if (type && *type == "RegularExpression") {
      m.type = ValueMatchType::kRegularExpression;
      v.Regex(*value, p + ".value");
    }
    out.push_back(std::move(m));
  }
  return out;
}

HeaderModifier ParseHeaderModifier(DocumentValidator& v, const json& mod, const std::string& path) {
  HeaderModifier out;
  v.KnownFields(mod, path, {"set", "add", "remove"});
  std::set<std::string> seen;
  for (const char* op : {"set", "add"}) {
    const json* list = v.Array(mod, path, op, 16);
    if (list == nullptr) continue;
    for (size_t i = 0; i < list->size(); ++i) {
      const std::string p = DocumentValidator::Index(DocumentValidator::Join(path, op), i);
      const json& item = (*list)[i];
      if (!item.is_object()) {
        v.Error(p, "must be an object");
        continue;
      }
      v.KnownFields(item, p, {"name", "value"});
      auto name = v.String(item, p, "name", true);
      auto value = v.String(item, p, "value");
      if (!name) continue;
      if (!IsHeaderName(*name)) v.Error(p + ".name", "not a valid header name");
      if (!seen.insert(absl::AsciiStrToLower(*name)).second) {
        v.Error(p + ".name", "header " + *name + " is modified twice");
      }
      (std::string(op) == "set" ? out.set : out.add).emplace_back(*name, value.value_or(""));
    }
  }
  if (const json* list = v.Array(mod, path, "remove", 16)) {
    for (size_t i = 0; i < list->size(); ++i) {
      const std::string p = DocumentValidator::Index(path + ".remove", i);
      auto name = v.StringItem((*list)[i], p);
      if (!name) continue;
      if (!IsHeaderName(*name)) v.Error(p, "not a valid header name");
      out.remove.push_back(*name);
    }
  }
  if (out.empty()) v.Error(path, "must set, add or remove at least one header");
  return out;
}

PathModifier ParsePathModifier(DocumentValidator& v, const json& parent, const std::string& parent_path) {
  PathModifier out;
  const json* path_json = v.Object(parent, parent_path, "path");
  if (path_json == nullptr) return out;
  const std::string path = parent_path + ".path";
  v.KnownFields(*path_json, path, {"type", "replaceFullPath", "replacePrefixMatch"});
  auto type = v.Enum(*path_json, path, "type", {"ReplaceFullPath", "ReplacePrefixMatch"}, true);
  if (!type) return out;
  if (*type == "ReplaceFullPath") {
    auto value = v.String(*path_json, path, "replaceFullPath", true);
    if (path_json->contains("replacePrefixMatch")) v.Error(path + ".replacePrefixMatch", "only with type ReplacePrefixMatch");
    if (!value) return out;
    ValidatePathValue(v, *value, path + ".replaceFullPath");
    out = {PathModifierType::kReplaceFullPath, *value};
  } else {
    auto value = v.String(*path_json, path, "replacePrefixMatch", true);
    if (path_json->contains("replaceFullPath")) v.Error(path + ".replaceFullPath", "only with type ReplaceFullPath");
    if (!value) return out;
    ValidatePathValue(v, *value, path + ".replacePrefixMatch");
    out = {PathModifierType::kReplacePrefixMatch, *value};
  }
  return out;
}

std::optional<BackendRef> ParseBackendRef(DocumentValidator& v, const json& ref, const std::string& path,
                                          const std::string& route_ns, bool with_weight) {
  if (!ref.is_object()) {
    v.Error(path, "must be an object");
    return std::nullopt;
  }
  if (with_weight) {
    v.KnownFields(ref, path, {"group", "kind", "name", "namespace", "port", "weight", "filters"});
  } else {
    v.KnownFields(ref, path, {"group", "kind", "name", "namespace", "port"});
  }
  BackendRef out;
  auto group = v.String(ref, path, "group");
  auto kind = v.String(ref, path, "kind");
  auto name = v.String(ref, path, "name", true);
  auto ns = v.String(ref, path, "namespace");
  auto port = v.Uint(ref, path, "port", 1, 65535);
  bool ok = name.has_value();
  if (group && !group->empty() && *group != "core") {
    v.Error(path + ".group", "only Service backends (group \"\") are supported");
    ok = false;
  }
  if (kind && *kind != "Service") {
    v.Error(path + ".kind", "only Service backends are supported");
    ok = false;
  }
  if (!port && !ref.contains("port")) {
    v.Error(path + ".port", "required for a Service backend");
    ok = false;
  }
  if (with_weight) {
    auto weight = v.Uint(ref, path, "weight", 0, 1000000);
    out.weight = weight.value_or(1);
  }
  if (ns) {
    if (!IsDnsLabel(*ns)) v.Error(path + ".namespace", "not a valid namespace name");
  }
  if (!ok || !port) return std::nullopt;
  out.name = *name;
  out.namespace_ = ns.value_or(route_ns);
  out.port = *port;
  return out;
}

void ParseFilters(DocumentValidator& v, const json& rule, const std::string& rule_path, HTTPRouteRule& out,
                  const std::string& route_ns) {
  const json* filters = v.Array(rule, rule_path, "filters", kMaxFilters);
  if (filters == nullptr) return;
  std::set<std::string> seen;
  for (size_t i = 0; i < filters->size(); ++i) {
    const std::string path = DocumentValidator::Index(rule_path + ".filters", i);
    const json& f = (*filters)[i];
    if (!f.is_object()) {
      v.Error(path, "must be an object");
      continue;
    }
    v.KnownFields(f, path,
                  {"type", "requestHeaderModifier", "responseHeaderModifier", "requestMirror", "requestRedirect",
                   "urlRewrite", "extensionRef", "cors", "externalAuth"});
    auto type = v.Enum(f, path, "type",
                       {"RequestHeaderModifier", "ResponseHeaderModifier", "RequestMirror", "RequestRedirect",
                        "URLRewrite", "ExtensionRef", "CORS", "ExternalAuth"},
                       true);
    if (!type) continue;
    static const std::map<std::string, std::string> kField = {
        {"RequestHeaderModifier", "requestHeaderModifier"}, {"ResponseHeaderModifier", "responseHeaderModifier"},
        {"RequestMirror", "requestMirror"},                 {"RequestRedirect", "requestRedirect"},
        {"URLRewrite", "urlRewrite"},                       {"ExtensionRef", "extensionRef"},
        {"CORS", "cors"},                                   {"ExternalAuth", "externalAuth"}};
    for (const auto& [t, field] : kField) {
      if (t != *type && f.contains(field)) v.Error(path + "." + field, "must not be set when type is " + *type);
    }
    if (*type != "RequestMirror" && !seen.insert(*type).second) {
      v.Error(path + ".type", *type + " may appear only once per rule");
      continue;
    }
    const std::string field = kField.at(*type);
    const std::string fpath = path + "." + field;
    if (*type == "ExtensionRef" || *type == "CORS" || *type == "ExternalAuth") {
      v.Error(path + ".type", *type + " filters are not supported by Weft");
      continue;
    }
    const json* body = v.Object(f, path, field.c_str(), true);
    if (body == nullptr) continue;
    if (*type == "RequestHeaderModifier") {
      out.request_headers = ParseHeaderModifier(v, *body, fpath);
    } else if (*type == "ResponseHeaderModifier") {
      out.response_headers = ParseHeaderModifier(v, *body, fpath);
    } else if (*type == "RequestMirror") {
      v.KnownFields(*body, fpath, {"backendRef", "percent", "fraction"});
      const json* ref = v.Object(*body, fpath, "backendRef", true);
      RequestMirror mirror;
      if (auto percent = v.Uint(*body, fpath, "percent", 0, 100)) mirror.percent = *percent;
      if (const json* fraction = v.Object(*body, fpath, "fraction")) {
        v.KnownFields(*fraction, fpath + ".fraction", {"numerator", "denominator"});
        auto num = v.Uint(*fraction, fpath + ".fraction", "numerator", 0, 1000000, true);
        auto den = v.Uint(*fraction, fpath + ".fraction", "denominator", 1, 1000000);
        if (num && *num > den.value_or(100)) v.Error(fpath + ".fraction", "numerator must not exceed denominator");
        if (num) mirror.percent = static_cast<uint32_t>(uint64_t{*num} * 100 / den.value_or(100));
        if (body->contains("percent")) v.Error(fpath, "set percent or fraction, not both");
      }
      if (ref == nullptr) continue;
      auto backend = ParseBackendRef(v, *ref, fpath + ".backendRef", route_ns, false);
      if (!backend) continue;
      mirror.backend = *backend;
      out.mirrors.push_back(std::move(mirror));
    } else if (*type == "RequestRedirect") {
      v.KnownFields(*body, fpath, {"scheme", "hostname", "path", "port", "statusCode"});
      RequestRedirect r;
      r.scheme = v.Enum(*body, fpath, "scheme", {"http", "https"});
      r.hostname = v.String(*body, fpath, "hostname");
      if (r.hostname && !IsHostname(*r.hostname)) v.Error(fpath + ".hostname", "not a valid hostname");
      r.port = v.Uint(*body, fpath, "port", 1, 65535);
      if (body->contains("statusCode")) {
        auto code = v.Uint(*body, fpath, "statusCode", 300, 399);
        if (code && *code != 301 && *code != 302 && *code != 303 && *code != 307 && *code != 308) {
          v.Error(fpath + ".statusCode", "must be one of 301, 302, 303, 307, 308");
        } else if (code) {
          r.status_code = *code;
        }
      }
      r.path = ParsePathModifier(v, *body, fpath);
      out.redirect = std::move(r);
    } else if (*type == "URLRewrite") {
      v.KnownFields(*body, fpath, {"hostname", "path"});
      URLRewrite r;
      r.hostname = v.String(*body, fpath, "hostname");
      if (r.hostname && !IsHostname(*r.hostname)) v.Error(fpath + ".hostname", "not a valid hostname");
      r.path = ParsePathModifier(v, *body, fpath);
      out.rewrite = std::move(r);
    }
  }
  if (out.redirect && out.rewrite) v.Error(rule_path + ".filters", "RequestRedirect and URLRewrite cannot be combined");
}

void AppendHeaderModifier(const HeaderModifier& from, HeaderModifier& to) {
  to.set.insert(to.set.end(), from.set.begin(), from.set.end());
  to.add.insert(to.add.end(), from.add.begin(), from.add.end());
  to.remove.insert(to.remove.end(), from.remove.begin(), from.remove.end());
}

// Header modifier filters on a backendRef (MeshHTTPRouteBackendRequestHeaderModifier).
// When the backendRef is the rule's only one, every request the rule sends
// goes through it, so its changes apply after the rule's own; with several
// backends they would need per-cluster header changes, which the sidecar
// does not implement: refused.
void ParseBackendFilters(DocumentValidator& v, const json& ref, const std::string& path, size_t backends,
                         const std::string& route_ns, HTTPRouteRule& rule) {
  if (!ref.is_object() || !ref.contains("filters")) return;
  if (backends != 1) {
    v.Error(path + ".filters", "filters on a backendRef are supported only when it is the rule's only backendRef");
    return;
  }
  HTTPRouteRule own;
  ParseFilters(v, ref, path, own, route_ns);
  if (own.redirect || own.rewrite || !own.mirrors.empty()) {
    v.Error(path + ".filters", "only RequestHeaderModifier and ResponseHeaderModifier are supported on a backendRef");
  }
  AppendHeaderModifier(own.request_headers, rule.request_headers);
  AppendHeaderModifier(own.response_headers, rule.response_headers);
}

void ValidateHTTPRoute(DocumentValidator& v, const discovery::PolicyDocument& doc, const json& spec,
                       PolicySet& into) {
  HTTPRoute route;
  route.meta = MetaOf(doc);
  v.KnownFields(spec, "spec", {"parentRefs", "hostnames", "rules"});
  if (const json* hostnames = v.Array(spec, "spec", "hostnames", 16)) {
    for (size_t i = 0; i < hostnames->size(); ++i) v.StringItem((*hostnames)[i], DocumentValidator::Index("spec.hostnames", i));
  }
  if (const json* parents = v.Array(spec, "spec", "parentRefs", 32)) {
    for (size_t i = 0; i < parents->size(); ++i) {
      const std::string path = DocumentValidator::Index("spec.parentRefs", i);
      const json& ref = (*parents)[i];
      if (!ref.is_object()) {
        v.Error(path, "must be an object");
        continue;
      }
      v.KnownFields(ref, path, {"group", "kind", "namespace", "name", "sectionName", "port"});
      auto group = v.String(ref, path, "group");
      auto kind = v.String(ref, path, "kind");
      auto name = v.String(ref, path, "name", true);
      auto ns = v.String(ref, path, "namespace");
      auto port = v.Uint(ref, path, "port", 1, 65535);
      if (ns && !IsDnsLabel(*ns)) v.Error(path + ".namespace", "not a valid namespace name");
      // Gateway parents are for gateway controllers; the mesh takes Services.
      bool is_service = kind && *kind == "Service" && (!group || group->empty() || *group == "core");
      if (kind && *kind == "Service" && group && !group->empty() && *group != "core") {
        v.Error(path + ".group", "a Service's group is \"\" (core)");
      }
      if (!is_service || !name) continue;
      route.parents.push_back({ns.value_or(doc.meta.namespace_), *name, port});
    }
  }
  const json* rules = v.Array(spec, "spec", "rules", kMaxRules);
  if (rules == nullptr || rules->empty()) {
    // Gateway API defaults an absent rule list to one rule without
    // matches and without backends.
    HTTPRouteRule rule;
    rule.name = "rule0";
    rule.matches.push_back({});
    route.rules.push_back(std::move(rule));
  } else {
    std::set<std::string> rule_names;
    for (size_t r = 0; r < rules->size(); ++r) {
      const std::string rpath = DocumentValidator::Index("spec.rules", r);
      const json& rj = (*rules)[r];
      if (!rj.is_object()) {
        v.Error(rpath, "must be an object");
        continue;
      }
      v.KnownFields(rj, rpath, {"name", "matches", "filters", "backendRefs", "timeouts"});
      HTTPRouteRule rule;
      rule.index = static_cast<int>(r);
      rule.name = v.String(rj, rpath, "name").value_or(absl::StrCat("rule", r));
      if (rj.contains("name") && !IsDnsLabel(rule.name)) v.Error(rpath + ".name", "must be a DNS label");
      if (!rule_names.insert(rule.name).second) v.Error(rpath + ".name", "duplicate rule name " + rule.name);
      if (const json* matches = v.Array(rj, rpath, "matches", kMaxMatches)) {
        for (size_t m = 0; m < matches->size(); ++m) {
          const std::string mpath = DocumentValidator::Index(rpath + ".matches", m);
          const json& mj = (*matches)[m];
          if (!mj.is_object()) {
            v.Error(mpath, "must be an object");
            continue;
          }
          v.KnownFields(mj, mpath, {"path", "headers", "queryParams", "method"});
          HTTPRouteMatch match;
          if (const json* pj = v.Object(mj, mpath, "path")) {
            v.KnownFields(*pj, mpath + ".path", {"type", "value"});
            auto type = v.Enum(*pj, mpath + ".path", "type", {"Exact", "PathPrefix", "RegularExpression"});
            auto value = v.String(*pj, mpath + ".path", "value");
            if (type && *type == "Exact") match.path.type = PathMatchType::kExact;
            if (type && *type == "RegularExpression") match.path.type = PathMatchType::kRegularExpression;
            if (value) match.path.value = *value;
            if (match.path.type == PathMatchType::kRegularExpression) {
              v.Regex(match.path.value, mpath + ".path.value");
            } else {
              ValidatePathValue(v, match.path.value, mpath + ".path.value");
            }
          }
          match.headers = ParseValueMatches(v, mj, mpath, "headers", true);
          match.query_params = ParseValueMatches(v, mj, mpath, "queryParams", false);
          if (auto method = v.String(mj, mpath, "method")) {
            if (kHttpMethods.count(*method) == 0) {
              v.Error(mpath + ".method", "must be one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH");
            }
            match.method = *method;
          }
          rule.matches.push_back(std::move(match));
        }
      }
      if (rule.matches.empty()) rule.matches.push_back({});
      ParseFilters(v, rj, rpath, rule, doc.meta.namespace_);
      if (const json* backends = v.Array(rj, rpath, "backendRefs", kMaxBackends)) {
        for (size_t b = 0; b < backends->size(); ++b) {
          const std::string bpath = DocumentValidator::Index(rpath + ".backendRefs", b);
          auto backend = ParseBackendRef(v, (*backends)[b], bpath, doc.meta.namespace_, true);
          if (backend) rule.backends.push_back(std::move(*backend));
          ParseBackendFilters(v, (*backends)[b], bpath, backends->size(), doc.meta.namespace_, rule);
        }
        if (rule.redirect && !backends->empty()) {
          v.Error(rpath + ".backendRefs", "must be empty when the rule has a RequestRedirect filter");
        }
      }
      if (const json* timeouts = v.Object(rj, rpath, "timeouts")) {
        v.KnownFields(*timeouts, rpath + ".timeouts", {"request", "backendRequest"});
        rule.request_timeout_ms = v.Duration(*timeouts, rpath + ".timeouts", "request");
        rule.backend_request_timeout_ms = v.Duration(*timeouts, rpath + ".timeouts", "backendRequest");
        if (rule.request_timeout_ms && rule.backend_request_timeout_ms && *rule.request_timeout_ms != 0 &&
            *rule.backend_request_timeout_ms > *rule.request_timeout_ms) {
          v.Error(rpath + ".timeouts.backendRequest", "must not be longer than timeouts.request");
        }
      }
      auto prefix_only = [&](const PathModifier& pm, const std::string& where) {
        if (pm.type != PathModifierType::kReplacePrefixMatch) return;
        for (const auto& m : rule.matches) {
          if (m.path.type != PathMatchType::kPathPrefix) {
            v.Error(where, "ReplacePrefixMatch needs every match of the rule to be a PathPrefix match");
            return;
          }
        }
      };
      if (rule.rewrite) prefix_only(rule.rewrite->path, rpath + ".filters");
      if (rule.redirect) prefix_only(rule.redirect->path, rpath + ".filters");
      route.rules.push_back(std::move(rule));
    }
  }
  if (v.ok()) into.http_routes.push_back(std::move(route));
}

// ------------------------------------------------------------- weft kinds

void ValidateTrafficPolicy(DocumentValidator& v, const discovery::PolicyDocument& doc, const json& spec,
                           PolicySet& into) {
  TrafficPolicy p;
  p.meta = MetaOf(doc);
  v.KnownFields(spec, "spec",
                {"targetRefs", "loadBalancer", "connectionLimits", "outlierDetection", "retries", "timeout", "fault"});
  p.targets = v.TargetRefs(spec, true);
  if (const json* lb = v.Object(spec, "spec", "loadBalancer")) {
    v.KnownFields(*lb, "spec.loadBalancer", {"type", "hashOn"});
    auto type = v.Enum(*lb, "spec.loadBalancer", "type", {"RoundRobin", "LeastRequest", "Random", "RingHash"});
    if (type) {
      p.load_balancer = *type == "RoundRobin"     ? LoadBalancerType::kRoundRobin
                        : *type == "LeastRequest" ? LoadBalancerType::kLeastRequest
                        : *type == "Random"       ? LoadBalancerType::kRandom
                                                  : LoadBalancerType::kRingHash;
    } else if (!lb->contains("type")) {
      p.load_balancer = LoadBalancerType::kRoundRobin;
    }
    const json* hash = v.Object(*lb, "spec.loadBalancer", "hashOn");
    if (hash != nullptr) {
      v.KnownFields(*hash, "spec.loadBalancer.hashOn", {"header"});
      auto header = v.String(*hash, "spec.loadBalancer.hashOn", "header", true);
      if (header && !IsHeaderName(*header)) v.Error("spec.loadBalancer.hashOn.header", "not a valid header name");
      if (header) p.hash_header = absl::AsciiStrToLower(*header);
    }
    if (p.load_balancer == LoadBalancerType::kRingHash && hash == nullptr) {
      v.Error("spec.loadBalancer.hashOn", "required when type is RingHash");
    }
    if (p.load_balancer != LoadBalancerType::kRingHash && hash != nullptr) {
      v.Error("spec.loadBalancer.hashOn", "only with type RingHash");
    }
  }
  if (const json* cl = v.Object(spec, "spec", "connectionLimits")) {
    const std::string path = "spec.connectionLimits";
    v.KnownFields(*cl, path,
                  {"maxConnections", "maxPendingRequests", "maxRequests", "maxRetries", "retryBudget"});
    ConnectionLimits limits;
    limits.max_connections = v.Uint(*cl, path, "maxConnections", 1, 0xffffffffLL);
    limits.max_pending_requests = v.Uint(*cl, path, "maxPendingRequests", 1, 0xffffffffLL);
    limits.max_requests = v.Uint(*cl, path, "maxRequests", 1, 0xffffffffLL);
    limits.max_retries = v.Uint(*cl, path, "maxRetries", 0, 0xffffffffLL);
    if (const json* rb = v.Object(*cl, path, "retryBudget")) {
      const std::string bpath = path + ".retryBudget";
      v.KnownFields(*rb, bpath, {"percent", "minRetryConcurrency"});
      ConnectionLimits::RetryBudget budget;
      budget.percent = v.Uint(*rb, bpath, "percent", 0, 100);
      budget.min_retry_concurrency = v.Uint(*rb, bpath, "minRetryConcurrency", 0, 0xffffffffLL);
      limits.retry_budget = budget;
    }
    p.connection_limits = limits;
  }
  if (const json* od = v.Object(spec, "spec", "outlierDetection")) {
    const std::string path = "spec.outlierDetection";
    v.KnownFields(*od, path,
                  {"consecutive5xx", "consecutiveGatewayErrors", "interval", "baseEjectionTime", "maxEjectionPercent"});
    OutlierDetection o;
    o.consecutive_5xx = v.Uint(*od, path, "consecutive5xx", 0, 0xffffffffLL);
    o.consecutive_gateway_errors = v.Uint(*od, path, "consecutiveGatewayErrors", 0, 0xffffffffLL);
    o.interval_ms = v.Duration(*od, path, "interval", false, false);
    o.base_ejection_time_ms = v.Duration(*od, path, "baseEjectionTime", false, false);
    o.max_ejection_percent = v.Uint(*od, path, "maxEjectionPercent", 0, 100);
    p.outlier_detection = o;
  }
  if (const json* rj = v.Object(spec, "spec", "retries")) {
    const std::string path = "spec.retries";
    v.KnownFields(*rj, path, {"attempts", "perTryTimeout", "retryOn"});
    RetryPolicy r;
    r.attempts = v.Uint(*rj, path, "attempts", 0, 10, true).value_or(0);
    r.per_try_timeout_ms = v.Duration(*rj, path, "perTryTimeout", false, false);
    if (const json* on = v.Array(*rj, path, "retryOn", 16)) {
      for (size_t i = 0; i < on->size(); ++i) {
        auto cond = v.StringItem((*on)[i], DocumentValidator::Index(path + ".retryOn", i));
        if (!cond) continue;
        if (kRetryOn.count(*cond) == 0) {
          v.Error(DocumentValidator::Index(path + ".retryOn", i),
                  "unknown retry condition " + *cond + " (one of " +
                      absl::StrJoin(std::vector<std::string>(kRetryOn.begin(), kRetryOn.end()), ", ") + ")");
        }
        r.retry_on.push_back(*cond);
      }
    }
    p.retries = r;
  }
  p.timeout_ms = v.Duration(spec, "spec", "timeout");
  if (const json* fj = v.Object(spec, "spec", "fault")) {
    const std::string path = "spec.fault";
    v.KnownFields(*fj, path, {"delay", "abort"});
    FaultInjection f;
    const json* delay = v.Object(*fj, path, "delay");
    const json* abort = v.Object(*fj, path, "abort");
    if (delay != nullptr) {
      v.KnownFields(*delay, path + ".delay", {"fixed", "percent"});
      f.delay_ms = v.Duration(*delay, path + ".delay", "fixed", true, false);
      f.delay_percent = v.Uint(*delay, path + ".delay", "percent", 0, 100).value_or(100);
    }
    if (abort != nullptr) {
      v.KnownFields(*abort, path + ".abort", {"status", "percent"});
      f.abort_status = v.Uint(*abort, path + ".abort", "status", 200, 599, true);
      f.abort_percent = v.Uint(*abort, path + ".abort", "percent", 0, 100).value_or(100);
    }
    if (delay == nullptr && abort == nullptr) v.Error(path, "must set delay, abort or both");
    p.fault = f;
  }
  bool route_target = std::any_of(p.targets.begin(), p.targets.end(), [](const TargetRef& t) { return t.kind == "HTTPRoute"; });
  if (route_target) {
    for (const char* cluster_field : {"loadBalancer", "connectionLimits", "outlierDetection"}) {
      if (spec.contains(cluster_field)) {
        v.Error(std::string("spec.") + cluster_field,
                "applies to Services only; a policy that targets an HTTPRoute may set retries, timeout and fault");
      }
    }
  }
  if (v.ok()) into.traffic_policies.push_back(std::move(p));
}

bool ValidPrincipal(const std::string& s) {
  if (s == "*") return true;
  if (!IsWildcardPattern(s)) return false;
  if (s.front() == '*') return true;  // suffix match, e.g. "*/sa/orders"
  return s.rfind("spiffe://", 0) == 0;
}

void ValidateAuthorizationPolicy(DocumentValidator& v, const discovery::PolicyDocument& doc, const json& spec,
                                 PolicySet& into) {
  AuthorizationPolicy p;
  p.meta = MetaOf(doc);
  v.KnownFields(spec, "spec", {"selector", "targetRefs", "action", "rules"});
  p.selector = v.Labels(spec, "spec", "selector");
  p.targets = v.TargetRefs(spec, false);
  if (spec.contains("selector") && spec.contains("targetRefs")) v.Error("spec", "set selector or targetRefs, not both");
  auto action = v.Enum(spec, "spec", "action", {"ALLOW", "DENY"});
  if (action && *action == "DENY") p.action = AuthorizationAction::kDeny;
  const json* rules = v.Array(spec, "spec", "rules", 64);
  if (rules != nullptr) {
    for (size_t r = 0; r < rules->size(); ++r) {
      const std::string rpath = DocumentValidator::Index("spec.rules", r);
      const json& rj = (*rules)[r];
      if (!rj.is_object()) {
        v.Error(rpath, "must be an object");
        continue;
      }
      v.KnownFields(rj, rpath, {"from", "to"});
      AuthorizationRule rule;
      if (const json* from = v.Array(rj, rpath, "from", 64)) {
        for (size_t i = 0; i < from->size(); ++i) {
          const std::string path = DocumentValidator::Index(rpath + ".from", i);
          const json& fj = (*from)[i];
          if (!fj.is_object()) {
            v.Error(path, "must be an object");
            continue;
          }
          v.KnownFields(fj, path, {"principals", "namespaces"});
          AuthorizationSource src;
          if (const json* list = v.Array(fj, path, "principals", 256)) {
            for (size_t k = 0; k < list->size(); ++k) {
              const std::string ppath = DocumentValidator::Index(path + ".principals", k);
              auto s = v.StringItem((*list)[k], ppath);
              if (!s) continue;
              if (!ValidPrincipal(*s)) {
                v.Error(ppath, "not a SPIFFE ID (spiffe://<trust domain>/ns/<ns>/sa/<sa>) or a pattern with one '*' at its start or end");
              }
              src.principals.push_back(*s);
            }
          }
          if (const json* list = v.Array(fj, path, "namespaces", 256)) {
            for (size_t k = 0; k < list->size(); ++k) {
              const std::string npath = DocumentValidator::Index(path + ".namespaces", k);
              auto s = v.StringItem((*list)[k], npath);
              if (!s) continue;
              std::string bare = *s;
              bare.erase(std::remove(bare.begin(), bare.end(), '*'), bare.end());
              if (!IsWildcardPattern(*s) || (!bare.empty() && !std::all_of(bare.begin(), bare.end(), [](char c) {
                                              return absl::ascii_islower(static_cast<unsigned char>(c)) ||
                                                     absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '-';
                                            }))) {
                v.Error(npath, "not a namespace name or a pattern with one '*' at its start or end");
              }
              src.namespaces.push_back(*s);
            }
          }
          if (src.principals.empty() && src.namespaces.empty()) v.Error(path, "must name principals or namespaces");
          rule.from.push_back(std::move(src));
        }
      }
      if (const json* to = v.Array(rj, rpath, "to", 64)) {
        for (size_t i = 0; i < to->size(); ++i) {
          const std::string path = DocumentValidator::Index(rpath + ".to", i);
          const json& tj = (*to)[i];
          if (!tj.is_object()) {
            v.Error(path, "must be an object");
            continue;
          }
          v.KnownFields(tj, path, {"methods", "paths", "ports"});
          AuthorizationOperation op;
          if (const json* list = v.Array(tj, path, "methods", 16)) {
            for (size_t k = 0; k < list->size(); ++k) {
              const std::string mpath = DocumentValidator::Index(path + ".methods", k);
              auto s = v.StringItem((*list)[k], mpath);
              if (!s) continue;
              if (s->empty() || !std::all_of(s->begin(), s->end(), [](char c) { return c >= 'A' && c <= 'Z'; })) {
                v.Error(mpath, "must be an upper-case HTTP method");
              }
              op.methods.push_back(*s);
            }
          }
          if (const json* list = v.Array(tj, path, "paths", 256)) {
            for (size_t k = 0; k < list->size(); ++k) {
              const std::string ppath = DocumentValidator::Index(path + ".paths", k);
              auto s = v.StringItem((*list)[k], ppath);
              if (!s) continue;
              if (s->empty() || (s->front() != '/' && s->front() != '*') || !IsWildcardPattern(*s)) {
                v.Error(ppath, "must be a path (\"/x\"), a prefix (\"/x/*\"), a suffix (\"*.js\") or \"*\"");
              }
              op.paths.push_back(*s);
            }
          }
          if (const json* list = v.Array(tj, path, "ports", 64)) {
            for (size_t k = 0; k < list->size(); ++k) {
              const std::string ppath = DocumentValidator::Index(path + ".ports", k);
              const json& pj = (*list)[k];
              if (!pj.is_number_integer() || pj.get<int64_t>() < 1 || pj.get<int64_t>() > 65535) {
                v.Error(ppath, "must be a port number between 1 and 65535");
                continue;
              }
              op.ports.push_back(pj.get<uint32_t>());
            }
          }
          if (op.methods.empty() && op.paths.empty() && op.ports.empty()) {
            v.Error(path, "must name methods, paths or ports");
          }
          rule.to.push_back(std::move(op));
        }
      }
      p.rules.push_back(std::move(rule));
    }
  }
  if (v.ok()) into.authorization_policies.push_back(std::move(p));
}

void ValidateRateLimitPolicy(DocumentValidator& v, const discovery::PolicyDocument& doc, const json& spec,
                             PolicySet& into) {
  RateLimitPolicy p;
  p.meta = MetaOf(doc);
  v.KnownFields(spec, "spec", {"targetRefs", "local"});
  p.targets = v.TargetRefs(spec, true);  // an HTTPRoute target: a per-route bucket
  const json* local = v.Object(spec, "spec", "local", true);
  if (local != nullptr) {
    v.KnownFields(*local, "spec.local", {"requests", "unit", "burst"});
    p.requests = v.Uint(*local, "spec.local", "requests", 1, 1000000000, true).value_or(0);
    auto unit = v.Enum(*local, "spec.local", "unit", {"second", "minute", "hour"});
    p.unit_seconds = !unit || *unit == "second" ? 1 : *unit == "minute" ? 60 : 3600;
    p.burst = v.Uint(*local, "spec.local", "burst", 0, 1000000000).value_or(0);
  }
  if (v.ok()) into.rate_limit_policies.push_back(std::move(p));
}

void ValidateMTLSPolicy(DocumentValidator& v, const discovery::PolicyDocument& doc, const json& spec,
                        PolicySet& into) {
  MTLSPolicy p;
  p.meta = MetaOf(doc);
  v.KnownFields(spec, "spec", {"selector", "mode"});
  p.selector = v.Labels(spec, "spec", "selector");
  auto mode = v.Enum(spec, "spec", "mode", {"STRICT", "PERMISSIVE", "DISABLE"});
  if (mode) p.mode = *mode == "STRICT" ? MtlsMode::kStrict : *mode == "DISABLE" ? MtlsMode::kDisable : MtlsMode::kPermissive;
  if (v.ok()) into.mtls_policies.push_back(std::move(p));
}

// ------------------------------------------------- references (warnings)

void Warn(PolicyStatus& status, const std::string& field, const std::string& reason) {
  discovery::ConfigError e;
  e.kind = status.kind;
  e.namespace_ = status.namespace_;
  e.name = status.name;
  e.field = field;
  e.reason = reason;
  status.warnings.push_back(std::move(e));
}

const discovery::Service* FindService(const discovery::MeshSnapshot& mesh, const std::string& ns,
                                      const std::string& name) {
  auto it = mesh.services.find(discovery::ObjectKey(ns, name));
  return it == mesh.services.end() ? nullptr : &it->second;
}

bool HasPort(const discovery::Service& s, uint32_t port) {
  return std::any_of(s.ports.begin(), s.ports.end(), [&](const discovery::ServicePort& p) { return p.port == port; });
}

void CheckBackend(const discovery::MeshSnapshot& mesh, const BackendRef& b, const std::string& path,
                  PolicyStatus& status) {
  const discovery::Service* s = FindService(mesh, b.namespace_, b.name);
  if (s == nullptr) {
    Warn(status, path, "Service " + b.namespace_ + "/" + b.name + " not found; its share of requests gets 500");
  } else if (!HasPort(*s, b.port)) {
    Warn(status, path, absl::StrCat("Service ", b.namespace_, "/", b.name, " has no port ", b.port,
                                    "; its share of requests gets 500"));
  }
}

void CheckTargets(const discovery::MeshSnapshot& mesh, const PolicySet& set, const std::string& ns,
                  const std::vector<TargetRef>& targets, PolicyStatus& status) {
  for (size_t i = 0; i < targets.size(); ++i) {
    const auto& t = targets[i];
    bool found = false;
    if (t.kind == "Service") {
      found = FindService(mesh, ns, t.name) != nullptr;
    } else {
      found = std::any_of(set.http_routes.begin(), set.http_routes.end(), [&](const HTTPRoute& r) {
        return r.meta.namespace_ == ns && r.meta.name == t.name;
      });
    }
    if (!found) Warn(status, DocumentValidator::Index("spec.targetRefs", i), t.kind + " " + ns + "/" + t.name + " not found");
  }
}

}  // namespace

PolicyStatus ValidatePolicyDocument(const discovery::PolicyDocument& doc, PolicySet& into,
                                    const CompilerOptions& options) {
  (void)options;
  PolicyStatus status;
  status.kind = doc.kind;
  status.namespace_ = doc.meta.namespace_;
  status.name = doc.meta.name;
  status.source = doc.meta.source.ToString();
  DocumentValidator v(doc, status);
  const json* spec = nullptr;
  if (!doc.body.is_object()) {
    v.Error("", "must be an object");
  } else {
    spec = v.Object(doc.body, "", "spec", true);
  }
  if (spec != nullptr) {
    if (doc.kind == "HTTPRoute") {
      ValidateHTTPRoute(v, doc, *spec, into);
    } else if (doc.kind == "TrafficPolicy") {
      ValidateTrafficPolicy(v, doc, *spec, into);
    } else if (doc.kind == "AuthorizationPolicy") {
      ValidateAuthorizationPolicy(v, doc, *spec, into);
    } else if (doc.kind == "RateLimitPolicy") {
      ValidateRateLimitPolicy(v, doc, *spec, into);
    } else if (doc.kind == "MTLSPolicy") {
      ValidateMTLSPolicy(v, doc, *spec, into);
    } else {
      v.Error("kind", "not a policy kind Weft knows");
    }
  }
  status.accepted = status.errors.empty();
  return status;
}

PolicySetConstSharedPtr ValidatePolicies(const discovery::MeshSnapshot& mesh, const CompilerOptions& options) {
  auto set = std::make_shared<PolicySet>();
  set->snapshot_version = mesh.version;
  set->endpoint_index = std::make_shared<EndpointIndex>(mesh);
  set->root_namespace = options.root_namespace;
  // mesh.policies is keyed "Kind/ns/name": iteration is deterministic.
  for (const auto& [key, doc] : mesh.policies) {
    set->statuses[key] = ValidatePolicyDocument(doc, *set, options);
  }
  auto by_name = [](const auto& a, const auto& b) {
    return std::tie(a.meta.namespace_, a.meta.name) < std::tie(b.meta.namespace_, b.meta.name);
  };
  std::sort(set->http_routes.begin(), set->http_routes.end(), by_name);
  std::sort(set->traffic_policies.begin(), set->traffic_policies.end(), by_name);
  std::sort(set->authorization_policies.begin(), set->authorization_policies.end(), by_name);
  std::sort(set->rate_limit_policies.begin(), set->rate_limit_policies.end(), by_name);
  std::sort(set->mtls_policies.begin(), set->mtls_policies.end(), by_name);

  // References: accepted, but reported (Gateway API's ResolvedRefs).
  for (const auto& route : set->http_routes) {
    PolicyStatus& status = set->statuses[route.meta.Key()];
    if (route.parents.empty()) Warn(status, "spec.parentRefs", "no Service parent: the route applies to no mesh traffic");
    for (size_t i = 0; i < route.parents.size(); ++i) {
      const auto& parent = route.parents[i];
      const discovery::Service* s = FindService(mesh, parent.namespace_, parent.name);
      const std::string path = DocumentValidator::Index("spec.parentRefs", i);
      if (s == nullptr) {
        Warn(status, path, "Service " + parent.namespace_ + "/" + parent.name + " not found");
      } else if (parent.port && !HasPort(*s, *parent.port)) {
        Warn(status, path + ".port", absl::StrCat("Service ", parent.namespace_, "/", parent.name, " has no port ", *parent.port));
      }
    }
    for (const auto& rule : route.rules) {
      const std::string rpath = DocumentValidator::Index("spec.rules", rule.index);
      for (size_t b = 0; b < rule.backends.size(); ++b) {
        CheckBackend(mesh, rule.backends[b], DocumentValidator::Index(rpath + ".backendRefs", b), status);
      }
      for (const auto& m : rule.mirrors) CheckBackend(mesh, m.backend, rpath + ".filters", status);
    }
  }
  for (const auto& p : set->traffic_policies) {
    CheckTargets(mesh, *set, p.meta.namespace_, p.targets, set->statuses[p.meta.Key()]);
  }
  for (const auto& p : set->authorization_policies) {
    CheckTargets(mesh, *set, p.meta.namespace_, p.targets, set->statuses[p.meta.Key()]);
  }
  for (const auto& p : set->rate_limit_policies) {
    CheckTargets(mesh, *set, p.meta.namespace_, p.targets, set->statuses[p.meta.Key()]);
  }
  for (auto& [key, status] : set->statuses) {
    for (auto& w : status.warnings) w.source = mesh.policies.at(key).meta.source;
  }
  if (options.precompile_shared) PrecompileShared(mesh, *set, options);
  return set;
}

}  // namespace weft::policy
