#include "server/admin_server.h"

#include <google/protobuf/util/json_util.h>
#include <httplib.h>
#include <openssl/crypto.h>

#include <nlohmann/json.hpp>

#include "absl/strings/numbers.h"
#include "ca/certificate_authority.h"
#include "common/clock.h"
#include "common/logging.h"
#include "envoy/admin/v3/config_dump.pb.h"
#include "envoy/admin/v3/config_dump_shared.pb.h"
#include "envoy/extensions/transport_sockets/tls/v3/secret.pb.h"
#include "policy/endpoints.h"
#include "policy/resource_types.h"

namespace weft::server {
namespace {

using nlohmann::json;

// Compares in time independent of where the strings differ, so that the
// admin token cannot be guessed byte by byte from response times.
bool TokenMatches(const std::string& presented, const std::string& expected) {
  return presented.size() == expected.size() &&
         CRYPTO_memcmp(presented.data(), expected.data(), expected.size()) == 0;
}

void SendJson(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(2) + "\n", "application/json");
}

void SendError(httplib::Response& res, int status, const std::string& message) {
  SendJson(res, status, json{{"error", message}});
}

json ErrorJson(const discovery::ConfigError& e) {
  return json{{"source", e.source.ToString()}, {"kind", e.kind},   {"namespace", e.namespace_},
              {"name", e.name},                {"field", e.field}, {"reason", e.reason}};
}

}  // namespace

std::string RenderProxies(const std::vector<ProxyStatus>& proxies) {
  json list = json::array();
  for (const auto& p : proxies) {
    json types = json::object();
    std::string overall = "SYNCED";
    for (const auto& [type_url, t] : p.types) {
      std::string state = SyncState(t);
      if (state == "NACKED" || (state == "STALE" && overall == "SYNCED")) overall = state;
      json entry = {{"typeUrl", type_url},
                    {"versionSent", t.sent_version},
                    {"versionAcked", t.acked_version},
                    {"nonce", t.sent_nonce},
                    {"status", state},
                    {"meshVersionSent", t.sent_mesh_version},
                    {"meshVersionAcked", t.acked_mesh_version},
                    {"resources", t.sent.count}};
      if (t.wildcard) {
        entry["subscribed"] = "*";
      } else {
        entry["subscribed"] = *t.names;
      }
      if (t.nacked) {
        // The rejected resources and the manifests/objects they came from.
        json sources = json::array();
        for (const auto& name : t.nacked_resources) {
          const policy::Resource* r = t.sent.base ? t.sent.base->Find(name) : nullptr;
          sources.push_back({{"resource", name}, {"sources", r ? r->sources : std::vector<std::string>{}}});
        }
        entry["nack"] = {{"message", t.nack_message},
                         {"version", t.nacked_version},
                         {"resources", t.nacked_resources},
                         {"sources", sources}};
      }
      types[std::string(policy::ShortTypeName(type_url))] = entry;
    }
    json applied = {{"meshVersion", p.applied_mesh_version}};
    if (p.applied_at.time_since_epoch().count() != 0) applied["at"] = common::Rfc3339Utc(p.applied_at);
    list.push_back({{"id", p.node_id},
                    {"lastApplied", applied},
                    {"stream", p.stream_id},
                    {"peer", p.peer},
                    {"userAgent", p.user_agent},
                    {"protocol", p.protocol},
                    {"connectedAt", common::Rfc3339Utc(p.connected_at)},
                    {"identity",
                     {{"namespace", p.identity.namespace_},
                      {"serviceAccount", p.identity.service_account},
                      {"kind", p.identity.kind == policy::ProxyIdentity::Kind::kSidecar ? "sidecar"
                                                                                       : "proxyless"}}},
                    {"status", p.types.empty() ? "STALE" : overall},
                    {"types", types}});
  }
  return json{{"proxies", list}}.dump(2) + "\n";
}

