// /metrics, /healthz and /readyz over real HTTP on loopback.
#include "http/endpoint_server.h"

#include <httplib.h>

#include <atomic>
#include <chrono>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "http/host_port.h"
#include "metrics/registry.h"

namespace quantd::http {
namespace {

using ::testing::HasSubstr;

class EndpointServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto family = registry_.AddCounterFamily("test_requests_total", "Requests.", {"code"});
    ASSERT_TRUE(family.ok());
    requests_ = *(*family)->Add({{"code", "OK"}});
  }

  std::unique_ptr<EndpointServer> StartOrDie(ReadinessCheck readiness = {}) {
    auto server = EndpointServer::Start(
        {.address = "127.0.0.1:0", .registry = &registry_, .readiness = std::move(readiness)});
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? *std::move(server) : nullptr;
  }

  metrics::Registry registry_;
  metrics::Counter* requests_ = nullptr;
};

TEST_F(EndpointServerTest, ServesTheRegistryInTheTextFormat) {
  auto server = StartOrDie();
  ASSERT_NE(server, nullptr);
  EXPECT_GT(server->port(), 0);
  httplib::Client client("127.0.0.1", server->port());
  requests_->Increment(7);
  auto response = client.Get("/metrics");
  ASSERT_TRUE(response) << httplib::to_string(response.error());
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(response->body, registry_.Serialize());
  EXPECT_THAT(response->body, HasSubstr("test_requests_total{code=\"OK\"} 7\n"));
  // Later scrapes see later values.
  requests_->Increment();
  EXPECT_THAT(client.Get("/metrics")->body, HasSubstr("test_requests_total{code=\"OK\"} 8\n"));
}

TEST_F(EndpointServerTest, HealthzAnswersWhileAlive) {
  auto server = StartOrDie([] { return absl::UnavailableError("store not open"); });
  ASSERT_NE(server, nullptr);
  httplib::Client client("127.0.0.1", server->port());
  auto response = client.Get("/healthz");
  ASSERT_TRUE(response);
  EXPECT_EQ(response->status, 200);  // alive even though not ready
  EXPECT_EQ(response->body, "ok\n");
}

TEST_F(EndpointServerTest, ReadyzFollowsTheReadinessCheck) {
  std::atomic<bool> store_open{false};
  auto server = StartOrDie([&store_open] {
    return store_open ? absl::OkStatus() : absl::UnavailableError("job store is not open yet");
  });
  ASSERT_NE(server, nullptr);
  httplib::Client client("127.0.0.1", server->port());
  auto not_ready = client.Get("/readyz");
  ASSERT_TRUE(not_ready);
  EXPECT_EQ(not_ready->status, 503);
  EXPECT_EQ(not_ready->body, "not ready: job store is not open yet\n");
  store_open = true;
  auto ready = client.Get("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 200);
  EXPECT_EQ(ready->body, "ready\n");
}

TEST_F(EndpointServerTest, WithoutACheckReadyMeansAlive) {
  auto server = StartOrDie();
  ASSERT_NE(server, nullptr);
  httplib::Client client("127.0.0.1", server->port());
  EXPECT_EQ(client.Get("/readyz")->status, 200);
  EXPECT_EQ(client.Get("/nothing-here")->status, 404);
}

TEST_F(EndpointServerTest, StopClosesThePortAndIsIdempotent) {
  auto server = StartOrDie();
  ASSERT_NE(server, nullptr);
  int port = server->port();
  server->Stop();
  server->Stop();
  httplib::Client client("127.0.0.1", port);
  client.set_connection_timeout(1);
  EXPECT_FALSE(client.Get("/healthz"));
}

TEST_F(EndpointServerTest, StopDoesNotWaitForIdleKeepAliveConnections) {
  auto server = StartOrDie();
  ASSERT_NE(server, nullptr);
  httplib::Client client("127.0.0.1", server->port());
  client.set_keep_alive(true);  // as Prometheus scrapes: the connection stays open between scrapes
  ASSERT_TRUE(client.Get("/metrics"));
  auto start = std::chrono::steady_clock::now();
  server->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST_F(EndpointServerTest, StartThenStopAtOnceNeverHangs) {
  for (int i = 0; i < 50; ++i) {
    auto server = StartOrDie();
    ASSERT_NE(server, nullptr);
  }  // each destructor stops its server
}

TEST_F(EndpointServerTest, ABusyPortIsAClearError) {
  auto first = StartOrDie();
  ASSERT_NE(first, nullptr);
  std::string address = "127.0.0.1:" + std::to_string(first->port());
  auto second = EndpointServer::Start({.address = address,
                                       .address_flag = "--worker_metrics_address",
                                       .registry = &registry_,
                                       .readiness = {}});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), HasSubstr("--worker_metrics_address \"" + address));
  EXPECT_EQ(first->url(), "http://" + address);
}

TEST_F(EndpointServerTest, RequiresARegistry) {
  auto server = EndpointServer::Start(
      {.address = "127.0.0.1:0", .address_flag = "--a", .registry = nullptr, .readiness = {}});
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(HostPortTest, ParsesTheAddressForms) {
  EXPECT_EQ(ParseHostPort("127.0.0.1:9090", "--a")->host, "127.0.0.1");
  EXPECT_EQ(ParseHostPort("127.0.0.1:9090", "--a")->port, 9090);
  EXPECT_EQ(ParseHostPort(":9091", "--a")->host, "0.0.0.0");
  EXPECT_EQ(ParseHostPort("[::1]:80", "--a")->host, "::1");
  EXPECT_EQ(ParseHostPort("localhost:0", "--a")->port, 0);
}

TEST(HostPortTest, FormatsWhatItParsesBack) {
  EXPECT_EQ(FormatHostPort("127.0.0.1", 7452), "127.0.0.1:7452");
  EXPECT_EQ(FormatHostPort("::1", 0), "[::1]:0");
  for (const char* address : {"0.0.0.0:7451", "[::]:7452"}) {
    absl::StatusOr<HostPort> parsed = ParseHostPort(address, "--a");
    ASSERT_TRUE(parsed.ok()) << address;
    EXPECT_EQ(FormatHostPort(parsed->host, parsed->port), address);
  }
}

TEST(HostPortTest, NamesTheFlagInErrors) {
  EXPECT_THAT(ParseHostPort("9090", "--metrics_address").status().message(),
              HasSubstr("--metrics_address \"9090\": expected HOST:PORT"));
  EXPECT_THAT(ParseHostPort("host:99999", "--a").status().message(),
              HasSubstr("port must be a number from 0 to 65535"));
  EXPECT_THAT(ParseHostPort("host:", "--a").status().message(), HasSubstr("port must be"));
  EXPECT_THAT(ParseHostPort("::1:80", "--a").status().message(), HasSubstr("brackets"));
  EXPECT_THAT(ParseHostPort("[::1:80", "--a").status().message(), HasSubstr("unbalanced"));
}

}  // namespace
}  // namespace quantd::http
