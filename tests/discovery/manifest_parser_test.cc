#include "discovery/manifest_parser.h"

#include <cmath>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "discovery/yaml_to_json.h"

namespace weft::discovery {
namespace {

using nlohmann::json;

std::vector<std::string> ErrorStrings(const ParsedManifest& m) {
  std::vector<std::string> out;
  for (const ConfigError& e : m.errors) out.push_back(e.ToString());
  return out;
}

constexpr char kMesh[] = R"(# The orders service of the shop.
apiVersion: v1
kind: Service
metadata:
  name: orders
  namespace: shop
  labels: {app: orders}
spec:
  selector: {app: orders}
  ports:
  - name: http
    port: 80
    targetPort: 8080
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: orders-1
  namespace: shop
  labels:
    kubernetes.io/service-name: orders
addressType: IPv4
ports:
- name: http
  port: 8080
endpoints:
- addresses: [10.0.0.1]
  conditions: {ready: true, serving: true, terminating: false}
---
apiVersion: weft.io/v1alpha1
kind: Workload
metadata: {name: orders-v1-0, namespace: shop, labels: {app: orders, version: v1}}
spec:
  address: 127.0.0.1
  ports: {http: 18081}
  serviceAccount: orders
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: orders, namespace: shop}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: orders-canary, namespace: shop}
spec:
  parentRefs: [{kind: Service, name: orders}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /api}}]
    backendRefs:
    - {name: orders-v1, port: 80, weight: 90}
    - {name: orders-v2, port: 80, weight: 10}
    timeouts: {request: 2s}
)";

TEST_CASE("parses a multi-document YAML manifest", "[manifest_parser]") {
  ParsedManifest m = ParseManifest(kMesh, "conf/mesh.yaml");
  CAPTURE(ErrorStrings(m));
  CHECK(m.errors.empty());
  CHECK_FALSE(m.syntax_error);
  REQUIRE(m.objects.size() == 4);  // the Deployment is ignored

  const auto& svc = std::get<Service>(m.objects[0]);
  CHECK(svc.meta.name == "orders");
  CHECK(svc.meta.source.ToString() == "conf/mesh.yaml#0");
  REQUIRE(svc.ports.size() == 1);
  CHECK(svc.ports[0].port == 80);
  CHECK(svc.ports[0].target_port_number == 8080);

  const auto& slice = std::get<EndpointSlice>(m.objects[1]);
  CHECK(slice.service_name == "orders");
  CHECK(slice.meta.source.ToString() == "conf/mesh.yaml#1");
  REQUIRE(slice.endpoints.size() == 1);
  CHECK(slice.endpoints[0].addresses[0] == "10.0.0.1");

  const auto& w = std::get<Workload>(m.objects[2]);
  CHECK(w.address == "127.0.0.1");
  CHECK(w.ports.at("http") == 18081);
  CHECK(w.service_account == "orders");
  CHECK(w.meta.labels.at("version") == "v1");

  const auto& route = std::get<PolicyDocument>(m.objects[3]);
  CHECK(route.kind == "HTTPRoute");
  CHECK(route.meta.source.ToString() == "conf/mesh.yaml#4");
  const json& backend = route.body["spec"]["rules"][0]["backendRefs"][1];
  CHECK(backend["weight"] == 10);
  CHECK(backend["weight"].is_number_integer());
  CHECK(route.body["spec"]["rules"][0]["timeouts"]["request"] == "2s");
}

TEST_CASE("parses JSON", "[manifest_parser]") {
  ParsedManifest m = ParseManifest(R"(
    {"apiVersion": "v1", "kind": "Service",
     "metadata": {"name": "orders", "namespace": "shop"},
     "spec": {"ports": [{"port": 80, "targetPort": "http"}]}})",
                                   "conf/orders.json");
  CAPTURE(ErrorStrings(m));
  CHECK(m.errors.empty());
  REQUIRE(m.objects.size() == 1);
  const auto& svc = std::get<Service>(m.objects[0]);
  CHECK(svc.ports[0].target_port_name == "http");
  CHECK(svc.meta.source.ToString() == "conf/orders.json#0");

  m = ParseManifest(R"({"apiVersion": "v1", "kind": "Service",
     "metadata": {"name": "orders"}, "spec": {"ports": [{"port": "80"}]}})",
                    "conf/orders.json");
  CHECK(ErrorStrings(m) ==
        std::vector<std::string>{"conf/orders.json#0: Service default/orders: spec.ports[0].port: "
                                 "must be an integer between 1 and 65535"});
}

