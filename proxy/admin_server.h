// weft-proxy's admin port (--admin-addr): a small HTTP/1.1 server on its own
// thread. It only moves bytes; the pages (/ready, /config_dump,
// /stats/prometheus) are computed by the handler main() gives it.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"

namespace weft::proxy {

struct AdminResponse {
  int status = 200;
  std::string content_type = "text/plain";
  std::string body;
};
using AdminHandler = std::function<AdminResponse(const std::string& method, const std::string& path)>;

class AdminServer {
 public:
  AdminServer(std::string addr, AdminHandler handler);
  ~AdminServer();
  absl::Status Start();
  void Stop();

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace weft::proxy
