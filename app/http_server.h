#pragma once
// A small read-only HTTP/1.1 server (Boost.Beast) for metrics.listen: the daemon installs a
// handler for GET /metrics, /healthz and /api/v1/bans. Runs on the io_context it is given;
// the handler is called on that io_context's thread.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace authwall::app {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Called for every request: method ("GET", ...) and target path without the query string.
using HttpHandler = std::function<HttpResponse(std::string_view method, std::string_view path)>;

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts accepting. Returns false with `error` set when the address is invalid or
  // cannot be bound.
  bool listen(const boost::asio::ip::tcp::endpoint& endpoint, std::string& error);
  // Stops accepting; open connections finish their current request.
  void stop();
  boost::asio::ip::tcp::endpoint local_endpoint() const;

  // Connections beyond this are closed at once (scrapers and curl need only a few).
  static constexpr std::size_t kMaxConnections = 64;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

// "127.0.0.1:9464", "[::1]:9464" or "localhost:9464" -> endpoint. False for anything else.
bool parse_host_port(std::string_view text, boost::asio::ip::address& addr, unsigned short& port);

}  // namespace authwall::app
