// deploy/ as a user of `kubectl apply -k deploy/` relies on it, checked where
// no cluster and no Docker engine exist: every manifest parses and is
// installed by kustomization.yaml; the ClusterRole grants exactly what
// weftd's Kubernetes client does (the watched kinds come from
// discovery/kube_resource.cc, the other API calls are found in the sources);
// the Deployment's flags are weftd's, its ports are DESIGN.md's and the
// Service's; the Dockerfile installs every library weftd links and runs as
// the Deployment's user; and the real weftd, started with the Deployment's
// flags, answers the Deployment's own probe commands.
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "ca/root_cert_config_maps.h"
#include "discovery/kube_resource.h"
#include "discovery/yaml_to_json.h"
#include "tests/e2e/harness/process.h"

namespace weft::deploy {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const fs::path kSourceDir = WEFT_SOURCE_DIR;
const fs::path kDeployDir = kSourceDir / "deploy";

std::string Slurp(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A command's stdout and stderr, and its exit code (-1 if it could not run).
struct CommandResult {
  int exit_code = -1;
  std::string output;
};

std::string ShellQuote(const std::string& s) { return "'" + absl::StrReplaceAll(s, {{"'", "'\\''"}}) + "'"; }

CommandResult RunCommand(const std::vector<std::string>& argv) {
  std::vector<std::string> quoted;
  for (const auto& a : argv) quoted.push_back(ShellQuote(a));
  CommandResult result;
  FILE* pipe = popen((absl::StrJoin(quoted, " ") + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) result.output.append(buf, n);
  int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

// Every non-empty document of a YAML (or JSON) file; a syntax error fails
// the test with the file, line and column.
std::vector<json> ParseFile(const fs::path& path) {
  discovery::YamlStream stream = discovery::ParseYamlStream(Slurp(path));
  if (stream.error) FAIL(path.string() << ": " << stream.error->ToString());
  std::vector<json> docs;
  for (json& doc : stream.documents) {
    if (!doc.is_null()) docs.push_back(std::move(doc));
  }
  return docs;
}

bool IsKubernetesObject(const json& doc) {
  return doc.is_object() && doc.contains("apiVersion") && doc.contains("kind");
}

// The files a kustomization installs, with directories expanded through
// their own kustomization.yaml, as kustomize does.
void CollectKustomizeResources(const fs::path& dir, std::vector<fs::path>& out) {
  const fs::path file = dir / "kustomization.yaml";
  REQUIRE(fs::is_regular_file(file));
  std::vector<json> docs = ParseFile(file);
  REQUIRE(docs.size() == 1);
  REQUIRE(docs[0]["kind"] == "Kustomization");
  REQUIRE(docs[0]["resources"].is_array());
  for (const json& entry : docs[0]["resources"]) {
    REQUIRE(entry.is_string());
    const fs::path path = dir / entry.get<std::string>();
    INFO(file.string() << " lists " << entry.get<std::string>());
    if (fs::is_directory(path)) {
      CollectKustomizeResources(path, out);
    } else {
      CHECK(fs::is_regular_file(path));
      out.push_back(fs::weakly_canonical(path));
    }
  }
}

struct Manifest {
  std::string file;  // relative to deploy/
  json object;
};

// Every object `kubectl apply -k deploy/` installs, in kustomization order.
std::vector<Manifest> InstalledObjects() {
  std::vector<fs::path> files;
  CollectKustomizeResources(kDeployDir, files);
  std::vector<Manifest> out;
  for (const fs::path& file : files) {
    for (json& doc : ParseFile(file)) {
      out.push_back(Manifest{fs::relative(file, kDeployDir).string(), std::move(doc)});
    }
  }
  return out;
}

// The finders below return copies: a missing key of a non-const json reads
// as null, where nlohmann's const operator[] would be undefined.
std::vector<json> FindAll(const std::vector<Manifest>& objects, const std::string& kind) {
  std::vector<json> out;
  for (const Manifest& m : objects) {
    if (m.object.value("kind", "") == kind) out.push_back(m.object);
  }
  return out;
}

json FindOne(const std::vector<Manifest>& objects, const std::string& kind) {
  std::vector<json> all = FindAll(objects, kind);
  INFO("objects of kind " << kind);
  REQUIRE(all.size() == 1);
  return all[0];
}

std::optional<json> FindNamed(const std::vector<Manifest>& objects, const std::string& kind,
                              const std::string& ns, const std::string& name) {
  for (json o : FindAll(objects, kind)) {
    if (o["metadata"].value("name", "") == name && o["metadata"].value("namespace", "") == ns) return o;
  }
  return std::nullopt;
}

// weftd's flags as `weftd --help` lists them (absl's names, with
// underscores), with their defaults.
std::map<std::string, std::string> WeftdHelpFlags() {
  const std::string weftd = e2e::BinaryPath("weftd");
  REQUIRE_FALSE(weftd.empty());
  CommandResult help = RunCommand({weftd, "--help"});
  INFO(help.output);
  std::map<std::string, std::string> flags;
  static const std::regex kFlag(R"(\n\s+--([a-z0-9_]+) \(([\s\S]*?)\);\s+default: ([^;]*);)");
  for (std::sregex_iterator it(help.output.begin(), help.output.end(), kFlag), end; it != end; ++it) {
    flags[(*it)[1]] = std::string(absl::StripSuffix(absl::StripPrefix((*it)[3].str(), "\""), "\""));
  }
  REQUIRE(flags.count("xds_addr") == 1);  // the listing's format is what this parser expects
  return flags;
}

std::string Underscored(const std::string& name) { return absl::StrReplaceAll(name, {{"-", "_"}}); }

struct HostPort {
  std::string host;
  int port = 0;
};

HostPort SplitHostPort(const std::string& addr) {
  const size_t colon = addr.rfind(':');
  REQUIRE(colon != std::string::npos);
  HostPort hp{addr.substr(0, colon), 0};
  REQUIRE(absl::SimpleAtoi(addr.substr(colon + 1), &hp.port));
  return hp;
}

// A default from DESIGN.md §3: "`--xds-addr=HOST:PORT` ..., default `0.0.0.0:15012`".
std::string DesignDefault(const std::string& flag) {
  const std::string design = Slurp(kSourceDir / "docs" / "DESIGN.md");
  std::smatch m;
  const std::regex re("`--" + flag + R"(=[^`]*`[^\n]*default `([^`]+)`)");
  INFO("DESIGN.md's default of --" << flag);
  REQUIRE(std::regex_search(design, m, re));
  return m[1];
}

// The Deployment's weftd container and its flags (dashed names as written).
struct WeftdContainer {
  json deployment;
  json pod;        // the pod template's spec
  json container;  // the container named weftd
  std::vector<std::string> args;
  std::map<std::string, std::string> flags;
};

WeftdContainer FindWeftd(const std::vector<Manifest>& objects) {
  WeftdContainer w;
  w.deployment = FindOne(objects, "Deployment");
  w.pod = w.deployment["spec"]["template"]["spec"];
  REQUIRE(w.pod["containers"].is_array());
  for (const json& c : w.pod["containers"]) {
    if (c.value("name", "") == "weftd") w.container = c;
  }
  REQUIRE(w.container.is_object());
  REQUIRE(w.container["args"].is_array());
  for (const json& a : w.container["args"]) {
    REQUIRE(a.is_string());
    const std::string arg = a.get<std::string>();
    INFO(arg);
    REQUIRE(absl::StartsWith(arg, "--"));
    const size_t eq = arg.find('=');
    const std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
    CHECK(w.flags.count(name) == 0);  // a repeated flag: only the last counts, which misleads a reader
    w.flags[name] = eq == std::string::npos ? "true" : arg.substr(eq + 1);
    w.args.push_back(arg);
  }
  return w;
}

std::string Flag(const WeftdContainer& w, const std::string& name) {
  INFO("the Deployment's --" << name);
  REQUIRE(w.flags.count(name) == 1);
  return w.flags.at(name);
}

std::string TheNamespace(const std::vector<Manifest>& objects) {
  return FindOne(objects, "Namespace")["metadata"]["name"].get<std::string>();
}

// (apiGroup, resource, resourceName or "" for any, verb)
using Grant = std::tuple<std::string, std::string, std::string, std::string>;

std::set<Grant> Grants(json role) {
  std::set<Grant> grants;
  REQUIRE(role["rules"].is_array());
  for (json rule : role["rules"]) {
    INFO(rule.dump());
    CHECK_FALSE(rule.contains("nonResourceURLs"));
    REQUIRE(rule["apiGroups"].is_array());
    REQUIRE(rule["resources"].is_array());
    REQUIRE(rule["verbs"].is_array());
    std::vector<std::string> names = {""};
    if (rule.contains("resourceNames")) names = rule["resourceNames"].get<std::vector<std::string>>();
    for (const json& group : rule["apiGroups"]) {
      for (const json& resource : rule["resources"]) {
        for (const std::string& name : names) {
          for (const json& verb : rule["verbs"]) {
            CHECK(group != "*");
            CHECK(resource != "*");
            CHECK(verb != "*");
            grants.emplace(group.get<std::string>(), resource.get<std::string>(), name,
                           verb.get<std::string>());
          }
        }
      }
    }
  }
  return grants;
}

std::string Describe(const std::set<Grant>& grants) {
  std::string out;
  for (const auto& [group, resource, name, verb] : grants) {
    absl::StrAppend(&out, "\n  ", verb, " ", group.empty() ? "" : group + "/", resource,
                    name.empty() ? "" : " named " + name);
  }
  return out.empty() ? " (none)" : out;
}

// Asserts `role` grants exactly `expected`, naming what is missing or extra.
void CheckGrantsExactly(json role, const std::set<Grant>& expected) {
  const std::set<Grant> granted = Grants(role);
  std::set<Grant> missing, extra;
  for (const Grant& g : expected) {
    if (granted.count(g) == 0) missing.insert(g);
  }
  for (const Grant& g : granted) {
    if (expected.count(g) == 0) extra.insert(g);
  }
  INFO(role["kind"].get<std::string>() << " " << role["metadata"]["name"].get<std::string>()
                                       << "\nmissing (weftd's calls would get 403):" << Describe(missing)
                                       << "\nmore than weftd uses:" << Describe(extra));
  CHECK(missing.empty());
  CHECK(extra.empty());
}

// The Kubernetes resources weftd's sources name in API paths outside the
// table of watched kinds: "/apis/authentication.k8s.io/v1/tokenreviews",
// or a segment such as "/configmaps" next to "/api/v1/namespaces/". Only
// files that build API paths are read; the admin API's own routes
// (server/admin_server.cc) are not the Kubernetes API.
std::map<std::string, std::string> ApiResourcesInSources() {
  static const std::regex kLiteral(R"re("(/[a-z0-9./-]*)")re");
  static const std::regex kFullPath(R"(^/apis?/(?:[a-z0-9.-]+/)?v[0-9a-z]+/([a-z]+)/?$)");
  static const std::regex kSegment(R"(^/([a-z]+)/?$)");
  const std::set<std::string> kNotResources = {"api", "apis", "namespaces", "status"};
  std::map<std::string, std::string> found;  // resource -> a file naming it
  for (const char* dir : {"discovery", "ca", "server", "common"}) {
    for (const auto& entry : fs::recursive_directory_iterator(kSourceDir / dir)) {
      if (entry.path().extension() != ".cc" || entry.path().filename() == "admin_server.cc") continue;
      const std::string text = Slurp(entry.path());
      if (!absl::StrContains(text, "\"/api/") && !absl::StrContains(text, "\"/apis/")) continue;
      for (std::sregex_iterator it(text.begin(), text.end(), kLiteral), end; it != end; ++it) {
        const std::string literal = (*it)[1];
        std::smatch m;
        std::string resource;
        if (std::regex_match(literal, m, kFullPath)) {
          resource = m[1];
        } else if (std::regex_match(literal, m, kSegment)) {
          resource = m[1];
        }
        if (!resource.empty() && kNotResources.count(resource) == 0) {
          found[resource] = fs::relative(entry.path(), kSourceDir).string();
        }
      }
    }
  }
  return found;
}

// The Dockerfile's runtime stage (after its last FROM), one instruction a
// line with continuations joined and comments dropped.
struct Dockerfile {
  std::vector<std::string> runtime;
  std::string Instruction(const std::string& keyword) const {
    std::string last;
    for (const std::string& line : runtime) {
      if (absl::StartsWith(line, keyword + " ")) last = line.substr(keyword.size() + 1);
    }
    return last;
  }
};

Dockerfile ReadDockerfile() {
  const std::string text = Slurp(kDeployDir / "Dockerfile");
  REQUIRE_FALSE(text.empty());
  std::vector<std::string> instructions;
  std::string current;
  for (absl::string_view raw : absl::StrSplit(text, '\n')) {
    std::string line(absl::StripAsciiWhitespace(raw));
    if (absl::StartsWith(line, "#")) continue;
    const bool continued = absl::EndsWith(line, "\\");
    if (continued) line.pop_back();
    absl::StrAppend(&current, current.empty() ? "" : " ", line);
    if (!continued && !current.empty()) {
      instructions.push_back(current);
      current.clear();
    }
  }
  Dockerfile d;
  for (const std::string& i : instructions) {
    if (absl::StartsWith(i, "FROM ")) d.runtime.clear();
    d.runtime.push_back(i);
  }
  return d;
}

// The Debian packages `apt-get install` names in a RUN instruction.
std::set<std::string> AptPackages(const Dockerfile& d) {
  std::set<std::string> packages;
  for (const std::string& line : d.runtime) {
    if (!absl::StartsWith(line, "RUN ")) continue;
    for (absl::string_view command : absl::StrSplit(line, "&&")) {
      std::vector<std::string> words = absl::StrSplit(command, ' ', absl::SkipWhitespace());
      auto install = std::find(words.begin(), words.end(), "install");
      if (install == words.end() || std::find(words.begin(), install, "apt-get") == install) continue;
      for (auto w = install + 1; w != words.end(); ++w) {
        if (!absl::StartsWith(*w, "-")) packages.insert(*w);
      }
    }
  }
  return packages;
}

// ---------------------------------------------------------------------------

TEST_CASE("deploy: every manifest parses and kustomization.yaml installs all of them", "[deploy]") {
  std::vector<fs::path> listed;
  CollectKustomizeResources(kDeployDir, listed);
  const std::set<fs::path> listed_set(listed.begin(), listed.end());
  CHECK(listed_set.size() == listed.size());  // nothing listed twice

  // Every YAML/JSON file below deploy/ parses; those holding Kubernetes
  // objects must be installed.
  int manifests = 0;
  for (const auto& entry : fs::recursive_directory_iterator(kDeployDir)) {
    const std::string ext = entry.path().extension().string();
    if (!entry.is_regular_file() || (ext != ".yaml" && ext != ".yml" && ext != ".json")) continue;
    INFO(entry.path().string());
    std::vector<json> docs = ParseFile(entry.path());
    if (entry.path().filename() == "kustomization.yaml") continue;
    bool holds_objects = false;
    for (const json& doc : docs) holds_objects |= IsKubernetesObject(doc);
    if (!holds_objects) continue;
    ++manifests;
    CHECK(listed_set.count(fs::weakly_canonical(entry.path())) == 1);
  }
  CHECK(manifests >= 10);  // 5 CRDs, the namespace, service account, RBAC, Service, Deployment

  const std::vector<Manifest> objects = InstalledObjects();
  const std::string ns = TheNamespace(objects);
  CHECK(ns == "weft-system");
  std::set<std::string> seen;
  for (const Manifest& m : objects) {
    json o = m.object;
    INFO(m.file << ": " << o.dump().substr(0, 200));
    REQUIRE(IsKubernetesObject(o));
    REQUIRE(o["metadata"]["name"].is_string());
    const std::string kind = o["kind"];
    const bool cluster_scoped = kind == "Namespace" || kind == "CustomResourceDefinition" ||
                                kind == "ClusterRole" || kind == "ClusterRoleBinding";
    CHECK(o["metadata"].value("namespace", "") == (cluster_scoped ? "" : ns));
    CHECK(seen.insert(absl::StrCat(kind, "/", o["metadata"].value("namespace", ""), "/",
                                   o["metadata"]["name"].get<std::string>()))
              .second);
  }

  // The image the Deployment runs is the one kustomization.yaml sets.
  const json kustomization = ParseFile(kDeployDir / "kustomization.yaml")[0];
  const std::string image = FindWeftd(objects).container.value("image", "");
  bool image_set = false;
  for (const json& i : kustomization.value("images", json::array())) {
    image_set |= i.is_object() && i.value("name", "") == image;
  }
  CHECK(image_set);
}

TEST_CASE("deploy: a CRD for every weft.io kind weftd watches", "[deploy]") {
  const std::vector<Manifest> objects = InstalledObjects();
  for (const discovery::KubeResource& r : discovery::WatchedKubeResources()) {
    if (r.group != "weft.io") continue;  // the others are built in, or the Gateway API's own
    INFO(r.kind);
    std::optional<json> crd = FindNamed(objects, "CustomResourceDefinition", "", r.plural + "." + r.group);
    REQUIRE(crd.has_value());
    CHECK((*crd)["spec"]["names"]["kind"] == r.kind);
    CHECK((*crd)["spec"]["scope"] == (r.namespaced ? "Namespaced" : "Cluster"));
    bool served = false;
    for (json v : (*crd)["spec"]["versions"]) {
      if (v.value("name", "") != r.version) continue;
      served = v.value("served", false);
      if (r.status_subresource) CHECK(v["subresources"].contains("status"));
    }
    CHECK(served);
  }
}

TEST_CASE("deploy: the RBAC grants exactly what weftd's Kubernetes client does", "[deploy]") {
  const std::vector<Manifest> objects = InstalledObjects();
  WeftdContainer weftd = FindWeftd(objects);
  const std::string ns = TheNamespace(objects);
  const std::string sa = weftd.pod.value("serviceAccountName", "");
  REQUIRE(FindNamed(objects, "ServiceAccount", ns, sa).has_value());

  // API calls outside the watch table; each entry's verbs are read off the
  // code named (GET = get, POST = create, PUT = update).
  const std::string kConfigMap = ca::RootCertConfigMaps::kName;
  const std::map<std::string, std::string> kNonWatchCalls = {
      {"tokenreviews", "ca/token_review_authenticator.cc via server/weftd_main.cc: POST"},
      {"configmaps", "ca/root_cert_config_maps.cc: GET, POST, PUT, DELETE of " + kConfigMap},
      {"secrets", "ca/kube_secret_ca_store.cc (--ca-secret): GET, POST, PUT"},
  };
  const std::map<std::string, std::string> in_sources = ApiResourcesInSources();
  for (const auto& [resource, file] : in_sources) {
    INFO(file << " calls the Kubernetes API on " << resource
              << ", which this test and deploy/weftd/rbac.yaml do not know: grant it and add it here");
    CHECK(kNonWatchCalls.count(resource) == 1);
  }
  for (const auto& [resource, where] : kNonWatchCalls) {
    INFO(resource << " (" << where << ") is no longer in the sources: drop its RBAC and its entry here");
    CHECK(in_sources.count(resource) == 1);
  }

  // Cluster-wide: list+watch of every watched kind (discovery/kube_watcher.cc),
  // get+update of /status where weftd writes it (discovery/kube_status_writer.cc
  // GETs the object and PUTs its /status), TokenReview, the bundle ConfigMaps.
  std::set<Grant> expected;
  for (const discovery::KubeResource& r : discovery::WatchedKubeResources()) {
    expected.emplace(r.group, r.plural, "", "list");
    expected.emplace(r.group, r.plural, "", "watch");
    if (r.status_subresource) {
      expected.emplace(r.group, r.plural, "", "get");
      expected.emplace(r.group, r.plural + "/status", "", "update");
    }
  }
  expected.emplace("authentication.k8s.io", "tokenreviews", "", "create");
  expected.emplace("", "configmaps", "", "create");
  expected.emplace("", "configmaps", kConfigMap, "get");
  expected.emplace("", "configmaps", kConfigMap, "update");
  expected.emplace("", "configmaps", kConfigMap, "delete");
  json cluster_role = FindOne(objects, "ClusterRole");
  CheckGrantsExactly(cluster_role, expected);

  json binding = FindOne(objects, "ClusterRoleBinding");
  CHECK(binding["roleRef"]["kind"] == "ClusterRole");
  CHECK(binding["roleRef"]["name"] == cluster_role["metadata"]["name"]);
  CHECK(binding["subjects"] ==
        json::parse(R"([{"kind":"ServiceAccount","name":")" + sa + R"(","namespace":")" + ns + R"("}])"));

  // The CA's Secret (--ca-secret=NS/NAME): only in its namespace, and by name
  // where Kubernetes allows it (not for create).
  const std::vector<std::string> secret = absl::StrSplit(Flag(weftd, "ca-secret"), '/');
  REQUIRE(secret.size() == 2);
  CHECK(secret[0] == ns);
  std::optional<json> role;
  for (json rb : FindAll(objects, "RoleBinding")) {
    if (rb["metadata"]["namespace"] != secret[0]) continue;
    CHECK(rb["roleRef"]["kind"] == "Role");
    CHECK(rb["subjects"] == binding["subjects"]);
    role = FindNamed(objects, "Role", secret[0], rb["roleRef"].value("name", ""));
  }
  REQUIRE(role.has_value());
  CheckGrantsExactly(*role, {{"", "secrets", "", "create"},
                             {"", "secrets", secret[1], "get"},
                             {"", "secrets", secret[1], "update"}});
}

TEST_CASE("deploy: the Deployment uses weftd's own flags, DESIGN.md's ports and the Service", "[deploy]") {
  const std::vector<Manifest> objects = InstalledObjects();
  WeftdContainer weftd = FindWeftd(objects);
  const std::string ns = TheNamespace(objects);

  const std::map<std::string, std::string> known = WeftdHelpFlags();
  for (const auto& [name, value] : weftd.flags) {
    INFO("--" << name << " is not a flag of weftd (weftd --help)");
    CHECK(known.count(Underscored(name)) == 1);
  }

  CHECK(Flag(weftd, "registry") == "kubernetes");
  CHECK(Flag(weftd, "root-namespace") == ns);

  // xDS and the CA: DESIGN.md's port, weftd's default, the container port,
  // and the Service's port and target.
  const HostPort design_xds = SplitHostPort(DesignDefault("xds-addr"));
  CHECK(known.at("xds_addr") == DesignDefault("xds-addr"));
  const HostPort xds = SplitHostPort(Flag(weftd, "xds-addr"));
  CHECK(xds.port == design_xds.port);
  CHECK(xds.host == "0.0.0.0");  // reachable through the Service
  std::string xds_port_name;
  for (json p : weftd.container["ports"]) {
    if (p.value("containerPort", 0) == xds.port) xds_port_name = p.value("name", "");
  }
  INFO("a container port for --xds-addr");
  REQUIRE_FALSE(xds_port_name.empty());
  json service = FindOne(objects, "Service");
  for (const auto& [key, value] : service["spec"]["selector"].items()) {
    CHECK(weftd.deployment["spec"]["template"]["metadata"]["labels"].value(key, "") == value);
  }
  CHECK(weftd.deployment["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]);
  REQUIRE(service["spec"]["ports"].size() == 1);  // only xDS: the admin API is loopback
  json service_port = service["spec"]["ports"][0];
  CHECK(service_port["port"] == design_xds.port);
  CHECK((service_port["targetPort"] == xds_port_name || service_port["targetPort"] == xds.port));

  // Proxies dial the Service's DNS name and verify it in weftd's certificate.
  const std::vector<std::string> names = absl::StrSplit(Flag(weftd, "server-names"), ',');
  const std::string service_dns =
      absl::StrCat(service["metadata"]["name"].get<std::string>(), ".", ns, ".svc");
  CHECK(std::find(names.begin(), names.end(), service_dns) != names.end());

  // The admin API: DESIGN.md's default address, loopback unless a token is
  // configured; every probe asks it for /healthz or /readyz there.
  const HostPort admin = SplitHostPort(Flag(weftd, "admin-addr"));
  CHECK(admin.port == SplitHostPort(DesignDefault("admin-addr")).port);
  CHECK((admin.host == "127.0.0.1" || weftd.flags.count("admin-token-file") == 1));
  for (const auto& [probe, path] : std::vector<std::pair<std::string, std::string>>{
           {"startupProbe", "/healthz"}, {"livenessProbe", "/healthz"}, {"readinessProbe", "/readyz"}}) {
    INFO(probe);
    json command = weftd.container[probe]["exec"]["command"];
    REQUIRE(command.is_array());
    const std::string script = command.back();
    CHECK(absl::StrContains(script, absl::StrCat("/dev/tcp/", admin.host, "/", admin.port)));
    CHECK(absl::StrContains(script, "GET " + path + " "));
  }

  // One weftd at a time (docs/kubernetes.md: no leader election yet).
  CHECK(weftd.deployment["spec"]["replicas"] == 1);
  CHECK(weftd.deployment["spec"]["strategy"]["type"] == "Recreate");

  // --ca-dir is writable: a volume, since the root filesystem is read-only.
  const std::string ca_dir = Flag(weftd, "ca-dir");
  bool on_volume = false;
  for (json mount : weftd.container["volumeMounts"]) {
    if (absl::StartsWith(ca_dir + "/", mount.value("mountPath", "") + "/") &&
        !mount.value("readOnly", false)) {
      on_volume = true;
    }
  }
  CHECK(on_volume);
  CHECK(weftd.container["securityContext"]["readOnlyRootFilesystem"] == true);
  CHECK(weftd.container["securityContext"]["allowPrivilegeEscalation"] == false);
  CHECK(weftd.pod["securityContext"]["runAsNonRoot"] == true);
}

TEST_CASE("deploy: the Dockerfile's image runs what the Deployment expects", "[deploy]") {
  const std::vector<Manifest> objects = InstalledObjects();
  WeftdContainer weftd = FindWeftd(objects);
  const Dockerfile dockerfile = ReadDockerfile();

  // Same user; the Deployment runs the image's entrypoint, which is weftd.
  const std::string user = dockerfile.Instruction("USER");
  const std::string uid = std::vector<std::string>(absl::StrSplit(user, ':'))[0];
  CHECK(uid == std::to_string(weftd.pod["securityContext"].value("runAsUser", -1)));
  CHECK(uid != "0");
  const json entrypoint = json::parse(dockerfile.Instruction("ENTRYPOINT"), nullptr, false);
  REQUIRE(entrypoint.is_array());
  CHECK(fs::path(entrypoint[0].get<std::string>()).filename() == "weftd");
  if (weftd.container.contains("command")) CHECK(weftd.container["command"] == entrypoint);
  const std::string expose = dockerfile.Instruction("EXPOSE");
  CHECK(absl::StrContains(expose, std::to_string(SplitHostPort(Flag(weftd, "xds-addr")).port)));

  // Every shared library weftd links: copied from the build tree, or from a
  // Debian package the runtime stage installs (or the base image carries).
  const std::set<std::string> packages = AptPackages(dockerfile);
  INFO("runtime packages: " << absl::StrJoin(packages, " "));
  const std::set<std::string> kInBaseImage = {"libc6", "libgcc-s1"};
  CommandResult ldd = RunCommand({"ldd", e2e::BinaryPath("weftd")});
  REQUIRE(ldd.exit_code == 0);
  struct Library {
    std::string soname, linked;  // as ldd prints them
    fs::path path;               // with symlinks resolved
  };
  std::vector<Library> libraries;
  static const std::regex kLib(R"(\n\s*(\S+) => (/\S+))");
  for (std::sregex_iterator it(ldd.output.begin(), ldd.output.end(), kLib), end; it != end; ++it) {
    libraries.push_back(Library{(*it)[1], (*it)[2], fs::canonical((*it)[2].str())});
  }
  CHECK(libraries.size() > 5);

  // dpkg knows a file by the path its package ships it under, which merged
  // /usr (/lib -> /usr/lib) and soname symlinks may hide: ask for each
  // spelling, all in one query.
  auto spellings = [](const Library& lib) {
    std::vector<std::string> out;
    for (const std::string& p : {lib.linked, lib.path.string()}) {
      out.push_back(p);
      out.push_back(absl::StartsWith(p, "/usr/") ? p.substr(4) : "/usr" + p);
    }
    return out;
  };
  std::vector<std::string> query = {"dpkg-query", "-S"};
  for (const Library& lib : libraries) {
    for (const std::string& p : spellings(lib)) query.push_back(p);
  }
  std::map<std::string, std::string> owner;  // path -> package
  for (absl::string_view line : absl::StrSplit(RunCommand(query).output, '\n')) {
    const size_t sep = line.find(": /");  // "libc6:amd64: /lib/x86_64-linux-gnu/libc.so.6"
    if (sep == absl::string_view::npos || absl::StartsWith(line, "dpkg-query:")) continue;
    const absl::string_view package = line.substr(0, line.substr(0, sep).find_first_of(":,"));
    owner[std::string(line.substr(sep + 2))] = std::string(package);
  }

  for (const Library& lib : libraries) {
    INFO(lib.soname << " => " << lib.linked);
    if (absl::StartsWith(lib.path.string(), fs::canonical(WEFT_BINARY_DIR).string())) {
      bool copied = false;
      for (const std::string& line : dockerfile.runtime) {
        copied |= absl::StartsWith(line, "COPY ") && absl::StrContains(line, lib.soname);
      }
      CHECK(copied);
      continue;
    }
    std::string package;
    for (const std::string& p : spellings(lib)) {
      if (package.empty() && owner.count(p) == 1) package = owner[p];
    }
    if (package.empty()) {
      WARN("dpkg-query cannot name the package of " << lib.linked << "; not checked");
      continue;
    }
    INFO("package " << package);
    CHECK((packages.count(package) == 1 || kInBaseImage.count(package) == 1));
  }
}

TEST_CASE("deploy: weftd starts with the Deployment's flags and answers its probes", "[deploy]") {
  const std::vector<Manifest> objects = InstalledObjects();
  WeftdContainer weftd = FindWeftd(objects);
  const HostPort admin = SplitHostPort(Flag(weftd, "admin-addr"));

  // The Deployment's arguments as they are, then only what cannot work on
  // a machine without a cluster: file mode, a CA in a temp directory, free
  // ports (absl: the last occurrence of a flag wins). A flag weftd rejects
  // (a name or a value) stops it here.
  const std::string dir = e2e::MakeTempDir("weft-deploy-");
  const std::string config_dir = dir + "/config";
  REQUIRE(mkdir(config_dir.c_str(), 0755) == 0);
  const int admin_port = e2e::PickFreePort();
  std::vector<std::string> argv = {e2e::BinaryPath("weftd")};
  argv.insert(argv.end(), weftd.args.begin(), weftd.args.end());
  for (const std::string& local : std::vector<std::string>{
           "--registry=file", "--config-dir=" + config_dir, "--ca-secret=", "--ca-dir=" + dir + "/ca",
           absl::StrCat("--xds-addr=127.0.0.1:", e2e::PickFreePort()),
           absl::StrCat("--admin-addr=", admin.host, ":", admin_port)}) {
    argv.push_back(local);
  }
  e2e::Subprocess process(argv, {}, dir + "/weftd.log");
  REQUIRE(process.Start().ok());
  const bool ready = e2e::WaitFor(
      [&] { return !process.Running() || e2e::HttpGet(admin.host, admin_port, "/readyz").status == 200; },
      absl::Seconds(20));
  INFO(process.Log());
  REQUIRE(ready);
  REQUIRE(process.Running());

  // Each probe's own command, pointed at this weftd's admin port.
  auto run_probe = [&](const std::string& probe) {
    auto command = weftd.container[probe]["exec"]["command"].get<std::vector<std::string>>();
    command.back() =
        absl::StrReplaceAll(command.back(), {{absl::StrCat("/", admin.port), absl::StrCat("/", admin_port)}});
    return RunCommand(command);
  };
  for (const char* probe : {"startupProbe", "livenessProbe", "readinessProbe"}) {
    CommandResult r = run_probe(probe);
    INFO(probe << ": " << r.output);
    CHECK(r.exit_code == 0);
  }
  CHECK(process.Stop() == 0);
  for (const char* probe : {"startupProbe", "livenessProbe", "readinessProbe"}) {
    INFO(probe << " with weftd gone");
    CHECK(run_probe(probe).exit_code != 0);
  }
}

}  // namespace
}  // namespace weft::deploy
