// The Gateway API mesh conformance suite (GAMMA, conformance/tests/mesh/ in
// kubernetes-sigs/gateway-api) reproduced end to end: every HTTPRoute case of
// that suite, with its manifest, its requests and its expected backend,
// status, headers, upstream path and redirect, as one table. Our own code;
// the requests and expectations are the suite's.
//
// The mesh is the suite's (conformance/mesh/manifests.yaml): Services echo,
// echo-v1 and echo-v2 (ports 80 and 8080) in gateway-conformance-mesh, the
// echo-v1 / echo-v2 workloads behind real weft-proxy sidecars on their own
// loopback IPs, and a second echo-v1 workload in
// gateway-conformance-mesh-consumer. weftd runs in file mode; each suite's
// manifest is written in turn into the same file. The client is a caller's
// sidecar driven as its app would drive it (Host header, or an absolute-form
// URI where the suite connects to one Service while sending another's Host).
// A case passes when the suite's expectations hold once the caller's sidecar
// has the manifest's routes (read from its /config_dump).
#include <httplib.h>

#include <catch2/catch.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <tuple>
#include <vector>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tests/e2e/harness/process.h"
#include "tests/e2e/harness/sidecar_mesh.h"

namespace weft::e2e {
namespace {

constexpr char kMeshNs[] = "gateway-conformance-mesh";
constexpr char kConsumerNs[] = "gateway-conformance-mesh-consumer";

using Headers = std::vector<std::pair<std::string, std::string>>;

// What the caller's app sends.
struct Request {
  std::string host = "echo";  // the suite's default host
  std::string path = "/";
  Headers headers;
  // The suite's "connect to X, send Host: Y" (MeshFrontendHostname): the
  // request goes out in absolute form to http://<connect_to><path> with the
  // Host header above, as an app behind an HTTP proxy does.
  std::string connect_to;
};

// What the suite expects. Empty fields are not checked.
struct Expected {
  int status = 200;
  std::string backend;                                 // the echo instance that answered
  std::string path;                                    // the request target the backend saw
  std::map<std::string, std::string> request_headers;  // as the backend saw them
  std::vector<std::string> absent_request_headers;
  std::map<std::string, std::string> response_headers;
  std::vector<std::string> absent_response_headers;
  std::string location;  // the redirect's Location
};

enum class Caller { kMesh, kConsumer };

struct Case {
  std::string name;
  Request request;
  Expected expected;
  Caller caller = Caller::kMesh;
};

// One conformance test: its manifest (HTTPRoutes) and its cases.
struct ConformanceTest {
  std::string name;
  std::vector<std::string> route_names;  // "ns/name" of the HTTPRoutes in `manifest`
  std::string manifest;
  std::vector<Case> cases;
};

struct Reply {
  int status = 0;
  std::string error;
  httplib::Headers headers;
  nlohmann::json echo;  // the echo app's JSON (null for local replies)
};

class Mesh : public SidecarMesh {
 public:
  Mesh() : SidecarMesh("weft-e2e-gamma-") {
    std::string manifests = absl::StrCat(Services(kMeshNs), Services(kConsumerNs));
    for (const SidecarWorkload* w : {&v1, &v2, &consumer}) {
      absl::StrAppend(&manifests,
                      "---\napiVersion: weft.io/v1alpha1\nkind: Workload\nmetadata: {name: ", w->name,
                      "-0, namespace: ", w->ns, ", labels: {app: echo, version: ", w->name.substr(5),
                      "}}\nspec: {address: ", w->ip, ", ports: {http: ", w->inbound_port,
                      ", http-alt: ", w->inbound_port, "}, serviceAccount: ", w->service_account, "}\n");
    }
    Apply("mesh.yaml", manifests);
    REQUIRE(StartWeftd({&v1, &v2, &consumer}).ok());
    for (SidecarWorkload* w : {&v1, &v2, &consumer}) {
      INFO(w->Label(true));
      REQUIRE(StartWorkload(*w,
                            {BinaryPath("echo-server"), absl::StrCat("--addr=", w->ip, ":", w->app_port),
                             "--name=" + w->name},
                            true)
                  .ok());
    }
  }

  const SidecarWorkload& CallerOf(Caller c) const { return c == Caller::kConsumer ? consumer : v1; }

  Reply Send(const SidecarWorkload& from, const Request& r) {
    httplib::Client client(from.ip, from.outbound_port);
    client.set_connection_timeout(5);
    client.set_read_timeout(10);
    httplib::Headers headers{{"Host", r.host}};
    for (const auto& [k, v] : r.headers) headers.emplace(k, v);
    const std::string target = r.connect_to.empty() ? r.path : absl::StrCat("http://", r.connect_to, r.path);
    auto res = client.Get(target, headers);
    Reply out;
    if (!res) {
      out.error = httplib::to_string(res.error());
      return out;
    }
    out.status = res->status;
    out.headers = res->headers;
    if (absl::StartsWith(res->get_header_value("Content-Type"), "application/json")) {
      out.echo = nlohmann::json::parse(res->body, nullptr, false);
    }
    return out;
  }

