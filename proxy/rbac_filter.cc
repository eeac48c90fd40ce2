#include "proxy/rbac_filter.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace weft::proxy {
namespace {

using envoy::config::rbac::v3::Permission;
using envoy::config::rbac::v3::Principal;
using Matcher = RbacFilterConfig::Matcher;

class Errors {
 public:
  void Add(std::string what) { errors_.push_back(std::move(what)); }
  void Add(const absl::Status& s) { errors_.emplace_back(s.message()); }
  bool empty() const { return errors_.empty(); }
  std::string Join() const { return absl::StrJoin(errors_, "; "); }

 private:
  std::vector<std::string> errors_;
};

// Permissions and principals share these two matchers.
void CompileHeaderInto(const envoy::config::route::v3::HeaderMatcher& header, const std::string& path, Matcher& m,
                       Errors& errors) {
  m.kind = Matcher::Kind::kHeader;
  auto h = CompileHeaderMatch(header, path + ".header");
  if (h.ok()) {
    m.header = std::move(*h);
  } else {
    errors.Add(h.status());
  }
}

void CompileUrlPathInto(const envoy::type::matcher::v3::PathMatcher& url_path, const std::string& path, Matcher& m,
                        Errors& errors) {
  m.kind = Matcher::Kind::kUrlPath;
  if (!url_path.has_path()) {
    errors.Add(path + ".url_path: only path matchers are supported");
    return;
  }
  auto s = CompileStringMatch(url_path.path(), path + ".url_path.path");
  if (s.ok()) {
    m.string = std::move(*s);
  } else {
    errors.Add(s.status());
  }
}

Matcher CompilePermission(const Permission& p, const std::string& path, Errors& errors) {
  Matcher m;
  switch (p.rule_case()) {
    case Permission::kAny:
      m.kind = Matcher::Kind::kAny;
      if (!p.any()) errors.Add(path + ".any: must be true");
      break;
    case Permission::kAndRules:
    case Permission::kOrRules: {
      const bool is_and = p.rule_case() == Permission::kAndRules;
      m.kind = is_and ? Matcher::Kind::kAnd : Matcher::Kind::kOr;
      const auto& set = is_and ? p.and_rules() : p.or_rules();
      const std::string sp = path + (is_and ? ".and_rules.rules" : ".or_rules.rules");
      for (int i = 0; i < set.rules_size(); ++i) {
        m.children.push_back(CompilePermission(set.rules(i), absl::StrCat(sp, "[", i, "]"), errors));
      }
      break;
    }
    case Permission::kNotRule:
      m.kind = Matcher::Kind::kNot;
      m.children.push_back(CompilePermission(p.not_rule(), path + ".not_rule", errors));
      break;
    case Permission::kHeader: {
      CompileHeaderInto(p.header(), path, m, errors);
      break;
    }
    case Permission::kUrlPath: {
      CompileUrlPathInto(p.url_path(), path, m, errors);
      break;
    }
    case Permission::kDestinationPort:
      m.kind = Matcher::Kind::kPort;
      m.port_start = m.port_end = p.destination_port();
      break;
    case Permission::kDestinationPortRange:
      m.kind = Matcher::Kind::kPortRange;
      m.port_start = static_cast<uint32_t>(std::max<int64_t>(0, p.destination_port_range().start()));
      m.port_end = static_cast<uint32_t>(std::max<int64_t>(0, p.destination_port_range().end()));
      break;
    default:
      errors.Add(path +
                 ": unsupported permission (weft-proxy evaluates any, and_rules, or_rules, not_rule, header, "
                 "url_path, destination_port, destination_port_range)");
      break;
  }
  return m;
}

Matcher CompilePrincipal(const Principal& p, const std::string& path, Errors& errors) {
  Matcher m;
  switch (p.identifier_case()) {
    case Principal::kAny:
      m.kind = Matcher::Kind::kAny;
      if (!p.any()) errors.Add(path + ".any: must be true");
      break;
    case Principal::kAndIds:
    case Principal::kOrIds: {
      const bool is_and = p.identifier_case() == Principal::kAndIds;
      m.kind = is_and ? Matcher::Kind::kAnd : Matcher::Kind::kOr;
      const auto& set = is_and ? p.and_ids() : p.or_ids();
      const std::string sp = path + (is_and ? ".and_ids.ids" : ".or_ids.ids");
      for (int i = 0; i < set.ids_size(); ++i) {
        m.children.push_back(CompilePrincipal(set.ids(i), absl::StrCat(sp, "[", i, "]"), errors));
      }
      break;
    }
    case Principal::kNotId:
      m.kind = Matcher::Kind::kNot;
      m.children.push_back(CompilePrincipal(p.not_id(), path + ".not_id", errors));
      break;
    case Principal::kAuthenticated:
      m.kind = Matcher::Kind::kAuthenticated;
      if (p.authenticated().has_principal_name()) {
        auto s =
            CompileStringMatch(p.authenticated().principal_name(), path + ".authenticated.principal_name");
        if (s.ok()) {
          m.string = std::move(*s);
        } else {
          errors.Add(s.status());
        }
      }
      break;
    case Principal::kHeader: {
      CompileHeaderInto(p.header(), path, m, errors);
      break;
    }
    case Principal::kUrlPath: {
      CompileUrlPathInto(p.url_path(), path, m, errors);
      break;
    }
    default:
      errors.Add(path +
                 ": unsupported principal (weft-proxy evaluates any, and_ids, or_ids, not_id, authenticated, "
                 "header, url_path)");
      break;
  }
  return m;
}

}  // namespace

