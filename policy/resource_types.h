// xDS v3 type URLs of the resources Weft serves, and the order in which they
// are pushed on an update (make-before-break: clusters before their
// endpoints, listeners before their routes).
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace weft::policy {

inline constexpr std::string_view kListenerType = "type.googleapis.com/envoy.config.listener.v3.Listener";
inline constexpr std::string_view kRouteType = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
inline constexpr std::string_view kClusterType = "type.googleapis.com/envoy.config.cluster.v3.Cluster";
inline constexpr std::string_view kEndpointType =
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
inline constexpr std::string_view kSecretType =
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret";

inline constexpr std::array<std::string_view, 5> kPushOrder = {kClusterType, kEndpointType, kListenerType,
                                                               kRouteType, kSecretType};

// kPushOrder as strings, built once (the xDS streams walk it on every push).
const std::array<std::string, kPushOrder.size()>& PushOrderTypeUrls();

// Short names used in logs, metrics and the admin API: "cds", "eds", ...
std::string_view ShortTypeName(std::string_view type_url);

}  // namespace weft::policy