TEST_CASE("expands a List", "[manifest_parser]") {
  const char* yaml = R"(apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Namespace
  metadata: {name: shop}
- apiVersion: v1
  kind: Service
  metadata: {name: orders, namespace: shop}
  spec:
    ports: [{port: 99999}]
- apiVersion: v1
  kind: Service
  metadata: {name: payments, namespace: shop}
  spec:
    ports: [{port: 80}]
)";
  ParsedManifest m = ParseManifest(yaml, "conf/list.yaml");
  REQUIRE(m.objects.size() == 2);
  CHECK(std::get<Namespace>(m.objects[0]).meta.name == "shop");
  CHECK(std::get<Service>(m.objects[1]).meta.name == "payments");
  CHECK(ErrorStrings(m) ==
        std::vector<std::string>{"conf/list.yaml#0: Service shop/orders: items[1].spec.ports[0].port: "
                                 "must be an integer between 1 and 65535"});
  CHECK(m.invalid_keys == std::vector<std::string>{"Service/shop/orders"});

  // The same in JSON, as `kubectl get -o json` writes it.
  m = ParseManifest(R"({"apiVersion": "v1", "kind": "List", "items": [
      {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
      {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ops"}}]})",
                    "conf/list.json");
  CHECK(m.errors.empty());
  CHECK(m.objects.size() == 2);

  m = ParseManifest("apiVersion: v1\nkind: List\nitems: {}\n", "conf/list.yaml");
  CHECK(ErrorStrings(m) == std::vector<std::string>{"conf/list.yaml#0: items: must be a list"});
}

TEST_CASE("quoted scalars stay strings, plain ones resolve", "[manifest_parser]") {
  const char* quoted = R"(apiVersion: v1
kind: Service
metadata: {name: orders, namespace: shop}
spec:
  ports:
  - port: "80"
)";
  ParsedManifest m = ParseManifest(quoted, "conf/svc.yaml");
  CHECK(m.objects.empty());
  CHECK(ErrorStrings(m) ==
        std::vector<std::string>{"conf/svc.yaml#0: Service shop/orders: spec.ports[0].port: must "
                                 "be an integer between 1 and 65535"});

  m = ParseManifest(R"(apiVersion: v1
kind: Service
metadata: {name: orders, namespace: shop, labels: {version: "1", canary: 'true'}}
spec:
  ports:
  - port: 80
)",
                    "conf/svc.yaml");
  CAPTURE(ErrorStrings(m));
  REQUIRE(m.objects.size() == 1);
  CHECK(std::get<Service>(m.objects[0]).meta.labels.at("version") == "1");
  CHECK(std::get<Service>(m.objects[0]).meta.labels.at("canary") == "true");

  // An unquoted label value is a number or a boolean: an error, as in Kubernetes.
  m = ParseManifest(R"(apiVersion: v1
kind: Service
metadata: {name: orders, namespace: shop, labels: {version: 1, canary: true}}
)",
                    "conf/svc.yaml");
  CHECK(m.errors.size() == 2);
  CHECK(m.errors[0].field == "metadata.labels.canary");
  CHECK(m.errors[1].field == "metadata.labels.version");
}

