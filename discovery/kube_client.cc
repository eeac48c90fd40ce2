#include "discovery/kube_client.h"

#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <utility>

#include <httplib.h>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace weft::discovery {
namespace {

// A directory that holds no certificates: given to cpp-httplib as the CA
// directory so that it does not add the system's roots next to the cluster
// CA (it loads the default paths when it has no CA location at all).
constexpr char kNoCaDir[] = "/nonexistent/weft-no-system-roots";

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

BioPtr MemBio(const std::string& pem) { return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))); }

// Every certificate in `pem` in a new store; nullptr when none parses.
X509_STORE* NewStore(const std::string& pem) {
  BioPtr bio = MemBio(pem);
  X509_STORE* store = X509_STORE_new();
  int n = 0;
  while (X509* cert = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(store, cert);
    X509_free(cert);
    ++n;
  }
  if (n == 0) {
    X509_STORE_free(store);
    return nullptr;
  }
  return store;
}

std::string Trim(std::string s) {
  return std::string(absl::StripAsciiWhitespace(s));
}

}  // namespace

// One HTTP(S) connection (one request at a time).
class KubeClient::Connection {
 public:
  std::unique_ptr<httplib::ClientImpl> http;
};

absl::StatusOr<KubeClientPtr> KubeClient::Create(KubeConfig config, KubeClientOptions options) {
  if (config.host.empty()) return absl::InvalidArgumentError(absl::StrCat(config.source, ": no API server host"));
  if (!config.ca_pem.empty()) {
    X509_STORE* store = NewStore(config.ca_pem);
    if (store == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(config.source, ": the certificate authority holds no PEM certificate"));
    }
    X509_STORE_free(store);
  }
  if (!config.client_cert_pem.empty()) {
    BioPtr cert_bio = MemBio(config.client_cert_pem);
    X509* cert = PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr);
    BioPtr key_bio = MemBio(config.client_key_pem);
    EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr);
    bool ok = cert != nullptr && key != nullptr && X509_check_private_key(cert, key) == 1;
    if (cert) X509_free(cert);
    if (key) EVP_PKEY_free(key);
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat(config.source, ": the client certificate or key does not parse, or they do not match"));
    }
  }
  if (config.scheme == "http") {
    WEFT_LOG(WARNING) << "Kubernetes API server " << config.Url() << " is plain HTTP: not encrypted, not verified";
  }
  return KubeClientPtr(new KubeClient(std::move(config), options));
}

KubeClient::KubeClient(KubeConfig config, KubeClientOptions options)
    : config_(std::move(config)), options_(std::move(options)) {}

KubeClient::~KubeClient() { Shutdown(); }

