#include "cli/admin_views.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <set>
#include <vector>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/table.h"

namespace weft::cli {
namespace {

// ordered_json keeps the fields in the order weftd wrote them.
using json = nlohmann::ordered_json;

constexpr const char* kMissing = "-";

// Parses without exceptions (nlohmann/json throws); the admin API's bodies
// are untrusted input here.
absl::StatusOr<json> Parse(absl::string_view body) {
  json parsed = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return absl::InvalidArgumentError("weftd's answer is not JSON: " + ServerErrorMessage(body));
  }
  return parsed;
}

// Pretty JSON; invalid UTF-8 in strings is replaced instead of throwing.
std::string Pretty(const json& value) {
  return value.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

// Every view: weftd's answer as it came (pretty) with --output=json, else
// the text `as_text` makes of it.
absl::StatusOr<std::string> Render(absl::string_view body, OutputFormat format,
                                   std::string (*as_text)(const json&)) {
  auto parsed = Parse(body);
  if (!parsed.ok()) return parsed.status();
  if (format == OutputFormat::kJson) return Pretty(*parsed);
  return as_text(*parsed);
}

// obj[key] when obj is an object that has it; else null.
const json& Field(const json& obj, absl::string_view key) {
  static const json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(std::string(key));
  return it == obj.end() ? kNull : *it;
}

// A scalar as text; "-" for null, empty strings, objects and arrays.
std::string Text(const json& value) {
  switch (value.type()) {
    case json::value_t::string: {
      const auto& s = value.get_ref<const std::string&>();
      return s.empty() ? kMissing : s;
    }
    case json::value_t::boolean:
      return value.get<bool>() ? "true" : "false";
    case json::value_t::number_integer:
      return std::to_string(value.get<int64_t>());
    case json::value_t::number_unsigned:
      return std::to_string(value.get<uint64_t>());
    case json::value_t::number_float:
      return value.dump();
    default:
      return kMissing;
  }
}

std::string Text(const json& obj, absl::string_view key) { return Text(Field(obj, key)); }

// A list field; an empty array when missing or not an array.
const json& List(const json& obj, absl::string_view key) {
  static const json kEmpty = json::array();
  const json& value = Field(obj, key);
  return value.is_array() ? value : kEmpty;
}

// Versions are 16 hex digits; 8 tell them apart in a table (the JSON
// output has them whole).
std::string ShortVersion(const std::string& version) {
  return version.size() > 8 && version != kMissing ? version.substr(0, 8) : version;
}

// "namespace/name", or "-" when neither is known.
std::string Qualified(const std::string& ns, const std::string& name) {
  if (ns == kMissing && name == kMissing) return kMissing;
  return ns + "/" + name;
}

// The standard resource types first, in istioctl's order, then any others.
std::vector<std::string> TypeColumns(const json& proxies) {
  std::vector<std::string> columns = {"cds", "lds", "eds", "rds", "sds"};
  std::set<std::string> extra;
  for (const json& p : proxies) {
    const json& types = Field(p, "types");
    if (!types.is_object()) continue;
    for (const auto& [name, value] : types.items()) {
      if (std::find(columns.begin(), columns.end(), name) == columns.end()) extra.insert(name);
    }
  }
  columns.insert(columns.end(), extra.begin(), extra.end());
  return columns;
}

// "SYNCED 52429c97", or "STALE 52429c97 (sent 10f7fee2)" when what the
// proxy acknowledged is not what weftd sent.
std::string TypeCell(const json& type) {
  if (!type.is_object()) return kMissing;
  const std::string acked = ShortVersion(Text(type, "versionAcked"));
  const std::string sent = ShortVersion(Text(type, "versionSent"));
  std::string cell = Text(type, "status") + " " + acked;
  if (sent != acked) absl::StrAppend(&cell, " (sent ", sent, ")");
  return cell;
}

std::string Upper(std::string s) {
  absl::AsciiStrToUpper(&s);
  return s;
}

// "config/x.yaml#0: TrafficPolicy shop/name: spec.retries: reason".
std::string ConfigErrorLine(const json& e) {
  std::string line = absl::StrCat(Text(e, "source"), ": ", Text(e, "kind"), " ",
                                  Qualified(Text(e, "namespace"), Text(e, "name")));
  const std::string field = Text(e, "field");
  if (field != kMissing) absl::StrAppend(&line, ": ", field);
  absl::StrAppend(&line, ": ", Text(e, "reason"));
  return line;
}

// "3649d", "5h", "12m", "30s"; "expired" when negative.
std::string HumanSeconds(const json& value) {
  if (!value.is_number()) return kMissing;
  const double seconds = value.get<double>();
  if (seconds < 0) return "expired";
  const int64_t s = static_cast<int64_t>(seconds);
  if (s >= 2 * 86400) return absl::StrCat(s / 86400, "d");
  if (s >= 2 * 3600) return absl::StrCat(s / 3600, "h");
  if (s >= 2 * 60) return absl::StrCat(s / 60, "m");
  return absl::StrCat(s, "s");
}

std::string ProxiesText(const json& doc) {
  const json& proxies = List(doc, "proxies");
  if (proxies.empty()) return std::string("No proxies are connected to weftd.\n");

  const std::vector<std::string> types = TypeColumns(proxies);
  std::vector<std::string> header = {"PROXY", "IDENTITY", "KIND"};
  for (const auto& t : types) header.push_back(Upper(t));
  Table table(header);
  std::string nacks;
  for (const json& p : proxies) {
    const json& identity = Field(p, "identity");
    std::vector<std::string> row = {Text(p, "id"),
                                    Qualified(Text(identity, "namespace"), Text(identity, "serviceAccount")),
                                    Text(identity, "kind")};
    for (const auto& t : types) row.push_back(TypeCell(Field(Field(p, "types"), t)));
    table.AddRow(std::move(row));

    // The why: what the proxy said when it rejected a push, and where the
    // rejected resources came from.
    const json& by_type = Field(p, "types");
    if (!by_type.is_object()) continue;
    for (const auto& [type, entry] : by_type.items()) {
      const json& nack = Field(entry, "nack");
      if (!nack.is_object() && Text(entry, "status") != "NACKED") continue;
      absl::StrAppend(&nacks, Text(p, "id"), ": ", Upper(type), " version ", Text(nack, "version"),
                      " rejected: ", Text(nack, "message"), "\n");
      for (const json& r : List(nack, "sources")) {
        std::vector<std::string> from;
        for (const json& s : List(r, "sources")) from.push_back(Text(s));
        absl::StrAppend(&nacks, "  ", Text(r, "resource"),
                        from.empty() ? "" : " (from " + absl::StrJoin(from, ", ") + ")", "\n");
      }
      if (List(nack, "sources").empty()) {
        for (const json& r : List(nack, "resources")) absl::StrAppend(&nacks, "  ", Text(r), "\n");
      }
    }
  }
  std::string out = table.Render();
  if (!nacks.empty()) {
    absl::StrAppend(&out, "\nNACKs (the proxy keeps its last good configuration):\n", nacks);
  }
  return out;
}

std::string ServicesText(const json& doc) {
  const json& services = List(doc, "services");
  if (services.empty()) return std::string("No services.\n");
  constexpr size_t kShownEndpoints = 3;
  Table table({"NAMESPACE", "NAME", "HOST", "CLUSTER-IP", "PORT", "ENDPOINTS", "SOURCE"});
  for (const json& s : services) {
    std::vector<std::string> row = {Text(s, "namespace"), Text(s, "name"), Text(s, "host"),
                                    Text(s, "clusterIP")};
    const json& ports = List(s, "ports");
    if (ports.empty()) {
      table.AddRow({row[0], row[1], row[2], row[3], kMissing, kMissing, Text(s, "source")});
      continue;
    }
    for (const json& port : ports) {
      std::string port_cell = Text(port, "port") + "/" + Text(port, "protocol");
      if (Text(port, "name") != kMissing) port_cell = Text(port, "name") + ":" + port_cell;
      const json& endpoints = List(port, "endpoints");
      std::vector<std::string> shown;
      for (size_t i = 0; i < endpoints.size() && i < kShownEndpoints; ++i) {
        shown.push_back(Text(endpoints[i], "address") + ":" + Text(endpoints[i], "port"));
      }
      std::string endpoint_cell = shown.empty() ? "<none>" : absl::StrJoin(shown, ",");
      if (endpoints.size() > kShownEndpoints) {
        absl::StrAppend(&endpoint_cell, " (+", endpoints.size() - kShownEndpoints, " more)");
      }
      table.AddRow({row[0], row[1], row[2], row[3], port_cell, endpoint_cell, Text(s, "source")});
    }
  }
  return table.Render();
}

std::string PoliciesText(const json& doc) {
  const json& policies = List(doc, "policies");
  std::string out;
  std::string problems;
  std::set<std::string> shown;  // errors listed under a policy are in "errors" too
  if (policies.empty()) {
    out = "No policies.\n";
  } else {
    Table table({"NAMESPACE", "KIND", "NAME", "STATUS", "SOURCE"});
    for (const json& p : policies) {
      table.AddRow(
          {Text(p, "namespace"), Text(p, "kind"), Text(p, "name"), Text(p, "status"), Text(p, "source")});
      for (const json& e : List(p, "errors")) {
        shown.insert(ConfigErrorLine(e));
        absl::StrAppend(&problems, "  error: ", ConfigErrorLine(e), "\n");
      }
      for (const json& w : List(p, "warnings"))
        absl::StrAppend(&problems, "  warning: ", ConfigErrorLine(w), "\n");
    }
    out = table.Render();
  }
  if (!problems.empty()) {
    absl::StrAppend(&out, "\nProblems (an invalid policy is left out of every proxy's configuration):\n",
                    problems);
  }
  std::string unread;
  for (const json& e : List(doc, "errors")) {
    if (shown.count(ConfigErrorLine(e)) == 0) absl::StrAppend(&unread, "  ", ConfigErrorLine(e), "\n");
  }
  if (!unread.empty()) {
    absl::StrAppend(&out, "\nManifest errors (the last good version of these objects stays in force):\n",
                    unread);
  }
  return out;
}

std::string CertificatesText(const json& c) {
  const json& rotation = Field(c, "rotation");
  std::string out = absl::StrCat("CA: ", Text(c, "mode"), ", rotation ", Text(rotation, "phase"), " since ",
                                 Text(rotation, "since"));
  if (Field(rotation, "retireOldRootAfter").is_string()) {
    absl::StrAppend(&out, ", old root retired after ", Text(rotation, "retireOldRootAfter"));
  }
  absl::StrAppend(&out, ", ", Text(c, "issuedTotal"), " certificates issued\n\n");

  Table authorities({"CA CERTIFICATE", "SUBJECT", "SERIAL", "NOT-AFTER", "EXPIRES-IN"});
  for (const json& r : List(c, "roots")) {
    authorities.AddRow({Field(r, "signing") == true ? "root (signing)" : "root", Text(r, "subject"),
                        Text(r, "serial"), Text(r, "notAfter"), HumanSeconds(Field(r, "expiresInSeconds"))});
  }
  const json& intermediate = Field(c, "intermediate");
  if (intermediate.is_object()) {
    authorities.AddRow({"intermediate", Text(intermediate, "subject"), Text(intermediate, "serial"),
                        Text(intermediate, "notAfter"),
                        HumanSeconds(Field(intermediate, "expiresInSeconds"))});
  }
  absl::StrAppend(&out, authorities.Render());

  const json& issued = List(c, "issued");
  if (issued.empty()) {
    absl::StrAppend(&out, "\nNo certificates issued recently.\n");
    return out;
  }
  Table recent({"ISSUED TO", "SERIAL", "AUTHENTICATED-BY", "ISSUED-AT", "NOT-AFTER"});
  for (const json& i : issued) {
    recent.AddRow({Text(i, "identity"), Text(i, "serial"), Text(i, "authenticatedBy"), Text(i, "issuedAt"),
                   Text(i, "notAfter")});
  }
  absl::StrAppend(&out, "\n", recent.Render());
  return out;
}

}  // namespace

absl::StatusOr<std::string> RenderProxies(absl::string_view body, OutputFormat format) {
  return Render(body, format, ProxiesText);
}

absl::StatusOr<std::string> RenderServices(absl::string_view body, OutputFormat format) {
  return Render(body, format, ServicesText);
}

absl::StatusOr<std::string> RenderPolicies(absl::string_view body, OutputFormat format) {
  return Render(body, format, PoliciesText);
}

absl::StatusOr<std::string> RenderCertificates(absl::string_view body, OutputFormat format) {
  return Render(body, format, CertificatesText);
}

bool IsConfigSection(absl::string_view section) {
  return std::find(std::begin(kConfigSections), std::end(kConfigSections), section) !=
         std::end(kConfigSections);
}

absl::StatusOr<std::string> RenderConfigDump(absl::string_view body, absl::string_view section) {
  auto parsed = Parse(body);
  if (!parsed.ok()) return parsed.status();
  if (section.empty()) return Pretty(*parsed);
  if (!IsConfigSection(section))
    return absl::InvalidArgumentError(absl::StrCat("no config section ", section));
  // listeners -> type.googleapis.com/envoy.admin.v3.ListenersConfigDump
  std::string suffix = absl::StrCat(".", section, "ConfigDump");
  suffix[1] = absl::ascii_toupper(suffix[1]);
  for (const json& config : List(*parsed, "configs")) {
    const json& type = Field(config, "@type");
    if (type.is_string() && absl::EndsWith(type.get_ref<const std::string&>(), suffix)) return Pretty(config);
  }
  return absl::NotFoundError(absl::StrCat("the config dump has no ", section, " section (no *",
                                          suffix.substr(1), " in \"configs\")"));
}

std::string RenderStatus(int healthz_status, absl::string_view healthz_body, int readyz_status,
                         absl::string_view readyz_body, OutputFormat format) {
  auto healthz = Parse(healthz_body);
  auto readyz = Parse(readyz_body);
  if (format == OutputFormat::kJson) {
    return Pretty(
        json{{"healthz", {{"httpStatus", healthz_status}, {"body", healthz.ok() ? *healthz : json()}}},
             {"readyz", {{"httpStatus", readyz_status}, {"body", readyz.ok() ? *readyz : json()}}}});
  }
  std::string out = absl::StrCat("healthy: ", healthz_status == 200 ? "yes" : "no");
  if (healthz_status != 200) absl::StrAppend(&out, " (HTTP ", healthz_status, ")");
  absl::StrAppend(&out, "\nready:   ", readyz_status == 200 ? "yes" : "no");
  const json readyz_json = readyz.ok() ? *readyz : json();
  if (readyz_status == 200) {
    absl::StrAppend(&out, " (mesh version ", Text(readyz_json, "meshVersion"), ")");
  } else {
    absl::StrAppend(&out, " (HTTP ", readyz_status, ": ", Text(readyz_json, "reason"), ")");
  }
  return out + "\n";
}

std::string ServerErrorMessage(absl::string_view body) {
  json parsed = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  const json& error = Field(parsed, "error");
  if (error.is_string() && !error.get_ref<const std::string&>().empty()) return error.get<std::string>();
  std::string text(absl::StripAsciiWhitespace(body));
  std::replace(text.begin(), text.end(), '\n', ' ');
  constexpr size_t kMaxLength = 200;
  if (text.size() > kMaxLength) text = text.substr(0, kMaxLength) + "...";
  return text.empty() ? "(empty body)" : text;
}

std::string EscapePathSegment(absl::string_view id) {
  std::string out;
  for (unsigned char c : id) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof(buf), "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

}  // namespace weft::cli