TEST_CASE("YAML 1.2 core schema for plain scalars", "[manifest_parser]") {
  CHECK(ResolvePlainScalar("true") == json(true));
  CHECK(ResolvePlainScalar("False") == json(false));
  CHECK(ResolvePlainScalar("yes") == json("yes"));  // YAML 1.1 only
  CHECK(ResolvePlainScalar("on") == json("on"));
  CHECK(ResolvePlainScalar("~").is_null());
  CHECK(ResolvePlainScalar("null").is_null());
  CHECK(ResolvePlainScalar("").is_null());
  CHECK(ResolvePlainScalar("80") == json(80));
  CHECK(ResolvePlainScalar("80").is_number_integer());
  CHECK(ResolvePlainScalar("-5") == json(-5));
  CHECK(ResolvePlainScalar("+7") == json(7));
  CHECK(ResolvePlainScalar("0x1F") == json(31));
  CHECK(ResolvePlainScalar("0o17") == json(15));
  CHECK(ResolvePlainScalar("1.5") == json(1.5));
  CHECK(ResolvePlainScalar("1e3").is_number_float());
  CHECK(ResolvePlainScalar("-.5") == json(-0.5));
  CHECK(std::isinf(ResolvePlainScalar(".inf").get<double>()));
  CHECK(ResolvePlainScalar("18446744073709551615").is_number_unsigned());
  CHECK(ResolvePlainScalar("-9223372036854775808") == json(INT64_MIN));
  CHECK(ResolvePlainScalar("1.2.3") == json("1.2.3"));
  CHECK(ResolvePlainScalar("500ms") == json("500ms"));
  CHECK(ResolvePlainScalar("v1") == json("v1"));
  CHECK(ResolvePlainScalar("-") == json("-"));
  CHECK(ResolvePlainScalar("0x") == json("0x"));

  YamlStream s = ParseYamlStream(R"(
plain: 80
single: '80'
double: "80"
literal: |
  80
tagged: !!str 80
tagged_int: !!int "42"
empty:
tilde: ~
quoted_null: "null"
neg: -12
flow: [1, "2", true, "false"]
)");
  REQUIRE_FALSE(s.error.has_value());
  REQUIRE(s.documents.size() == 1);
  const json& d = s.documents[0];
  CHECK(d["plain"] == json(80));
  CHECK(d["single"] == json("80"));
  CHECK(d["double"] == json("80"));
  CHECK(d["literal"] == json("80\n"));
  CHECK(d["tagged"] == json("80"));
  CHECK(d["tagged_int"] == json(42));
  CHECK(d["empty"].is_null());
  CHECK(d["tilde"].is_null());
  CHECK(d["quoted_null"] == json("null"));
  CHECK(d["neg"] == json(-12));
  CHECK(d["flow"] == json::parse(R"([1, "2", true, "false"])"));
}

TEST_CASE("anchors, aliases and merge keys", "[manifest_parser]") {
  YamlStream s = ParseYamlStream(R"(
base: &base {app: orders, tier: backend}
copy: *base
merged:
  <<: *base
  tier: frontend
)");
  REQUIRE_FALSE(s.error.has_value());
  const json& d = s.documents[0];
  CHECK(d["copy"] == d["base"]);
  CHECK(d["merged"] == json::parse(R"({"app": "orders", "tier": "frontend"})"));
}

TEST_CASE("an alias bomb is an error, not an out-of-memory", "[manifest_parser]") {
  std::string yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 12; ++i) {
    std::string prev = "*a" + std::to_string(i - 1);
    yaml += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [" + prev + ", " + prev + ", " + prev +
            ", " + prev + ", " + prev + ", " + prev + ", " + prev + ", " + prev + ", " + prev + ", " + prev +
            "]\n";
  }
  ParsedManifest m = ParseManifest(yaml, "conf/bomb.yaml");
  CHECK(m.syntax_error);
  REQUIRE(m.errors.size() == 1);
  CHECK(m.errors[0].reason.find("too many values") != std::string::npos);
}