std::string KubeClient::CurrentToken() {
  absl::MutexLock lock(&token_mu_);
  if (config_.token_file.empty()) return config_.token;
  struct stat st {};
  if (stat(config_.token_file.c_str(), &st) != 0) {
    if (token_mtime_ns_ != -2) {
      WEFT_LOG(WARNING) << "cannot read the token file " << config_.token_file << "; using the last token read";
    }
    token_mtime_ns_ = -2;
    return token_;
  }
  const int64_t mtime = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  if (mtime != token_mtime_ns_ || st.st_size != token_size_) {
    std::ifstream in(config_.token_file, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string token = Trim(ss.str());
    if (!token.empty()) {
      if (!token_.empty() && token != token_) {
        WEFT_LOG(INFO) << "re-read the rotated token " << config_.token_file;
      }
      token_ = std::move(token);
    }
    token_mtime_ns_ = mtime;
    token_size_ = st.st_size;
  }
  return token_;
}

std::unique_ptr<KubeClient::Connection> KubeClient::Connect(std::chrono::seconds read_timeout) {
  auto c = std::make_unique<Connection>();
  if (config_.scheme == "https") {
    std::unique_ptr<httplib::SSLClient> ssl;
    if (!config_.client_cert_pem.empty()) {
      BioPtr cert_bio = MemBio(config_.client_cert_pem);
      X509* cert = PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr);
      BioPtr key_bio = MemBio(config_.client_key_pem);
      EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr);
      ssl = std::make_unique<httplib::SSLClient>(config_.host, config_.port, cert, key);
      X509_free(cert);  // the SSL context holds its own references
      EVP_PKEY_free(key);
    } else {
      ssl = std::make_unique<httplib::SSLClient>(config_.host, config_.port);
    }
    ssl->enable_server_certificate_verification(true);
    if (!config_.ca_pem.empty()) {
      ssl->set_ca_cert_path("", kNoCaDir);
      ssl->set_ca_cert_store(NewStore(config_.ca_pem));  // the context takes ownership
    }
    c->http = std::move(ssl);
  } else {
    c->http = std::make_unique<httplib::ClientImpl>(config_.host, config_.port);
  }
  httplib::ClientImpl& http = *c->http;
  http.set_connection_timeout(options_.connect_timeout);
  http.set_read_timeout(read_timeout);
  http.set_write_timeout(options_.request_timeout);
  http.set_keep_alive(false);
  http.set_url_encode(false);  // paths and queries are built encoded
  const std::string token = CurrentToken();
  if (!token.empty()) http.set_bearer_token_auth(token);
  http.set_default_headers({{"User-Agent", options_.user_agent}, {"Accept", "application/json"}});
  return c;
}

bool KubeClient::Track(Connection* c) {
  absl::MutexLock lock(&mu_);
  if (shutdown_) return false;
  active_.insert(c);
  return true;
}

void KubeClient::Untrack(Connection* c) {
  absl::MutexLock lock(&mu_);
  active_.erase(c);
}

void KubeClient::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
  for (Connection* c : active_) c->http->stop();
}

absl::StatusOr<KubeResponse> KubeClient::Request(const std::string& method, const std::string& path,
                                                 const std::string& body, const std::string& content_type) {
  std::unique_ptr<Connection> c = Connect(options_.request_timeout);
  if (!Track(c.get())) return absl::CancelledError("the Kubernetes client is shut down");
  httplib::Request req;
  req.method = method;
  req.path = config_.path_prefix + path;
  if (!body.empty() || method == "POST" || method == "PUT" || method == "PATCH") {
    req.body = body;
    req.set_header("Content-Type", content_type.empty() ? "application/json" : content_type);
  }
  httplib::Result result = c->http->send(req);
  Untrack(c.get());
  if (!result) {
    {
      absl::MutexLock lock(&mu_);
      if (shutdown_) return absl::CancelledError("the Kubernetes client is shut down");
    }
    return absl::UnavailableError(absl::StrCat(method, " ", config_.Url(), path, ": ", httplib::to_string(result.error())));
  }
  return KubeResponse{result->status, std::move(result->body)};
}

absl::Status KubeClient::Stream(const std::string& path, std::chrono::seconds read_timeout, int* status,
                                const std::function<bool(std::string_view)>& on_data) {
  std::unique_ptr<Connection> c = Connect(read_timeout);
  if (!Track(c.get())) return absl::CancelledError("the Kubernetes client is shut down");
  *status = 0;
  bool stopped_by_receiver = false;
  httplib::Result result = c->http->Get(
      config_.path_prefix + path, httplib::Headers{},
      [status](const httplib::Response& r) {
        *status = r.status;
        return true;
      },
      [&](const char* data, size_t n) {
        if (on_data(std::string_view(data, n))) return true;
        stopped_by_receiver = true;
        return false;
      });
  Untrack(c.get());
  {
    absl::MutexLock lock(&mu_);
    if (shutdown_) return absl::CancelledError("the Kubernetes client is shut down");
  }
  if (!result) {
    if (stopped_by_receiver) return absl::OkStatus();
    return absl::UnavailableError(absl::StrCat("GET ", config_.Url(), path, ": ", httplib::to_string(result.error())));
  }
  return absl::OkStatus();
}

}  // namespace weft::discovery