std::string RenderConfigDump(const ProxyStatus& proxy) {
  envoy::admin::v3::ConfigDump dump;
  envoy::admin::v3::ClustersConfigDump clusters;
  envoy::admin::v3::EndpointsConfigDump endpoints;
  envoy::admin::v3::ListenersConfigDump listeners;
  envoy::admin::v3::RoutesConfigDump routes;
  envoy::admin::v3::SecretsConfigDump secrets;
  for (const auto& [type_url, t] : proxy.types) {
    std::vector<const policy::Resource*> held;
    t.acked.ForEach([&](const policy::Resource& r) { held.push_back(&r); });
    for (const policy::Resource* rp : held) {
      const policy::Resource& r = *rp;
      if (type_url == policy::kClusterType) {
        clusters.set_version_info(t.acked_version);
        auto* c = clusters.add_dynamic_active_clusters();
        c->set_version_info(t.acked_version);
        *c->mutable_cluster() = *r.body;
      } else if (type_url == policy::kEndpointType) {
        auto* e = endpoints.add_dynamic_endpoint_configs();
        e->set_version_info(t.acked_version);
        *e->mutable_endpoint_config() = *r.body;
      } else if (type_url == policy::kListenerType) {
        listeners.set_version_info(t.acked_version);
        auto* l = listeners.add_dynamic_listeners();
        l->set_name(r.name);
        l->mutable_active_state()->set_version_info(t.acked_version);
        *l->mutable_active_state()->mutable_listener() = *r.body;
      } else if (type_url == policy::kRouteType) {
        auto* rc = routes.add_dynamic_route_configs();
        rc->set_version_info(t.acked_version);
        *rc->mutable_route_config() = *r.body;
      } else if (type_url == policy::kSecretType) {
        // weftd sends trust bundles (ROOTCA), never workload keys; a private
        // key would still be redacted, as Envoy's own dump does.
        auto* s = secrets.add_dynamic_active_secrets();
        s->set_name(r.name);
        s->set_version_info(t.acked_version);
        envoy::extensions::transport_sockets::tls::v3::Secret secret;
        if (r.body->UnpackTo(&secret) && secret.has_tls_certificate() &&
            secret.tls_certificate().has_private_key()) {
          secret.mutable_tls_certificate()->mutable_private_key()->set_inline_string("[redacted]");
          s->mutable_secret()->PackFrom(secret);
        } else {
          *s->mutable_secret() = *r.body;
        }
      }
    }
  }
  dump.add_configs()->PackFrom(clusters);
  dump.add_configs()->PackFrom(endpoints);
  dump.add_configs()->PackFrom(listeners);
  dump.add_configs()->PackFrom(routes);
  dump.add_configs()->PackFrom(secrets);
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;  // as Envoy's own /config_dump
  auto status = google::protobuf::util::MessageToJsonString(dump, &out, options);
  if (!status.ok()) return json{{"error", std::string(status.message())}}.dump();
  return out;
}

std::string RenderCertificates(const ca::CaView& view, const std::vector<ca::IssuedRecord>& recent,
                               uint64_t issued_total, std::chrono::system_clock::time_point now) {
  auto cert = [&](X509* c) {
    return json{{"subject", ca::SubjectString(c)},
                {"serial", ca::SerialHex(c)},
                {"notBefore", common::Rfc3339Utc(ca::NotBefore(c))},
                {"notAfter", common::Rfc3339Utc(ca::NotAfter(c))},
                {"expiresInSeconds", std::chrono::duration_cast<std::chrono::seconds>(ca::NotAfter(c) - now).count()}};
  };
  json roots = json::array();
  for (const auto& r : view.roots) {
    json entry = cert(r.get());
    entry["signing"] = X509_cmp(r.get(), view.signing->root.get()) == 0;
    roots.push_back(entry);
  }
  json rotation = {{"phase", ca::RotationPhaseName(view.phase)}, {"since", common::Rfc3339Utc(view.phase_since)}};
  if (view.phase == ca::RotationPhase::kDraining) {
    rotation["retireOldRootAfter"] = common::Rfc3339Utc(view.retire_old_root_after);
  }
  json issued = json::array();
  for (const auto& r : recent) {
    issued.push_back({{"serial", r.serial_hex},
                      {"identity", r.identity},
                      {"authenticatedBy", r.authenticator},
                      {"issuedAt", common::Rfc3339Utc(r.issued_at)},
                      {"notAfter", common::Rfc3339Utc(r.not_after)}});
  }
  return json{{"mode", view.plug_in ? "plug-in" : "generated"},
              {"roots", roots},
              {"intermediate", cert(view.signing->certificate.get())},
              {"rotation", rotation},
              {"issuedTotal", issued_total},
              {"issued", issued}}
             .dump(2) +
         "\n";
}