  // Applies a conformance test's manifest and waits until both callers'
  // sidecars route with exactly its HTTPRoutes.
  void ApplyTest(const ConformanceTest& t, const std::vector<std::string>& previous) {
    Apply("routes.yaml", t.manifest.empty() ? "# no routes\n" : t.manifest);
    for (const SidecarWorkload* w : {&v1, &consumer}) {
      bool converged = WaitFor(
          [&] {
            const std::string dump = HttpGet(w->ip, w->admin_port, "/config_dump").body;
            for (const auto& r : t.route_names) {
              // Consumer routes reach only callers in their own namespace.
              if (w == &v1 && absl::StartsWith(r, std::string(kConsumerNs) + "/")) continue;
              if (!absl::StrContains(dump, "\"" + r + "/")) return false;
            }
            for (const auto& r : previous) {
              if (absl::c_linear_search(t.route_names, r)) continue;
              if (absl::StrContains(dump, "\"" + r + "/")) return false;
            }
            return true;
          },
          absl::Seconds(20));
      INFO(t.name << ": routes " << absl::StrJoin(t.route_names, ", ") << " in " << w->name << "." << w->ns
                  << "'s sidecar");
      REQUIRE(converged);
    }
  }

  SidecarWorkload v1{"echo-v1", kMeshNs, "127.0.0.21", "echo-v1"};
  SidecarWorkload v2{"echo-v2", kMeshNs, "127.0.0.22", "echo-v2"};
  SidecarWorkload consumer{"echo-v1", kConsumerNs, "127.0.0.23", "echo-v1"};

