#include "server/node_identity.h"

#include <vector>

#include "absl/strings/str_split.h"

namespace weft::server {
namespace {

std::string MetadataString(const envoy::config::core::v3::Node& node, const std::string& key) {
  const auto& fields = node.metadata().fields();
  auto it = fields.find(key);
  if (it == fields.end() || !it->second.has_string_value()) return "";
  return it->second.string_value();
}

}  // namespace

policy::ProxyIdentity IdentityFromNode(const envoy::config::core::v3::Node& node) {
  policy::ProxyIdentity id;
  std::vector<std::string> parts = absl::StrSplit(node.id(), '~');
  if (parts.size() == 4) {
    id.ip = parts[1];
    // parts[2] is POD.NS, parts[3] is NS.svc.<domain>
    std::vector<std::string> domain = absl::StrSplit(parts[3], '.');
    if (!domain.empty() && !domain[0].empty()) id.namespace_ = domain[0];
  }
  if (std::string ns = MetadataString(node, "NAMESPACE"); !ns.empty()) id.namespace_ = ns;
  if (std::string sa = MetadataString(node, "SERVICE_ACCOUNT"); !sa.empty()) id.service_account = sa;
  if (std::string ip = MetadataString(node, "INSTANCE_IPS"); !ip.empty() && id.ip.empty()) {
    id.ip = std::vector<std::string>(absl::StrSplit(ip, ','))[0];
  }
  const std::string& agent = node.user_agent_name();
  id.kind = (agent == "envoy" || agent == "weft-proxy") ? policy::ProxyIdentity::Kind::kSidecar
                                                        : policy::ProxyIdentity::Kind::kProxyless;
  return id;
}

}  // namespace weft::server
