// The servers' listening socket (gateway/listener.h) on loopback.
#include "gateway/listener.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <chrono>
#include <string>
#include <thread>

namespace settle::gateway {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

TEST(Listener, AHostThatIsNotAnIpAddressIsNamedInTheError) {
  asio::io_context ioc;
  Listener listener(ioc);
  const Status s = listener.listen("gateway", "localhost", 0);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalidArgument);
  EXPECT_EQ(s.error().message, "gateway: 'localhost' is not an IP address");
}

TEST(Listener, APortThatIsTakenIsUnavailableWithTheStepThatFailed) {
  asio::io_context ioc;
  Listener first(ioc);
  ASSERT_TRUE(first.listen("notify", "127.0.0.1", 0).ok());
  ASSERT_NE(first.port(), 0);
  Listener second(ioc);
  const Status s = second.listen("notify", "127.0.0.1", first.port());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kUnavailable);
  EXPECT_EQ(s.error().message.rfind("notify: cannot bind 127.0.0.1:" + std::to_string(first.port()) + ": ", 0), 0u)
      << s.error().message;
}

TEST(Listener, EachConnectionGoesToTheCallbackUntilClosed) {
  asio::io_context ioc;
  Listener listener(ioc);
  ASSERT_TRUE(listener.listen("gateway", "127.0.0.1", 0).ok());
  std::atomic<int> accepted{0};
  listener.accept([&](tcp::socket socket) {
    EXPECT_TRUE(socket.is_open());
    accepted.fetch_add(1);
  });
  auto guard = asio::make_work_guard(ioc);
  std::thread loop([&] { ioc.run(); });

  const tcp::endpoint at(asio::ip::make_address("127.0.0.1"), listener.port());
  for (int i = 0; i < 3; ++i) {
    asio::io_context client;
    tcp::socket s(client);
    s.connect(at);
  }
  for (int i = 0; i < 500 && accepted.load() < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(accepted.load(), 3);

  listener.close();
  bool refused = false;
  for (int i = 0; i < 500 && !refused; ++i) {
    asio::io_context client;
    tcp::socket s(client);
    boost::system::error_code ec;
    s.connect(at, ec);
    refused = ec == asio::error::connection_refused;
    if (!refused) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(refused) << "the port still accepts after close()";
  guard.reset();
  ioc.stop();
  loop.join();
}

}  // namespace
}  // namespace settle::gateway
