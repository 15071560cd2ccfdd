// open_load: how many OpenCartridge requests per second a running steritrackd sustains with N
// concurrent clients. Prints figures; asserts nothing (tests assert behaviour, benchmarks measure).
//
//   open_load --server 127.0.0.1:50051 --clients 16 --units 4000
//
// Seeds its own lot of units (a unique lot per run) and one treatment per client, then each client
// opens distinct units on its own channel as fast as answers come back.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "steritrack/v1/inventory.grpc.pb.h"
#include "steritrack/v1/treatment.grpc.pb.h"

namespace v1 = steritrack::v1;

int main(int argc, char** argv) {
  std::string server = "127.0.0.1:50051";
  int clients = 16;
  int units = 4000;
  CLI::App app{"open_load: OpenCartridge throughput with concurrent clients"};
  app.add_option("--server", server)->capture_default_str();
  app.add_option("--clients", clients)->capture_default_str();
  app.add_option("--units", units, "cartridges to open in all")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto channel = grpc::CreateChannel(server, grpc::InsecureChannelCredentials());
  auto inventory = v1::InventoryService::NewStub(channel);
  auto treatments = v1::TreatmentService::NewStub(channel);

  const std::string lot = "B" + std::to_string(std::random_device{}() % 100000000);
  std::vector<std::string> barcodes;
  for (int i = 0; i < units; ++i) {
    barcodes.push_back("(01)09506000134352(17)301231(10)" + lot + "(21)" + lot + "U" +
                       std::to_string(i));
  }
  for (int start = 0; start < units; start += 1000) {
    v1::ReceiveCartridgesRequest req;
    for (int i = start; i < std::min(units, start + 1000); ++i) req.add_barcodes(barcodes[i]);
    v1::ReceiveCartridgesResponse resp;
    grpc::ClientContext ctx;
    grpc::Status st = inventory->ReceiveCartridges(&ctx, req, &resp);
    if (!st.ok()) {
      std::fprintf(stderr, "seeding failed: %s\n", st.error_message().c_str());
      return 1;
    }
  }
  std::vector<std::string> treatment_ids;
  for (int c = 0; c < clients; ++c) {
    v1::StartTreatmentRequest req;
    req.set_room(std::to_string(c + 1));
    req.set_clinician("bench");
    req.set_client_ref("BENCH-" + std::to_string(c));
    v1::Treatment t;
    grpc::ClientContext ctx;
    if (!treatments->StartTreatment(&ctx, req, &t).ok()) return 1;
    treatment_ids.push_back(t.id());
  }

  std::atomic<int> next{0};
  std::atomic<int> failures{0};
  std::vector<std::vector<double>> latencies(clients);
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      // One channel per client, as separate treatment-room terminals would have.
      grpc::ChannelArguments args;
      args.SetInt("steritrack.bench.client", c);  // distinct args: distinct connections
      auto ch = grpc::CreateCustomChannel(server, grpc::InsecureChannelCredentials(), args);
      auto stub = v1::TreatmentService::NewStub(ch);
      while (true) {
        int i = next.fetch_add(1);
        if (i >= units) break;
        v1::OpenCartridgeRequest req;
        req.set_barcode(barcodes[i]);
        req.set_treatment_id(treatment_ids[c]);
        req.set_request_id("bench-" + lot + "-" + std::to_string(i));
        v1::Cartridge resp;
        grpc::ClientContext ctx;
        const auto t0 = std::chrono::steady_clock::now();
        grpc::Status st = stub->OpenCartridge(&ctx, req, &resp);
        latencies[c].push_back(
            std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                .count());
        if (!st.ok()) failures.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    return all.empty() ? 0.0 : all[std::min(all.size() - 1, static_cast<size_t>(p * all.size()))];
  };
  std::printf("open_load: %d clients, %d opens in %.2f s = %.0f opens/s; failures %d\n", clients,
              units, seconds, units / seconds, failures.load());
  std::printf("latency ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", pct(0.50), pct(0.90),
              pct(0.99), all.empty() ? 0.0 : all.back());
  return failures.load() == 0 ? 0 : 1;
}
