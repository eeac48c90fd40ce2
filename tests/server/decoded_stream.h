// Test helper: a SotwStream or DeltaStream whose responses come back decoded
// into the protos a client would read off the wire (OutgoingResponse is
// encoded and parsed again, so the tests also cover the encoding).
#pragma once

#include <map>
#include <string>
#include <vector>

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

using TestSotw = DecodedStream<SotwStream, envoy::service::discovery::v3::DiscoveryRequest,
                               envoy::service::discovery::v3::DiscoveryResponse>;
using TestDelta = DecodedStream<DeltaStream, envoy::service::discovery::v3::DeltaDiscoveryRequest,
                                envoy::service::discovery::v3::DeltaDiscoveryResponse>;

}  // namespace weft::server
