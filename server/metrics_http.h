// MetricsHttpServer: serves Metrics::Render() at GET /metrics over plain HTTP (cpp-httplib), for
// Prometheus to scrape. Kept apart from steritrack_rpc so httplib's large header stays here.
//
// Only on this machine: /metrics has no authentication and no TLS, so it listens on loopback
// (127.0.0.0/8, [::1], localhost) and nowhere else; a Prometheus or agent elsewhere scrapes it
// through one on this machine or an authenticating reverse proxy. Start() and Stop() are for one
// thread (steritrackd's main); requests are answered on the server's own two threads.
#ifndef STERITRACK_SERVER_METRICS_HTTP_H_
#define STERITRACK_SERVER_METRICS_HTTP_H_

#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/statusor.h"
#include "server/rpc/metrics.h"

namespace httplib {
class Server;
}

namespace steritrack {

struct MetricsAddress {
  std::string host;  // as bind() takes it: "127.0.0.1", "::1", "localhost"
  int port = 0;      // 0: any free port
};

// Parses --metrics-listen: PORT (on 127.0.0.1), HOST:PORT or [IPV6]:PORT. Refuses, with a message
// saying what is allowed, a malformed address and any that is not this machine's alone
// (IsLocalOnlyAddress; unix sockets are not offered).
absl::StatusOr<MetricsAddress> ParseMetricsListen(std::string_view text);

class MetricsHttpServer {
 public:
  // Binds `address` and serves `metrics`. REQUIRES: `metrics` outlives the server.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const MetricsAddress& address,
                                                                  const rpc::Metrics* metrics);
  ~MetricsHttpServer();  // Stop()

  // Where it listens, port resolved: "127.0.0.1:9464", "[::1]:9464".
  const std::string& address() const { return address_; }
  int port() const { return port_; }
  // Stops listening and waits for the serving thread. Idempotent.
  void Stop();

 private:
  MetricsHttpServer();
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  std::string address_;
  int port_ = 0;
};

}  // namespace steritrack

#endif  // STERITRACK_SERVER_METRICS_HTTP_H_
