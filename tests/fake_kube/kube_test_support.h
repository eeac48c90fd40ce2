// Test-only helpers shared by the Kubernetes client tests: a recording
// KubeWatchSink, a sleeper that records instead of waiting, a client for a
// fake server, and polling. Header-only; the fake server itself does not
// depend on the client it tests.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "discovery/kube_backoff.h"
#include "discovery/kube_client.h"
#include "discovery/kube_config.h"
#include "discovery/kube_watcher.h"
#include "tests/fake_kube/fake_api_server.h"

namespace weft::fake_kube {

// What a watcher reported, per kind and key.
class RecordingSink : public discovery::KubeWatchSink {
 public:
  void OnObject(const discovery::KubeResource& resource, discovery::KubeEventType type, const std::string& key,
                const nlohmann::json& object) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto& objects = objects_[resource.kind];
    if (type == discovery::KubeEventType::kDeleted) {
      objects.erase(key);
    } else {
      objects[key] = object;
    }
    ++events_[static_cast<int>(type)];
  }
  void OnSynced(const discovery::KubeResource& resource) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++synced_[resource.kind];
  }
  void OnListFailed(const discovery::KubeResource& resource, const absl::Status& status) override {
    std::lock_guard<std::mutex> lock(mu_);
    failures_.push_back(status);
  }
  std::map<std::string, nlohmann::json> Objects(const std::string& kind) {
    std::lock_guard<std::mutex> lock(mu_);
    return objects_[kind];
  }
  int Synced(const std::string& kind) {
    std::lock_guard<std::mutex> lock(mu_);
    return synced_[kind];
  }
  int Events(discovery::KubeEventType type) {
    std::lock_guard<std::mutex> lock(mu_);
    return events_[static_cast<int>(type)];
  }
  std::vector<absl::Status> Failures() {
    std::lock_guard<std::mutex> lock(mu_);
    return failures_;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::map<std::string, nlohmann::json>> objects_;
  std::map<std::string, int> synced_;
  std::map<int, int> events_;
  std::vector<absl::Status> failures_;
};

// Records each requested wait and waits only a millisecond.
class RecordingSleeper : public discovery::Sleeper {
 public:
  bool SleepFor(std::chrono::milliseconds d) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (interrupted_) return false;
      waits_.push_back(d);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::lock_guard<std::mutex> lock(mu_);
    return !interrupted_;
  }
  void Interrupt() override {
    std::lock_guard<std::mutex> lock(mu_);
    interrupted_ = true;
  }
  std::vector<std::chrono::milliseconds> Waits() {
    std::lock_guard<std::mutex> lock(mu_);
    return waits_;
  }

 private:
  std::mutex mu_;
  bool interrupted_ = false;
  std::vector<std::chrono::milliseconds> waits_;
};

inline discovery::KubeConfig ConfigFor(const FakeApiServer& server) {
  discovery::KubeConfig config;
  config.scheme = "http";
  config.host = "127.0.0.1";
  config.port = server.port();
  config.source = "fake";
  return config;
}

inline discovery::KubeClientPtr ClientFor(const FakeApiServer& server) {
  auto client = discovery::KubeClient::Create(ConfigFor(server));
  if (!client.ok()) std::abort();
  return std::move(client).value();
}

inline bool Eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return condition();
}

inline nlohmann::json ServiceObject(const std::string& ns, const std::string& name, int port) {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"spec", {{"ports", {{{"name", "http"}, {"port", port}}}}}}};
}

inline nlohmann::json NamespaceObject(const std::string& name, std::map<std::string, std::string> labels = {}) {
  nlohmann::json o = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}};
  if (!labels.empty()) o["metadata"]["labels"] = labels;
  return o;
}

}  // namespace weft::fake_kube
