#include "server/metrics_http.h"

#include <httplib.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/string_view.h"
#include "steritrack/listen_address.h"
#include "steritrack/strings.h"

namespace steritrack {
namespace {

constexpr std::string_view kForms = "give PORT, HOST:PORT or [IPV6]:PORT";

absl::Status Malformed(std::string_view text, std::string_view why) {
  return absl::InvalidArgumentError(
      StrCat("--metrics-listen ", text, ": ", why, " (", kForms, ")"));
}

}  // namespace

absl::StatusOr<MetricsAddress> ParseMetricsListen(std::string_view text) {
  std::string_view host = "127.0.0.1";
  std::string_view port_text = text;
  bool ipv6 = false;
  if (text.starts_with("[")) {
    const size_t close = text.find("]:");
    if (close == std::string_view::npos) return Malformed(text, "no ]:PORT after the IPv6 host");
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
    ipv6 = true;
  } else if (const size_t colon = text.rfind(':'); colon != std::string_view::npos) {
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return Malformed(text, "an IPv6 host goes in brackets");
    }
  }
  int port = -1;
  const bool digits =
      !port_text.empty() && port_text.find_first_not_of("0123456789") == std::string_view::npos;
  if (!digits || !absl::SimpleAtoi(absl::string_view(port_text.data(), port_text.size()), &port) ||
      port > 65535) {
    return Malformed(text, "the port is a number from 0 to 65535");
  }
  if (host.empty()) return Malformed(text, "no host");
  const std::string bracketed = ipv6 ? StrCat("[", host, "]") : std::string(host);
  if (!IsLocalOnlyAddress(StrCat(bracketed, ":", port_text))) {
    return absl::InvalidArgumentError(StrCat(
        "--metrics-listen ", text,
        ": metrics are served on this machine only (127.0.0.1, [::1] or localhost): /metrics has "
        "no authentication; scrape it with a Prometheus or agent on this machine, or through an "
        "authenticating reverse proxy"));
  }
  return MetricsAddress{.host = std::string(host), .port = port};
}

// httplib::Server's constructor ignores SIGPIPE for the whole process (Debian's build sends without
// MSG_NOSIGNAL), so a scraper that hangs up mid-answer cannot end steritrackd; gRPC is unaffected.
MetricsHttpServer::MetricsHttpServer() : http_(std::make_unique<httplib::Server>()) {}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const MetricsAddress& address, const rpc::Metrics* metrics) {
  std::unique_ptr<MetricsHttpServer> server(new MetricsHttpServer());
  httplib::Server& http = *server->http_;
  // A scrape every few seconds needs no more; httplib's default is a thread per core.
  http.new_task_queue = [] { return new httplib::ThreadPool(2); };
  // httplib's default sets SO_REUSEPORT, which would let a second server share the port unnoticed;
  // SO_REUSEADDR alone still allows a restart while old connections linger.
  http.set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  http.Get("/metrics", [metrics](const httplib::Request&, httplib::Response& response) {
    response.set_content(metrics->Render(), "text/plain; version=0.0.4; charset=utf-8");
  });
  const int port = address.port == 0 ? http.bind_to_any_port(address.host)
                   : http.bind_to_port(address.host, address.port) ? address.port
                                                                   : -1;
  if (port <= 0) {
    return absl::UnavailableError(StrCat("cannot serve metrics on ", address.host, ":",
                                         address.port,
                                         " (address in use, or not an address of this machine)"));
  }
  server->port_ = port;
  server->address_ = address.host.find(':') != std::string::npos
                         ? StrCat("[", address.host, "]:", port)
                         : StrCat(address.host, ":", port);
  auto done = std::make_shared<std::atomic<bool>>(false);
  server->thread_ = std::thread([&http, done] {
    http.listen_after_bind();
    done->store(true);
  });
  // httplib's stop() only stops a server that is already running: wait until it runs (or gave
  // up), so a Stop() right after Start() cannot be lost. Either comes within microseconds.
  while (!http.is_running() && !done->load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!http.is_running()) {
    const std::string where = server->address_;
    server->Stop();
    return absl::UnavailableError(StrCat("cannot serve metrics on ", where));
  }
  return server;
}

void MetricsHttpServer::Stop() {
  if (!thread_.joinable()) return;
  http_->stop();
  thread_.join();
}

}  // namespace steritrack