AdminServer::AdminServer(AdminOptions options, ConfigPublisher& publisher, ProxyTracker& tracker,
                         common::MetricsRegistry& metrics)
    : options_(std::move(options)), publisher_(publisher), tracker_(tracker), metrics_(metrics) {}

AdminServer::~AdminServer() { Stop(); }

void AdminServer::Route() {
  auto& http = *http_;
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (options_.token.empty() || req.path == "/healthz" || req.path == "/readyz") {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    if (!TokenMatches(req.get_header_value("Authorization"), "Bearer " + options_.token)) {
      metrics_.GetCounter("weft_admin_unauthorized_total", "Admin requests without a valid token.").Inc();
      SendError(res, 401, "a valid bearer token is required");
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    SendJson(res, 200, json{{"status", "ok"}});
  });
  http.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    auto mesh = publisher_.mesh();
    if (!mesh) {
      SendJson(res, 503, json{{"status", "not ready"}, {"reason", "no mesh snapshot yet"}});
      return;
    }
    SendJson(res, 200, json{{"status", "ready"}, {"meshVersion", mesh->version}});
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    metrics_.GetGauge("weft_xds_connected_proxies", "Connected proxies (xDS streams).")
        .Set(static_cast<double>(tracker_.Count()));
    if (ca_ != nullptr) ca_->ExportGauges();
    res.set_content(metrics_.RenderPrometheus(), "text/plain; version=0.0.4");
  });
  http.Get("/api/v1/proxies", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(RenderProxies(tracker_.List()), "application/json");
  });
  http.Get(R"(/api/v1/proxies/(.+)/config)", [this](const httplib::Request& req, httplib::Response& res) {
    // cpp-httplib has percent-decoded the path already: decoding again
    // would turn an id's own "%41" into "A".
    const std::string id = req.matches[1];
    auto proxy = tracker_.Find(id);
    if (!proxy) {
      SendError(res, 404, "no connected proxy with id " + id);
      return;
    }
    res.set_content(RenderConfigDump(*proxy), "application/json");
  });
  http.Get("/api/v1/services", [this](const httplib::Request&, httplib::Response& res) {
    auto mesh = publisher_.mesh();
    json list = json::array();
    if (mesh) {
      for (const auto& [key, svc] : mesh->services) {
        json ports = json::array();
        for (const auto& p : svc.ports) {
          json endpoints = json::array();
          for (const auto& ep : policy::ResolveEndpoints(*mesh, svc, p)) {
            endpoints.push_back({{"address", ep.address}, {"port", ep.port}, {"zone", ep.zone},
                                 {"source", ep.source}});
          }
          ports.push_back({{"name", p.name}, {"port", p.port}, {"protocol", p.protocol},
                           {"endpoints", endpoints}});
        }
        list.push_back({{"name", svc.meta.name},
                        {"namespace", svc.meta.namespace_},
                        {"host", policy::ServiceHost(svc, policy::CompilerOptions{})},
                        {"clusterIP", svc.cluster_ip},
                        {"source", svc.meta.source.ToString()},
                        {"ports", ports}});
      }
    }
    SendJson(res, 200, json{{"meshVersion", mesh ? mesh->version : 0}, {"services", list}});
  });
  http.Get("/api/v1/policies", [this](const httplib::Request&, httplib::Response& res) {
    auto mesh = publisher_.mesh();
    auto validated = publisher_.policies();
    json policies = json::array();
    json errors = json::array();
    if (mesh) {
      for (const auto& [key, doc] : mesh->policies) {
        json entry = {{"kind", doc.kind},
                      {"namespace", doc.meta.namespace_},
                      {"name", doc.meta.name},
                      {"source", doc.meta.source.ToString()},
                      {"status", "Accepted"}};
        json own_errors = json::array();
        json warnings = json::array();
        // Validation by policy/ (field paths and reasons); an Invalid
        // object is left out of every proxy's configuration.
        if (validated) {
          if (auto it = validated->statuses.find(key); it != validated->statuses.end()) {
            for (const auto& e : it->second.errors) own_errors.push_back(ErrorJson(e));
            for (const auto& e : it->second.warnings) warnings.push_back(ErrorJson(e));
          }
        }
        // A newer version that discovery could not decode (the last good
        // one stays in force).
        for (const auto& e : mesh->errors) {
          if (e.kind == doc.kind && e.namespace_ == doc.meta.namespace_ && e.name == doc.meta.name) {
            own_errors.push_back(ErrorJson(e));
          }
        }
        if (!own_errors.empty()) {
          entry["status"] = "Invalid";
          entry["errors"] = own_errors;
        }
        if (!warnings.empty()) entry["warnings"] = warnings;
        policies.push_back(entry);
      }
      for (const auto& e : mesh->errors) errors.push_back(ErrorJson(e));
    }
    SendJson(res, 200, json{{"meshVersion", mesh ? mesh->version : 0}, {"policies", policies},
                            {"errors", errors}});
  });
  http.Get("/api/v1/certificates", [this](const httplib::Request& req, httplib::Response& res) {
    if (ca_ == nullptr) {
      SendError(res, 503, "the CA is not running");
      return;
    }
    size_t limit = 100;
    if (req.has_param("limit")) {
      int parsed = 0;
      if (!absl::SimpleAtoi(req.get_param_value("limit"), &parsed) || parsed < 0 || parsed > 10000) {
        SendError(res, 400, "limit: want an integer from 0 to 10000");
        return;
      }
      limit = static_cast<size_t>(parsed);
    }
    res.set_content(RenderCertificates(*ca_->rotator().Current(), ca_->issued().Recent(limit),
                                       ca_->issued().Total(), std::chrono::system_clock::now()),
                    "application/json");
  });
  http.Post("/api/v1/certificates/rotate", [this](const httplib::Request&, httplib::Response& res) {
    if (ca_ == nullptr) {
      SendError(res, 503, "the CA is not running");
      return;
    }
    absl::Status s = ca_->rotator().Rotate();
    if (!s.ok()) {
      SendError(res, s.code() == absl::StatusCode::kFailedPrecondition ? 409 : 500, std::string(s.message()));
      return;
    }
    auto view = ca_->rotator().Current();
    SendJson(res, 202, json{{"status", "rotation started"}, {"phase", ca::RotationPhaseName(view->phase)},
                            {"trustBundle", view->roots_pem.size()}});
  });
  http.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.body.empty()) {
      std::string message = res.status == 404 ? "no such endpoint: " + req.path
                                              : "HTTP status " + std::to_string(res.status);
      res.set_content(json{{"error", message}}.dump() + "\n", "application/json");
    }
  });
}

absl::Status AdminServer::Start() {
  http_ = std::make_unique<httplib::Server>();
  Route();
  if (options_.port == 0) {
    bound_port_ = http_->bind_to_any_port(options_.host);
  } else {
    bound_port_ = http_->bind_to_port(options_.host, options_.port) ? options_.port : -1;
  }
  if (bound_port_ <= 0) {
    return absl::UnavailableError("admin API: cannot listen on " + options_.host + ":" +
                                  std::to_string(options_.port));
  }
  thread_ = std::thread([this] { http_->listen_after_bind(); });
  WEFT_LOG(INFO) << "admin API on http://" << options_.host << ":" << bound_port_;
  return absl::OkStatus();
}

void AdminServer::Stop() {
  if (http_) http_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace weft::server
