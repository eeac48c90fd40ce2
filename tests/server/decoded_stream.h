// Test helper: a SotwStream or DeltaStream whose responses come back decoded
// into the protos a client would read off the wire (OutgoingResponse is
// encoded and parsed again, so the tests also cover the encoding).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "server/delta_stream.h"
#include "server/sotw_stream.h"

namespace weft::server {

inline void Decode(const OutgoingResponse& in, envoy::service::discovery::v3::DiscoveryResponse& out) {
  out = in.ToSotw();
}
inline void Decode(const OutgoingResponse& in, envoy::service::discovery::v3::DeltaDiscoveryResponse& out) {
  out = in.ToDelta();
}

template <typename Stream, typename Request, typename Response>
class DecodedStream {
 public:
  struct Result {
    typename Stream::Event event;
    std::vector<Response> responses;
  };
  Result OnRequest(const Request& r, const ProxySnapshot* s) {
    auto out = stream_.OnRequest(r, s);
    return {out.event, DecodeAll(out.responses)};
  }
  std::vector<Response> OnSnapshot(const ProxySnapshot& s) { return DecodeAll(stream_.OnSnapshot(s)); }
  const std::map<std::string, TypeState>& types() const { return stream_.types(); }

 private:
  static std::vector<Response> DecodeAll(const std::vector<OutgoingResponse>& in) {
    std::vector<Response> out(in.size());
    for (size_t i = 0; i < in.size(); ++i) Decode(in[i], out[i]);
    return out;
  }
  Stream stream_;
};

// Clusters and their endpoint assignments, one per entry of `ports`
// (cluster name -> endpoint port).
inline policy::ResourcesByType ClusterResources(const std::map<std::string, uint32_t>& ports) {
  policy::ProxyResources out;
  for (const auto& [name, port] : ports) {
    envoy::config::cluster::v3::Cluster c;
    c.set_name(name);
    out.Add(c, name, {});
    envoy::config::endpoint::v3::ClusterLoadAssignment cla;
    cla.set_cluster_name(name);
    cla.add_endpoints()->add_lb_endpoints()->mutable_endpoint()->mutable_address()->mutable_socket_address()->set_port_value(
        port);
    out.Add(cla, name, {});
  }
  return out.resources;
}

using TestSotw = DecodedStream<SotwStream, envoy::service::discovery::v3::DiscoveryRequest,
                               envoy::service::discovery::v3::DiscoveryResponse>;
using TestDelta = DecodedStream<DeltaStream, envoy::service::discovery::v3::DeltaDiscoveryRequest,
                                envoy::service::discovery::v3::DeltaDiscoveryResponse>;

}  // namespace weft::server
