// Identity and authorization without gRPC: the identities file's format and its errors, what the
// authenticator accepts (bearer tokens by their SHA-256, certificate names, the local worker's
// token), reloads that keep the old identities on error, and what each role may do to whose jobs.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "auth/access_policy.h"
#include "auth/authenticator.h"
#include "auth/identity_table.h"

namespace quantd::server::auth {
namespace {

namespace fs = std::filesystem;

std::string Identities(const std::string& principals) {
  return R"({"principals": [)" + principals + "]}";
}

std::string Entry(const std::string& name, const std::string& tenant, const std::string& roles,
                  const std::string& token) {
  return R"({"name": ")" + name + R"(", "tenant": ")" + tenant + R"(", "roles": )" + roles +
         R"(, "token_sha256": [")" + Sha256Hex(token) + R"("]})";
}

TEST(IdentityTableTest, ParsesPrincipalsWithTokensAndCertificates) {
  auto table = ParseIdentities(
      Identities(Entry("alice", "search", R"(["submitter"])", "t1") + "," +
                 R"({"name": "gpu-1", "roles": "worker", "certificate_cn": "gpu-1.example"})"),
      "ids.json");
  ASSERT_TRUE(table.ok()) << table.status();
  EXPECT_EQ(table->principals, 2u);
  const Principal& alice = table->by_token_sha256.at(Sha256Hex("t1"));
  EXPECT_EQ(alice.name, "alice");
  EXPECT_EQ(alice.tenant, "search");
  EXPECT_TRUE(alice.CanSubmit());
  EXPECT_FALSE(alice.Has(Role::kAdmin));
  const Principal& worker = table->by_certificate_cn.at("gpu-1.example");
  EXPECT_EQ(worker.tenant, "default");
  EXPECT_TRUE(worker.Has(Role::kWorker));
  EXPECT_FALSE(worker.CanView());
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(IdentityTableTest, MistakesAreErrorsNamingTheEntry) {
  struct Case {
    std::string json, expected;
  } cases[] = {
      {"[]", "not a JSON object"},
      {R"({"users": []})", "unknown key \"users\""},
      {Identities(R"({"name": "a", "roles": ["king"], "token_sha256": "x"})"),
       "role \"king\" is not one of viewer, submitter, admin, worker"},
      {Identities(R"({"name": "a", "roles": ["viewer"], "token_sha256": "abc"})"),
       "64 lower-case hex digits"},
      {Identities(R"({"name": "a", "roles": ["viewer"]})"), "needs token_sha256 or certificate_cn"},
      {Identities(R"({"name": "a", "tenant": "../etc", "roles": ["viewer"],
                      "certificate_cn": "a"})"),
       "\"tenant\" must be 1-63 of [a-z0-9_.-]"},
      {Identities(Entry("a", "t", R"(["viewer"])", "x") + "," + Entry("a", "t", R"(["viewer"])", "y")),
       "the name is used twice"},
      {Identities(Entry("a", "t", R"(["viewer"])", "x") + "," + Entry("b", "t", R"(["viewer"])", "x")),
       "also given to another principal"},
      {Identities(R"({"name": "a", "roles": ["viewer"], "certificate_cn": "c", "tokens": []})"),
       "unknown key \"tokens\""},
  };
  for (const Case& c : cases) {
    auto table = ParseIdentities(c.json, "ids.json");
    ASSERT_FALSE(table.ok()) << c.json;
    EXPECT_NE(table.status().message().find(c.expected), std::string::npos) << table.status();
    EXPECT_NE(table.status().message().find("ids.json"), std::string::npos) << table.status();
  }
}

class AuthenticatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    file_ = fs::temp_directory_path() / ("quantd-ids-" + std::to_string(getpid()) + ".json");
    Write(Entry("alice", "search", R"(["submitter"])", "alice-token") + "," +
          R"({"name": "bob", "roles": ["viewer"], "certificate_cn": "bob-cert"})");
    auto authenticator = Authenticator::Create(file_.string());
    ASSERT_TRUE(authenticator.ok()) << authenticator.status();
    authenticator_ = std::move(*authenticator);
  }
  void TearDown() override { fs::remove(file_); }
  void Write(const std::string& principals) { std::ofstream(file_) << Identities(principals); }
  absl::StatusOr<Principal> With(std::optional<std::string> authorization,
                                 std::optional<std::string> cn = std::nullopt) {
    return authenticator_->Authenticate({std::move(authorization), std::move(cn)});
  }

  fs::path file_;
  std::unique_ptr<Authenticator> authenticator_;
};

