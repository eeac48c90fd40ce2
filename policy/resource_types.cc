#include "policy/resource_types.h"

namespace weft::policy {

const std::array<std::string, kPushOrder.size()>& PushOrderTypeUrls() {
  static const auto* const urls = [] {
    auto* a = new std::array<std::string, kPushOrder.size()>();
    for (size_t i = 0; i < kPushOrder.size(); ++i) (*a)[i] = std::string(kPushOrder[i]);
    return a;
  }();
  return *urls;
}

std::string_view ShortTypeName(std::string_view type_url) {
  if (type_url == kListenerType) return "lds";
  if (type_url == kRouteType) return "rds";
  if (type_url == kClusterType) return "cds";
  if (type_url == kEndpointType) return "eds";
  if (type_url == kSecretType) return "sds";
  return "unknown";
}

}  // namespace weft::policy