 private:
  // conformance/mesh/manifests.yaml: the HTTP ports of echo, echo-v1, echo-v2.
  static std::string Services(const std::string& ns) {
    std::string out;
    for (const auto& [name, selector] :
         std::vector<std::pair<std::string, std::string>>{{"echo", "{app: echo}"},
                                                          {"echo-v1", "{app: echo, version: v1}"},
                                                          {"echo-v2", "{app: echo, version: v2}"}}) {
      absl::StrAppend(&out, "---\napiVersion: v1\nkind: Service\nmetadata: {name: ", name,
                      ", namespace: ", ns, "}\nspec:\n  selector: ", selector,
                      "\n  ports: [{name: http, port: 80, appProtocol: http}, {name: http-alt, port: 8080, "
                      "appProtocol: http}]\n");
    }
    return out;
  }
};

// Every way `reply` differs from `want`; empty when the case passes.
std::vector<std::string> Mismatches(const Reply& reply, const Expected& want) {
  std::vector<std::string> out;
  if (reply.status != want.status) {
    out.push_back(absl::StrCat("status ", reply.status, reply.error.empty() ? "" : " (" + reply.error + ")",
                               ", want ", want.status));
    return out;
  }
  const nlohmann::json& echo = reply.echo;
  auto echoed = [&](const std::string& field) -> std::string {
    if (!echo.is_object() || !echo.contains(field) || !echo[field].is_string()) return "<none>";
    return echo[field].get<std::string>();
  };
  if (!want.backend.empty() && echoed("name") != want.backend) {
    out.push_back("backend " + echoed("name") + ", want " + want.backend);
  }
  if (!want.path.empty() && echoed("path") != want.path)
    out.push_back("path " + echoed("path") + ", want " + want.path);
  const nlohmann::json headers =
      echo.is_object() && echo.contains("headers") ? echo["headers"] : nlohmann::json::object();
  for (const auto& [name, value] : want.request_headers) {
    const std::string key = absl::AsciiStrToLower(name);
    const std::string got = headers.contains(key) ? headers[key].get<std::string>() : "<absent>";
    if (got != value) out.push_back("request header " + name + ": " + got + ", want " + value);
  }
  for (const auto& name : want.absent_request_headers) {
    if (headers.contains(absl::AsciiStrToLower(name))) out.push_back("request header " + name + " present");
  }
  for (const auto& [name, value] : want.response_headers) {
    const std::string got = reply.headers.count(name) ? reply.headers.find(name)->second : "<absent>";
    if (got != value) out.push_back("response header " + name + ": " + got + ", want " + value);
  }
  for (const auto& name : want.absent_response_headers) {
    if (reply.headers.count(name)) out.push_back("response header " + name + " present");
  }
  if (!want.location.empty()) {
    const std::string got =
        reply.headers.count("Location") ? reply.headers.find("Location")->second : "<absent>";
    if (got != want.location) out.push_back("location " + got + ", want " + want.location);
  }
  return out;
}

// ---- The suite's manifests (conformance/tests/mesh/*.yaml) ----

std::string Route(const std::string& name, const std::string& ns, const std::string& parent,
                  const std::string& rules) {
  return absl::StrCat(
      "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: ", name,
      "\n  namespace: ", ns, "\nspec:\n  parentRefs:\n  - ", parent, "\n  rules:\n", rules);
}

constexpr char kEchoPort80[] = "{group: \"\", kind: Service, name: echo, port: 80}";

// A PathPrefix rule with one RequestRedirect filter.
std::string RedirectRule(const std::string& prefix, const std::string& redirect) {
  return absl::StrCat("  - matches: [{path: {type: PathPrefix, value: ", prefix,
                      "}}]\n    filters: [{type: RequestRedirect, requestRedirect: ", redirect, "}]\n");
}

std::string Backend(const std::string& name, int port, const std::string& extra = "") {
  return absl::StrCat("    backendRefs: [{name: ", name, ", port: ", port, extra, "}]\n");
}

// The request header changes of httproute-request-header-modifier.yaml for
// one path: on the rule, or on its backendRef (the -backend variant).
std::string HeaderModifierRule(const std::string& path, const std::string& modifier, bool on_backend) {
  const std::string filter = "[{type: RequestHeaderModifier, requestHeaderModifier: " + modifier + "}]";
  std::string rule = absl::StrCat("  - matches: [{path: {type: PathPrefix, value: ", path, "}}]\n");
  if (on_backend)
    return absl::StrCat(rule, "    backendRefs: [{name: echo-v1, port: 8080, filters: ", filter, "}]\n");
  return absl::StrCat(rule, "    filters: ", filter, "\n", Backend("echo-v1", 8080));
}

std::string HeaderModifierManifest(const std::string& name, bool on_backend) {
  return Route(
      name, kMeshNs, kEchoPort80,
      absl::StrCat(
          HeaderModifierRule("/set", "{set: [{name: X-Header-Set, value: set-overwrites-values}]}",
                             on_backend),
          HeaderModifierRule("/add", "{add: [{name: X-Header-Add, value: add-appends-values}]}", on_backend),
          HeaderModifierRule("/remove", "{remove: [X-Header-Remove]}", on_backend),
          HeaderModifierRule(
              "/multiple",
              "{set: [{name: X-Header-Set-1, value: header-set-1}, {name: X-Header-Set-2, value: "
              "header-set-2}], add: [{name: X-Header-Add-1, value: header-add-1}, {name: "
              "X-Header-Add-2, value: header-add-2}, {name: X-Header-Add-3, value: header-add-3}], "
              "remove: [X-Header-Remove-1, X-Header-Remove-2]}",
              on_backend),
          HeaderModifierRule(
              "/case-insensitivity",
              "{set: [{name: X-Header-Set, value: header-set}], add: [{name: X-Header-Add, value: "
              "header-add}], remove: [X-Header-Remove]}",
              on_backend)));
}

std::vector<Case> HeaderModifierCases() {
  const Headers other{{"Some-Other-Header", "val"}};
  auto with = [](Headers h, std::string k, std::string v) {
    h.emplace_back(std::move(k), std::move(v));
    return h;
  };
  return {
      {"set",
       {.path = "/set", .headers = other},
       {.backend = "echo-v1",
        .path = "/set",
        .request_headers = {{"Some-Other-Header", "val"}, {"X-Header-Set", "set-overwrites-values"}}}},
      {"set overwrites",
       {.path = "/set", .headers = with(other, "X-Header-Set", "some-other-value")},
       {.backend = "echo-v1",
        .path = "/set",
        .request_headers = {{"Some-Other-Header", "val"}, {"X-Header-Set", "set-overwrites-values"}}}},
      {"add",
       {.path = "/add", .headers = other},
       {.backend = "echo-v1",
        .path = "/add",
        .request_headers = {{"Some-Other-Header", "val"}, {"X-Header-Add", "add-appends-values"}}}},
      {"add appends",
       {.path = "/add", .headers = with(other, "X-Header-Add", "some-other-value")},
       {.backend = "echo-v1",
        .path = "/add",
        .request_headers = {{"Some-Other-Header", "val"},
                            {"X-Header-Add", "some-other-value,add-appends-values"}}}},
      {"remove",
       {.path = "/remove", .headers = {{"X-Header-Remove", "val"}}},
       {.backend = "echo-v1", .path = "/remove", .absent_request_headers = {"X-Header-Remove"}}},
      {"multiple",
       {.path = "/multiple",
        .headers = {{"X-Header-Set-2", "set-val-2"},
                    {"X-Header-Add-2", "add-val-2"},
                    {"X-Header-Remove-2", "remove-val-2"},
                    {"Another-Header", "another-header-val"}}},
       {.backend = "echo-v1",
        .path = "/multiple",
        .request_headers = {{"X-Header-Set-1", "header-set-1"},
                            {"X-Header-Set-2", "header-set-2"},
                            {"X-Header-Add-1", "header-add-1"},
                            {"X-Header-Add-2", "add-val-2,header-add-2"},
                            {"X-Header-Add-3", "header-add-3"},
                            {"Another-Header", "another-header-val"}},
        .absent_request_headers = {"X-Header-Remove-1", "X-Header-Remove-2"}}},
      {"case insensitivity",
       {.path = "/case-insensitivity",
        .headers = {{"x-header-set", "original-val-set"},
                    {"x-header-add", "original-val-add"},
                    {"x-header-remove", "original-val-remove"},
                    {"Another-Header", "another-header-val"}}},
       {.backend = "echo-v1",
        .path = "/case-insensitivity",
        .request_headers = {{"X-Header-Set", "header-set"},
                            {"X-Header-Add", "original-val-add,header-add"},
                            {"Another-Header", "another-header-val"}},
        .absent_request_headers = {"x-header-remove", "X-Header-Remove"}}},
  };
}

// A redirect case: the suite's status and RedirectRequest (scheme, host,
// port, path; unset parts keep the request's, well-known ports elided).
Case Redirect(const std::string& path, int status, const std::string& location) {
  return {path, {.path = path}, {.status = status, .location = location}};
}

std::vector<ConformanceTest> Suite() {
  const std::string mesh(kMeshNs);
  const std::string set_header =
      "    filters: [{type: ResponseHeaderModifier, responseHeaderModifier: {set: "
      "[{name: X-Header-Set, value: ";
  std::vector<ConformanceTest> suite = {
      {"MeshBasic", {}, "", {{"plain request", {.host = "echo"}, {.status = 200}}}},
      {"MeshHTTPRouteSimpleSameNamespace",
       {mesh + "/mesh-simple"},
       Route("mesh-simple", kMeshNs, kEchoPort80, "  - backendRefs: [{name: echo-v1, port: 80}]\n"),
       {{"reaches echo-v1", {.host = "echo", .path = "/"}, {.backend = "echo-v1"}}}},
      {"MeshTrafficSplit",
       {mesh + "/mesh-split"},
       Route("mesh-split", kMeshNs, "{group: \"\", kind: Service, name: echo}",
             absl::StrCat("  - matches: [{path: {type: Exact, value: /v1}}]\n", Backend("echo-v1", 80),
                          "  - matches: [{path: {type: Exact, value: /v2}}]\n", Backend("echo-v2", 80))),
       {{"/v1", {.path = "/v1"}, {.backend = "echo-v1"}}, {"/v2", {.path = "/v2"}, {.backend = "echo-v2"}}}},
      {"MeshFrontend",
       {mesh + "/mesh-frontend"},
       Route("mesh-frontend", kMeshNs, "{group: \"\", kind: Service, name: echo-v2}",
             absl::StrCat("  - ", set_header.substr(4), "set}]}}]\n", Backend("echo-v2", 80))),
       {{"send to service",
         {.host = "echo-v2"},
         {.backend = "echo-v2", .response_headers = {{"X-Header-Set", "set"}}}},
        // The pod-IP case: the workload's own ip:port, filled in by the test.
        {"send to pod IP",
         {.host = "<echo-v2 pod>"},
         {.backend = "echo-v2", .absent_response_headers = {"X-Header-Set"}}}}},
      {"MeshFrontendHostname",
       {mesh + "/mesh-frontend"},
       "<same as MeshFrontend>",
       {{"send to service with wrong hostname",
         {.host = "echo-v1", .connect_to = "echo-v2"},
         {.backend = "echo-v2", .response_headers = {{"X-Header-Set", "set"}}}},
        {"send to other service with matching hostname",
         {.host = "echo-v2", .connect_to = "echo-v1"},
         {.backend = "echo-v1", .absent_response_headers = {"X-Header-Set"}}}}},
      {"MeshPorts",
       {mesh + "/mesh-ports-v1", mesh + "/mesh-ports-v2"},
       absl::StrCat(Route("mesh-ports-v1", kMeshNs, "{group: \"\", kind: Service, name: echo-v1, port: 80}",
                          absl::StrCat("  - ", set_header.substr(4), "v1}]}}]\n", Backend("echo-v1", 80))),
                    Route("mesh-ports-v2", kMeshNs, "{group: \"\", kind: Service, name: echo-v2}",
                          absl::StrCat("  - ", set_header.substr(4), "v2}]}}]\n", Backend("echo-v2", 80)))),
       {{"explicit port set, send to that port",
         {.host = "echo-v1"},
         {.backend = "echo-v1", .response_headers = {{"X-Header-Set", "v1"}}}},
        {"explicit port, send to an excluded port",
         {.host = "echo-v1:8080"},
         {.backend = "echo-v1", .absent_response_headers = {"X-Header-Set"}}},
        {"no port set",
         {.host = "echo-v2"},
         {.backend = "echo-v2", .response_headers = {{"X-Header-Set", "v2"}}}},
        {"no port set, port 8080",
         {.host = "echo-v2:8080"},
         {.backend = "echo-v2", .response_headers = {{"X-Header-Set", "v2"}}}}}},
      {"MeshConsumerRoute",
       {std::string(kConsumerNs) + "/mesh-consumer-route"},
       Route("mesh-consumer-route", kConsumerNs,
             absl::StrCat("{group: \"\", kind: Service, name: echo-v1, namespace: ", kMeshNs, "}"),
             absl::StrCat("  - ", set_header.substr(4), "set}]}}]\n",
                          Backend("echo-v1", 80, absl::StrCat(", namespace: ", kMeshNs)))),
       {{"request from consumer route's namespace modified by HTTPRoute",
         {.host = "echo-v1.gateway-conformance-mesh"},
         {.backend = "echo-v1", .response_headers = {{"X-Header-Set", "set"}}},
         Caller::kConsumer},
        {"request not from consumer route's namespace not modified by HTTPRoute",
         {.host = "echo-v1.gateway-conformance-mesh"},
         {.backend = "echo-v1", .absent_response_headers = {"X-Header-Set"}}}}},
      {"MeshHTTPRouteMatching",
       {mesh + "/mesh-matching"},
       Route("mesh-matching", kMeshNs, kEchoPort80,
             absl::StrCat(
                 "  - matches: [{path: {type: PathPrefix, value: /}}, {headers: [{name: version, value: "
                 "one}]}]\n",
                 Backend("echo-v1", 8080),
                 "  - matches: [{path: {type: PathPrefix, value: /v2}}, {headers: [{name: version, value: "
                 "two}]}]\n",
                 Backend("echo-v2", 8080))),
       {{"/", {.path = "/"}, {.backend = "echo-v1"}},
        {"/example", {.path = "/example"}, {.backend = "echo-v1"}},
        {"/ version one", {.path = "/", .headers = {{"Version", "one"}}}, {.backend = "echo-v1"}},
        {"/v2", {.path = "/v2"}, {.backend = "echo-v2"}},
        {"/v2/example", {.path = "/v2/example"}, {.backend = "echo-v2"}},
        {"/ version two", {.path = "/", .headers = {{"Version", "two"}}}, {.backend = "echo-v2"}},
        {"/v2/", {.path = "/v2/"}, {.backend = "echo-v2"}},
        {"/v2example is not a segment prefix", {.path = "/v2example"}, {.backend = "echo-v1"}},
        {"/foo/v2/example", {.path = "/foo/v2/example"}, {.backend = "echo-v1"}}}},
      {"MeshHTTPRouteQueryParamMatching",
       {mesh + "/mesh-query-param-matching"},
       Route(
           "mesh-query-param-matching", kMeshNs, kEchoPort80,
           absl::StrCat(
               "  - matches: [{queryParams: [{name: animal, value: whale}]}]\n", Backend("echo-v1", 8080),
               "  - matches: [{queryParams: [{name: animal, value: dolphin}]}]\n", Backend("echo-v2", 8080),
               "  - matches: [{path: {type: PathPrefix, value: /path1}, queryParams: [{name: animal, value: "
               "whale}]}]\n",
               Backend("echo-v1", 8080),
               "  - matches: [{headers: [{name: version, value: one}], queryParams: [{name: animal, value: "
               "whale}]}]\n",
               Backend("echo-v2", 8080),
               "  - matches:\n    - {path: {type: PathPrefix, value: /path3}, queryParams: [{name: animal, "
               "value: "
               "shark}]}\n    - {path: {type: PathPrefix, value: /path4}, headers: [{name: version, value: "
               "three}], "
               "queryParams: [{name: animal, value: kraken}]}\n",
               Backend("echo-v1", 8080), "  - matches: [{path: {type: PathPrefix, value: /path5}}]\n",
               Backend("echo-v1", 8080), "  - matches: [{queryParams: [{name: animal, value: hydra}]}]\n",
               Backend("echo-v2", 8080))),
       {{"?animal=whale", {.path = "/?animal=whale"}, {.backend = "echo-v1"}},
        {"?animal=dolphin", {.path = "/?animal=dolphin"}, {.backend = "echo-v2"}},
        {"?animal=whale&otherparam",
         {.path = "/?animal=whale&otherparam=irrelevant"},
         {.backend = "echo-v1"}},
        {"?animal=dolphin&color", {.path = "/?animal=dolphin&color=yellow"}, {.backend = "echo-v2"}},
        {"?color=blue", {.path = "/?color=blue"}, {.status = 404}},
        {"?animal=dog", {.path = "/?animal=dog"}, {.status = 404}},
        {"?animal=whaledolphin", {.path = "/?animal=whaledolphin"}, {.status = 404}},
        {"no query", {.path = "/"}, {.status = 404}},
        {"/path1?animal=whale", {.path = "/path1?animal=whale"}, {.backend = "echo-v1"}},
        {"version one ?animal=whale",
         {.path = "/?animal=whale", .headers = {{"version", "one"}}},
         {.backend = "echo-v2"}},
        {"/path3?animal=shark", {.path = "/path3?animal=shark"}, {.backend = "echo-v1"}},
        {"version three /path4?animal=kraken",
         {.path = "/path4?animal=kraken", .headers = {{"version", "three"}}},
         {.backend = "echo-v1"}},
        {"?animal=shark alone", {.path = "/?animal=shark"}, {.status = 404}},
        {"/path4?animal=kraken without header", {.path = "/path4?animal=kraken"}, {.status = 404}},
        {"/path5?animal=hydra: path beats query", {.path = "/path5?animal=hydra"}, {.backend = "echo-v1"}}}},
      {"MeshHTTPRouteRequestHeaderModifier",
       {mesh + "/mesh-request-header-modifier"},
       HeaderModifierManifest("mesh-request-header-modifier", false),
       HeaderModifierCases()},
      {"MeshHTTPRouteBackendRequestHeaderModifier",
       {mesh + "/mesh-request-header-modifier-backend"},
       HeaderModifierManifest("mesh-request-header-modifier-backend", true),
       HeaderModifierCases()},
      {"MeshHTTPRouteRewritePath",
       {mesh + "/mesh-rewrite-path"},
       Route("mesh-rewrite-path", kMeshNs, kEchoPort80,
             absl::StrCat(
                 "  - matches: [{path: {type: PathPrefix, value: /prefix/one}}]\n    filters: [{type: "
                 "URLRewrite, "
                 "urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /one}}}]\n",
                 Backend("echo-v1", 80),
                 "  - matches: [{path: {type: PathPrefix, value: /strip-prefix}}]\n    filters: [{type: "
                 "URLRewrite, "
                 "urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /}}}]\n",
                 Backend("echo-v1", 80),
                 "  - matches: [{path: {type: PathPrefix, value: /full/one}}]\n    filters: [{type: "
                 "URLRewrite, "
                 "urlRewrite: {path: {type: ReplaceFullPath, replaceFullPath: /one}}}]\n",
                 Backend("echo-v1", 80),
                 "  - matches: [{path: {type: PathPrefix, value: /full/rewrite-path-and-modify-headers}}]\n"
                 "    filters:\n    - {type: URLRewrite, urlRewrite: {path: {type: ReplaceFullPath, "
                 "replaceFullPath: "
                 "/test}}}\n    - {type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: "
                 "X-Header-Set, "
                 "value: set-overwrites-values}], add: [{name: X-Header-Add, value: header-val-1}, {name: "
                 "X-Header-Add-Append, value: header-val-2}], remove: [X-Header-Remove]}}\n",
                 Backend("echo-v1", 80),
                 "  - matches: [{path: {type: PathPrefix, value: /prefix/rewrite-path-and-modify-headers}}]\n"
                 "    filters:\n    - {type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, "
                 "replacePrefixMatch: /prefix}}}\n    - {type: RequestHeaderModifier, requestHeaderModifier: "
                 "{set: "
                 "[{name: X-Header-Set, value: set-overwrites-values}], add: [{name: X-Header-Add, value: "
                 "header-val-1}, {name: X-Header-Add-Append, value: header-val-2}], remove: "
                 "[X-Header-Remove]}}\n",
                 Backend("echo-v1", 80))),
       {{"/prefix/one/two", {.path = "/prefix/one/two"}, {.backend = "echo-v1", .path = "/one/two"}},
        {"/strip-prefix/three", {.path = "/strip-prefix/three"}, {.backend = "echo-v1", .path = "/three"}},
        {"/strip-prefix", {.path = "/strip-prefix"}, {.backend = "echo-v1", .path = "/"}},
        {"/full/one/two", {.path = "/full/one/two"}, {.backend = "echo-v1", .path = "/one"}},
        {"full path and headers",
         {.path = "/full/rewrite-path-and-modify-headers/test",
          .headers = {{"X-Header-Remove", "remove-val"},
                      {"X-Header-Add-Append", "append-val-1"},
                      {"X-Header-Set", "set-val"}}},
         {.backend = "echo-v1",
          .path = "/test",
          .request_headers = {{"X-Header-Add", "header-val-1"},
                              {"X-Header-Add-Append", "append-val-1,header-val-2"},
                              {"X-Header-Set", "set-overwrites-values"}},
          .absent_request_headers = {"X-Header-Remove"}}},
        {"prefix and headers",
         {.path = "/prefix/rewrite-path-and-modify-headers/one",
          .headers = {{"X-Header-Remove", "remove-val"},
                      {"X-Header-Add-Append", "append-val-1"},
                      {"X-Header-Set", "set-val"}}},
         {.backend = "echo-v1",
          .path = "/prefix/one",
          .request_headers = {{"X-Header-Add", "header-val-1"},
                              {"X-Header-Add-Append", "append-val-1,header-val-2"},
                              {"X-Header-Set", "set-overwrites-values"}},
          .absent_request_headers = {"X-Header-Remove"}}}}},
      {"MeshHTTPRouteNamedRule",
       {mesh + "/mesh-named-rules"},
       Route("mesh-named-rules", kMeshNs, kEchoPort80,
             absl::StrCat("  - name: named-rule\n    matches: [{path: {type: PathPrefix, value: /named}}]\n",
                          Backend("echo-v1", 8080),
                          "  - matches: [{path: {type: PathPrefix, value: /unnamed}}]\n",
                          Backend("echo-v2", 8080))),
       {{"/named", {.path = "/named"}, {.backend = "echo-v1", .path = "/named"}},
        {"/unnamed", {.path = "/unnamed"}, {.backend = "echo-v2", .path = "/unnamed"}}}},
      {"MeshHTTPRouteRedirectHostAndStatus",
       {mesh + "/mesh-redirect-host-and-status"},
       Route("mesh-redirect-host-and-status", kMeshNs, kEchoPort80,
             absl::StrCat(RedirectRule("/hostname-redirect", "{hostname: example.org}"),
                          RedirectRule("/host-and-status", "{statusCode: 301, hostname: example.org}"),
                          RedirectRule("/host-and-temporary", "{statusCode: 307, hostname: example.org}"),
                          RedirectRule("/host-and-permanent", "{statusCode: 308, hostname: example.org}"))),
       {Redirect("/hostname-redirect", 302, "http://example.org/hostname-redirect"),
        Redirect("/host-and-status", 301, "http://example.org/host-and-status")}},
      {"MeshHTTPRouteAdditionalRedirectHostAndStatus",
       {mesh + "/mesh-additional-redirect-host-and-status"},
       Route("mesh-additional-redirect-host-and-status", kMeshNs, kEchoPort80,
             absl::StrCat(
                 RedirectRule("/host-and-status-temporary", "{statusCode: 307, hostname: example.org}"),
                 RedirectRule("/host-and-status-permanent", "{statusCode: 308, hostname: example.org}"))),
       {Redirect("/host-and-status-temporary", 307, "http://example.org/host-and-status-temporary"),
        Redirect("/host-and-status-permanent", 308, "http://example.org/host-and-status-permanent")}},
      {"MeshHTTPRouteRedirectPath",
       {mesh + "/mesh-redirect-path"},
       Route(
           "mesh-redirect-path", kMeshNs, kEchoPort80,
           absl::StrCat(
               RedirectRule("/original-prefix",
                            "{path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}}"),
               RedirectRule("/full",
                            "{path: {type: ReplaceFullPath, replaceFullPath: /full-path-replacement}}"),
               RedirectRule("/path-and-host",
                            "{hostname: example.org, path: {type: ReplacePrefixMatch, replacePrefixMatch: "
                            "/replacement-prefix}}"),
               RedirectRule(
                   "/path-and-status",
                   "{path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}, statusCode: "
                   "301}"),
               RedirectRule(
                   "/path-and-temporary",
                   "{path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}, statusCode: "
                   "307}"),
               RedirectRule(
                   "/path-and-permanent",
                   "{path: {type: ReplacePrefixMatch, replacePrefixMatch: /replacement-prefix}, statusCode: "
                   "308}"),
               RedirectRule("/full-path-and-host",
                            "{hostname: example.org, path: {type: ReplaceFullPath, replaceFullPath: "
                            "/replacement-full}}"),
               RedirectRule(
                   "/full-path-and-status",
                   "{path: {type: ReplaceFullPath, replaceFullPath: /replacement-full}, statusCode: 301}"),
               RedirectRule(
                   "/full-path-and-temporary",
                   "{path: {type: ReplaceFullPath, replaceFullPath: /replacement-full}, statusCode: 307}"),
               RedirectRule(
                   "/full-path-and-permanent",
                   "{path: {type: ReplaceFullPath, replaceFullPath: /replacement-full}, statusCode: 308}"))),
       {Redirect("/original-prefix/lemon", 302, "http://echo/replacement-prefix/lemon"),
        Redirect("/full/path/original", 302, "http://echo/full-path-replacement"),
        Redirect("/path-and-host", 302, "http://example.org/replacement-prefix"),
        Redirect("/path-and-status", 301, "http://echo/replacement-prefix"),
        Redirect("/full-path-and-host", 302, "http://example.org/replacement-full"),
        Redirect("/full-path-and-status", 301, "http://echo/replacement-full")}},
      {"MeshHTTPRouteRedirectPort",
       {mesh + "/mesh-redirect-port"},
       Route("mesh-redirect-port", kMeshNs, kEchoPort80,
             absl::StrCat(RedirectRule("/port", "{port: 8083}"),
                          RedirectRule("/port-and-host", "{hostname: example.org, port: 8083}"),
                          RedirectRule("/port-and-status", "{port: 8083, statusCode: 301}"),
                          RedirectRule("/port-and-temporary", "{port: 8083, statusCode: 307}"),
                          RedirectRule("/port-and-permanent", "{port: 8083, statusCode: 308}"),
                          RedirectRule("/port-and-host-and-status",
                                       "{port: 8083, hostname: example.org, statusCode: 302}"))),
       {Redirect("/port", 302, "http://echo:8083/port"),
        Redirect("/port-and-host", 302, "http://example.org:8083/port-and-host"),
        Redirect("/port-and-status", 301, "http://echo:8083/port-and-status"),
        Redirect("/port-and-host-and-status", 302, "http://example.org:8083/port-and-host-and-status")}},
      {"MeshHTTPRouteSchemeRedirect",
       {mesh + "/mesh-redirect-scheme"},
       Route("mesh-redirect-scheme", kMeshNs, kEchoPort80,
             absl::StrCat(RedirectRule("/scheme", "{scheme: https}"),
                          RedirectRule("/scheme-and-host", "{hostname: example.org, scheme: https}"),
                          RedirectRule("/scheme-and-status", "{scheme: https, statusCode: 301}"),
                          RedirectRule("/scheme-and-temporary", "{scheme: https, statusCode: 307}"),
                          RedirectRule("/scheme-and-permanent", "{scheme: https, statusCode: 308}"),
                          RedirectRule("/scheme-and-host-and-status",
                                       "{scheme: https, statusCode: 302, hostname: example.org}"))),
       {Redirect("/scheme", 302, "https://echo/scheme"),
        Redirect("/scheme-and-host", 302, "https://example.org/scheme-and-host"),
        Redirect("/scheme-and-status", 301, "https://echo/scheme-and-status"),
        Redirect("/scheme-and-host-and-status", 302, "https://example.org/scheme-and-host-and-status")}},
  };
  for (const auto& [test, file_name, path, status, with_host] :
       std::vector<std::tuple<std::string, std::string, std::string, int, bool>>{
           {"MeshHTTPRoute303Redirect", "mesh-303-redirect", "/redirect", 303, false},
           {"MeshHTTPRoute307Redirect", "mesh-307-redirect", "/temporary", 307, false},
           {"MeshHTTPRoute308Redirect", "mesh-308-redirect", "/permanent", 308, false},
           {"MeshHTTPRoute303RedirectHostAndStatus", "mesh-303-redirect-host-and-status",
            "/host-and-status-temporary", 303, true},
           {"MeshHTTPRoute307RedirectHostAndStatus", "mesh-307-redirect-host-and-status",
            "/host-and-status-temporary", 307, true},
           {"MeshHTTPRoute308RedirectHostAndStatus", "mesh-308-redirect-host-and-status",
            "/host-and-status-temporary", 308, true}}) {
    const std::string redirect =
        absl::StrCat("{statusCode: ", status, with_host ? ", hostname: example.org}" : "}");
    suite.push_back(
        {test,
         {mesh + "/" + file_name},
         Route(file_name, kMeshNs, kEchoPort80, RedirectRule(path, redirect)),
         {Redirect(path, status, absl::StrCat("http://", with_host ? "example.org" : "echo", path))}});
  }
  return suite;
}

// MeshHTTPRouteWeight: 500 requests split 70/30 between echo-v1 and echo-v2,
// each share within ±5 points; like the suite, up to several tries.
std::string WeightedSplitError(Mesh& mesh) {
  constexpr int kRequests = 500;
  std::map<std::string, int> seen;
  for (int i = 0; i < kRequests; ++i) {
    Reply r = mesh.Send(mesh.v1, {.host = "echo", .path = "/", .headers = {{"X-Jitter", std::to_string(i)}}});
    if (r.status != 200 || !r.echo.is_object())
      return absl::StrCat("request ", i, ": status ", r.status, " ", r.error);
    seen[r.echo.value("name", "")]++;
  }
  std::string error;
  if (seen.size() != 2) absl::StrAppend(&error, "backends seen: ", seen.size(), "; ");
  for (const auto& [backend, share] : std::map<std::string, double>{{"echo-v1", 0.7}, {"echo-v2", 0.3}}) {
    const double got = static_cast<double>(seen[backend]) / kRequests;
    if (got < share - 0.05 || got > share + 0.05)
      absl::StrAppend(&error, backend, " got ", got, ", want ", share, "; ");
  }
  return error;
}

TEST_CASE("Gateway API mesh conformance (GAMMA) HTTPRoute cases pass end to end", "[e2e][gamma]") {
  Mesh mesh;
  std::vector<ConformanceTest> suite = Suite();
  std::vector<std::string> previous;
  std::string frontend_manifest;
  int cases = 0;
  std::vector<std::string> failed;
  for (ConformanceTest& t : suite) {
    if (t.name == "MeshFrontend") frontend_manifest = t.manifest;
    if (t.manifest == "<same as MeshFrontend>") t.manifest = frontend_manifest;
    mesh.ApplyTest(t, previous);
    previous = t.route_names;
    for (Case& c : t.cases) {
      if (c.request.host == "<echo-v2 pod>")
        c.request.host = absl::StrCat(mesh.v2.ip, ":", mesh.v2.inbound_port);
      // Eventually consistent like the suite's client: the mesh has the
      // routes already, so this is only slack for a loaded machine.
      std::vector<std::string> mismatches;
      WaitFor(
          [&] {
            mismatches = Mismatches(mesh.Send(mesh.CallerOf(c.caller), c.request), c.expected);
            return mismatches.empty();
          },
          absl::Seconds(3), absl::Milliseconds(200));
      ++cases;
      if (!mismatches.empty())
        failed.push_back(t.name + " / " + c.name + ": " + absl::StrJoin(mismatches, "; "));
    }
  }
  // MeshHTTPRouteWeight.
  ConformanceTest weight{"MeshHTTPRouteWeight",
                         {std::string(kMeshNs) + "/mesh-weighted-backends"},
                         Route("mesh-weighted-backends", kMeshNs, kEchoPort80,
                               "  - backendRefs:\n    - {name: echo-v1, port: 80, weight: 70}\n"
                               "    - {name: echo-v2, port: 80, weight: 30}\n"),
                         {}};
  mesh.ApplyTest(weight, previous);
  std::string weight_error;
  for (int attempt = 0; attempt < 5; ++attempt) {
    weight_error = WeightedSplitError(mesh);
    if (weight_error.empty()) break;
    WARN("MeshHTTPRouteWeight attempt " << attempt + 1 << ": " << weight_error);
  }
  ++cases;
  if (!weight_error.empty()) failed.push_back("MeshHTTPRouteWeight: " + weight_error);

  INFO(failed.size() << " of " << cases << " cases failed:\n" << absl::StrJoin(failed, "\n"));
  CHECK(cases >= 80);
  CHECK(failed.empty());
}

}  // namespace
}  // namespace weft::e2e