TEST_F(AuthenticatorTest, TokensAndCertificatesNamePrincipalsOthersAreUnauthenticated) {
  EXPECT_EQ(With("Bearer alice-token")->name, "alice");
  EXPECT_EQ(With("bearer alice-token")->name, "alice");  // The scheme is case-insensitive.
  EXPECT_EQ(With(std::nullopt, "bob-cert")->name, "bob");
  for (auto status : {With(std::nullopt).status(), With("Bearer nope").status(),
                      With("Basic YWxpY2U6eA==").status(), With("Bearer ").status(),
                      With("Bearer " + std::string(5000, 't')).status(),
                      With(std::nullopt, "mallory-cert").status()}) {
    EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << status;
  }
}

TEST_F(AuthenticatorTest, ReloadReplacesIdentitiesAndKeepsThemWhenTheFileIsBroken) {
  const std::string local = authenticator_->IssueLocalWorkerToken();
  ASSERT_EQ(local.size(), 64u);
  EXPECT_TRUE(With("Bearer " + local)->Has(Role::kWorker));
  Write(Entry("alice", "search", R"(["submitter"])", "rotated-token"));
  ASSERT_TRUE(authenticator_->Reload().ok());
  EXPECT_EQ(With("Bearer alice-token").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(With("Bearer rotated-token")->name, "alice");
  EXPECT_TRUE(With("Bearer " + local).ok());  // The local worker's token survives reloads.
  std::ofstream(file_) << "{broken";
  EXPECT_FALSE(authenticator_->Reload().ok());
  EXPECT_EQ(With("Bearer rotated-token")->name, "alice");
  EXPECT_EQ(authenticator_->tenants(), (std::set<std::string>{"default", "search"}));
}

TEST(AnonymousAuthenticatorTest, WithoutIdentitiesEveryCallerMayDoEverything) {
  auto authenticator = Authenticator::Create("");
  ASSERT_TRUE(authenticator.ok());
  auto p = (*authenticator)->Authenticate({});
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->anonymous);
  EXPECT_TRUE(p->Has(Role::kAdmin) && p->Has(Role::kWorker));
  EXPECT_EQ((*authenticator)->IssueLocalWorkerToken(), "");
  EXPECT_EQ(Authenticator::Create("/nonexistent/ids.json").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

Principal Make(const std::string& name, const std::string& tenant, Role role) {
  Principal p;
  p.name = name;
  p.tenant = tenant;
  p.roles = static_cast<uint32_t>(role);
  return p;
}

TEST(AccessPolicyTest, RolesTenantsAndOwnership) {
  v1::Job job;
  job.set_name("jobs/1");
  job.set_tenant("search");
  job.set_owner("alice");
  const Principal alice = Make("alice", "search", Role::kSubmitter);
  const Principal carol = Make("carol", "search", Role::kSubmitter);
  const Principal victor = Make("victor", "search", Role::kViewer);
  const Principal bob = Make("bob", "ads", Role::kSubmitter);
  const Principal root = Make("root", "ops", Role::kAdmin);
  const Principal worker = Make("gpu", "default", Role::kWorker);
  auto code = [](absl::Status s) { return s.code(); };
  constexpr auto kOk = absl::StatusCode::kOk;
  constexpr auto kDenied = absl::StatusCode::kPermissionDenied;
  EXPECT_EQ(code(CheckJobAccess(alice, Action::kCancel, job)), kOk);
  EXPECT_EQ(code(CheckJobAccess(carol, Action::kGet, job)), kOk);
  EXPECT_EQ(code(CheckJobAccess(carol, Action::kCancel, job)), kDenied);
  EXPECT_EQ(code(CheckJobAccess(victor, Action::kWatch, job)), kOk);
  EXPECT_EQ(code(CheckJobAccess(victor, Action::kCancel, job)), kDenied);
  EXPECT_EQ(code(CheckAction(victor, Action::kSubmit)), kDenied);
  EXPECT_EQ(code(CheckJobAccess(bob, Action::kGet, job)), kDenied);
  EXPECT_EQ(code(CheckJobAccess(root, Action::kCancel, job)), kOk);
  EXPECT_EQ(code(CheckAction(worker, Action::kList)), kDenied);
  EXPECT_EQ(code(CheckAction(worker, Action::kServeJobs)), kOk);
  EXPECT_EQ(code(CheckAction(root, Action::kServeJobs)), kDenied);  // Workers need their own.
  const std::string why = CheckJobAccess(bob, Action::kGet, job).message().data();
  EXPECT_NE(why.find("bob (tenant ads)"), std::string::npos) << why;
  v1::ListJobsRequest list;
  ASSERT_TRUE(ScopeListRequest(bob, list).ok());
  EXPECT_EQ(list.tenant(), "ads");
  list.set_tenant("search");
  EXPECT_EQ(code(ScopeListRequest(bob, list)), kDenied);
  v1::ListJobsRequest all;
  ASSERT_TRUE(ScopeListRequest(root, all).ok());
  EXPECT_EQ(all.tenant(), "");
}

}  // namespace
}  // namespace quantd::server::auth
