#include "policy/proxy_resources.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "common/hash.h"

namespace weft::policy {
namespace {

std::string DeterministicBytes(const google::protobuf::Message& message) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  return bytes;
}

}  // namespace

void PackDeterministic(const google::protobuf::Message& message, google::protobuf::Any& any) {
  any.set_type_url("type.googleapis.com/" + message.GetDescriptor()->full_name());
  any.set_value(DeterministicBytes(message));
}

std::string ProxyIdentity::CacheKey() const {
  return std::string(kind == Kind::kSidecar ? "sidecar" : "proxyless") + "|" + namespace_ + "|" +
         service_account + "|" + (kind == Kind::kSidecar ? ip : "");
}

void ProxyResources::Add(const google::protobuf::Message& message, const std::string& name,
                         std::vector<std::string> sources) {
  auto any = std::make_shared<google::protobuf::Any>();
  std::string bytes = DeterministicBytes(message);
  any->set_type_url("type.googleapis.com/" + message.GetDescriptor()->full_name());
  any->set_value(bytes);
  Resource r;
  r.name = name;
  r.hash = common::StableHasher().Add(any->type_url()).Add(bytes).Hex();
  r.body = std::move(any);
  r.sources = std::move(sources);
  resources["type.googleapis.com/" + message.GetDescriptor()->full_name()][name] = std::move(r);
}

}  // namespace weft::policy
