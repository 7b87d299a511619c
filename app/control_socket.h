#pragma once
// The daemon's control socket: a Unix stream socket (mode 0600 by default; file permissions
// are the access control) serving `authwall bans|ban|unban`.
//
// Protocol: the client sends one request line and reads the reply until the daemon closes.
//   bans json | bans text
//   ban TARGET SECONDS        TARGET is ADDR or ADDR/PREFIX
//   unban TARGET
// The reply's first line is "ok" or "error MESSAGE"; what follows is printed by the client
// as is (the daemon formats JSON and tables, so the client stays trivial).
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace authwall::app {

// Gets the request line (without the newline), returns the whole reply. Runs on the control
// io_context's thread; may block briefly (a ban waits for its firewall commit).
using ControlHandler = std::function<std::string(std::string_view request)>;

class ControlSocketServer {
 public:
  // A session is closed when its request has not arrived within `request_deadline` of the
  // connect, or its reply is not written within `reply_deadline` of the handler returning.
  ControlSocketServer(boost::asio::io_context& io, ControlHandler handler,
                      std::chrono::milliseconds request_deadline = std::chrono::seconds(10),
                      std::chrono::milliseconds reply_deadline = std::chrono::seconds(30));
  ~ControlSocketServer();
  ControlSocketServer(const ControlSocketServer&) = delete;
  ControlSocketServer& operator=(const ControlSocketServer&) = delete;

  // Creates the socket at `path` with `mode`. A stale socket file (nobody listening) is
  // replaced; a live one means another daemon runs there and is an error.
  bool listen(const std::string& path, unsigned mode, std::string& error);
  // Stops accepting and removes the socket file.
  void stop();

  static constexpr std::size_t kMaxRequestBytes = 4096;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// Client side: sends `request`, returns the reply in `reply`. On failure returns false with a
// one-sentence `error` ("authwall is not running (no control socket at PATH)").
bool control_request(const std::string& socket_path, std::string_view request, std::string& reply,
                     std::string& error);

}  // namespace authwall::app