bool RbacFilterConfig::Matcher::Matches(const RbacRequest& r, std::string_view path) const {
  switch (kind) {
    case Kind::kAny:
      return true;
    case Kind::kAnd:
      return std::all_of(children.begin(), children.end(),
                         [&](const Matcher& c) { return c.Matches(r, path); });
    case Kind::kOr:
      return std::any_of(children.begin(), children.end(),
                         [&](const Matcher& c) { return c.Matches(r, path); });
    case Kind::kNot:
      return !children.front().Matches(r, path);
    case Kind::kHeader:
      return MatchesHeader(header, r.http);
    case Kind::kUrlPath:
      return string->Matches(path);
    case Kind::kPort:
      return r.destination_port == port_start;
    case Kind::kPortRange:
      return r.destination_port >= port_start && r.destination_port < port_end;
    case Kind::kAuthenticated:
      // Only a verified peer certificate authenticates (plaintext has no principal).
      return !r.principal.empty() && (!string || string->Matches(r.principal));
  }
  return false;
}

absl::StatusOr<RbacFilterConfigConstSharedPtr> RbacFilterConfig::Create(
    const envoy::extensions::filters::http::rbac::v3::RBAC& proto, std::string filter_name) {
  auto config = std::make_shared<RbacFilterConfig>();
  config->name_ = std::move(filter_name);
  Errors errors;
  if (proto.has_matcher() || proto.has_shadow_matcher()) {
    errors.Add("matcher: the matcher API is not supported (use rules)");
  }
  if (proto.has_rules()) {
    using Rbac = envoy::config::rbac::v3::RBAC;
    switch (proto.rules().action()) {
      case Rbac::ALLOW:
        config->action_ = Action::kAllow;
        break;
      case Rbac::DENY:
        config->action_ = Action::kDeny;
        break;
      default:
        config->action_ = Action::kNone;
        break;  // LOG: decides nothing
    }
    std::map<std::string, const envoy::config::rbac::v3::Policy*> sorted;
    for (const auto& [name, policy] : proto.rules().policies()) sorted[name] = &policy;
    for (const auto& [name, policy] : sorted) {
      const std::string pp = absl::StrCat("rules.policies[\"", name, "\"]");
      if (policy->has_condition() || policy->has_checked_condition()) {
        errors.Add(pp + ".condition: CEL conditions are not supported");
      }
      Policy out;
      out.name = name;
      for (int i = 0; i < policy->permissions_size(); ++i) {
        out.permissions.push_back(
            CompilePermission(policy->permissions(i), absl::StrCat(pp, ".permissions[", i, "]"), errors));
      }
      for (int i = 0; i < policy->principals_size(); ++i) {
        out.principals.push_back(
            CompilePrincipal(policy->principals(i), absl::StrCat(pp, ".principals[", i, "]"), errors));
      }
      config->policies_.push_back(std::move(out));
    }
  }
  // shadow_rules only log in Envoy: they decide nothing, so they are ignored.
  if (!errors.empty()) return absl::InvalidArgumentError(errors.Join());
  return RbacFilterConfigConstSharedPtr(std::move(config));
}

RbacDecision RbacFilterConfig::Evaluate(const RbacRequest& request) const {
  if (action_ == Action::kNone) return {};
  std::string_view path = request.http.path;
  path = path.substr(0, path.find('?'));  // url_path matches the path without the query
  for (const Policy& p : policies_) {
    bool permitted = std::any_of(p.permissions.begin(), p.permissions.end(),
                                 [&](const Matcher& m) { return m.Matches(request, path); });
    if (!permitted) continue;
    bool principal = std::any_of(p.principals.begin(), p.principals.end(),
                                 [&](const Matcher& m) { return m.Matches(request, path); });
    if (!principal) continue;
    return {action_ == Action::kAllow, p.name};
  }
  return {action_ == Action::kDeny, ""};
}

}  // namespace weft::proxy