TEST_CASE("malformed flow collections cannot make the YAML parser loop on values", "[manifest_parser]") {
  // Found by fuzz_manifest_parser: yaml-cpp produced a million values from
  // these 488 bytes (2 s of work) before the value limit stopped it.
  std::ifstream in(std::string(WEFT_SOURCE_DIR) + "/tests/fuzz/corpus/manifest_parser/slow_value_loop",
                   std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(text.size() == 488);
  ParsedManifest m = ParseManifest(text, "conf/fuzz.yaml");
  CHECK(m.syntax_error);
  REQUIRE(m.errors.size() == 1);
  CHECK(m.errors[0].reason.find("more values than the text holds") != std::string::npos);
}

TEST_CASE("every bad case names file, document, field and reason", "[manifest_parser]") {
  const char* yaml = R"(apiVersion: v1
kind: Service
metadata: {name: ok, namespace: shop}
spec: {ports: [{port: 80}]}
---
apiVersion: weft.io/v1alpha1
kind: Workload
metadata: {name: orders-v1-0, namespace: shop}
spec:
  address: not-an-ip
  ports: {http: 0}
  serviceAccount: 42
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: orders-1, namespace: shop}
endpoints:
- addresses: [10.0.0.1]
  conditions: {ready: maybe}
---
apiVersion: v1
kind: Service
metadata: {namespace: shop}
---
apiVersion: weft.io/v1alpha1
kind: RateLimitPolicy
metadata: {name: Limit!, namespace: shop}
)";
  ParsedManifest m = ParseManifest(yaml, "conf/bad.yaml");
  CHECK(m.objects.size() == 1);
  CHECK_FALSE(m.syntax_error);
  CHECK(ErrorStrings(m) ==
        std::vector<std::string>{
            "conf/bad.yaml#1: Workload shop/orders-v1-0: spec.address: must be an IP address",
            "conf/bad.yaml#1: Workload shop/orders-v1-0: spec.ports.http: must be an integer "
            "between 1 and 65535",
            "conf/bad.yaml#1: Workload shop/orders-v1-0: spec.serviceAccount: must be a string",
            "conf/bad.yaml#2: EndpointSlice shop/orders-1: "
            "metadata.labels[\"kubernetes.io/service-name\"]: required: names the Service this "
            "EndpointSlice belongs to",
            "conf/bad.yaml#2: EndpointSlice shop/orders-1: endpoints[0].conditions.ready: must be "
            "true or false",
            "conf/bad.yaml#3: Service shop/<unnamed>: metadata.name: required",
            "conf/bad.yaml#4: RateLimitPolicy shop/Limit!: metadata.name: must be a lowercase RFC "
            "1123 subdomain (letters, digits, '-' and '.', starting and ending with a letter or "
            "digit, at most 253 characters)",
        });
  CHECK(m.invalid_keys == std::vector<std::string>{"Workload/shop/orders-v1-0", "EndpointSlice/shop/orders-1",
                                                   "RateLimitPolicy/shop/Limit!"});
}

TEST_CASE("syntax errors give the line and reject the whole file", "[manifest_parser]") {
  const char* yaml = R"(apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: v1
kind: Service
metadata:
  name: orders
   namespace: shop
)";
  ParsedManifest m = ParseManifest(yaml, "conf/broken.yaml");
  CHECK(m.syntax_error);
  CHECK(m.objects.empty());
  REQUIRE(m.errors.size() == 1);
  CAPTURE(m.errors[0].ToString());
  CHECK(m.errors[0].source == SourceRef{"conf/broken.yaml", 1});
  CHECK(m.errors[0].reason.rfind("invalid YAML: line 9, column ", 0) == 0);

  m = ParseManifest("{\"apiVersion\": \"v1\",\n \"kind\": }", "conf/broken.json");
  CHECK(m.syntax_error);
  REQUIRE(m.errors.size() == 1);
  CAPTURE(m.errors[0].ToString());
  CHECK(m.errors[0].reason.find("invalid JSON: parse error at line 2") == 0);

  m = ParseManifest("a: 1\na: 2\n", "conf/dup.yaml");
  CHECK(m.syntax_error);
  REQUIRE(m.errors.size() == 1);
  CHECK(m.errors[0].reason == "invalid YAML: line 2, column 1: duplicate key \"a\"");
}

TEST_CASE("empty documents are skipped but counted", "[manifest_parser]") {
  const char* yaml = R"(---
# nothing here
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
)";
  ParsedManifest m = ParseManifest(yaml, "conf/ns.yaml");
  CHECK(m.errors.empty());
  REQUIRE(m.objects.size() == 1);
  CHECK(MetaOf(m.objects[0]).source == SourceRef{"conf/ns.yaml", 1});

  m = ParseManifest("", "conf/empty.yaml");
  CHECK(m.errors.empty());
  CHECK(m.objects.empty());
  m = ParseManifest("# only a comment\n", "conf/empty.yaml");
  CHECK(m.errors.empty());
  CHECK(m.objects.empty());
}

TEST_CASE("a document that is not an object", "[manifest_parser]") {
  ParsedManifest m = ParseManifest("- a\n- b\n", "conf/list.yaml");
  REQUIRE(m.errors.size() == 1);
  CHECK(m.errors[0].source == SourceRef{"conf/list.yaml", 0});
  CHECK(m.errors[0].reason.find("must be an object") == 0);
}

}  // namespace
}  // namespace weft::discovery
