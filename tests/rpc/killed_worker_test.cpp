// A worker process killed mid-step (SIGKILL: no goodbye, the kernel closes the TCP
// connection) fails the coordinator's in-flight call within seconds, naming the rank.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "common/error.h"
#include "rpc/coordinator_client.h"
#include "rpc/worker_server.h"
#include "tests/rpc/fake_executor.h"

namespace tessera::rpc {
namespace {

using namespace std::chrono_literals;

TEST(KilledWorker, InFlightStepFailsDisconnectedNamingTheRank) {
  const Secret secret = make_secret();
  int port_pipe[2];
  ASSERT_EQ(pipe(port_pipe), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The worker process: serves with an executor that never finishes a step.
    testing::FakeExecutor executor(4);
    executor.block();
    WorkerServerOptions o;
    o.bind_host = "127.0.0.1";
    o.secret = secret;
    o.rank = 4;
    o.host = "doomed";
    WorkerServer server(executor, o);
    const uint16_t port = server.port();
    if (write(port_pipe[1], &port, sizeof port) != sizeof port) _exit(1);
    for (;;) pause();  // until killed
  }
  close(port_pipe[1]);
  uint16_t port = 0;
  ASSERT_EQ(read(port_pipe[0], &port, sizeof port), static_cast<ssize_t>(sizeof port));
  close(port_pipe[0]);

  CoordinatorOptions o;
  o.secret = secret;
  o.call_timeout = 30s;
  CoordinatorClient client({"127.0.0.1:" + std::to_string(port)}, o);
  StepPlan plan;
  plan.step_id = 1;
  auto future = client.run_step_async(plan);
  std::this_thread::sleep_for(100ms);  // the step is running (blocked) in the child
  const auto start = std::chrono::steady_clock::now();
  ASSERT_EQ(kill(child, SIGKILL), 0);
  try {
    future.get();
    ADD_FAILURE() << "the step succeeded on a killed worker";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kDisconnected);
    EXPECT_NE(std::string(e.what()).find("rank 4 (doomed"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 3.0);
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status));
}

}  // namespace
}  // namespace tessera::rpc
